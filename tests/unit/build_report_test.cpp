// Tests for cli/build_report.hpp: the summary and the JSON report carry names and messages
// from a hostile worker, escaped, and the report is always valid JSON.
#include "cli/build_report.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>

using namespace contractor;
using Catch::Matchers::Contains;

namespace {

// A build whose worker named files, hosts and itself with terminal sequences and bytes that
// are not UTF-8.
struct HostileBuild {
    spec::EffectiveSpec effective{};
    cli::BuildOutcome outcome;

    HostileBuild() {
        effective.workspace = "/home/user/ws";
        outcome.result = {{"result", "success"},
                          {"exit_code", 0},
                          {"message", "build finished\x1b]0;owned\x07"},
                          {"phases", {{{"name", "build\x1b[2J"}, {"seconds", 1.5}}}},
                          {"usage",
                           {{"network",
                             {{"attempts",
                               {{{"host", "evil\x1b]52;c;aGk=\x07.example"},
                                 {"port", 443},
                                 {"protocol", "https"},
                                 {"phase", "build"},
                                 {"allowed", false}}}}}}}}};
        outcome.workspace_committed = true;
        outcome.rejected = {
            {"clip\x1b]52;c;aGk=\x07", "symlink points outside the workspace"},
            {"latin1-\xe9t\xe9", "FIFO"},
            {"repo/.git", std::string(transfer::git_folder_reason)},
        };
    }
    cli::BuildRecord record() const {
        return {effective, outcome, "direct", "tcg", "/state/build.log", 2.0};
    }
};

} // namespace

TEST_CASE("the summary shows every name from the worker escaped", "[report]") {
    const HostileBuild build;
    std::ostringstream err;
    cli::print_summary(err, build.record());
    const std::string summary = err.str();
    INFO(summary);
    CHECK(summary.find('\x1b') == std::string::npos);
    CHECK(summary.find('\x07') == std::string::npos);
    CHECK_THAT(summary, Contains("refused from the workspace: clip\\e]52;c;aGk=\\x07: symlink"));
    CHECK_THAT(summary, Contains("refused from the workspace: latin1-\\xe9t\\xe9: FIFO"));
    CHECK_THAT(summary, Contains("blocked: https://evil\\e]52;c;aGk=\\x07.example:443"));
    CHECK_THAT(summary, Contains("build finished\\e]0;owned\\x07"));
    CHECK_THAT(summary, Contains("build\\e[2J 1.5 s"));
    // A git refusal comes with the way to allow it.
    CHECK_THAT(summary, Contains("hint: git metadata"));
    CHECK_THAT(summary, Contains("allow-git: true"));
}

TEST_CASE("the summary gives the git hint only for git refusals", "[report]") {
    HostileBuild build;
    build.outcome.rejected.pop_back();
    std::ostringstream err;
    cli::print_summary(err, build.record());
    CHECK(err.str().find("allow-git") == std::string::npos);
}

TEST_CASE("the report is valid JSON with the names escaped", "[report]") {
    const HostileBuild build;
    const std::string text = cli::report_text(cli::build_report(build.record()));
    const auto report = nlohmann::json::parse(text); // throws if it is not valid JSON
    CHECK(report["workspace"]["rejected"][0]["path"] == "clip\\e]52;c;aGk=\\x07");
    CHECK(report["workspace"]["rejected"][1]["path"] == "latin1-\\xe9t\\xe9");
    CHECK(report["message"] == "build finished\\e]0;owned\\x07");
    CHECK(report["phases"][0]["name"] == "build\\e[2J");
    CHECK(report["usage"]["network"]["attempts"][0]["host"] == "evil\\e]52;c;aGk=\\x07.example");
    CHECK(text.find('\x1b') == std::string::npos);
}

TEST_CASE("report_text replaces invalid UTF-8 instead of throwing", "[report]") {
    const nlohmann::ordered_json report = {{"message", "bad \xff\xfe bytes"},
                                           {"hint", "cut \xe2\x9c"}};
    std::string text;
    REQUIRE_NOTHROW(text = cli::report_text(report));
    CHECK_THROWS_AS(report.dump(), nlohmann::json::type_error); // what it guards against
    const auto back = nlohmann::json::parse(text);
    CHECK(back["message"] == "bad \xef\xbf\xbd\xef\xbf\xbd bytes");
    CHECK(text.back() == '\n');
}

TEST_CASE("a foreign workspace and its hint reach the summary", "[report]") {
    HostileBuild build;
    build.outcome.workspace_committed = false;
    build.outcome.workspace_foreign = true;
    build.outcome.workspace_problem = "the workspace /home/user/ws is a symlink; it was left as "
                                      "it is (name a new or empty folder as the workspace)";
    std::ostringstream err;
    cli::print_summary(err, build.record());
    CHECK_THAT(err.str(), Contains("workspace: not exported: the workspace /home/user/ws is a "
                                   "symlink; it was left as it is (name a new or empty folder"));
}

TEST_CASE("the plan marks the network limits as not enforced yet, and only those", "[report]") {
    const spec::EffectiveSpec effective{};
    std::ostringstream err;
    cli::print_plan(err, effective);
    const std::string plan = err.str();
    const std::string limits = plan.substr(plan.find("contractor: limits:"));
    CHECK_THAT(limits, Contains("network-rate 0 B/s (not enforced yet)"));
    CHECK_THAT(limits, Contains("network-transfer 0 B (not enforced yet)"));
    CHECK_THAT(limits, Contains("cpu-time 0 s, "));
    CHECK(limits.substr(0, limits.find('\n')).find("timeout 0 s (") == std::string::npos);
}
