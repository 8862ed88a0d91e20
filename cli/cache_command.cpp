// `contractor cache list|prune`: the provisioned layers, on this host (direct topology) and in
// the running manager VM (nested topology), where each side keeps its own.
#include "cli/command.hpp"
#include "cli/manager_connection.hpp"
#include "image/layer_store.hpp"
#include "spec/spec.hpp"
#include "spec/units.hpp"
#include "util/escape.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ostream>

namespace contractor::cli {
namespace {
using nlohmann::ordered_json;

struct CacheOptions {
    bool all = false;
    std::string key;
};

// The manager's answer to `contractor-manager cache ...`, or nullopt when no manager VM runs
// (a stopped manager keeps its layers; they are listed once it runs again).
std::optional<ordered_json> ask_manager(Context& context, const std::string& words) {
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    managervm::ManagerVm manager = open_manager(config, "", "");
    if (!manager.created() || !manager.running()) {
        return std::nullopt;
    }
    ManagerLink link = connect_manager(manager, context.err);
    std::string output;
    if (link.chain.last().run(link.agent + " cache " + words, output) != 0) {
        throw InfrastructureError("the manager could not " + words + " its layers: " + output);
    }
    const auto json = ordered_json::parse(output, nullptr, false);
    if (!json.is_array()) {
        throw InfrastructureError("the manager answered 'cache " + words +
                                  "' with something that is not a list");
    }
    return json;
}

std::string age(std::int64_t unix_seconds) {
    return image::human_age(
        std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)));
}

std::string field(const ordered_json& layer, const char* name) {
    const auto value = layer.value(name, ordered_json());
    return util::escape_name(value.is_string() ? value.get<std::string>() : value.dump());
}

void print_layer(std::ostream& out, const ordered_json& layer, const char* where) {
    char line[160];
    std::snprintf(line, sizeof line, "%-12.12s  %10s  %8s  %9s  %-7s  ",
                  field(layer, "key").c_str(),
                  spec::format_size(layer.value("bytes", std::uint64_t{0})).c_str(),
                  age(layer.value("created", std::int64_t{0})).c_str(),
                  age(layer.value("last_used", std::int64_t{0})).c_str(), where);
    out << line << field(layer, "covers") << "\n";
}

int list_layers(Context& context) {
    const image::LayerStore store(image::LayerStore::default_root());
    std::size_t count = 0;
    char header[160];
    std::snprintf(header, sizeof header, "%-12s  %10s  %8s  %9s  %-7s  %s\n", "KEY", "SIZE", "AGE",
                  "LAST USE", "WHERE", "COVERS");
    context.out << header;
    for (const auto& layer : store.list()) {
        print_layer(context.out, image::layer_listing(layer), "host");
        ++count;
    }
    if (const auto in_manager = ask_manager(context, "list")) {
        for (const auto& layer : *in_manager) {
            print_layer(context.out, layer, "manager");
            ++count;
        }
    } else {
        context.err << "contractor: the manager VM is not running: its layers are not listed\n";
    }
    context.err << "contractor: " << count << (count == 1 ? " layer" : " layers") << "\n";
    return 0;
}

int prune_layers(Context& context, const CacheOptions& options) {
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    image::LayerPrune rule;
    rule.all = options.all;
    if (!options.key.empty()) {
        if (options.key.find_first_not_of("0123456789abcdef") != std::string::npos) {
            throw UsageError("'" + util::escape_name(options.key) + "' is not a layer key",
                             "'contractor cache list' shows the keys");
        }
        rule.key = options.key;
    }
    rule.max_age = std::chrono::seconds(config.cache.max_age_seconds);
    rule.max_bytes = config.cache.max_size;
    std::uint64_t freed = 0;
    std::size_t count = 0;
    const auto report = [&](const ordered_json& layer, const char* where) {
        const auto bytes = layer.value("bytes", std::uint64_t{0});
        context.err << "contractor: removed layer " << field(layer, "key").substr(0, 12) << " ("
                    << spec::format_size(bytes) << ", " << where << ")\n";
        freed += bytes;
        ++count;
    };
    for (const auto& layer :
         image::prune_layers(image::LayerStore(image::LayerStore::default_root()), rule)) {
        report(image::layer_listing(layer), "host");
    }
    const std::string words = options.all ? "prune all"
                              : !options.key.empty()
                                  ? "prune key " + options.key
                                  : "prune auto " + std::to_string(rule.max_age.count()) + " " +
                                        std::to_string(rule.max_bytes);
    if (const auto in_manager = ask_manager(context, words)) {
        for (const auto& layer : *in_manager) {
            report(layer, "manager");
        }
    }
    context.err << "contractor: freed " << spec::format_size(freed) << " (" << freed << " bytes, "
                << count << (count == 1 ? " layer" : " layers") << ")\n";
    if (!options.key.empty() && count == 0) {
        throw UsageError("no single layer has a key starting with " + options.key,
                         "'contractor cache list' shows the keys");
    }
    return 0;
}

} // namespace

void add_cache_command(CLI::App& parent, CommandAction& action) {
    CLI::App* cache = parent.add_subcommand(
        "cache", "List or remove provisioned layers (workers' disks as provisioning left them)");
    cache->require_subcommand(1);
    CLI::App* list = cache->add_subcommand(
        "list", "Show the layers on this host and in the running manager VM: size, age, last "
                "use and what their key covers");
    list->callback([&action] {
        action = [](Context& context) {
            return list_layers(context);
        };
    });
    auto options = std::make_shared<CacheOptions>();
    CLI::App* prune = cache->add_subcommand(
        "prune", "Remove layers older than the config's cache.max-age and the least recently "
                 "used beyond cache.max-size; or all of them, or one");
    prune->add_flag("--all", options->all, "Remove every layer");
    prune->add_option("key", options->key, "Remove only the layer with this key (or prefix)");
    prune->callback([options, &action] {
        action = [options](Context& context) {
            return prune_layers(context, *options);
        };
    });
}

} // namespace contractor::cli
