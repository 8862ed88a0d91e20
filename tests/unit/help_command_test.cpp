// Tests for cli/help_command.cpp and cli/manual.hpp: `contractor help`, the man page and the
// completion script, all made from the one definition of the commands.
#include "run_cli.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

using namespace contractor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using contractor::test::TemporaryDirectory;

TEST_CASE("help VERB prints what VERB --help prints", "[help]") {
    const TemporaryDirectory home;
    for (const std::vector<std::string>& verb : {std::vector<std::string>{"build"},
                                                 {"image", "build"},
                                                 {"manager", "status"},
                                                 {"cache"}}) {
        auto help = verb;
        help.insert(help.begin(), "help");
        auto flag = verb;
        flag.push_back("--help");
        const auto by_verb = test::run(help, home.path());
        const auto by_flag = test::run(flag, home.path());
        CHECK(by_verb.exit_code == 0);
        CHECK(by_flag.exit_code == 0);
        CHECK(by_verb.out == by_flag.out);
    }
    const auto build = test::run({"help", "build"}, home.path());
    CHECK_THAT(build.out, Contains("Usage: contractor build [OPTIONS] spec"));
    CHECK_THAT(build.out, Contains("--network-audit"));
}

TEST_CASE("help alone prints the program's help, exit codes included", "[help]") {
    const TemporaryDirectory home;
    const auto help = test::run({"help"}, home.path());
    const auto flag = test::run({"--help"}, home.path());
    CHECK(help.exit_code == 0);
    CHECK(help.out == flag.out);
    CHECK_THAT(help.out, Contains("Subcommands:"));
    CHECK_THAT(help.out, Contains("  3         a hard limit was exceeded"));
    // The verbs do not inherit the program's footer.
    CHECK_THAT(test::run({"help", "gc"}, home.path()).out, !Contains("Exit codes"));
}

TEST_CASE("help of a verb that does not exist is a usage error", "[help]") {
    const TemporaryDirectory home;
    const auto outcome = test::run({"help", "image", "bild"}, home.path());
    CHECK(outcome.exit_code == 2);
    CHECK(outcome.out.empty());
    CHECK_THAT(outcome.err, StartsWith("contractor: error: no command 'contractor image bild'"));
}

TEST_CASE("the man page has a section per verb with its options", "[help]") {
    const TemporaryDirectory home;
    const auto man = test::run({"help", "--man"}, home.path()).out;
    CHECK_THAT(man, StartsWith(".\\\""));
    CHECK_THAT(man, Contains(".TH CONTRACTOR 1"));
    for (const char* section : {".SH NAME", ".SH SYNOPSIS", ".SH COMMANDS", ".SH \"EXIT STATUS\"",
                                ".SH ENVIRONMENT", ".SH FILES"}) {
        CHECK_THAT(man, Contains(section));
    }
    CHECK_THAT(man, Contains(".SS \"contractor build\""));
    CHECK_THAT(man, Contains(".SS \"contractor image build\""));
    CHECK_THAT(man, Contains(".SS \"contractor manager status\""));
    // Dashes are escaped, so that man does not turn them into hyphens.
    CHECK_THAT(man, Contains("\\-\\-network\\-audit"));
    // The hidden flags of `help` are not documented as if they were for users.
    CHECK_THAT(man, !Contains("\\-\\-bash\\-completion"));
    // No line starts with a dot or quote that roff would read as a request, but requests.
    std::istringstream lines(man);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with(".") && !line.starts_with(".\\\"")) {
            const auto request = line.substr(1, line.find(' ') - 1);
            CHECK((request == "TH" || request == "SH" || request == "SS" || request == "TP" ||
                   request == "B" || request == "PP" || request == "BR"));
        }
    }
}

TEST_CASE("the bash completion script is bash and knows the verbs", "[help]") {
    const TemporaryDirectory home;
    const auto script = test::run({"help", "--bash-completion"}, home.path()).out;
    CHECK_THAT(script, Contains("complete -F _contractor contractor"));
    CHECK_THAT(script, Contains("\"image\") verbs=\"build list rm boot\""));
    CHECK_THAT(script, Contains("--keep-worker"));
    const auto file = home.write("completion.bash", script);
    CHECK(std::system(("bash -n " + file.string()).c_str()) == 0);
    // Completing `contractor image b` offers build and boot; `contractor build --re` offers
    // --report.
    const auto check = home.write("check.bash", "source " + file.string() + R"(
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _contractor; echo "${COMPREPLY[*]}"; }
[[ $(complete_words contractor image b) == "build boot" ]] || exit 1
[[ $(complete_words contractor build --re) == "--report" ]] || exit 2
[[ $(complete_words contractor --config x ma) == "manager" ]] || exit 3
)");
    CHECK(std::system(("bash " + check.string()).c_str()) == 0);
}
