# `cpack -G DEB` in the build folder makes contractor_VERSION_amd64.deb of what cmake/Install.cmake
# and the targets install. Its dependencies are what the program needs at run time: the shared
# libraries (found by dpkg-shlibdeps) and the programs it runs on this host. Build-only packages
# (compilers, -dev headers, Catch2, clang) are not among them.
set(CPACK_PACKAGE_NAME contractor)
set(CPACK_PACKAGE_VENDOR "Contractor")
set(CPACK_PACKAGE_CONTACT "Contractor developers <contractor@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "build untrusted software in a disposable VM under hard limits")
set(CPACK_PACKAGE_DESCRIPTION
    "Contractor builds software nobody can fully vet inside a disposable worker VM (nested in a
long-lived manager VM), with hard CPU-time, memory, disk and network limits, a per-host and
per-protocol network allowlist, and a checked copy of the workspace back.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
# The programs contractor runs on the host: libvirt's QEMU driver and QEMU (worker and manager
# VMs), qemu-img (overlays), mmdebstrap with uidmap and fakeroot and genext2fs (images without
# root), e2fsprogs (mke2fs, e2fsck, resize2fs), mtools and dosfstools (seed disks), busybox and
# cpio (the initrd), ssh (worker tunnels, `contractor shell`), tar.
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libvirt-daemon, libvirt-daemon-driver-qemu, qemu-system-x86, qemu-utils, mmdebstrap, uidmap, fakeroot, genext2fs, e2fsprogs, mtools, dosfstools, busybox-static, cpio, openssh-client, tar")
# virsh to look at VMs by hand; UEFI firmware for images that boot with it (foreign images).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libvirt-clients")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "ovmf")
set(CPACK_GENERATOR DEB)
include(CPack)
