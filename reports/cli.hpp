#pragma once
// The bpcheck program as a function: main() calls it, and so does the command-line fuzzer
// (fuzz/command_line_fuzz.cpp), which stops after parsing.
#include <ostream>

namespace bpcheck::cli {

/// Parses the command line and runs the command it selects, writing the result to `out`. Every
/// failure on bad input is one line on `err`, "bpcheck: error: <file>: <problem>", and exit code 2;
/// returns the exit code. With run_command false it returns 0 after a successful parse, running
/// nothing.
int run_command_line(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                     bool run_command = true);

}  // namespace bpcheck::cli
