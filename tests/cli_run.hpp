// Runs the qstar CLI in-process for the tests (tests/cli, tests/torch): the exit code and
// what it printed, with progress as plain lines.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "app/cli.hpp"

namespace cli_test {

struct Run {
  int code;
  std::string out, err;
};

inline Run run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  qstar::cli::set_progress_tty(false);
  const int code = qstar::cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

}  // namespace cli_test
