#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace contractor::util {

// Number of single-character insertions, deletions and substitutions between a and b.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string_view> candidates);

// `length` random lower-case hex digits, for names that must not collide.
std::string random_hex(std::size_t length);

// `word` in single quotes with control characters and invalid UTF-8 escaped as \xNN
// (util::escape), for error messages.
std::string quoted(std::string_view word);

} // namespace contractor::util
