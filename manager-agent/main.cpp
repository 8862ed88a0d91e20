#include "manager-agent/agent.hpp"

int main(int argc, char** argv) {
    return contractor::manager::run(argc, argv);
}
