#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  qstar::cli::set_progress_tty(::isatty(2) != 0);
  return qstar::cli::run(args, std::cout, std::cerr);
}
