#include "image/recipe.hpp"

#include "spec/field_reader.hpp"
#include "spec/units.hpp"
#include "util/error.hpp"
#include "util/install_layout.hpp"
#include "yaml/document.hpp"

#include <system_error>

namespace contractor::image {

std::filesystem::path recipes_directory() {
    return util::install_layout().recipes;
}

Recipe load_recipe(const std::filesystem::path& directory, const std::string& name) {
    const auto file = directory / name / "recipe.yaml";
    std::error_code error;
    if (name.find('/') != std::string::npos || !std::filesystem::exists(file, error)) {
        throw UsageError("no image recipe called '" + name + "' in " + directory.string(),
                         "the recipes are worker and manager");
    }
    const yaml::Document document = yaml::load_document(file.string());
    const spec::FieldReader reader(document);
    reader.check_mapping("",
                         {"name", "suite", "variant", "disk-size", "packages", "customize", "files",
                          "init", "keep-apt-lists"},
                         "the recipe");
    for (auto key : {"name", "suite", "variant", "disk-size", "packages", "customize", "init"}) {
        reader.require_key("", key, "the recipe");
    }
    Recipe recipe;
    recipe.file = std::filesystem::absolute(file);
    const auto folder = recipe.file.parent_path();
    recipe.name = reader.string("/name");
    recipe.suite = reader.string("/suite");
    recipe.variant = reader.string("/variant");
    try {
        recipe.disk_size = spec::parse_size(reader.string("/disk-size"));
    } catch (const spec::UnitError& unit_error) {
        reader.fail_at_value("/disk-size", unit_error.what());
    }
    recipe.packages = reader.string_list("/packages");
    recipe.customize = (folder / reader.string("/customize")).lexically_normal();
    if (const auto* files = reader.find("/files"); files != nullptr && files->is_object()) {
        for (const auto& [variable, path] : files->items()) {
            const std::string pointer = yaml::child_pointer("/files", variable);
            recipe.files.emplace_back(variable,
                                      (folder / reader.string(pointer)).lexically_normal());
        }
    }
    recipe.init = reader.string("/init");
    if (const auto* keep = reader.find("/keep-apt-lists"); keep != nullptr) {
        if (!keep->is_boolean()) {
            reader.fail_at_value("/keep-apt-lists", "keep-apt-lists must be true or false");
        }
        recipe.keep_apt_lists = keep->get<bool>();
    }
    return recipe;
}

} // namespace contractor::image
