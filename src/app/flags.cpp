// The one flag table of every subcommand but `train` (src/cli/train.cpp parses its own), and
// the parser that reads a command line against it.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include "app/app.hpp"
#ifdef QSTAR_HAS_TORCH
#include "qstar/torch/threads.hpp"
#endif

namespace qstar::cli {

namespace {

/// One flag: its name (without "--"), whether it is a switch (no value), and the commands
/// that take it (space-separated). Algorithm flags come from the registry (algo_flags()).
struct FlagSpec {
  std::string_view name;
  bool is_switch;
  std::string_view commands;
};

constexpr std::string_view kSearch = "solve bench serve-search";
constexpr FlagSpec kFlags[] = {
    // the search commands
    {"task", false, "solve bench lm-generate task-check task-extract"}, {"answer-marker", false, "solve bench lm-generate"},
    {"algo", false, kSearch}, {"seed", false, "solve bench lm-generate"},
    {"n", false, kSearch}, {"help", true, kSearch}, {"tree", false, "solve"},
    {"json", true, "solve lm-logits lm-tokenize lm-generate"}, {"json", false, "bench"},
    {"data", false, "bench"}, {"ranks", false, "bench"}, {"trace", false, "bench"}, {"chunk", false, "bench"},
    {"results", false, "bench"}, {"resume", true, "bench"},
    // the data options of tasks that read them (TaskEntry::data_options)
    {"question-field", false, "bench"}, {"answer-field", false, "bench"}, {"limit", false, "bench"},
    {"level", false, "bench"}, {"subject", false, "bench"},
    // chat prompts (tasks with TaskEntry::make_chat_task)
    {"chat-template", false, kSearch}, {"no-chat-template", true, kSearch},
    // qstar task check / extract
    {"pairs", false, "task-check"}, {"mode", false, "task-check"}, {"texts", false, "task-extract"},
    {"help", true, "task-check task-extract"},
    // qstar viz
    {"output", false, "viz"}, {"problem", false, "viz"}, {"help", true, "viz"},
    // the plug-ins of the search commands
    {"generator", false, kSearch}, {"error-rate", false, kSearch}, {"verifier", false, kSearch},
    {"device", false, "solve bench lm-logits lm-generate serve"},
    {"dtype", false, "solve bench lm-logits lm-generate serve"},
    {"prm-kind", false, "solve bench serve"}, {"orm-kind", false, kSearch}, {"prm-chat-template", false, kSearch}, {"prm-system", false, kSearch},
    {"temperature", false, "solve bench lm-generate"}, {"top-p", false, "solve bench lm-generate"},
    {"top-k", false, "solve bench lm-generate"}, {"delimiter", false, "solve bench lm-generate"},
    {"kv-cache-mb", false, "solve bench lm-generate serve"}, {"greedy", true, "solve bench lm-generate"},
    {"no-token-stats", true, "solve bench lm-generate"},
    {"step-tag", false, "solve bench serve"}, {"http-api", false, kSearch}, {"score-index", false, kSearch},
    {"model-name", false, kSearch}, {"http-timeout", false, kSearch}, {"http-retries", false, kSearch},
    {"http-in-flight", false, kSearch}, {"api-key-env", false, "solve bench serve"},
    // the common search params (algorithm flags: see algo_flags)
    {"max-step-tokens", false, "lm-generate"},
    // lm
    {"model", false, "lm-logits lm-tokenize lm-generate serve"}, {"text", false, "lm-logits lm-tokenize"},
    {"tokens", false, "lm-logits"}, {"file", false, "lm-tokenize"}, {"add-special-tokens", true, "lm-tokenize"},
    {"prompt", false, "lm-generate"}, {"steps", false, "lm-generate"}, {"candidates", false, "lm-generate"},
    // serve
    {"prm", false, "serve"}, {"host", false, "serve"}, {"port", false, "serve"}, {"name", false, "serve"},
    {"max-n", false, "serve"}, {"max-tokens", false, "serve"}, {"max-prompt-bytes", false, "serve"},
    {"max-inputs", false, "serve"}, {"batch-window-ms", false, "serve"}, {"max-batch", false, "serve"},
    {"http-threads", false, "serve"},
    // compute threads of the LibTorch backends (qstar::lm::set_threads)
    {"threads", false, "solve bench lm-logits lm-tokenize lm-generate serve serve-search"},
    // serve --search (search_service.hpp): kSearch's flags, the task's and plug-ins', and these
    {"search", false, "serve-search"}, {"task", false, "serve-search"}, {"answer-marker", false, "serve-search"},
    {"seed", false, "serve-search"}, {"device", false, "serve-search"}, {"dtype", false, "serve-search"},
    {"prm-kind", false, "serve-search"}, {"temperature", false, "serve-search"}, {"top-p", false, "serve-search"},
    {"top-k", false, "serve-search"}, {"delimiter", false, "serve-search"}, {"kv-cache-mb", false, "serve-search"},
    {"greedy", true, "serve-search"}, {"no-token-stats", true, "serve-search"}, {"step-tag", false, "serve-search"},
    {"api-key-env", false, "serve-search"}, {"host", false, "serve-search"}, {"port", false, "serve-search"},
    {"name", false, "serve-search"}, {"max-n", false, "serve-search"}, {"max-prompt-bytes", false, "serve-search"},
    {"batch-window-ms", false, "serve-search"}, {"max-batch", false, "serve-search"},
    {"max-queue", false, "serve-search"}, {"http-threads", false, "serve-search"},
};

bool has_word(std::string_view list, std::string_view word) {
  while (!list.empty()) {
    const auto sp = list.find(' ');
    if (list.substr(0, sp) == word) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

std::string table_name(std::string command) {
  for (auto& c : command)
    if (c == ' ') c = '-';
  return command;
}

/// Whether `name` is a switch of an algorithm (a flag of a bool field, AlgorithmTraits::flags).
bool is_algo_switch(std::string_view name) {
  bool yes = false;
  for_each_algorithm([&](auto t) {
    using P = typename decltype(t)::type;
    const P p{};
    for (const FieldFlag& f : AlgorithmTraits<P>::flags)
      if (f.flag == name)
        for_each_field(p, [&](std::string_view field, const auto& ref) {
          if (field == f.field) yes = yes || std::is_same_v<std::decay_t<decltype(ref)>, bool>;
        });
  });
  return yes;
}

/// The algorithm flags of the search commands and the algorithms they apply to ("*" = all):
/// the common params' flags, then each algorithm's own (AlgorithmTraits::flags).
const std::map<std::string, std::set<std::string>, std::less<>>& algo_flags() {
  static const auto table = [] {
    std::map<std::string, std::set<std::string>, std::less<>> t = {
        {"max-depth", {"*"}}, {"max-step-tokens", {"*"}}, {"aggregation", {"*"}},
        {"voting", {"best-of-n", "beam", "dvts", "mcts", "particle-filter", "rebase",
                    "adaptive-best-of-n", "deepconf"}}, {"max-tokens", {"*"}}, {"max-verifier-tokens", {"*"}},
        {"max-calls", {"*"}}, {"max-nodes", {"*"}}, {"max-seconds", {"*"}}, {"orm", {"best-of-n"}}, {"orm-kind", {"best-of-n"}},
    };
    for_each_algorithm([&](auto tag) {
      using P = typename decltype(tag)::type;
      for (const FieldFlag& f : AlgorithmTraits<P>::flags)
        t[std::string(f.flag)].insert(std::string(AlgorithmTraits<P>::name));
    });
    return t;
  }();
  return table;
}

/// The table entry of --name for `command`; nullptr when the command does not take it.
const FlagSpec* find_flag(std::string_view command, std::string_view name) {
  for (const auto& f : kFlags)
    if (f.name == name && has_word(f.commands, command)) return &f;
  return nullptr;
}

}  // namespace

Args::Args(const std::vector<std::string>& args, std::size_t from, std::string command)
    : command_(std::move(command)) {
  const std::string table = table_name(command_);
  const bool search = has_word(kSearch, table);
  for (std::size_t i = from; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 2 && a.rfind("--", 0) == 0) {
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
        has_value = true;
      }
      const FlagSpec* spec = find_flag(table, name);
      const bool algo = search && !spec && algo_flags().count(name) != 0;
      if (!spec && !algo)
        throw UsageError(command_ == "serve" ? fmt::format("serve: unknown flag --{}", name)
                                             : fmt::format("unknown flag --{}", name));
      if (spec ? spec->is_switch : is_algo_switch(name)) {
        if (has_value) throw UsageError(fmt::format("flag --{} takes no value", name));
        value = "1";
      } else if (!has_value) {
        if (i + 1 >= args.size()) throw UsageError(fmt::format("flag --{} needs a value", name));
        value = args[++i];
      }
      if (!kv_.emplace(name, value).second) throw UsageError(fmt::format("flag --{} given twice", name));
    } else {
      pos_.push_back(a);
    }
  }
}

std::optional<std::string> Args::get(std::string_view k) const {
  auto it = kv_.find(k);
  if (it == kv_.end()) return std::nullopt;
  return it->second;
}

void Args::check_algorithms(const std::vector<std::string>& algos) const {
  const std::string table = table_name(command_);
  for (const auto& [k, v] : kv_) {
    if (find_flag(table, k)) continue;
    const auto it = algo_flags().find(k);
    if (it == algo_flags().end()) continue;  // the constructor let it through: none
    const auto& ok = it->second;
    bool applies = ok.count("*") != 0;
    for (const auto& a : algos) applies = applies || ok.count(a) != 0;
    if (!applies)
      throw UsageError(fmt::format("flag --{} does not apply to --algo {}", k, fmt::join(algos, ",")));
  }
}

std::vector<std::string> command_flags(std::string_view command) {
  const std::string table = table_name(std::string(command));
  std::set<std::string> out;
  for (const auto& f : kFlags)
    if (has_word(f.commands, table)) out.emplace(f.name);
  if (has_word(kSearch, table))
    for (const auto& [name, algos] : algo_flags()) out.insert(name);
  return {out.begin(), out.end()};
}

double parse_double(std::string_view flag, const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    throw UsageError(fmt::format("--{}: '{}' is not a number", flag, text));
  return v;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::uint64_t get_seed(const Args& a) {
  if (auto v = a.get("seed")) return parse_int<std::uint64_t>("seed", *v, 0, UINT64_MAX);
  return 0;
}

void write_file(const std::string& path, const std::string& text, std::string_view flag) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw UsageError(fmt::format("--{}: cannot open '{}' for writing", flag, path));
  f << text;
  if (!f) throw IoError(fmt::format("--{}: writing '{}' failed", flag, path));
}

void apply_threads(const Args& a) {
#ifdef QSTAR_HAS_TORCH
  if (auto v = a.get("threads"))
    lm::set_threads(parse_int<int>("threads", *v, 1, 1024));
  else
    lm::apply_default_threads();
#else
  (void)a;
#endif
}

}  // namespace qstar::cli
