#pragma once

#include "yaml/source_error.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace contractor::yaml {

// A key written twice in one mapping (merge keys excluded: overriding them is their purpose).
struct DuplicateKey {
    std::string mapping_pointer; // JSON pointer of the mapping, "" for the top level
    std::string key;
    Mark mark; // where the second occurrence is
};

// A YAML file read the way Python's yaml.safe_load reads it, as JSON, with the source position
// of every value near the top so that a validator can point at what it rejects.
struct Document {
    std::string file;
    nlohmann::ordered_json value;
    std::vector<DuplicateKey> duplicate_keys;

    // Where the value at `pointer` (a JSON pointer such as "/limits/memory") starts; the nearest
    // recorded ancestor for values nested deeper than the positions kept.
    Mark value_mark(const std::string& pointer) const;
    // Where the key of the value at `pointer` is written.
    Mark key_mark(const std::string& pointer) const;

    std::unordered_map<std::string, Mark> value_marks;
    std::unordered_map<std::string, Mark> key_marks;
};

// Limits that keep a hostile or broken file from exhausting memory or stack.
struct LoadLimits {
    std::size_t max_bytes = 1 << 20;  // no real spec comes near a megabyte
    std::size_t max_values = 200'000; // counted after aliases are expanded (alias bombs)
    int max_depth = 256;              // nesting of collections
    int marked_depth = 4;             // how deep source positions are kept
};

// Parses `text` as one YAML document. Throws SourceError, naming `file` and the position, for
// syntax errors, characters YAML forbids, values PyYAML could not construct, and files that
// exceed `limits`.
Document parse_document(std::string_view text, const std::string& file, LoadLimits limits = {});

// Reads and parses the file at `path`; also throws UsageError when it cannot be read.
Document load_document(const std::string& path, LoadLimits limits = {});

// Appends `key` to a JSON pointer, escaping '~' and '/' as RFC 6901 requires.
std::string child_pointer(const std::string& parent, std::string_view key);

} // namespace contractor::yaml
