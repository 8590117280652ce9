// bpcheck: verifies backprop gradients against oracles in higher precision (see cli.hpp).
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) { return bpcheck::cli::run_command_line(argc, argv, std::cout, std::cerr); }
