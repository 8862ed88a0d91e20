#include "manager-agent/input_filesystem.hpp"

#include "connection/hop.hpp"
#include "manager-agent/exchange_disk.hpp"
#include "proc/process.hpp"
#include "transfer/directory.hpp"
#include "transfer/handles.hpp"
#include "util/leftover.hpp"
#include "util/log.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <system_error>
#include <unistd.h>

namespace contractor::manager {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t mebibyte = 1024 * 1024;
constexpr std::uint64_t block = 4096;

// In the worker: the filesystem, and the overlay's upper and work folders on its own disk.
constexpr const char* lower_mount = "/run/contractor-input";
constexpr const char* changes_folder = "/var/lib/contractor-changes";

// Room for the folder's contents as ext4 with 4 KiB blocks and no journal: every file's data
// in whole blocks, a block for each folder and symlink, the inode tables (256 bytes per inode)
// and an eighth more for bitmaps and indirect blocks; sparse on this side, so room costs little.
struct Room {
    std::uint64_t bytes = 0;
    std::uint64_t inodes = 0;
};

std::optional<Room> room_for(const fs::path& folder) {
    Room room;
    std::error_code error;
    for (fs::recursive_directory_iterator entry(folder, error), end; !error && entry != end;
         entry.increment(error)) {
        const auto status = entry->symlink_status(error);
        if (error) {
            break;
        }
        ++room.inodes;
        room.bytes += block;
        if (fs::is_regular_file(status)) {
            room.bytes += (entry->file_size(error) + block - 1) / block * block;
        }
    }
    if (error) {
        util::debug("manager", "cannot measure " + folder.string() + ": " + error.message());
        return std::nullopt;
    }
    room.inodes += 1024;
    room.bytes += room.bytes / 8 + room.inodes * 256 + 32 * mebibyte;
    room.bytes = (room.bytes + mebibyte - 1) / mebibyte * mebibyte;
    return room;
}

bool run_step(const std::vector<std::string>& argv) {
    const proc::ProcessResult result = proc::run_process(argv);
    if (!result.succeeded()) {
        util::debug("manager", "the input goes in as a tar stream: " + argv.front() + " " +
                                   result.describe() + ": " + proc::tail_lines(result.output, 3));
    }
    return result.succeeded();
}

// Lists what the build changed, from the overlay: argv lower upper merged out. Every entry of
// the upper layer but a whiteout is a change (a folder there holds changes, or had its own
// mode changed); a name of the lower layer that the merged view no longer shows, or shows as
// something other than the folder it was, was removed. Writes out/.contractor-workspace/removed
// and out/changed, each name ended by a NUL byte. Only python3's standard library: the
// worker's images have it (Ansible needs it).
constexpr const char* list_changes = R"PY(
import os, stat, sys
lower, upper, merged, out = sys.argv[1:5]
removed, changed = [], []
def kind(path):
    try:
        return stat.S_IFMT(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
for root, dirs, files in os.walk(upper):
    rel = os.path.relpath(root, upper)
    prefix = '' if rel == '.' else rel + '/'
    for name in sorted(dirs + files):
        st = os.lstat(os.path.join(root, name))
        if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
            changed.append(prefix + name)
    below = os.path.join(lower, prefix)
    if kind(below.rstrip('/') or '/') != stat.S_IFDIR:
        continue
    for name in sorted(os.listdir(below)):
        if prefix == '' and name == 'lost+found':
            continue  # mke2fs's, removed in the overlay at mount: never the input's
        now = kind(os.path.join(merged, prefix + name))
        if now is None or (now != stat.S_IFDIR and kind(os.path.join(below, name)) == stat.S_IFDIR):
            removed.append(prefix + name)
def write(path, names):
    with open(path, 'wb') as f:
        for name in names:
            f.write(os.fsencode(name) + b'\0')
write(os.path.join(out, '.contractor-workspace', 'removed'), removed)
write(os.path.join(out, 'changed'), changed)
)PY";

constexpr std::string_view staging_prefix = "contractor-input-";

// Removes `folder` and everything in it, read-only folders of the input too (remove_all stops
// at those), never following a symlink.
void remove_staging(const fs::path& folder) {
    const transfer::Fd parent(
        open(folder.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent || transfer::remove_tree(parent.get(), folder.filename()) != 0) {
        util::debug("manager", "cannot remove all of " + folder.string());
    }
}

// Removes the folders that agents killed while making a filesystem left in `parent`: named
// with the process id, whose process is gone.
void remove_stale_staging(const fs::path& parent) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(parent, error)) {
        struct stat status {};
        if (!util::is_leftover(entry.path().filename().string(), staging_prefix) ||
            lstat(entry.path().c_str(), &status) != 0 || status.st_uid != getuid()) {
            continue;
        }
        remove_staging(entry.path());
    }
}

fs::path staging_parent(const fs::path& fallback, std::uint64_t input_bytes) {
    // Memory, when it has room: the folder lives for seconds, and making 20,000 files on a
    // disk costs seconds to minutes here (ext4 with online discard) against half a second.
    struct statfs memory {};
    if (statfs("/dev/shm", &memory) == 0 && memory.f_type == TMPFS_MAGIC &&
        static_cast<std::uint64_t>(memory.f_bavail) * memory.f_bsize >
            2 * input_bytes + 256 * mebibyte) {
        return "/dev/shm";
    }
    return fallback;
}

} // namespace

std::string worker_user_command() {
    return "echo \"$(id -u) $(id -g)\"";
}

std::optional<WorkerUser> parse_worker_user(std::string_view printed) {
    const auto numbers = parse_number_pair(printed);
    constexpr std::uint64_t largest = std::numeric_limits<unsigned>::max();
    if (!numbers || numbers->first > largest || numbers->second > largest) {
        return std::nullopt;
    }
    return WorkerUser{static_cast<unsigned>(numbers->first),
                      static_cast<unsigned>(numbers->second)};
}

std::optional<std::uint64_t> make_input_filesystem(const fs::path& input, const fs::path& scratch,
                                                   const fs::path& image, WorkerUser user) {
    std::error_code error;
    const std::uint64_t input_bytes = fs::file_size(input, error);
    if (error) {
        util::debug("manager", "cannot read " + input.string() + ": " + error.message());
        return std::nullopt;
    }
    const fs::path parent = staging_parent(scratch, input_bytes);
    remove_stale_staging(parent);
    std::string pattern =
        (parent / (std::string(staging_prefix) + std::to_string(getpid()) + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
        util::debug("manager", "cannot make " + pattern + ": " + std::strerror(errno));
        return std::nullopt;
    }
    const fs::path folder = pattern;
    struct RemoveFolder {
        const fs::path& folder;
        ~RemoveFolder() { remove_staging(folder); }
    } remove_folder{folder};
    // The CLI's stream, with the modes and times it gives; owners come from mke2fs below.
    if (!run_step({"tar", "-x", "-f", input.string(), "-C", folder.string(), "--no-same-owner",
                   "--preserve-permissions", "--delay-directory-restore"})) {
        return std::nullopt;
    }
    // mke2fs -d leaves out a top-level lost+found of the input (it makes its own, which the
    // worker removes): such an input goes in as a tar stream.
    if (fs::exists(fs::symlink_status(folder / "lost+found"))) {
        util::debug("manager", "the input goes in as a tar stream: it has a lost+found");
        return std::nullopt;
    }
    const auto room = room_for(folder);
    if (!room) {
        return std::nullopt;
    }
    fs::resize_file(image, room->bytes, error);
    if (error) {
        util::debug("manager", "cannot size " + image.string() + ": " + error.message());
        return std::nullopt;
    }
    const std::string id = std::to_string(user.uid);
    const std::string group = std::to_string(user.gid);
    // No journal: the worker mounts it read-only. -F: the file is not empty (a boot-time zero
    // MiB, or an earlier stream) and is not a block device.
    if (!run_step({"unshare",
                   "--map-user=" + id,
                   "--map-group=" + group,
                   "mke2fs",
                   "-q",
                   "-F",
                   "-t",
                   "ext4",
                   "-O",
                   "^has_journal",
                   "-b",
                   std::to_string(block),
                   "-N",
                   std::to_string(room->inodes),
                   "-E",
                   "root_owner=" + id + ":" + group,
                   "-d",
                   folder.string(),
                   image.string(),
                   std::to_string(room->bytes / 1024) + "k"})) {
        return std::nullopt;
    }
    return room->bytes;
}

std::string mount_input_command(std::uint64_t bytes, WorkerUser user) {
    // flushbufs: the guest's kernel read the disk's first sectors at boot (a partition table
    // scan) and would take the superblock from its cache. lost+found is mke2fs's, not the
    // input's: removed in the overlay (a whiteout, which the change list skips).
    const std::string script =
        std::string("set -u; d=$1; owner=$2; ") + "lower=" + lower_mount +
        "; changes=" + changes_folder +
        "; blockdev --flushbufs \"$d\" && mkdir -p \"$lower\" /workspace && "
        "mount -t ext4 -o ro,noload \"$d\" \"$lower\" || exit 72; "
        "rm -rf \"$changes\" && mkdir -p \"$changes/upper\" \"$changes/work\" && "
        "chown \"$owner\" \"$changes/upper\" && chmod 755 \"$changes/upper\" && "
        "mount -t overlay overlay -o \"lowerdir=$lower,upperdir=$changes/upper,"
        "workdir=$changes/work,redirect_dir=off,metacopy=off,index=off,xino=off\" /workspace "
        "|| { umount \"$lower\"; exit 73; }; "
        "rmdir /workspace/lost+found 2>/dev/null; exit 0";
    return find_exchange_device(bytes) + " && sudo -n sh -c " + connection::shell_quote(script) +
           " sh \"$d\" " + std::to_string(user.uid) + ":" + std::to_string(user.gid);
}

std::string pack_workspace_command(std::uint64_t device_bytes, std::uint64_t offset,
                                   ExportShape shape) {
    // conv=fsync: everything is on the disk, past the guest's cache, when dd ends. dd's last
    // line says how many bytes it wrote, also when the disk was full. --verbatim-files-from: a
    // listed name that starts with '-' is a name.
    const std::string script =
        std::string("d=$1; seek=$2; shape=$3; out=/run/contractor-changes; ") +
        "rm -rf \"$out\" && mkdir -p \"$out/.contractor-workspace\" || exit 74; "
        "if [ \"$shape\" = changes ] && python3 -c \"$4\" " +
        lower_mount + " " + changes_folder +
        "/upper /workspace \"$out\"; then "
        "set -- tar -c -f - --numeric-owner --no-recursion -C \"$out\" "
        ".contractor-workspace/removed -C /workspace --null --verbatim-files-from "
        "-T \"$out/changed\"; "
        "else set -- tar -c -f - -C /workspace --numeric-owner .; fi; "
        "{ \"$@\"; echo $? > /tmp/.contractor-tar-status; } | "
        "dd of=\"$d\" bs=1M seek=\"$seek\" iflag=fullblock conv=fsync 2> /tmp/.contractor-dd-log; "
        "copied=$(tail -n 1 /tmp/.contractor-dd-log); "
        "echo \"${copied%% *} $(cat /tmp/.contractor-tar-status)\"";
    return find_exchange_device(device_bytes) + " && sudo -n sh -c " +
           connection::shell_quote(script) + " sh \"$d\" " + std::to_string(offset / mebibyte) +
           " " + (shape == ExportShape::changes ? "changes" : "whole") + " " +
           connection::shell_quote(list_changes);
}

} // namespace contractor::manager
