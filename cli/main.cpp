#include "cli/app.hpp"

int main(int argc, char** argv) {
    return contractor::cli::main(argc, argv);
}
