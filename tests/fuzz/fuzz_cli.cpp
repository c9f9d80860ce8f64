// libFuzzer target: the qstar command line (src/app/cli.hpp: qstar::cli::run), in process.
//
// Input: the argument vector, split on NUL bytes (args[0] is the command). The target must
// stay fast and must not touch the file system, so it filters and rewrites the arguments
// before calling run() (an input it rejects returns -1, and libFuzzer does not add it to
// the corpus):
//  * no file outputs: an input naming --tree, --trace or --results (anywhere), or --json with the
//    bench command (where it takes a file), is rejected; solve's --json is a switch that
//    prints to the output stream and is kept;
//  * no file inputs: the value of every --data (as "--data=X" or "--data X") is replaced
//    by a 3-puzzle CSV this target writes once into a private temporary folder, and the
//    value of every --pairs / --texts (`task check` / `task extract`) by a small JSONL file
//    written there too (so "-" never reads standard input);
//  * bounded compute: an integer value above a small cap for the flags that scale the
//    work (--n elements <= 32, at most 3 of them; --expand-k <= 16; --width <= 32;
//    --pops, --leaves, --node-expansions <= 8; --lookahead <= 3; at most 3 --algo names)
//    rejects the input. The check looks at both an inline "=value" and the next argument,
//    so it is conservative whichever way the CLI reads them;
//  * at most 24 arguments of at most 256 bytes.
// Everything else (unknown commands and flags, malformed numbers, puzzles, ranks, lists,
// parameter validation, the search and the printing) runs as in the real executable.
//
// Oracles: run() returns 0 or 2 (1 would be an internal error or a plug-in error, and the
// built-in plug-ins never fail); on 2 the output stream is empty and the error stream is
// exactly one line starting "qstar: error: "; `solve --json` prints one JSON object.
#include <unistd.h>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "app/cli.hpp"
#include "fuzz_common.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"

namespace fs = std::filesystem;
using qstar_fuzz::shown;

namespace {

struct Csv {
  std::string root, path;
  Csv() {
    const char* base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/qstar_fuzz_cli_XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    root = tmpl;
    path = root + "/24.csv";
    std::ofstream f(path, std::ios::binary);
    f << "Rank,Puzzles,AMT (s),Solved rate\n1,1 1 4 6,5.5,95%\n2,4 5 6 10,6.0,90%\n3,1 2 4 7,7.1,80%\n";
    pairs = root + "/pairs.jsonl";
    std::ofstream(pairs, std::ios::binary)
        << "{\"gold\": \"\\\\frac{1}{2}\", \"answer\": \"0.5\"}\n{\"gold\": 18, \"answer\": \"19\"}\n"
           "{\"gold\": \"(1, 2)\", \"answer\": null}\n";
    texts = root + "/texts.jsonl";
    std::ofstream(texts, std::ios::binary)
        << "{\"text\": \"So \\\\boxed{\\\\frac{1}{2}}.\"}\n{\"text\": \"no answer\"}\n{\"text\": \"x\\n#### 7\"}\n";
  }
  std::string pairs, texts;
  ~Csv() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

const Csv& files() {
  static Csv csv;
  return csv;
}
const std::string& csv_path() { return files().path; }

/// The flag name of an argument ("--n=5" -> "n"), or "" when it is no flag.
std::string_view flag_name(std::string_view a) {
  if (a.size() <= 2 || a.substr(0, 2) != "--") return {};
  a.remove_prefix(2);
  return a.substr(0, a.find('='));
}

/// Whether `value` (a comma list for --n and --algo) stays within the caps of `flag`.
bool within_caps(std::string_view flag, std::string_view value) {
  long long cap = -1;
  std::size_t max_items = 1;
  if (flag == "n") cap = 32, max_items = 3;
  else if (flag == "expand-k") cap = 16;
  else if (flag == "width") cap = 32;
  else if (flag == "pops" || flag == "leaves" || flag == "node-expansions") cap = 8;
  else if (flag == "lookahead") cap = 3;
  else if (flag == "algo") max_items = 3;
  else return true;
  std::size_t items = 1;
  for (const char c : value) items += c == ',' ? 1 : 0;
  if (items > max_items) return false;
  if (cap < 0) return true;
  for (const auto& item : qstar_fuzz::split(value, ',')) {
    long long v = 0;
    const auto r = std::from_chars(item.data(), item.data() + item.size(), v);
    if (r.ec == std::errc() && v > cap) return false;
  }
  return true;
}

int lines(const std::string& s) {
  int n = 0;
  for (const char c : s) n += c == '\n';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return -1;
  std::vector<std::string> args = qstar_fuzz::split(qstar_fuzz::as_view(data, size), '\0');
  if (args.size() > 24) return -1;
  for (const auto& a : args)
    if (a.size() > 256) return -1;
  const bool bench = !args.empty() && args[0] == "bench";
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view name = flag_name(args[i]);
    if (name.empty()) continue;
    if (name == "tree" || name == "trace" || name == "results" || (bench && name == "json")) return -1;
    const auto eq = args[i].find('=');
    if (eq != std::string::npos && !within_caps(name, std::string_view(args[i]).substr(eq + 1))) return -1;
    if (i + 1 < args.size() && !within_caps(name, args[i + 1])) return -1;
    if (name == "data" || name == "pairs" || name == "texts") {
      const std::string& file = name == "data" ? csv_path() : name == "pairs" ? files().pairs : files().texts;
      if (eq != std::string::npos) args[i] = "--" + std::string(name) + "=" + file;
      else if (i + 1 < args.size()) args[i + 1] = file;
    }
  }

  qstar::cli::set_progress_tty(false);
  std::ostringstream out, err;
  const int code = qstar::cli::run(args, out, err);
  std::string joined;
  for (const auto& a : args) joined += "[" + a + "] ";
  FUZZ_CHECK(code == 0 || code == 2, "exit %d for %s\n  err: %s", code, shown(joined).c_str(),
             shown(err.str()).c_str());
  if (code == 2) {
    FUZZ_CHECK(out.str().empty(), "output before an error for %s", shown(joined).c_str());
    FUZZ_CHECK(lines(err.str()) == 1 && err.str().back() == '\n',
               "the error is not exactly one line for %s\n  err: %s", shown(joined).c_str(),
               shown(err.str()).c_str());
    FUZZ_CHECK(err.str().rfind("qstar: error: ", 0) == 0, "error prefix for %s", shown(joined).c_str());
  } else if (!args.empty() && args[0] == "solve") {
    bool json = false, help = false;
    for (const auto& a : args) {
      json = json || a == "--json";
      help = help || a == "--help";
    }
    json = json && !help;
    if (json) {
      try {
        (void)qstar::json::parse(out.str(), "solve --json");
      } catch (const qstar::ParseError& e) {
        FUZZ_CHECK(false, "solve --json printed no JSON for %s: %s", shown(joined).c_str(), e.what());
      }
    }
  }
  return 0;
}
