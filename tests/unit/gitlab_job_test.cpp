// Tests for cli/gitlab_job.hpp: what of a GitLab job goes into a worker, and what the runner is
// told back.
#include "cli/gitlab_job.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>

using namespace contractor::cli::gitlab;
using Catch::Matchers::Contains;
using contractor::test::TemporaryDirectory;

namespace {

const std::string token = "glcbt-SECRET-123";

const std::string response = R"({"id": 7, "token": "glcbt-SECRET-123",
  "variables": [{"key": "CI_JOB_TOKEN", "value": "glcbt-SECRET-123", "masked": true},
                {"key": "DEPLOY_KEY", "value": "k", "masked": true},
                {"key": "CONFIG_FILE", "value": "text", "file": true},
                {"key": "PLAIN", "value": "v", "public": false}],
  "steps": [{"name": "script", "script": ["make", "make check"], "when": "on_success"},
            {"name": "after_script", "script": ["echo done"]},
            {"name": "release", "script": ["./release"]}]})";

} // namespace

TEST_CASE("the job's steps and variable flags are read from the runner's response", "[gitlab]") {
    const JobSteps job = parse_job_response(response);
    REQUIRE(job.steps.size() == 3);
    CHECK(job.steps[0].first == "script");
    CHECK(job.steps[0].second == std::vector<std::string>{"make", "make check"});
    CHECK(job.masked == std::set<std::string>{"CI_JOB_TOKEN", "DEPLOY_KEY"});
    CHECK(job.file_variables == std::set<std::string>{"CONFIG_FILE"});
    CHECK_THROWS_WITH(parse_job_response("{\"id\": 1}"), Contains("has no steps"));
    CHECK_THROWS_WITH(parse_job_response("not json"), Contains("has no steps"));
}

TEST_CASE("only the job's steps run in a worker; the runner's stages stay here", "[gitlab]") {
    CHECK(worker_step("build_script") == "script");
    CHECK(worker_step("step_script") == "script");
    CHECK(worker_step("after_script") == "after_script");
    CHECK(worker_step("step_release") == "release");
    for (const char* stage :
         {"prepare_script", "get_sources", "clear_worktree", "restore_cache", "download_artifacts",
          "archive_cache", "archive_cache_on_failure", "upload_artifacts_on_success",
          "upload_artifacts_on_failure", "cleanup_file_variables", "step_"}) {
        CHECK_FALSE(worker_step(stage));
    }
}

TEST_CASE("no token, password, masked or file variable goes into the worker", "[gitlab]") {
    const JobSteps job = parse_job_response(response);
    const Variables given = {{"CI_JOB_TOKEN", token},
                             {"CI_BUILD_TOKEN", token},
                             {"CI_REGISTRY_PASSWORD", token},
                             {"CI_DEPENDENCY_PROXY_PASSWORD", token},
                             {"CI_REPOSITORY_URL", "https://gitlab-ci-token:x@host/p.git"},
                             {"CI_JOB_JWT_V2", "jwt"},
                             {"DEPLOY_KEY", "k"},
                             {"CONFIG_FILE", "text"},
                             {"SNEAKY", "prefix-" + token + "-suffix"},
                             {"BAD NAME", "x"},
                             {"CI_PROJECT_DIR", "/host/builds/p"},
                             {"CI_BUILDS_DIR", "/host/builds"},
                             {"PLAIN", "v"},
                             {"CI_JOB_ID", "7"}};
    const Variables chosen = worker_variables(given, job, token);
    const Variables expected = {{"CI_BUILDS_DIR", "/workspace"},
                                {"CI_JOB_ID", "7"},
                                {"CI_PROJECT_DIR", "/workspace/src"},
                                {"PLAIN", "v"}};
    CHECK(chosen == expected);
}

TEST_CASE("the worker's script exports, echoes and runs each command with bash", "[gitlab]") {
    const std::string script =
        worker_script({"echo 'it''s'", "make \\\n  all"}, {{"QUOTE", "a'b"}, {"X", "$(id)"}});
    CHECK_THAT(script, Contains("export QUOTE='a'\\''b'\n"));
    CHECK_THAT(script, Contains("export X='$(id)'\n"));
    CHECK_THAT(script, Contains("cd /workspace/src\n"));
    const TemporaryDirectory directory;
    const auto file = directory.write(
        "run.sh",
        bash_command("cd() { :; }\n" +
                     worker_script({"echo \"$X\"", "false", "echo after"}, {{"X", "$(echo no)"}})));
    const auto output = directory.path() / "out.txt";
    const int status = std::system(("sh " + file.string() + " > " + output.string()).c_str());
    std::ifstream in(output);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    CHECK(WEXITSTATUS(status) == 1); // errexit: `false` ends it
    CHECK(text == "$ echo \"$X\"\n$(echo no)\n$ false\n");
}

TEST_CASE("stage ends as the runner must hear them", "[gitlab]") {
    using Kind = StageExit::Kind;
    CHECK(stage_exit_of_build(0, 0).kind == Kind::success);
    CHECK(stage_exit_of_build(1, 42).kind == Kind::build_failure);
    CHECK(stage_exit_of_build(1, 42).job_exit_code == 42);
    CHECK(stage_exit_of_build(3, -1).kind == Kind::build_failure);
    CHECK(stage_exit_of_build(3, -1).job_exit_code == 3);
    for (int code : {2, 4, 130, 143}) {
        CHECK(stage_exit_of_build(code, -1).kind == Kind::system_failure);
    }
    CHECK(stage_exit_of_host_script(0).kind == Kind::success);
    CHECK(stage_exit_of_host_script(5).job_exit_code == 5);
    CHECK(stage_exit_of_host_script(-1).kind == Kind::system_failure);
}

TEST_CASE("files holding the token are found, across read blocks, without following links",
          "[gitlab]") {
    const TemporaryDirectory directory;
    directory.write("clean.txt", "nothing here");
    directory.write(".git/config", "url = https://gitlab-ci-token:" + token + "@host/p.git\n");
    // The token straddles the 64 KiB read block.
    directory.write("big.bin", std::string(65536 - 5, 'x') + token + "tail");
    std::filesystem::create_symlink(directory.path() / ".git/config", directory.path() / "link");
    auto found = files_holding(directory.path(), token);
    std::sort(found.begin(), found.end());
    CHECK(found == std::vector<std::filesystem::path>{directory.path() / ".git/config",
                                                      directory.path() / "big.bin"});
    CHECK(files_holding(directory.path(), "").empty());
}

TEST_CASE("the project folder must lie in the job's builds_dir", "[gitlab]") {
    CHECK(lies_below("/r/jobs/7/builds/ns/p", "/r/jobs/7/builds"));
    CHECK_FALSE(lies_below("/r/jobs/7/builds/../../8/builds/p", "/r/jobs/7/builds"));
    CHECK_FALSE(lies_below("/etc", "/r/jobs/7/builds"));
    CHECK_FALSE(lies_below("relative/p", "/r/jobs/7/builds"));
}

TEST_CASE("one worker runs script then after_script, each saying how it ended", "[gitlab]") {
    const std::string script =
        one_worker_script({"echo one", "false", "echo never"},
                          std::vector<std::string>{"echo \"after $CI_JOB_STATUS\""},
                          {{"CI_JOB_STATUS", "running"}}, "MARK");
    const TemporaryDirectory directory;
    const auto file = directory.write("run.sh", bash_command("cd() { :; }\n" + script));
    const auto output = directory.path() / "out.txt";
    const int status = std::system(("sh " + file.string() + " > " + output.string()).c_str());
    std::ifstream in(output);
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    // The build's status is the script's; after_script ran anyway, and knew it failed.
    CHECK(WEXITSTATUS(status) == 1);
    CHECK(text == "$ echo one\none\n$ false\n\nMARK script 1\n$ echo \"after $CI_JOB_STATUS\"\n"
                  "after failed\n\nMARK after_script 0\n");
    // Without an after_script, only the script's line.
    CHECK_THAT(one_worker_script({"true"}, std::nullopt, {}, "MARK"), !Contains("after_script"));
}

TEST_CASE("marker lines are read strictly", "[gitlab]") {
    CHECK(parse_marker("MARK script 0", "MARK") == std::make_pair(std::string("script"), 0));
    CHECK(parse_marker("MARK after_script 127", "MARK") ==
          std::make_pair(std::string("after_script"), 127));
    for (const char* line : {"MARK script", "MARK script x", "MARK other 0", "MARKscript 0",
                             "xMARK script 0", "MARK script 1234", "MARK script -1", ""}) {
        CHECK_FALSE(parse_marker(line, "MARK"));
    }
}
