// Tests for spec/ceilings.hpp: what a spec may ask for at most (config `ceilings:` and
// `spec-rules:`).
#include "spec/ceilings.hpp"
#include "spec/effective.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::spec::BuildSpec;
using contractor::spec::UserConfig;
using contractor::test::TemporaryDirectory;

namespace {

BuildSpec spec_in(const std::filesystem::path& directory) {
    BuildSpec spec;
    spec.directory = directory;
    spec.worker_image = "worker";
    spec.source = ".";
    spec.workspace = "ws";
    spec.build = "make";
    spec.document.file = "spec.yaml";
    return spec;
}

// The UsageError enforce_ceilings throws, or "accepted".
std::string refusal(const BuildSpec& spec, const UserConfig& config) {
    try {
        spec::enforce_ceilings(spec, config, policy::merge_policy(config.network, spec.network));
    } catch (const UsageError& error) {
        return error.what();
    }
    return "accepted";
}

} // namespace

TEST_CASE("limits are shown in their own units", "[ceilings]") {
    CHECK(spec::format_limit(spec::limit_fields[0], 4) == "4");
    CHECK(spec::format_limit(spec::limit_fields[1], 8 * spec::GiB) == "8 GiB");
    CHECK(spec::format_limit(spec::limit_fields[3], 5400) == "1h 30m");
    CHECK(spec::format_limit(spec::limit_fields[5], 1'250'000) == "10 Mbit/s");
}

TEST_CASE("over_ceilings lists every limit above its ceiling, in schema order", "[ceilings]") {
    spec::Limits asked;
    asked.memory = 8 * spec::GiB;
    asked.cpus = 4;
    asked.disk = 2 * spec::GiB; // under its ceiling
    asked.timeout = 600;        // no ceiling
    spec::Limits ceilings;
    ceilings.memory = 4 * spec::GiB;
    ceilings.cpus = 2;
    ceilings.disk = 4 * spec::GiB;
    ceilings.cpu_time = 60;
    CHECK(spec::over_ceilings(asked, ceilings) ==
          std::vector<std::string>{"cpus 4 (ceiling 2)", "memory 8 GiB (ceiling 4 GiB)"});
    asked.memory = 4 * spec::GiB; // exactly the ceiling is allowed
    CHECK(spec::over_ceilings(asked, ceilings) == std::vector<std::string>{"cpus 4 (ceiling 2)"});
    CHECK(spec::over_ceilings(asked, {}).empty());
}

TEST_CASE("a spec over the ceiling is refused with everything it asked for", "[ceilings]") {
    const TemporaryDirectory directory;
    BuildSpec spec = spec_in(directory.path());
    UserConfig config;
    config.file = "/home/u/.config/contractor/config.yaml";
    config.ceilings.cpus = 2;
    config.ceilings.memory = 4 * spec::GiB;
    CHECK(refusal(spec, config) == "accepted");

    spec.limits.cpus = 4;
    spec.limits.memory = 8 * spec::GiB;
    CHECK(refusal(spec, config) == "spec.yaml: the spec asks for more than your config allows: "
                                   "cpus 4 (ceiling 2), memory 8 GiB (ceiling 4 GiB)");
    try {
        spec::enforce_ceilings(spec, config, {});
    } catch (const UsageError& error) {
        CHECK(error.exit_code() == ExitCode::usage);
        CHECK_THAT(error.hint(), Contains("/home/u/.config/contractor/config.yaml"));
    }
    // resolve() refuses it too, so dump --effective and build agree.
    CHECK_THROWS_WITH(spec::resolve(spec, config), Contains("cpus 4 (ceiling 2)"));
}

TEST_CASE("a spec names host.contractor.internal only when the config lets it", "[ceilings]") {
    const TemporaryDirectory directory;
    BuildSpec spec = spec_in(directory.path());
    spec.network.build = {{"host.contractor.internal", 3142, policy::Protocol::http}};
    UserConfig config;
    CHECK(refusal(spec, config) ==
          "spec.yaml: the spec asks to reach host.contractor.internal:3142, the loopback of "
          "this machine, which only your config can allow");
    // The same rule in the config is the user's own choice; the spec's copy adds nothing.
    config.network.build = {
        {{"host.contractor.internal", 3142, policy::Protocol::http}, policy::Origin::config}};
    CHECK(refusal(spec, config) == "accepted");
    config.network.build.clear();
    config.spec_may_reach_host = true;
    CHECK(refusal(spec, config) == "accepted");
}

TEST_CASE("spec-rules: deny refuses the network rules a spec adds", "[ceilings]") {
    const TemporaryDirectory directory;
    BuildSpec spec = spec_in(directory.path());
    UserConfig config;
    config.spec_rules = spec::SpecRules::deny;
    CHECK(refusal(spec, config) == "accepted");

    // A rule the base already allows adds nothing.
    spec.network.provision = {{"deb.debian.org", 443, policy::Protocol::https}};
    CHECK(refusal(spec, config) == "accepted");

    spec.network.provision.push_back({"pypi.org", 443, policy::Protocol::https});
    spec.network.build = {{"git.example.org", 9418, policy::Protocol::tcp}};
    spec.limits.cpus = 3;
    config.ceilings.cpus = 1;
    CHECK(refusal(spec, config) ==
          "spec.yaml: the spec asks for more than your config allows: cpus 3 (ceiling 1), "
          "network rule https://pypi.org:443 while provisioning (spec-rules: deny), "
          "network rule tcp://git.example.org:9418 while building (spec-rules: deny)");

    config.spec_rules = spec::SpecRules::allow;
    config.ceilings = {};
    CHECK(refusal(spec, config) == "accepted");
}

TEST_CASE("a ceiling lowers a built-in default above it", "[ceilings]") {
    const TemporaryDirectory directory;
    BuildSpec spec = spec_in(directory.path());
    UserConfig config;
    config.ceilings.timeout = 1800;         // the default is 2h
    config.ceilings.memory = 8 * spec::GiB; // the default (1 GiB) is below it
    const spec::EffectiveSpec effective = spec::resolve(spec, config);
    CHECK(effective.limit("timeout").value == 1800);
    CHECK(effective.limit("timeout").origin == spec::ValueOrigin::config);
    CHECK(effective.limit("memory").value == 1 * spec::GiB);
    CHECK(effective.limit("memory").origin == spec::ValueOrigin::builtin);
}
