#include "spec/spec_paths.hpp"

#include "util/text.hpp"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <system_error>

namespace contractor::spec {
namespace fs = std::filesystem;

namespace {

// `path` lexically normalised, without a trailing '/' ("ws/" and "ws" are the same folder).
fs::path normal(const fs::path& path) {
    fs::path out = path.lexically_normal();
    if (!out.has_filename() && out.has_relative_path()) {
        out = out.parent_path();
    }
    return out;
}

// Whether the normal, absolute `path` is `base` or lies beneath it, by its spelling.
bool is_beneath(const fs::path& path, const fs::path& base) {
    const fs::path relative = path.lexically_relative(base);
    return !relative.empty() && *relative.begin() != "..";
}

// Throws PathError when a component of `path` below `base` is a symlink. Checked one
// component at a time with lstat, so a link anywhere in the chain is caught, not only at the
// end. What does not exist yet cannot be a link: the check ends there.
void refuse_symlinks_below(const fs::path& base, const fs::path& path) {
    fs::path current = base;
    for (const auto& part : path.lexically_relative(base)) {
        if (part == ".") {
            continue;
        }
        current /= part;
        struct stat status {};
        if (::lstat(current.c_str(), &status) != 0) {
            if (errno == ENOENT || errno == ENOTDIR) {
                return;
            }
            throw PathError("cannot be checked: " + current.string() + ": " + std::strerror(errno));
        }
        if (S_ISLNK(status.st_mode)) {
            std::error_code error;
            const fs::path target = fs::read_symlink(current, error);
            throw PathError("goes through the symlink " + util::quoted(current.string()) +
                            (error ? "" : " (-> " + util::quoted(target.string()) + ")") +
                            ", and a spec's paths are not followed through symlinks");
        }
    }
}

} // namespace

std::string_view to_string(PathOrigin origin) {
    switch (origin) {
    case PathOrigin::spec:
        return "spec";
    case PathOrigin::command_line:
        return "command line";
    }
    return "?";
}

fs::path resolve_spec_path(const fs::path& spec_directory, const std::string& value,
                           const std::vector<fs::path>& allowed_roots) {
    const fs::path directory = normal(spec_directory);
    const fs::path written(value);
    const fs::path path = normal(directory / written);
    if (is_beneath(path, directory)) {
        refuse_symlinks_below(directory, path);
        return path;
    }
    for (const fs::path& configured : allowed_roots) {
        // The root as written, and with the user's own symlinks resolved: the spec's folder
        // usually comes from getcwd(), which has them resolved.
        std::error_code error;
        const fs::path resolved = fs::weakly_canonical(configured, error);
        for (const fs::path& root : {normal(configured), error ? fs::path() : normal(resolved)}) {
            if (!root.empty() && is_beneath(path, root)) {
                refuse_symlinks_below(root, path);
                return path;
            }
        }
    }
    const std::string where =
        "the spec's folder " + directory.string() +
        (allowed_roots.empty() ? std::string() : " and the folders your config allows");
    if (written.is_absolute()) {
        throw PathError("is an absolute path outside " + where);
    }
    throw PathError("leaves " + where);
}

} // namespace contractor::spec
