# Every dependency is a Debian 12 package (see scripts/debian-packages); found here, never
# vendored or downloaded.
find_package(PkgConfig REQUIRED)
find_package(yaml-cpp 0.7 REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(CLI11 2.1 REQUIRED)
# Boost.Process runs every child process; in 1.74 it needs Boost.Filesystem.
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem)
# libvirt and libssh drive VMs and connections from step 2 on; found now so that a missing
# package is reported by the first build, not the first VM scenario.
pkg_check_modules(LIBVIRT REQUIRED IMPORTED_TARGET libvirt>=9.0)
pkg_check_modules(LIBSSH REQUIRED IMPORTED_TARGET libssh>=0.10)
# libarchive writes and reads the workspace tar streams from step 3 on: it knows every tar
# dialect and its pitfalls, which a hand-written tar reader would relearn the hard way.
# OpenSSL's SHA-256 computes the image cache keys and image digests.
pkg_check_modules(LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto>=3.0)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive>=3.6)
if(CONTRACTOR_TESTS)
  find_package(Catch2 2.13 REQUIRED)
endif()
find_package(Threads REQUIRED)
