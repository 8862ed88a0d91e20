#include "util/text.hpp"

#include "util/escape.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

namespace contractor::util {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
            row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string_view> candidates) {
    // A third of the word's length (at least 2) catches typos such as "biuld" or "memroy"
    // without suggesting unrelated keys for words that merely share a letter or two.
    const std::size_t threshold = std::max<std::size_t>(2, word.size() / 3);
    std::optional<std::string> best;
    std::size_t best_distance = threshold + 1;
    for (auto candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        if (distance < best_distance) {
            best_distance = distance;
            best = std::string(candidate);
        }
    }
    return best;
}

std::string random_hex(std::size_t length) {
    std::random_device device;
    std::uniform_int_distribution<unsigned> digit(0, 15);
    std::string out;
    for (std::size_t i = 0; i < length; ++i) {
        out += "0123456789abcdef"[digit(device)];
    }
    return out;
}

std::string quoted(std::string_view word) {
    return "'" + escape(word, {.short_forms = false}) + "'";
}

} // namespace contractor::util
