#pragma once

#include <filesystem>
#include <string_view>

// A workspace that contractor made carries a marker file at its root. The export replaces only
// such a workspace, an empty folder or a missing one: a spec that names the user's own folder
// (`workspace: ~/Documents`, or a committed symlink to it) must never see it replaced.
namespace contractor::transfer {

// The marker's name at the workspace's root. It is contractor's, not the build's: it is not
// copied into the worker, and an entry of that name coming back from the worker is refused.
inline constexpr std::string_view workspace_marker_name = ".contractor-workspace";

// What a folder named as a workspace is, judged without following a symlink at `path`.
enum class WorkspaceState {
    missing,    // nothing there: the export creates it
    empty,      // an empty folder: the export may fill it
    contractor, // a folder with contractor's marker: the export may replace it
    foreign,    // anything else (a non-empty folder without the marker, a file, a symlink)
};

// Classifies `path` (lstat: a symlink is foreign, whatever it points at).
WorkspaceState classify_workspace(const std::filesystem::path& path);

// Writes the marker into the folder open as `dir_fd` (0644, replacing one that is there);
// 0 or the errno of the failure.
int write_workspace_marker(int dir_fd) noexcept;

} // namespace contractor::transfer
