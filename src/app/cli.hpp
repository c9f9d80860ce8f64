// The `qstar` command line, as a library function so tests can drive it in-process.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace qstar::cli {

/// Runs the CLI on `args` (without the program name). Returns the exit status:
/// 0 success, 2 bad input (one line on `err` naming the flag, file or field), 1 a runtime
/// failure (a plug-in error).
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// Whether progress bars may redraw (stderr is a terminal). Tests force plain lines.
void set_progress_tty(bool tty);

/// "\\n" -> newline, "\\t" -> tab, "\\X" -> X (for delimiters and tags typed on a command
/// line).
std::string unescape(const std::string& s);

}  // namespace qstar::cli
