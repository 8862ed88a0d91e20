#include "cli/manual.hpp"

#include "util/exit_code.hpp"

#include <algorithm>
#include <sstream>

namespace contractor::cli {
namespace {

struct ExitCodeLine {
    std::string code;
    std::string meaning;
};

// The exit codes (util/exit_code.hpp), as the user reads them.
const std::vector<ExitCodeLine>& exit_code_lines() {
    static const std::vector<ExitCodeLine> lines = {
        {std::to_string(to_int(ExitCode::success)), "success"},
        {std::to_string(to_int(ExitCode::build_failed)), "the build script failed"},
        {std::to_string(to_int(ExitCode::usage)),
         "usage or spec error: bad command line, malformed spec or config, unreadable file"},
        {std::to_string(to_int(ExitCode::limit_exceeded)),
         "a hard limit was exceeded or the network policy was violated"},
        {std::to_string(to_int(ExitCode::infrastructure)),
         "infrastructure failure: a VM would not boot, libvirt unreachable, an internal error"},
        {"130, 143", "interrupted by SIGINT or SIGTERM, after removing what it had started"},
    };
    return lines;
}

struct EnvironmentLine {
    std::string name;
    std::string meaning;
};

const std::vector<EnvironmentLine>& environment_lines() {
    static const std::vector<EnvironmentLine> lines = {
        {"XDG_CONFIG_HOME", "the user config is $XDG_CONFIG_HOME/contractor/config.yaml "
                            "(default ~/.config/contractor/config.yaml)"},
        {"XDG_CACHE_HOME", "images, provisioned layers and run folders are kept in "
                           "$XDG_CACHE_HOME/contractor (default ~/.cache/contractor)"},
        {"XDG_DATA_HOME", "the manager VM's disk, keys and record are in "
                          "$XDG_DATA_HOME/contractor/manager (default ~/.local/share)"},
        {"XDG_STATE_HOME", "build logs are kept in $XDG_STATE_HOME/contractor "
                           "(default ~/.local/state)"},
        {"CONTRACTOR_DEBUG", "1 prints what each step chose and why"},
        {"CONTRACTOR_IMAGES_DIR", "the image recipes (default: share/contractor/images of the "
                                  "installation)"},
        {"CONTRACTOR_MANAGER", "the manager agent program (default: "
                               "libexec/contractor/contractor-manager of the installation)"},
    };
    return lines;
}

// A visible option: CLI11 hides those in the empty group.
bool shown(const CLI::Option* option) {
    return !option->get_group().empty();
}

bool shown(const CLI::App* verb) {
    return !verb->get_group().empty();
}

std::vector<const CLI::App*> verbs_of(const CLI::App& app) {
    std::vector<const CLI::App*> verbs;
    for (const CLI::App* verb : app.get_subcommands(std::function<bool(const CLI::App*)>())) {
        if (shown(verb)) {
            verbs.push_back(verb);
        }
    }
    return verbs;
}

bool takes_value(const CLI::Option* option) {
    return option->get_expected_min() > 0 || option->get_positional();
}

// "--report FILE", "-h, --help", "SPEC".
std::string option_synopsis(const CLI::Option* option) {
    if (option->nonpositional()) {
        std::string text;
        for (const auto& name : option->get_snames()) {
            text += (text.empty() ? "-" : ", -") + name;
        }
        for (const auto& name : option->get_lnames()) {
            text += (text.empty() ? "--" : ", --") + name;
        }
        if (takes_value(option)) {
            std::string value = option->get_type_name();
            text += " " + (value.empty() ? std::string("VALUE") : value);
        }
        return text;
    }
    std::string name = option->get_name(true);
    std::transform(name.begin(), name.end(), name.begin(), ::toupper);
    return name;
}

// Escapes text for roff: backslashes, and a leading dot or quote that would start a request.
std::string roff(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\') {
            out += "\\e";
        } else if (c == '-') {
            out += "\\-";
        } else {
            out += c;
        }
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) {
        out.insert(0, "\\&");
    }
    return out;
}

std::string capitalized(std::string text) {
    if (!text.empty()) {
        text[0] = static_cast<char>(::toupper(static_cast<unsigned char>(text[0])));
    }
    return text;
}

// "contractor image build [OPTIONS] NAME"
std::string usage_line(const std::string& command, const CLI::App& verb) {
    std::string line = command;
    bool any_option = false;
    std::string positionals;
    for (const CLI::Option* option : verb.get_options()) {
        if (!shown(option)) {
            continue;
        }
        if (option->nonpositional()) {
            any_option = true;
        } else {
            const std::string name = option_synopsis(option);
            positionals += " " + (option->get_required() ? name : "[" + name + "]");
        }
    }
    if (any_option) {
        line += " [OPTIONS]";
    }
    if (!verbs_of(verb).empty()) {
        line += " VERB";
    }
    return line + positionals;
}

void man_options(std::ostringstream& out, const CLI::App& app) {
    for (const CLI::Option* option : app.get_options()) {
        if (!shown(option)) {
            continue;
        }
        out << ".TP\n.B " << roff(option_synopsis(option)) << "\n"
            << roff(capitalized(option->get_description())) << "\n";
    }
}

void man_verb(std::ostringstream& out, const CLI::App& verb, const std::string& command) {
    out << ".SS \"" << roff(command) << "\"\n"
        << ".B " << roff(usage_line(command, verb)) << "\n.PP\n"
        << roff(capitalized(verb.get_description())) << ".\n";
    if (!verb.get_footer().empty()) {
        out << ".PP\n" << roff(verb.get_footer()) << "\n";
    }
    man_options(out, verb);
    for (const CLI::App* sub : verbs_of(verb)) {
        man_verb(out, *sub, command + " " + sub->get_name());
    }
}

std::string shell_words(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& word : words) {
        text += (text.empty() ? "" : " ") + word;
    }
    return text;
}

// One `case` arm per verb path: its own verbs and its options, and which options take a value.
void completion_arms(std::ostringstream& out, const CLI::App& app, const std::string& path) {
    std::vector<std::string> verbs;
    std::vector<std::string> options;
    std::vector<std::string> valued;
    for (const CLI::App* verb : verbs_of(app)) {
        verbs.push_back(verb->get_name());
    }
    for (const CLI::Option* option : app.get_options()) {
        if (!shown(option) || !option->nonpositional()) {
            continue;
        }
        for (const auto& name : option->get_lnames()) {
            options.push_back("--" + name);
            if (takes_value(option)) {
                valued.push_back("--" + name);
            }
        }
        for (const auto& name : option->get_snames()) {
            options.push_back("-" + name);
        }
    }
    out << "        \"" << path << "\") verbs=\"" << shell_words(verbs) << "\"; options=\""
        << shell_words(options) << "\"; valued=\" " << shell_words(valued) << " \" ;;\n";
    for (const CLI::App* verb : verbs_of(app)) {
        completion_arms(out, *verb,
                        path.empty() ? verb->get_name() : path + " " + verb->get_name());
    }
}

} // namespace

const CLI::App* find_verb(const CLI::App& root, const std::vector<std::string>& path) {
    const CLI::App* app = &root;
    for (const auto& word : path) {
        const auto verbs = verbs_of(*app);
        const auto found = std::find_if(verbs.begin(), verbs.end(), [&](const CLI::App* verb) {
            return verb->get_name() == word;
        });
        if (found == verbs.end()) {
            return nullptr;
        }
        app = *found;
    }
    return app;
}

std::string exit_codes_text() {
    std::ostringstream out;
    out << "Exit codes:\n";
    for (const auto& line : exit_code_lines()) {
        out << "  " << line.code
            << std::string(line.code.size() < 10 ? 10 - line.code.size() : 1, ' ') << line.meaning
            << "\n";
    }
    out << "See 'contractor help VERB' and 'man contractor'.";
    return out.str();
}

std::string man_page(const CLI::App& root, const std::string& version) {
    std::ostringstream out;
    out << ".\\\" Generated by `contractor help --man` from the definition of its commands.\n"
        << ".TH CONTRACTOR 1 \"\" \"contractor " << roff(version) << "\" \"User Commands\"\n"
        << ".SH NAME\ncontractor \\- build untrusted software in a disposable VM under hard "
           "limits\n"
        << ".SH SYNOPSIS\n.B " << roff(usage_line("contractor", root)) << "\n"
        << ".SH DESCRIPTION\n"
        << roff(root.get_description()) << "\n.PP\n"
        << "A build spec (YAML) names the source, the workspace that comes back, the worker "
           "image, how to provision it, the build script, the limits and the network rules; "
           "the user config adds the user's own ceilings and rules. Each verb below has its own "
           "section; \\fBcontractor help\\fR \\fIVERB\\fR prints the same text.\n"
        << ".SH OPTIONS\n";
    man_options(out, root);
    out << ".SH COMMANDS\n";
    for (const CLI::App* verb : verbs_of(root)) {
        man_verb(out, *verb, "contractor " + verb->get_name());
    }
    out << ".SH \"EXIT STATUS\"\n";
    for (const auto& line : exit_code_lines()) {
        out << ".TP\n.B " << roff(line.code) << "\n" << roff(capitalized(line.meaning)) << ".\n";
    }
    out << ".SH ENVIRONMENT\n";
    for (const auto& line : environment_lines()) {
        out << ".TP\n.B " << line.name << "\n" << roff(capitalized(line.meaning)) << ".\n";
    }
    out << ".SH FILES\n.TP\n.B ~/.config/contractor/config.yaml\nThe user config: ceilings, "
           "network rules only the user may give, the manager VM, ready workers and the layer "
           "cache.\n"
        << ".TP\n.B /usr/share/contractor/images\nThe image recipes (worker, worker\\-toolchain, "
           "manager), relative to the installation's prefix.\n"
        << ".SH \"SEE ALSO\"\n.BR virsh (1),\n.BR qemu\\-system\\-x86_64 (1),\n"
           ".BR ansible\\-playbook (1).\n"
        << "The README and docs/ of the source, installed in /usr/share/doc/contractor.\n";
    return out.str();
}

std::string bash_completion(const CLI::App& root) {
    std::ostringstream out;
    out << "# bash completion for contractor; generated by `contractor help --bash-completion`\n"
           "# from the definition of its commands.\n"
           "_contractor() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    local path=\"\" word i verbs options valued\n"
           "    _contractor_arm() {\n"
           "        case \"$1\" in\n";
    completion_arms(out, root, "");
    out << "        *) return 1 ;;\n"
           "        esac\n"
           "    }\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        word=${COMP_WORDS[i]}\n"
           "        _contractor_arm \"$path\"\n"
           "        if [[ $valued == *\" $word \"* ]]; then\n"
           "            ((i++))\n"
           "        elif [[ $word != -* && \" $verbs \" == *\" $word \"* ]]; then\n"
           "            path=${path:+$path }$word\n"
           "        elif [[ $word == -- ]]; then\n"
           "            break\n"
           "        fi\n"
           "    done\n"
           "    _contractor_arm \"$path\"\n"
           "    if [[ $valued == *\" $prev \"* || $cur != -* && -z $verbs ]]; then\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "        compopt -o filenames 2>/dev/null\n"
           "    elif [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$options\" -- \"$cur\"))\n"
           "    else\n"
           "        COMPREPLY=($(compgen -W \"$verbs\" -- \"$cur\"))\n"
           "    fi\n"
           "}\n"
           "complete -F _contractor contractor\n";
    return out.str();
}

} // namespace contractor::cli
