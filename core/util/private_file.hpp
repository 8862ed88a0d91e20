#pragma once

#include <filesystem>
#include <string_view>

namespace contractor::util {

// Writes `content` to `file`, readable and writable by its owner only (0600) from the first
// byte: keys, credentials, records with a pinned host key. The text goes to a temporary file
// beside it that is renamed over `file`, so a reader sees the old file or the whole new one.
// Throws InfrastructureError naming the file and the system's reason.
void write_private_file(const std::filesystem::path& file, std::string_view content);

} // namespace contractor::util
