// Feeds arbitrary bytes through everything `contractor dump --effective` does with a spec. The
// only exception allowed out is contractor::Error (a located, user-facing message); anything
// else, or a crash, leak or sanitizer report, is a finding.
#include "spec/effective.hpp"
#include "spec/spec.hpp"
#include "util/error.hpp"
#include "yaml/document.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto document = contractor::yaml::parse_document(text, "fuzz.yaml");
        const auto spec = contractor::spec::parse_spec(std::move(document), "/nonexistent/fuzz");
        const auto effective = contractor::spec::resolve(spec, contractor::spec::UserConfig{});
        // The same serialisation the CLI does.
        const auto replace = nlohmann::ordered_json::error_handler_t::replace;
        (void)spec.document.value.dump(2, ' ', false, replace);
        (void)contractor::spec::to_json(effective).dump(2, ' ', false, replace);
    } catch (const contractor::Error&) {
    }
    return 0;
}
