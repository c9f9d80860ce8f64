// The qstar application's internals, shared by its files: the one flag table and parser
// (flags.cpp), search params from flags (params.cpp), the task registry and data files
// (tasks.cpp), the plug-ins (plugins.cpp), and one file per subcommand (solve.cpp,
// bench.cpp, lm.cpp, serve.cpp; the train subcommand's body is src/cli/train.cpp).
#pragma once

#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "app/cli.hpp"
#include "qstar/core/any.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/search/named_params.hpp"
#include "qstar/search/run.hpp"
#include "qstar/tasks/registry.hpp"
#ifdef QSTAR_HAS_TORCH
#include "qstar/torch/lm_generator.hpp"
#endif

namespace qstar::cli {

/// Bad command-line input: reported in one line, exit 2.
struct UsageError : InvalidArgument {
  using InvalidArgument::InvalidArgument;
};

/// Whether progress bars may redraw (set_progress_tty).
bool progress_tty();

// ---- flags.cpp: the one flag table and its parser ---------------------------------------

/// The flags of one command line, checked against the flag table: `command` is "solve",
/// "bench", "serve", "lm logits", "lm tokenize" or "lm generate". A switch takes no value;
/// every other flag takes one (`--name value` or `--name=value`); a flag given twice, a
/// missing value or a flag the command does not know is a UsageError naming the flag.
class Args {
 public:
  Args(const std::vector<std::string>& args, std::size_t from, std::string command);
  const std::vector<std::string>& positional() const { return pos_; }
  bool has(std::string_view k) const { return kv_.count(std::string(k)) != 0; }
  /// Every flag given, by name (a switch has the value "1").
  const std::map<std::string, std::string, std::less<>>& flags() const { return kv_; }
  std::optional<std::string> get(std::string_view k) const;
  /// Every algorithm flag must apply to at least one of the algorithms chosen.
  void check_algorithms(const std::vector<std::string>& algos) const;

 private:
  std::string command_;
  std::vector<std::string> pos_;
  std::map<std::string, std::string, std::less<>> kv_;
};

/// --threads N: qstar::lm::set_threads(N) (LibTorch's and the BLAS's compute threads);
/// without it, the library's default (qstar::lm::apply_default_threads). Nothing without
/// LibTorch.
void apply_threads(const Args& a);

/// The flag names of `command` in the table (for help texts and tests).
std::vector<std::string> command_flags(std::string_view command);

template <class I>
I parse_int(std::string_view flag, const std::string& text, I lo, I hi) {
  I v{};
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end) throw UsageError(fmt::format("--{}: '{}' is not an integer", flag, text));
  if (v < lo || v > hi) throw UsageError(fmt::format("--{}: {} is out of range [{}, {}]", flag, text, lo, hi));
  return v;
}
double parse_double(std::string_view flag, const std::string& text);
std::vector<std::string> split_list(const std::string& s);
std::uint64_t get_seed(const Args& a);
void write_file(const std::string& path, const std::string& text, std::string_view flag);

/// p.validate(), an InvalidArgument reported as a usage error prefixed by `what`.
template <class P>
void validate_usage(const P& p, std::string_view what) {
  try {
    p.validate();
  } catch (const InvalidArgument& e) {
    throw UsageError(fmt::format("{}: {}", what, e.what()));
  }
}

// ---- params.cpp: search params from flags -------------------------------------------------

/// The canonical algorithm name of --algo's value; UsageError naming --algo.
std::string canonical_algo(const std::string& a);
/// The params of `algo` from the flags, with `n` as the algorithm's budget knob, validated.
SearchParams make_params(const std::string& algo, int n, const Args& a);

// ---- tasks.cpp: the built-in tasks and qstar's data -------------------------------------

/// The tasks qstar knows (`--task NAME`); the first is the default.
const TaskRegistry& builtin_tasks();
/// The task --task names (default: the first registered); UsageError naming --task.
const TaskEntry& task_of(const Args& a);
/// The task's data file: load_data with the data options given (--question-field ...);
/// UsageError for a data option the task does not read or a malformed one.
std::vector<Problem> load_task_data(const Args& a, const TaskEntry& task, const std::string& path,
                                    std::optional<std::pair<int, int>> ranks);
/// The task the search commands run: with its prompts rendered by a chat template when the
/// task has chat prompts (TaskEntry::make_chat_task) and one is found: --chat-template FILE
/// (a Jinja file, or a tokenizer_config.json or model folder), else the tokenizer_config.json
/// of --generator lm:DIR; --no-chat-template: the plain prompt. `note` names the template used.
AnyTask make_task(const Args& a, const TaskEntry& task, std::ostream* note);
/// --answer-marker (unescaped) when given, else the task's marker.
std::string answer_marker_of(const Args& a, const TaskEntry& task);
/// A file under qstar's data directory (`rel`, e.g. "game24/24.csv"): $QSTAR_DATA_DIR, the
/// installed <prefix>/share/qstar, or the data/ folder of the checkout the executable was
/// built in (found upwards from the executable). nullopt when none has it.
std::optional<std::string> find_data_file(const std::string& rel);
/// Where an installed or built qstar keeps `sub` ("data", "models"), nearest first:
/// <exe dir>/../share/qstar/<sub without "data/"> (an installation), then <sub> in the parent
/// folders of the executable up to three levels (a build folder inside the checkout). No
/// source path is compiled in.
std::vector<std::string> resource_dirs(const std::string& sub);

// ---- plugins.cpp: the generator and verifier of a search command -------------------------

struct Plugins {
  std::optional<AnyGenerator> gen;
  std::optional<VerifierSet> ver;  // nullopt: no verifier
  std::string gen_label, ver_label;
};

/// Builds the plug-ins the flags choose (the task's own, lm:DIR, prm:PATH, http:URL); the
/// defaults are the trained models when found, else the task's first generator and verifier.
/// `note` gets one line when a LibTorch-enabled qstar falls back.
Plugins make_plugins(const Args& a, const TaskEntry& task, std::ostream* note);
#ifdef QSTAR_HAS_TORCH
/// --device, --dtype, --temperature, --top-p, --top-k, --delimiter, --kv-cache-mb (lm:DIR);
/// the answer marker is --answer-marker, else the task's.
lm::LMGeneratorParams lm_generator_params(const Args& a, const TaskEntry& task);
#endif
/// --verifier/--orm against the algorithm: a usage error before anything runs.
void check_plugins(const SearchParams& sp, const Plugins& pl);
/// One search over `problems` with the task and the plug-ins.
std::vector<SearchResult> run_search(std::span<const Problem> problems, const AnyTask& task, Plugins& pl,
                                     const SearchParams& sp, std::uint64_t seed);

// ---- solve.cpp / bench.cpp: output shared by the search commands --------------------------

/// A bench method label with model paths shortened to the folder's name (bench.cpp).
std::string short_method(const std::string& label);
/// One trace line with per-node correctness for every node that carries an answer.
std::string trace_line(const SearchResult& r, const AnyTask& task);

// ---- the subcommands ---------------------------------------------------------------------

int cmd_solve(const Args& a, std::ostream& out, std::ostream& err);
int cmd_bench(const Args& a, std::ostream& out, std::ostream& err);
int cmd_lm(const std::vector<std::string>& args, std::ostream& out);
int cmd_serve(const std::vector<std::string>& args, std::ostream& out);
/// `qstar serve --search ALGO` (serve_search.cpp): whether the command line asks for it, and
/// the command.
bool is_search_serve(const std::vector<std::string>& args);
int cmd_serve_search(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
/// `qstar task check|extract` (task_cmd.cpp).
int cmd_task(const std::vector<std::string>& args, std::ostream& out);
int cmd_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool tty);

}  // namespace qstar::cli
