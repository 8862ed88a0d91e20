// Tests for policy/network_rule.hpp: the allowlist model and the merge of base and spec rules.
#include "policy/network_rule.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace contractor::policy;
using Catch::Matchers::Contains;

namespace {

NetworkRule https(const std::string& host) {
    return {host, 443, Protocol::https};
}
NetworkRule http(const std::string& host) {
    return {host, 80, Protocol::http};
}
NetworkRule tcp(const std::string& host, std::uint16_t port) {
    return {host, port, Protocol::tcp};
}

} // namespace

TEST_CASE("tag_rules tags each rule once", "[network]") {
    const auto tagged =
        tag_rules({https("a.example"), http("a.example"), https("a.example"), tcp("a.example", 22)},
                  Origin::config);
    REQUIRE(tagged.size() == 3);
    CHECK(tagged[0].rule == https("a.example"));
    CHECK(tagged[1].rule == http("a.example"));
    CHECK(tagged[2].rule == tcp("a.example", 22));
    for (const auto& rule : tagged) {
        CHECK(rule.origin == Origin::config);
    }
    CHECK(tag_rules({}, Origin::spec).empty());
}

TEST_CASE("the built-in base policy allows Debian's mirrors for provisioning only", "[network]") {
    const EffectivePolicy base = builtin_base_policy();
    REQUIRE(base.provision.size() == 3);
    CHECK(base.provision[0].rule == http("deb.debian.org"));
    CHECK(base.provision[1].rule == https("deb.debian.org"));
    CHECK(base.provision[2].rule == http("security.debian.org"));
    for (const auto& rule : base.provision) {
        CHECK(rule.origin == Origin::builtin);
    }
    CHECK(base.build.empty());
}

TEST_CASE("merge_policy puts the base rules first, then new spec rules", "[network]") {
    EffectivePolicy base;
    base.provision =
        tag_rules({https("deb.debian.org"), http("security.debian.org")}, Origin::config);
    NetworkRules spec;
    spec.provision = {https("pypi.org"), https("deb.debian.org"), tcp("git.example.org", 9418)};

    const EffectivePolicy policy = merge_policy(base, spec);
    REQUIRE(policy.provision.size() == 4);
    CHECK(policy.provision[0].rule == https("deb.debian.org"));
    CHECK(policy.provision[0].origin == Origin::config);
    CHECK(policy.provision[1].rule == http("security.debian.org"));
    CHECK(policy.provision[1].origin == Origin::config);
    CHECK(policy.provision[2].rule == https("pypi.org"));
    CHECK(policy.provision[2].origin == Origin::spec);
    CHECK(policy.provision[3].rule == tcp("git.example.org", 9418));
    CHECK(policy.provision[3].origin == Origin::spec);
    CHECK(policy.build.empty());
}

TEST_CASE("merge_policy drops duplicates, keeping the base's origin", "[network]") {
    EffectivePolicy base;
    base.build = tag_rules({https("a.example")}, Origin::config);
    NetworkRules spec;
    spec.build = {https("a.example"), https("b.example"), https("b.example")};

    const EffectivePolicy policy = merge_policy(base, spec);
    REQUIRE(policy.build.size() == 2);
    CHECK(policy.build[0].rule == https("a.example"));
    CHECK(policy.build[0].origin == Origin::config);
    CHECK(policy.build[1].rule == https("b.example"));
    CHECK(policy.build[1].origin == Origin::spec);

    const EffectivePolicy builtin =
        merge_policy(builtin_base_policy(), {{https("deb.debian.org")}, {}});
    REQUIRE(builtin.provision.size() == 3);
    CHECK(builtin.provision[1].origin == Origin::builtin);
}

TEST_CASE("merge_policy: rules differing in port or protocol are different rules", "[network]") {
    EffectivePolicy base;
    base.build = tag_rules({https("a.example")}, Origin::config);
    NetworkRules spec;
    spec.build = {http("a.example"), {"a.example", 8443, Protocol::https}};

    const EffectivePolicy policy = merge_policy(base, spec);
    REQUIRE(policy.build.size() == 3);
    CHECK(policy.build[1].rule == http("a.example"));
    CHECK(policy.build[2].rule.port == 8443);
    CHECK(policy.build[2].origin == Origin::spec);
}

TEST_CASE("merge_policy keeps the phases independent", "[network]") {
    EffectivePolicy base;
    base.provision = tag_rules({https("deb.debian.org")}, Origin::config);
    NetworkRules spec;
    spec.build = {https("deb.debian.org")};

    const EffectivePolicy policy = merge_policy(base, spec);
    REQUIRE(policy.provision.size() == 1);
    CHECK(policy.provision[0].origin == Origin::config);
    REQUIRE(policy.build.size() == 1);
    CHECK(policy.build[0].origin == Origin::spec);
    CHECK(&policy.phase(Phase::provision) == &policy.provision);
    CHECK(&policy.phase(Phase::build) == &policy.build);
    CHECK(&spec.phase(Phase::build) == &spec.build);
    CHECK(&spec.phase(Phase::provision) == &spec.provision);
}

TEST_CASE("merge_policy of nothing is nothing", "[network]") {
    const EffectivePolicy policy = merge_policy({}, {});
    CHECK(policy.provision.empty());
    CHECK(policy.build.empty());
}

TEST_CASE("protocol, phase and origin names", "[network]") {
    CHECK(to_string(Protocol::http) == "http");
    CHECK(to_string(Protocol::https) == "https");
    CHECK(to_string(Protocol::tcp) == "tcp");
    CHECK(to_string(Phase::provision) == "provision");
    CHECK(to_string(Phase::build) == "build");
    CHECK(to_string(Origin::builtin) == "default");
    CHECK(to_string(Origin::config) == "config");
    CHECK(to_string(Origin::spec) == "spec");
    CHECK(protocol_from_string("http") == Protocol::http);
    CHECK(protocol_from_string("https") == Protocol::https);
    CHECK(protocol_from_string("tcp") == Protocol::tcp);
    CHECK_FALSE(protocol_from_string("HTTPS").has_value());
    CHECK_FALSE(protocol_from_string("ftp").has_value());
    CHECK_FALSE(protocol_from_string("").has_value());
}

TEST_CASE("default_port", "[network]") {
    CHECK(default_port(Protocol::http) == std::uint16_t{80});
    CHECK(default_port(Protocol::https) == std::uint16_t{443});
    CHECK_FALSE(default_port(Protocol::tcp).has_value());
}

TEST_CASE("host_problem accepts names, wildcards and addresses", "[network]") {
    for (const char* host : {"deb.debian.org", "localhost", "a", "x-1.example", "123abc.example",
                             "*.example.org", "*.debian.org", "1.2.3.4", "127.0.0.1", "::1",
                             "2001:db8::1", "fe80::1:2:3:4", "host.contractor.internal"}) {
        INFO(host);
        CHECK_FALSE(host_problem(host).has_value());
    }
    CHECK_FALSE(host_problem(contractor_host).has_value());
    const std::string label63(63, 'a');
    CHECK_FALSE(host_problem(label63 + ".org").has_value());
}

TEST_CASE("host_problem rejects what is not a host", "[network]") {
    CHECK(host_problem("") == std::optional<std::string>("the host is empty"));
    CHECK(host_problem("exa mple.org") ==
          std::optional<std::string>("'exa mple.org' is not a valid host name (use lower-case "
                                     "letters, digits, '-' and '.'; a wildcard only as a leading "
                                     "'*.')"));
    CHECK(host_problem("a..b") ==
          std::optional<std::string>("'a..b' is not a valid host name (empty or over-long label)"));
    CHECK(host_problem("-a.org") ==
          std::optional<std::string>("'-a.org' is not a valid host name (a label starts or "
                                     "ends with '-')"));
    CHECK(host_problem("1.2.3.4.5") ==
          std::optional<std::string>("'1.2.3.4.5' is neither a valid IP address nor a host name"));
    // What the C library would read as an IPv4 address never passes as a name.
    CHECK(host_problem("0x7f.1") ==
          std::optional<std::string>("'0x7f.1' is read by the C library as the IPv4 address "
                                     "127.0.0.1; write an address as four decimal numbers"));
    for (const char* host : {"2130706433", "127.1", "0177.0.0.1", "0x7f000001", "1.2.3"}) {
        INFO(host);
        REQUIRE(host_problem(host).has_value());
        CHECK_THAT(*host_problem(host), Catch::Matchers::Contains("read by the C library"));
    }
    for (const char* host :
         {"Example.org", "DEB.DEBIAN.ORG", "*.", "*", "a.*.org", "**.org", "example.org.",
          ".example.org", "a-.org", "under_score.org", "256.1.1.1", "1.2.3.4.5", "[::1]",
          "example.org:443", "https://example.org", "caf\xc3\xa9.org"}) {
        INFO(host);
        CHECK(host_problem(host).has_value());
    }
    CHECK_THAT(*host_problem("*.1.2.3"), Contains("neither a valid IP address"));
    CHECK_THAT(*host_problem(std::string(64, 'a') + ".org"), Contains("over-long label"));
}

TEST_CASE("host_problem limits a name to 253 characters", "[network]") {
    const std::string label(63, 'a');
    const std::string name = label + "." + label + "." + label + "." + std::string(61, 'b');
    REQUIRE(name.size() == 253);
    CHECK_FALSE(host_problem(name).has_value());
    CHECK_FALSE(host_problem("*." + name).has_value());
    CHECK(host_problem(name + "c") ==
          std::optional<std::string>("the host name is longer than 253 characters"));
}
