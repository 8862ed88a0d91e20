// Tests for image/layer_store.hpp: keys, saving, finding, eviction and pruning of layers.
#include "image/layer_store.hpp"
#include "image/sha256.hpp"
#include "spec/units.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <thread>

using Catch::Matchers::Contains;
using contractor::image::Layer;
using contractor::image::LayerInputs;
using contractor::image::LayerPrune;
using contractor::image::LayerStore;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

LayerInputs hello_inputs() {
    LayerInputs inputs;
    inputs.image = "worker-dad55c7f39b016ff";
    inputs.image_sha256 = std::string(64, 'a');
    inputs.install = {"make"};
    inputs.ansible = nlohmann::ordered_json::parse(R"([{"hosts": "worker", "tasks": []}])");
    inputs.provision_policy = nlohmann::ordered_json::parse(
        R"([{"host": "deb.debian.org", "port": 80, "protocol": "http", "from": "default"}])");
    inputs.disk_bytes = 8ULL << 30;
    inputs.contractor_version = "0.1.0";
    return inputs;
}

std::string sha256_of(const fs::path& file) {
    contractor::image::Sha256 hash;
    hash.update_file(file);
    return hash.hex_digest();
}

} // namespace

TEST_CASE("a layer's key changes with every input that shapes it", "[layers]") {
    const auto base = contractor::image::layer_key(hello_inputs());
    CHECK(base.size() == 64);
    CHECK(contractor::image::layer_key(hello_inputs()) == base);
    const auto changed = [](auto change) {
        LayerInputs inputs = hello_inputs();
        change(inputs);
        return contractor::image::layer_key(inputs);
    };
    CHECK(changed([](LayerInputs& in) { in.image_sha256[0] = 'b'; }) != base);
    CHECK(changed([](LayerInputs& in) { in.image = "worker-0000"; }) != base);
    CHECK(changed([](LayerInputs& in) { in.install.push_back("gcc"); }) != base);
    CHECK(changed([](LayerInputs& in) {
              in.ansible[0]["tasks"].push_back({{"raw", "x"}});
          }) != base);
    CHECK(changed([](LayerInputs& in) { in.provision_policy[0]["port"] = 8080; }) != base);
    CHECK(changed([](LayerInputs& in) { in.disk_bytes += 1; }) != base);
    CHECK(changed([](LayerInputs& in) { in.contractor_version = "0.2.0"; }) != base);
}

TEST_CASE("a saved layer is a read-only copy with its digest recorded", "[layers]") {
    const TemporaryDirectory directory;
    const LayerStore store(directory.path() / "layers");
    const auto frozen = directory.write("run/disk.qcow2", std::string(5 << 20, 'x') + "tail");
    const std::string key = contractor::image::layer_key(hello_inputs());
    const Layer layer = store.save(key, frozen, contractor::image::to_json(hello_inputs()));

    CHECK(layer.directory == directory.path() / "layers" / key);
    CHECK(layer.disk_sha256 == sha256_of(frozen));
    CHECK(sha256_of(layer.disk()) == layer.disk_sha256);
    struct stat status {};
    REQUIRE(::stat(layer.disk().c_str(), &status) == 0);
    CHECK((status.st_mode & 0777) == 0444);

    const auto found = store.find(key, std::chrono::hours(1));
    REQUIRE(found);
    CHECK(found->disk_sha256 == layer.disk_sha256);
    CHECK(found->inputs["install"][0] == "make");
    CHECK_FALSE(store.find(std::string(64, '0'), std::chrono::hours(1)));
    // Nothing of the save is left beside it.
    CHECK(std::distance(fs::directory_iterator(directory.path() / "layers"),
                        fs::directory_iterator()) == 1);
}

TEST_CASE("a layer older than the maximum age is removed, not used", "[layers]") {
    const TemporaryDirectory directory;
    const LayerStore store(directory.path() / "layers");
    const auto frozen = directory.write("run/disk.qcow2", "disk");
    store.save("abc123", frozen, {});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    CHECK_FALSE(store.find("abc123", std::chrono::seconds(0)));
    CHECK_FALSE(fs::exists(directory.path() / "layers" / "abc123"));
}

TEST_CASE("a folder whose record is missing, wrong or names another key is no layer", "[layers]") {
    const TemporaryDirectory directory;
    const LayerStore store(directory.path() / "layers");
    directory.write("layers/aaaa/disk.qcow2", "disk");
    directory.write("layers/bbbb/disk.qcow2", "disk");
    directory.write("layers/bbbb/layer.json", "{\"key\": \"cccc\", \"disk_sha256\": \"x\", "
                                              "\"created\": 1}");
    directory.write("layers/dddd/layer.json", "not json");
    CHECK(store.list().empty());
    CHECK_FALSE(store.find("bbbb", std::chrono::hours(24 * 365 * 100)));
}

TEST_CASE("eviction removes the least recently used beyond the cap, never the one kept",
          "[layers]") {
    const TemporaryDirectory directory;
    const LayerStore store(directory.path() / "layers");
    const auto frozen = directory.write("run/disk.qcow2", std::string(64 * 1024, 'x'));
    const Layer old_layer = store.save("aaaa", frozen, {});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    const Layer newer = store.save("bbbb", frozen, {});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    store.touch(old_layer); // used last: bbbb is now the least recently used
    const auto removed = store.evict_to(old_layer.size, "cccc");
    REQUIRE(removed.size() == 1);
    CHECK(removed[0].key == "bbbb");
    CHECK(store.find("aaaa", std::chrono::hours(1)));
    // The layer just saved stays even when it alone is over the cap.
    CHECK(store.evict_to(0, "aaaa").empty());
    CHECK(store.evict_to(0).size() == 1);
    CHECK(store.list().empty());
    (void)newer;
}

TEST_CASE("prune removes all, one by key prefix, or by age and size", "[layers]") {
    const TemporaryDirectory directory;
    const LayerStore store(directory.path() / "layers");
    const auto frozen = directory.write("run/disk.qcow2", "disk");
    store.save("aaaa1111", frozen, {});
    store.save("bbbb2222", frozen, {});
    store.save("bbbb3333", frozen, {});

    LayerPrune one;
    one.key = "aaaa";
    CHECK(contractor::image::prune_layers(store, one).size() == 1);
    // An ambiguous prefix removes nothing.
    LayerPrune ambiguous;
    ambiguous.key = "bbbb";
    CHECK(contractor::image::prune_layers(store, ambiguous).empty());
    CHECK_FALSE(store.remove("../bbbb2222").has_value());

    LayerPrune by_limits; // fresh and small: nothing to remove
    CHECK(contractor::image::prune_layers(store, by_limits).empty());
    LayerPrune all;
    all.all = true;
    CHECK(contractor::image::prune_layers(store, all).size() == 2);
    CHECK(store.list().empty());
}

TEST_CASE("a listed layer says what its key covers", "[layers]") {
    const auto text =
        contractor::image::describe_inputs(contractor::image::to_json(hello_inputs()));
    CHECK_THAT(text, Contains("worker-dad55c7f39b016ff"));
    CHECK_THAT(text, Contains("install: make"));
    CHECK_THAT(text, Contains("ansible: 1 play"));
    CHECK_THAT(text, Contains("provision network: 1 rules"));
    CHECK_THAT(text, Contains("disk 8 GiB"));
    CHECK_THAT(text, Contains("contractor 0.1.0"));
    CHECK(contractor::spec::format_size(196673536) == "187.56 MiB");
}
