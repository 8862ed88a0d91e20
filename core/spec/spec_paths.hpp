#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// Where the spec's paths (source, workspace, a worker image file) may point. A spec usually
// lives in the repository being built, so its paths are the repository's word, not the user's:
// they stay beneath the spec's folder (or a folder the user's config allows) and are never
// followed through a symlink the repository committed (`ws -> ../../.ssh` would otherwise be
// packed into the worker and then replaced by the export). Paths the user types on the command
// line are the user's own and may go anywhere.
namespace contractor::spec {

// Where one of the effective spec's paths came from.
enum class PathOrigin { spec, command_line };

// "spec" or "command line".
std::string_view to_string(PathOrigin origin);

// A spec path that may not be used; the message says why ("leaves the spec's folder ...").
// spec::resolve() turns it into a located error naming the key, with the way around it.
class PathError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The spec's `value` as an absolute, lexically normal path. It must lie beneath
// `spec_directory` or beneath one of `allowed_roots` (absolute, from the user config), and no
// component of it below that folder may be a symlink (lstat; components that do not exist yet
// end the check). Symlinks in `spec_directory` or a root themselves, and above them, are the
// user's own layout and are kept. Throws PathError otherwise.
std::filesystem::path resolve_spec_path(const std::filesystem::path& spec_directory,
                                        const std::string& value,
                                        const std::vector<std::filesystem::path>& allowed_roots);

} // namespace contractor::spec
