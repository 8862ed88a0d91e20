#include "yaml/document.hpp"

#include "util/text.hpp"
#include "yaml/scalar.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unordered_set>

namespace contractor::yaml {
namespace {

// The text being parsed, with its lines indexed, to turn yaml-cpp's positions into the ones
// PyYAML and editors use.
class SourceText {
public:
    explicit SourceText(std::string_view text) : text_(text) {
        line_starts_.push_back(0);
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '\n' && i + 1 < text.size()) {
                line_starts_.push_back(i + 1);
            }
        }
    }

    // Line `index` (from 0) without its line break, or nullopt past the end.
    std::optional<std::string_view> line(std::size_t index) const {
        if (index >= line_starts_.size()) {
            return std::nullopt;
        }
        const std::size_t start = line_starts_[index];
        std::string_view line = text_.substr(start, text_.find('\n', start) - start);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        return line;
    }

    // yaml-cpp counts columns in bytes (after a byte order mark); PyYAML and editors count
    // characters, the mark included.
    Mark mark(const YAML::Mark& mark) const {
        if (mark.is_null()) {
            return {};
        }
        const auto text = line(static_cast<std::size_t>(mark.line));
        if (!text) {
            return {mark.line + 1, mark.column + 1};
        }
        std::size_t offset = 0;
        int column = 1;
        if (mark.line == 0 && text->starts_with("\xEF\xBB\xBF")) {
            offset = 3;
            column = 2;
        }
        const std::size_t bytes = static_cast<std::size_t>(std::max(mark.column, 0));
        for (std::size_t i = offset; i < offset + bytes; ++i) {
            // Past the end of the line every byte is one column; inside it, continuation bytes
            // (10xxxxxx) belong to the character before them.
            const bool continuation =
                i < text->size() && (static_cast<unsigned char>((*text)[i]) & 0xC0) == 0x80;
            column += continuation ? 0 : 1;
        }
        return {mark.line + 1, column};
    }

private:
    std::string_view text_;
    std::vector<std::size_t> line_starts_;
};

// Rejects what PyYAML's reader rejects before parsing: bytes that are not UTF-8 and the
// characters outside its printable set (controls other than tab, LF and CR; DEL; C1 controls
// other than NEL; surrogates; U+FFFE and U+FFFF).
void check_characters(std::string_view text, const std::string& file) {
    int line = 1;
    int column = 1;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        std::size_t length = 1;
        char32_t code = byte;
        if (byte >= 0x80) {
            length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 0;
            bool valid = length != 0 && byte < 0xF5 && i + length <= text.size();
            if (valid) {
                code = byte & (0x7F >> length);
                for (std::size_t k = 1; k < length; ++k) {
                    const auto next = static_cast<unsigned char>(text[i + k]);
                    valid = valid && (next & 0xC0) == 0x80;
                    code = (code << 6) | (next & 0x3F);
                }
                // Overlong encodings and values past U+10FFFF are invalid UTF-8.
                static constexpr char32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
                valid = valid && code >= minimum[length] && code <= 0x10FFFF;
            }
            if (!valid) {
                char buffer[64];
                std::snprintf(buffer, sizeof buffer, "invalid UTF-8 byte 0x%02X", byte);
                throw SourceError(file, {line, column}, buffer, "save the file as UTF-8");
            }
        }
        const bool printable = code == 0x09 || code == 0x0A || code == 0x0D ||
                               (code >= 0x20 && code <= 0x7E) || code == 0x85 ||
                               (code >= 0xA0 && code <= 0xD7FF) ||
                               (code >= 0xE000 && code <= 0xFFFD) || code >= 0x10000;
        if (!printable) {
            char buffer[64];
            std::snprintf(buffer, sizeof buffer, "character U+%04X is not allowed in YAML",
                          static_cast<unsigned>(code));
            throw SourceError(file, {line, column}, buffer,
                              "write it as an escape (\"\\x07\") in a double-quoted string");
        }
        if (code == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        i += length;
    }
}

// yaml-cpp 0.7 turns the escapes "\N" (U+0085) and "\_" (U+00A0) into the single bytes 0x85
// and 0xA0 instead of their UTF-8 encodings. The file was checked to be UTF-8, so such a lone
// byte in a scalar can only come from those escapes: re-encode it.
std::string repair_escapes(const std::string& text) {
    if (text.find_first_of("\x85\xA0") == std::string::npos) {
        return text;
    }
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        const std::size_t length = byte < 0x80   ? 1
                                   : byte < 0xC0 ? 0
                                   : byte < 0xE0 ? 2
                                   : byte < 0xF0 ? 3
                                                 : 4;
        if (length == 0) {
            out += static_cast<char>(0xC2);
            out += static_cast<char>(byte);
            ++i;
            continue;
        }
        out.append(text, i, length);
        i += length;
    }
    return out;
}

// Counts documents without building them. yaml-cpp 0.7 does not consume a ',' that starts a
// document outside a flow collection: every further HandleNextDocument() call reports another
// empty document at the same place, so YAML::LoadAll() loops forever (found by the fuzzer).
// A document that starts where the previous one started is that case.
class DocumentCounter : public YAML::EventHandler {
public:
    std::vector<YAML::Mark> starts;

    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// Parses the first document of `text` and checks that it is the only one.
YAML::Node parse_single_document(const std::string& text, const std::string& file,
                                 const SourceText& source) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    // Three documents are enough to tell a second document from a stuck parser.
    while (counter.starts.size() < 3 && parser.HandleNextDocument(counter)) {
    }
    const auto& starts = counter.starts;
    for (std::size_t i = 1; i < starts.size(); ++i) {
        if (starts[i].pos == starts[i - 1].pos) {
            throw SourceError(file, source.mark(starts[i]),
                              "unexpected ',' outside a [ ] or { } list",
                              "remove it or quote the value it starts");
        }
    }
    if (starts.size() >= 2) {
        throw SourceError(file, source.mark(starts[1]),
                          "expected a single document, found another one",
                          "a spec is one YAML document; remove the second '---'");
    }
    if (counter.starts.empty()) {
        return YAML::Node();
    }
    return YAML::Load(text);
}

std::size_t leading_spaces(std::string_view line) {
    return std::min(line.find_first_not_of(' '), line.size());
}

// yaml-cpp 0.7 drops one line break from a folded block scalar with keep chomping (`>+`) that
// is followed by empty lines: "a: >+\n  one\n\n" reads as "one\n" instead of "one\n\n". The
// trailing empty lines are counted in the source and the value's final breaks set to what the
// YAML spec (and PyYAML) give: one for the last line plus one per empty line.
std::string repair_folded_keep(const SourceText& source, const YAML::Mark& mark,
                               std::string value) {
    if (mark.is_null()) {
        return value;
    }
    const auto header_line = source.line(static_cast<std::size_t>(mark.line));
    if (!header_line) {
        return value;
    }
    const std::size_t indicator =
        header_line->find_first_of(">|", static_cast<std::size_t>(mark.column));
    if (indicator == std::string_view::npos || (*header_line)[indicator] != '>') {
        return value;
    }
    const std::string_view header =
        header_line->substr(indicator + 1, std::min<std::size_t>(2, header_line->size()));
    const std::size_t header_end = header.find_first_not_of("+-123456789");
    const std::string_view indicators = header.substr(0, header_end);
    if (indicators.find('+') == std::string_view::npos) {
        return value;
    }
    // The block's indentation: given by the indicator digit relative to the header line, or
    // that of the first line that is not empty.
    std::optional<std::size_t> indent;
    if (const auto digit = indicators.find_first_of("123456789"); digit != std::string_view::npos) {
        indent = leading_spaces(*header_line) + static_cast<std::size_t>(indicators[digit] - '0');
    }
    std::size_t trailing_empty = 0;
    for (std::size_t index = static_cast<std::size_t>(mark.line) + 1;; ++index) {
        const auto line = source.line(index);
        if (!line) {
            break;
        }
        const std::size_t spaces = leading_spaces(*line);
        const bool blank = spaces == line->size() && (!indent || spaces <= *indent);
        if (blank) {
            ++trailing_empty;
            continue;
        }
        if (!indent) {
            indent = spaces;
        }
        if (spaces < *indent) {
            break;
        }
        trailing_empty = 0;
    }
    if (trailing_empty == 0) {
        return value;
    }
    value.erase(value.find_last_not_of('\n') + 1);
    value.append(trailing_empty + 1, '\n');
    return value;
}

constexpr std::string_view core_prefix = "tag:yaml.org,2002:";

bool is_untagged(const std::string& tag) {
    return tag.empty() || tag == "?" || tag == "!";
}

// Turns yaml-cpp's node graph into the value PyYAML's SafeConstructor would build.
class Converter {
public:
    Converter(Document& document, const LoadLimits& limits, const SourceText& source)
        : document_(document), limits_(limits), source_(source) {}

    // `empty_value_mark`, when given, is where an empty (null) value is said to be: right after
    // its key's ':', as PyYAML reports it, rather than where yaml-cpp noticed it was empty.
    nlohmann::ordered_json convert(const YAML::Node& node, const std::string* pointer, int depth,
                                   std::optional<Mark> empty_value_mark = std::nullopt) {
        if (++values_ > limits_.max_values) {
            fail(node,
                 "the document expands to more than " + std::to_string(limits_.max_values) +
                     " values",
                 "aliases (*name) multiply what they refer to; use fewer of them");
        }
        if ((node.IsMap() || node.IsSequence()) && depth >= limits_.max_depth) {
            fail(node, "collections are nested more than " + std::to_string(limits_.max_depth) +
                           " levels deep");
        }
        if (pointer != nullptr) {
            // The last occurrence of a key is the one whose value is kept.
            document_.value_marks[*pointer] =
                node.IsNull() && empty_value_mark ? *empty_value_mark : source_.mark(node.Mark());
        }
        switch (node.Type()) {
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined:
            return nullptr;
        case YAML::NodeType::Scalar:
            return convert_scalar(node, /*as_key=*/false).value;
        case YAML::NodeType::Sequence:
            return convert_sequence(node, pointer, depth);
        case YAML::NodeType::Map:
            return convert_mapping(node, pointer, depth);
        }
        return nullptr;
    }

private:
    struct Scalar {
        nlohmann::ordered_json value;
        ScalarType type;
    };

    struct Pair {
        YAML::Node key;
        YAML::Node value;
        bool merged;
    };

    [[noreturn]] void fail(const YAML::Node& node, const std::string& message,
                           std::string hint = {}) const {
        throw SourceError(document_.file, source_.mark(node.Mark()), message, std::move(hint));
    }

    Scalar convert_scalar(const YAML::Node& node, bool as_key) const {
        const std::string& tag = node.Tag();
        std::string text = repair_escapes(node.Scalar());
        if (tag == "!" && !text.empty() && text.back() == '\n') {
            text = repair_folded_keep(source_, node.Mark(), std::move(text));
        }
        ScalarType type = ScalarType::string;
        if (tag == "?" || tag.empty()) {
            type = resolve_plain_scalar(text);
            // A plain "=" is YAML 1.1's value key; PyYAML reads it as a string when it is a key.
            if (type == ScalarType::value && as_key) {
                type = ScalarType::string;
            }
        } else if (tag != "!") {
            const auto tagged = scalar_type_for_tag(tag);
            if (!tagged) {
                fail(node, "unsupported tag " + describe_tag(tag),
                     "yaml.safe_load cannot read it either; remove the tag or quote the value");
            }
            type = *tagged;
        }
        try {
            return {construct_scalar(type, text), type};
        } catch (const ScalarError& error) {
            fail(node, error.what());
        }
    }

    static std::string describe_tag(const std::string& tag) {
        if (tag.starts_with(core_prefix)) {
            return "!!" + tag.substr(core_prefix.size());
        }
        return util::quoted(tag);
    }

    void check_collection_tag(const YAML::Node& node, std::string_view expected) const {
        const std::string& tag = node.Tag();
        if (is_untagged(tag) || tag == std::string(core_prefix) + std::string(expected)) {
            return;
        }
        fail(node,
             "unsupported tag " + describe_tag(tag) + " on a " +
                 (node.IsMap() ? "mapping" : "sequence"),
             "yaml.safe_load cannot read it either; remove the tag");
    }

    nlohmann::ordered_json convert_sequence(const YAML::Node& node, const std::string* pointer,
                                            int depth) {
        check_collection_tag(node, "seq");
        auto out = nlohmann::ordered_json::array();
        std::size_t index = 0;
        for (const auto& item : node) {
            std::optional<std::string> child;
            if (pointer != nullptr && depth < limits_.marked_depth) {
                child = child_pointer(*pointer, std::to_string(index));
            }
            out.push_back(convert(item, child ? &*child : nullptr, depth + 1));
            ++index;
        }
        return out;
    }

    static bool is_merge_key(const YAML::Node& key) {
        return key.IsScalar() && (key.Tag() == "?" || key.Tag().empty()) && key.Scalar() == "<<";
    }

    // SafeConstructor.flatten_mapping: the pairs of `node` with merge keys replaced by the pairs
    // they merge in, placed first so that the mapping's own keys override them; in a list of
    // merged mappings the earlier ones win.
    std::vector<Pair> flatten(const YAML::Node& node, int depth) const {
        if (depth > limits_.max_depth) {
            fail(node, "merge keys are nested more than " + std::to_string(limits_.max_depth) +
                           " levels deep");
        }
        std::vector<Pair> merged;
        std::vector<Pair> own;
        for (auto it = node.begin(); it != node.end(); ++it) {
            const YAML::Node key = it->first;
            const YAML::Node value = it->second;
            if (!is_merge_key(key)) {
                own.push_back({key, value, false});
                continue;
            }
            if (value.IsMap()) {
                for (auto& pair : flatten(value, depth + 1)) {
                    merged.push_back({pair.key, pair.value, true});
                }
            } else if (value.IsSequence()) {
                std::vector<std::vector<Pair>> parts;
                for (const auto& part : value) {
                    if (!part.IsMap()) {
                        fail(part, "a merge key (<<) takes a mapping or a list of mappings");
                    }
                    parts.push_back(flatten(part, depth + 1));
                }
                for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
                    for (auto& pair : *part) {
                        merged.push_back({pair.key, pair.value, true});
                    }
                }
            } else {
                fail(value, "a merge key (<<) takes a mapping or a list of mappings");
            }
        }
        merged.insert(merged.end(), own.begin(), own.end());
        return merged;
    }

    nlohmann::ordered_json convert_mapping(const YAML::Node& node, const std::string* pointer,
                                           int depth) {
        check_collection_tag(node, "map");
        auto out = nlohmann::ordered_json::object();
        std::unordered_set<std::string> own_keys;
        std::unordered_map<std::string, std::string> spelling_of;
        for (const auto& pair : flatten(node, depth)) {
            if (++values_ > limits_.max_values) {
                fail(node, "the document expands to more than " +
                               std::to_string(limits_.max_values) + " values");
            }
            const Key parsed = key_of(pair.key);
            const std::string& key =
                spelling_of.emplace(parsed.identity, parsed.text).first->second;
            std::optional<std::string> child;
            if (pointer != nullptr && depth < limits_.marked_depth) {
                child = child_pointer(*pointer, key);
                if (!pair.merged && !own_keys.insert(parsed.identity).second) {
                    document_.duplicate_keys.push_back(
                        {*pointer, key, source_.mark(pair.key.Mark())});
                }
                document_.key_marks[*child] = source_.mark(pair.key.Mark());
            }
            // Assignment keeps the position of the first occurrence and the last value, as a
            // Python dict does.
            std::optional<Mark> empty_value_mark;
            if (pair.value.IsNull() && pair.key.IsScalar() && !pair.key.Mark().is_null()) {
                const Mark key_mark = source_.mark(pair.key.Mark());
                const std::string& key_text = pair.key.Scalar();
                const auto length =
                    static_cast<int>(std::count_if(key_text.begin(), key_text.end(), [](char c) {
                        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
                    }));
                empty_value_mark = Mark{key_mark.line, key_mark.column + length + 1};
            }
            out[key] = convert(pair.value, child ? &*child : nullptr, depth + 1, empty_value_mark);
        }
        return out;
    }

    // A mapping key: its JSON spelling and its identity as a Python dict key. Python treats
    // 1, 1.0 and True (and 0, 0.0, False) as the same key, so PyYAML keeps the first spelling
    // and the last value; the identity reproduces that.
    struct Key {
        std::string text;
        std::string identity;
    };

    Key key_of(const YAML::Node& key) const {
        if (key.IsMap() || key.IsSequence()) {
            fail(key,
                 "a mapping key must be a scalar, not a " +
                     std::string(key.IsMap() ? "mapping" : "sequence"),
                 "yaml.safe_load cannot read such keys either");
        }
        if (key.IsNull()) {
            return {"null", "null"};
        }
        const Scalar scalar = convert_scalar(key, /*as_key=*/true);
        if (scalar.type == ScalarType::timestamp) {
            fail(key, "a date cannot be a mapping key in JSON", "quote the key");
        }
        const auto& value = scalar.value;
        std::string identity;
        if (value.is_string()) {
            identity = "s" + value.get<std::string>();
        } else if (value.is_boolean()) {
            identity = value.get<bool>() ? "n1" : "n0";
        } else if (value.is_number_float()) {
            const double number = value.get<double>();
            const bool integral = std::nearbyint(number) == number && std::fabs(number) < 9e18;
            identity = integral ? "n" + std::to_string(static_cast<long long>(number))
                                : "n" + value.dump();
        } else if (value.is_number()) {
            identity = "n" + value.dump();
        } else {
            identity = "null";
        }
        return {json_key(value), identity};
    }

    Document& document_;
    const LoadLimits& limits_;
    const SourceText& source_;
    std::size_t values_ = 0;
};

} // namespace

Mark Document::value_mark(const std::string& pointer) const {
    std::string current = pointer;
    while (true) {
        if (auto it = value_marks.find(current); it != value_marks.end()) {
            return it->second;
        }
        if (current.empty()) {
            return {};
        }
        current.erase(current.rfind('/'));
    }
}

Mark Document::key_mark(const std::string& pointer) const {
    if (auto it = key_marks.find(pointer); it != key_marks.end()) {
        return it->second;
    }
    return value_mark(pointer);
}

std::string child_pointer(const std::string& parent, std::string_view key) {
    std::string out = parent + "/";
    for (char c : key) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

Document parse_document(std::string_view text, const std::string& file, LoadLimits limits) {
    if (text.size() > limits.max_bytes) {
        throw SourceError(file, {},
                          "the file is larger than " + std::to_string(limits.max_bytes) + " bytes");
    }
    check_characters(text, file);
    Document document;
    document.file = file;
    const SourceText source(text);
    YAML::Node root;
    try {
        root = parse_single_document(std::string(text), file, source);
    } catch (const YAML::Exception& error) {
        throw SourceError(file, source.mark(error.mark), error.msg);
    }
    if (!root.IsDefined() || (root.IsNull() && root.Mark().is_null())) {
        document.value_marks.emplace("", Mark{});
        return document;
    }
    Converter converter(document, limits, source);
    const std::string root_pointer;
    document.value = converter.convert(root, &root_pointer, 0);
    return document;
}

Document load_document(const std::string& path, LoadLimits limits) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
        throw UsageError(path + ": cannot read: " + std::strerror(errno), "check the path");
    }
    if (S_ISDIR(info.st_mode)) {
        throw UsageError(path + ": cannot read: it is a directory", "name a YAML file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw UsageError(path + ": cannot read: " + std::strerror(errno),
                         "check the file's permissions");
    }
    std::string text;
    // Read one byte past the limit so that an oversized file is reported, not truncated.
    text.resize(limits.max_bytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) {
        throw UsageError(path + ": cannot read: " + std::strerror(errno));
    }
    text.resize(static_cast<std::size_t>(in.gcount()));
    return parse_document(text, path, limits);
}

} // namespace contractor::yaml
