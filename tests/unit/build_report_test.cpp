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

TEST_CASE("the plan marks no limit as not enforced", "[report]") {
    const spec::EffectiveSpec effective{};
    std::ostringstream err;
    cli::print_plan(err, effective);
    const std::string plan = err.str();
    const std::string limits = plan.substr(plan.find("contractor: limits:"));
    CHECK_THAT(limits, Contains("network-rate 0 B/s, network-transfer 0 B, "));
    CHECK_THAT(limits, !Contains("not enforced"));
}

TEST_CASE("the summary lists blocked attempts and the section that would allow them", "[report]") {
    spec::EffectiveSpec effective{};
    cli::BuildOutcome outcome;
    const auto attempt = [](const char* host, int port, const char* phase, bool allowed,
                            const char* refusal) {
        return nlohmann::json{
            {"host", host},       {"port", port},
            {"protocol", "http"}, {"phase", phase},
            {"allowed", allowed}, {"refusal", allowed ? nlohmann::json() : nlohmann::json(refusal)},
            {"count", 3},         {"bytes_up", 1},
            {"bytes_down", 2}};
    };
    outcome.result = {
        {"result", "network-violation"},
        {"exit_code", 3},
        {"usage",
         {{"network",
           {{"allowed", 3},
            {"blocked", 6},
            {"attempts",
             {attempt("deb.debian.org", 80, "provision", true, nullptr),
              attempt("pypi.org", 80, "build", false, "not in the build allowlist"),
              attempt("localhost", 80, "build", false,
                      "localhost resolves to 127.0.0.1 (loopback), which only the user's "
                      "config can allow, by naming that address")}},
            {"attempts_not_listed", 7},
            {"names",
             {{{"name", "leak.example"},
               {"phase", "build"},
               {"answered", false},
               {"count", 1}}}}}}}}};
    const cli::BuildRecord record{effective, outcome, "direct", "tcg", "/log", 1.0};
    std::ostringstream err;
    cli::print_summary(err, record);
    const std::string summary = err.str();
    INFO(summary);
    CHECK_THAT(summary, Contains("blocked: http://pypi.org:80 while building: not in the build "
                                 "allowlist (3 times)\n"));
    CHECK_THAT(summary, Contains("blocked: http://localhost:80 while building: localhost "
                                 "resolves to 127.0.0.1 (loopback)"));
    CHECK_THAT(summary, Contains("7 more attempts to other destinations (not listed)"));
    CHECK_THAT(summary, Contains("names looked up that do not exist for the worker: "
                                 "leak.example\n"));
    CHECK_THAT(summary, Contains("contractor:   network:\ncontractor:     build:\n"
                                 "contractor:       - {host: pypi.org, port: 80, protocol: "
                                 "http}\n"));
    CHECK_THAT(summary, !Contains("host: localhost") && !Contains("host: deb.debian.org"));
    const auto report = cli::build_report(record);
    CHECK(report["network_suggestion"]["build"].size() == 1);
    CHECK(report["network_suggestion"]["provision"].empty());

    // An audit suggests everything the build reached or tried.
    cli::BuildRecord audit = record;
    audit.network_audit = true;
    std::ostringstream audited;
    cli::print_summary(audited, audit);
    CHECK_THAT(audited.str(), Contains("network audit: the build reached or tried these"));
    CHECK_THAT(audited.str(), Contains("contractor:     provision:\ncontractor:       - {host: "
                                       "deb.debian.org, port: 80, protocol: http}\n"));
    CHECK(cli::build_report(audit)["network_suggestion"]["provision"].size() == 1);
}

TEST_CASE("the summary gives a reused layer's age in words, whatever the agent sent", "[report]") {
    HostileBuild build;
    const auto summary_with_age = [&build](const nlohmann::json& age) {
        build.outcome.result["layer"] = {
            {"key", "ba9682e4aa0b1c2d3e4f"}, {"reused", true}, {"age_seconds", age}};
        std::ostringstream err;
        cli::print_summary(err, build.record());
        return err.str();
    };
    CHECK_THAT(summary_with_age(3 * 3600 + 60),
               Contains("provisioned layer: started from ba9682e4aa0b (saved 3.0 h ago;"));
    CHECK_THAT(summary_with_age(300), Contains("(saved 5 min ago;"));
    CHECK_THAT(summary_with_age(-5), Contains("(saved 0 s ago;"));
    CHECK_THAT(summary_with_age(1e300), Contains("days ago;"));
}
