#pragma once

#include "transfer/handles.hpp"

#include <cstdint>
#include <string>
#include <vector>

// Descriptor-relative directory helpers shared by packing and extraction. None of them follows
// a symlink it was not asked to follow.
namespace contractor::transfer {

// The names in the directory open as `dir_fd` (without "." and ".."), sorted bytewise; 0 or the
// errno of the failure.
int list_directory(int dir_fd, std::vector<std::string>& names);

// openat2(root_fd, path, flags, resolve): `path` resolved without leaving `root_fd` (with
// RESOLVE_BENEATH in `resolve`); an empty Fd with errno set on failure.
Fd open_beneath(int root_fd, const std::string& path, int flags, std::uint64_t resolve);

// Removes `name` in `parent_fd` and everything under it, never following a symlink, making
// directories accessible first so that read-only directories go too; 0 or the first errno.
int remove_tree(int parent_fd, const std::string& name) noexcept;

} // namespace contractor::transfer
