#include "managervm/uploads.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/text.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

namespace contractor::managervm {
namespace fs = std::filesystem;
using connection::shell_quote;

namespace {

// Runs `command` on the hop with no input; true when it exits 0.
bool succeeds(connection::Hop& hop, const std::string& command) {
    std::string output;
    return hop.run(command, output) == 0;
}

void run_or_throw(connection::Hop& hop, const std::string& command, const std::string& what) {
    std::string output;
    if (hop.run(command, output) != 0) {
        throw InfrastructureError("cannot " + what + " on " + hop.describe() + ": " + output,
                                  "'contractor manager status' shows the manager's free disk");
    }
}

} // namespace

void upload_file(connection::Hop& hop, const fs::path& local, const std::string& remote, int mode,
                 const Progress& progress) {
    std::ifstream in(local, std::ios::binary);
    if (!in) {
        throw InfrastructureError("cannot read " + local.string());
    }
    const std::uint64_t total = fs::file_size(local);
    std::string errors;
    auto command = hop.start(connection::replace_file_command(remote, mode),
                             connection::bounded_sink(errors, 65536));
    std::vector<char> buffer(1 << 20);
    std::uint64_t done = 0;
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        const auto count = static_cast<std::size_t>(in.gcount());
        if (count == 0) {
            break;
        }
        if (util::cancel_requested()) {
            command->terminate();
            throw Interrupted(util::cancel_signal());
        }
        command->write(buffer.data(), count);
        done += count;
        if (progress) {
            progress(done, total);
        }
    }
    command->close_write();
    char sink[256];
    while (const auto count = command->read(sink, sizeof sink, std::chrono::seconds(60))) {
        if (*count == 0) {
            break;
        }
    }
    if (command->wait() != 0) {
        throw InfrastructureError("cannot write " + remote + " on " + hop.describe() + ": " +
                                      errors,
                                  "'contractor manager status' shows the manager's free disk");
    }
}

std::string install_agent(connection::Hop& hop, const fs::path& agent, const fs::path& memo_root) {
    const std::string full_digest = image::file_sha256(agent, memo_root);
    const std::string digest = full_digest.substr(0, 16);
    const std::string folder = ".local/lib/contractor";
    const std::string remote = folder + "/contractor-manager-" + digest;
    // Every start checks the agent's digest first: the workers' QEMU runs as another account
    // that cannot write it, and if something did, the CLI would not run what it did not send.
    const std::string checked =
        "sh -c " +
        shell_quote("[ \"$(sha256sum < \"$0\" | cut -c1-64)\" = " + full_digest +
                    " ] && exec \"$0\" \"$@\"; echo \"contractor: the manager's agent $0 is not "
                    "the one this CLI copied in (its digest changed)\" >&2; exit 86") +
        " " + shell_quote(remote);
    if (succeeds(hop, "test -x " + shell_quote(remote))) {
        return checked;
    }
    run_or_throw(hop, "mkdir -p " + shell_quote(folder), "create " + folder);
    upload_file(hop, agent, remote, 0755, {});
    // Older agents are of no use once a CLI with another one talks to this manager.
    std::string ignored;
    hop.run("cd " + shell_quote(folder) + " && for old in contractor-manager-*; do [ \"$old\" = " +
                shell_quote("contractor-manager-" + digest) + " ] || rm -f -- \"$old\"; done",
            ignored);
    return checked;
}

ImageCopy install_image(connection::Hop& hop, const image::CachedImage& image,
                        const Progress& progress) {
    ImageCopy copy;
    copy.entry = image.name + "-" + image.digest;
    const std::string cache = ".cache/contractor/images";
    const std::string target = cache + "/" + copy.entry;
    // An entry there from an older contractor, without the kernel's and initrd's digests
    // that the agent checks before each boot, is replaced.
    if (succeeds(hop, "grep -qs initrd_sha256 " + shell_quote(target + "/image.json"))) {
        return copy;
    }
    run_or_throw(hop, "rm -rf " + shell_quote(target), "remove an older copy of " + copy.entry);
    const auto started = std::chrono::steady_clock::now();
    // A hidden folder (the cache skips those) renamed into place when every file is there;
    // a concurrent build copying the same image may win the rename, which is fine.
    const std::string staging = cache + "/.incoming-" + copy.entry + "-" + util::random_hex(4);
    run_or_throw(hop, "mkdir -p " + shell_quote(staging), "create " + staging);
    const std::vector<std::string> files = {"disk.qcow2", "vmlinuz", "initrd.img", "image.json"};
    std::uint64_t total = 0;
    for (const auto& name : files) {
        total += fs::file_size(image.directory / name);
    }
    std::uint64_t before = 0;
    try {
        for (const auto& name : files) {
            upload_file(hop, image.directory / name, staging + "/" + name, 0644,
                        [&](std::uint64_t done, std::uint64_t) {
                            if (progress) {
                                progress(before + done, total);
                            }
                        });
            before += fs::file_size(image.directory / name);
        }
        run_or_throw(hop,
                     "chmod 755 " + shell_quote(staging) + " && { mv -T " + shell_quote(staging) +
                         " " + shell_quote(target) + " 2>/dev/null || { test -f " +
                         shell_quote(target + "/image.json") + " && rm -rf " +
                         shell_quote(staging) + "; }; }",
                     "put the image into the manager's cache");
    } catch (...) {
        std::string ignored;
        try {
            hop.run("rm -rf " + shell_quote(staging), ignored, connection::Hop::OnCancel::finish);
        } catch (const std::exception&) {
        }
        throw;
    }
    copy.copied = true;
    copy.bytes = total;
    copy.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return copy;
}

} // namespace contractor::managervm
