#include "image/builder.hpp"

#include "image/sha256.hpp"
#include "proc/process.hpp"
#include "util/error.hpp"
#include "util/folder_guard.hpp"

#include <algorithm>
#include <system_error>
#include <unistd.h>

namespace contractor::image {
namespace fs = std::filesystem;

namespace {

// Bumped whenever the build steps below change what they produce.
constexpr std::string_view builder_version = "contractor-image-builder 5";

std::string joined(const std::vector<std::string>& words, char separator) {
    std::string out;
    for (const auto& word : words) {
        out += (out.empty() ? "" : std::string(1, separator)) + word;
    }
    return out;
}

// `text` in single quotes for sh.
std::string shell_quoted(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return out + "'";
}

template <typename Step>
void timed(const std::string& name, const StepReporter& report, Step step) {
    const auto start = std::chrono::steady_clock::now();
    report(name, -1);
    step();
    report(name, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

} // namespace

std::string recipe_digest(const Recipe& recipe, const std::vector<std::string>& extra_packages) {
    Sha256 hash;
    hash.update(builder_version);
    hash.update("\nrecipe\n");
    hash.update_file(recipe.file);
    hash.update("\ncustomize\n");
    hash.update_file(recipe.customize);
    for (const auto& [variable, path] : recipe.files) {
        hash.update("\nfile " + variable + "\n");
        hash.update_file(path);
    }
    std::vector<std::string> packages = extra_packages;
    std::sort(packages.begin(), packages.end());
    packages.erase(std::unique(packages.begin(), packages.end()), packages.end());
    hash.update("\npackages " + joined(packages, ',') + "\n");
    return hash.hex_digest().substr(0, 16);
}

BuildReport build_image(const Recipe& recipe, const std::vector<std::string>& extra_packages,
                        const ImageCache& cache, const StepReporter& report_step) {
    const auto start = std::chrono::steady_clock::now();
    const std::string digest = recipe_digest(recipe, extra_packages);
    if (auto cached = cache.find(recipe.name, digest)) {
        return {*cached, true, std::chrono::steady_clock::now() - start};
    }
    const fs::path staging = cache.make_staging();
    util::FolderGuard guard(staging);
    const fs::path raw = staging / "disk.raw";
    std::vector<std::string> packages = recipe.packages;
    packages.insert(packages.end(), extra_packages.begin(), extra_packages.end());
    proc::ProcessOptions options;
    for (const auto& [variable, path] : recipe.files) {
        options.environment.emplace_back(variable, fs::absolute(path).string());
    }
    // mmdebstrap's auto mode picks root mode as root and unshare mode (user namespaces, no
    // root) otherwise. The ext2 format pipes its tarball to genext2fs outside the namespace, so
    // the image has the files' real owners and belongs to the user in both modes (Debian 12's
    // mkfs.ext4 -d cannot read a tarball, and a folder made in unshare mode belongs to
    // sub-uids). The `download` hooks copy the kernel and initrd out the same way.
    std::vector<std::string> command = {
        "mmdebstrap",
        "--mode=auto",
        "--format=ext2",
        "--variant=" + recipe.variant,
        "--include=" + joined(packages, ','),
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--customize-hook=" + shell_quoted(recipe.customize.string()) + " \"$1\"",
        "--customize-hook=download /boot/vmlinuz " + (staging / "vmlinuz").string(),
        "--customize-hook=download /boot/initrd.img " + (staging / "initrd.img").string()};
    if (recipe.keep_apt_lists) {
        command.push_back("--skip=cleanup/apt");
    }
    command.push_back(recipe.suite);
    command.push_back(raw.string());
    timed("debian root filesystem (mmdebstrap)", report_step, [&] {
        proc::run_checked(command, options,
                          "is Debian's mirror reachable? Run with CONTRACTOR_DEBUG=1 "
                          "to see the command");
    });
    // ext2 to ext4 (journal, extents, and file types in directory entries, which genext2fs
    // leaves out and overlayfs needs for the workspace's upper layer), grown to the recipe's
    // size; all on the file, no mount.
    timed("ext4 filesystem (tune2fs, resize2fs)", report_step, [&] {
        proc::run_checked({"tune2fs", "-L", "contractor-root", "-O",
                           "extents,uninit_bg,dir_index,has_journal,filetype", raw.string()});
        // e2fsck returns 1 when it only optimised something; resize2fs insists on a fresh check.
        const auto check = proc::run_process({"e2fsck", "-f", "-p", raw.string()});
        if (check.state != proc::ProcessResult::State::exited || check.exit_code > 1) {
            throw InfrastructureError("e2fsck " + check.describe() + ": " +
                                      proc::tail_lines(check.output, 5));
        }
        proc::run_checked(
            {"resize2fs", "-f", raw.string(), std::to_string(recipe.disk_size / 1024) + "K"});
    });
    timed("qcow2 disk (qemu-img convert)", report_step, [&] {
        proc::run_checked({"qemu-img", "convert", "-O", "qcow2", raw.string(),
                           (staging / "disk.qcow2").string()});
        fs::remove(raw);
    });
    CachedImage metadata;
    metadata.name = recipe.name;
    metadata.digest = digest;
    metadata.init = recipe.init;
    Sha256 disk_hash;
    disk_hash.update_file(staging / "disk.qcow2");
    metadata.disk_sha256 = disk_hash.hex_digest();
    metadata.kernel_sha256 = fresh_file_sha256(staging / "vmlinuz", {});
    metadata.initrd_sha256 = fresh_file_sha256(staging / "initrd.img", {});
    CachedImage image = cache.commit(staging, metadata);
    guard.release();
    return {image, false, std::chrono::steady_clock::now() - start};
}

} // namespace contractor::image
