// The `qstar` command line: solve one puzzle, benchmark a data split, print the version.
// Every bad input (unknown flag, malformed puzzle, missing or malformed data file, invalid
// parameter) ends with one line on stderr naming the flag, file or field, and exit code 2.
#include "cli/cli.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/any.hpp"
#include "qstar/core/json.hpp"
#include "qstar/core/trace.hpp"
#include "qstar/search/search.hpp"
#include "qstar/tasks/game24.hpp"
#include "qstar/version.hpp"

#ifdef QSTAR_HAS_HTTP
#include "qstar/http/client.hpp"
#endif
#ifdef QSTAR_HAS_TORCH
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/model.hpp"
#include "qstar/torch/prm.hpp"
#include "qstar/hf/tokenizer.hpp"
#endif

namespace qstar::cli {
#ifdef QSTAR_HAS_TORCH
int cmd_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool tty);  // src/cli/train.cpp
#endif
#ifdef QSTAR_HAS_HTTP_SERVER
int cmd_serve(const std::vector<std::string>& args, std::ostream& out);  // src/cli/serve.cpp
#endif
namespace {

bool g_tty = false;

/// Bad command-line input: reported in one line, exit 2.
struct UsageError : InvalidArgument {
  using InvalidArgument::InvalidArgument;
};

constexpr const char* kUsage = R"(usage: qstar <command> [options]

commands:
  solve "a b c d"   solve one Game of 24 puzzle and print the steps, answer and stats
  bench             run searches over a data split and print a table
  lm logits|tokenize|generate   the language-model backend, e.g.
                    qstar lm logits --model DIR (--text "..." | --tokens 1,2,3) [--json]
                    qstar lm tokenize --model DIR --text "..."
                    qstar lm generate --model DIR --prompt "..." [--steps N] [sampling flags]
  serve             serve a model folder over HTTP (OpenAI-compatible subset; qstar serve --help)
  train STAGE       train the Game of 24 generator, PRM and ORM (qstar train --help; LibTorch)
  version           print the version
  help              print this help

common options (solve and bench):
  --algo NAME[,NAME...]   best-of-n | beam | dvts | best-first | mcts   (solve: one; default beam)
  --seed S                random seed (default 0)
  --generator KIND        lm:DIR (a Llama/Qwen2 folder) | programmatic | http:URL[,URL...]
                          default: lm:models/generator, the trained model (found through
                          QSTAR_MODELS_DIR, the install or the checkout), when qstar has
                          LibTorch; otherwise programmatic
  --device cpu|cuda|cuda:N --dtype float32|bfloat16|float16   (lm and prm backends)
  --temperature T --top-p P --top-k K --delimiter "\n" --kv-cache-mb M   (lm:DIR)
  --error-rate R          programmatic generator: chance of a wrong step (default 0.1)
  --verifier KIND         prm:PATH | oracle (exact) | none (best-of-n only) | http:URL[,URL...]
                          default: prm:models/prm, the trained PRM, found like the generator;
                          otherwise oracle
  http:URL plug-ins (vLLM, SGLang, qstar serve; docs/serving.md): --generator http:URL[,URL...]
                          --step-tag T --http-api pooling|classify --score-index I --model-name M
                          --http-timeout S --http-retries N --http-in-flight N --api-key-env VAR
  --orm KIND              best-of-n: an outcome verifier that ranks the samples (implies
                          --scoring orm): oracle | prm:PATH (a PRM folder read at the last step)
  --greedy                every generator request is greedy (temperature 0)
  --prm-kind KIND         token-logit | token-class | torchscript (default: inferred)
  --scoring KIND          best-of-n: auto | prm | orm | none
  --max-depth D --max-step-tokens T --aggregation min|prod|last|mean
  --voting naive|majority|weighted|topk --top-k K
  budgets per problem: --max-tokens --max-verifier-tokens --max-calls --max-nodes --max-seconds
  beam/dvts: --width M; beam: --lookahead K --dedup
  best-first: --expand-k K --pops B --lambda L --g-aggregation A --threshold T --node-expansions E
  mcts: --leaves B --expand-k K --selection puct|uct --c-puct C --c-puct-base B --c-uct C
        --widening --pw-c C --pw-alpha A --virtual-loss N --eval value|rollout|mixed
        --rollout-mix A --sampled-rollouts --backup mean|max --dirichlet-eps E
        --dirichlet-alpha A --normalize-q --final visits|value|vote --vote-by-score

solve:  qstar solve "4 5 6 10" [--n N] [--tree out.jsonl] [--json]
bench:  qstar bench --data FILE [--ranks 901-1000] [--n 1,4,16,64] [--json out.json]
        [--trace out.jsonl] [--chunk C]
The budget knob --n is: best-of-n samples N, beam beams N, dvts completions N,
best-first expansions, mcts simulations.
)";

// ---- argument parsing -------------------------------------------------------------------

const std::set<std::string, std::less<>> kBoolFlags = {
    "json", "dedup", "widening", "greedy", "sampled-rollouts", "normalize-q", "vote-by-score", "help"};

/// Flags and the algorithms they apply to ("*" = all).
const std::map<std::string, std::set<std::string>, std::less<>> kAlgoFlags = {
    {"max-depth", {"*"}}, {"max-step-tokens", {"*"}}, {"aggregation", {"*"}},
    {"voting", {"best-of-n", "beam", "dvts", "mcts"}}, {"top-k", {"best-of-n", "beam", "dvts"}},
    {"max-tokens", {"*"}}, {"max-verifier-tokens", {"*"}}, {"max-calls", {"*"}},
    {"max-nodes", {"*"}}, {"max-seconds", {"*"}},
    {"scoring", {"best-of-n"}}, {"orm", {"best-of-n"}},
    {"width", {"beam", "dvts"}}, {"lookahead", {"beam"}}, {"dedup", {"beam"}},
    {"expand-k", {"best-first", "mcts"}}, {"pops", {"best-first"}}, {"lambda", {"best-first"}},
    {"g-aggregation", {"best-first"}}, {"node-expansions", {"best-first"}}, {"threshold", {"best-first"}},
    {"leaves", {"mcts"}}, {"selection", {"mcts"}}, {"c-puct", {"mcts"}}, {"c-puct-base", {"mcts"}},
    {"c-uct", {"mcts"}}, {"widening", {"mcts"}}, {"pw-c", {"mcts"}}, {"pw-alpha", {"mcts"}},
    {"virtual-loss", {"mcts"}}, {"eval", {"mcts"}}, {"rollout-mix", {"mcts"}},
    {"sampled-rollouts", {"mcts"}}, {"backup", {"mcts"}}, {"dirichlet-eps", {"mcts"}},
    {"dirichlet-alpha", {"mcts"}}, {"normalize-q", {"mcts"}}, {"final", {"mcts"}},
    {"vote-by-score", {"mcts"}},
};

class Args {
 public:
  /// `json_is_bool`: solve's --json is a switch, bench's --json takes a file.
  Args(const std::vector<std::string>& args, std::size_t from, bool json_is_bool) {
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
        if (kBoolFlags.count(name) && (name != "json" || json_is_bool)) {
          if (has_value) throw UsageError(fmt::format("flag --{} takes no value", name));
          value = "1";
        } else if (!has_value) {
          if (i + 1 >= args.size()) throw UsageError(fmt::format("flag --{} needs a value", name));
          value = args[++i];
        }
        if (!kv_.emplace(name, value).second)
          throw UsageError(fmt::format("flag --{} given twice", name));
      } else {
        pos_.push_back(a);
      }
    }
  }
  const std::vector<std::string>& positional() const { return pos_; }
  bool has(std::string_view k) const { return kv_.count(std::string(k)) != 0; }
  std::optional<std::string> get(std::string_view k) const {
    auto it = kv_.find(std::string(k));
    if (it == kv_.end()) return std::nullopt;
    return it->second;
  }
  /// Every flag must be known to this command (and, for algorithm flags, apply to at
  /// least one of the algorithms chosen).
  void check_known(const std::set<std::string>& own, const std::vector<std::string>& algos) const {
    for (const auto& [k, v] : kv_) {
      if (own.count(k)) continue;
      auto it = kAlgoFlags.find(k);
      if (it == kAlgoFlags.end()) throw UsageError(fmt::format("unknown flag --{}", k));
      const auto& ok = it->second;
      bool applies = ok.count("*") != 0;
      for (const auto& a : algos) applies = applies || ok.count(a) != 0;
      if (!applies)
        throw UsageError(fmt::format("flag --{} does not apply to --algo {}", k, fmt::join(algos, ",")));
    }
  }

 private:
  std::vector<std::string> pos_;
  std::map<std::string, std::string, std::less<>> kv_;
};

template <class I>
I parse_int(std::string_view flag, const std::string& text, I lo, I hi) {
  I v{};
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (r.ec != std::errc() || r.ptr != end)
    throw UsageError(fmt::format("--{}: '{}' is not an integer", flag, text));
  if (v < lo || v > hi) throw UsageError(fmt::format("--{}: {} is out of range [{}, {}]", flag, text, lo, hi));
  return v;
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


template <class E, class F>
E parse_enum(const Args& a, std::string_view flag, E def, F from_string, std::string_view choices) {
  auto v = a.get(flag);
  if (!v) return def;
  auto e = from_string(*v);
  if (!e) throw UsageError(fmt::format("--{}: '{}' is not one of {}", flag, *v, choices));
  return *e;
}

std::string canonical_algo(const std::string& a) {
  if (a == "bon" || a == "best-of-n") return "best-of-n";
  if (a == "beam" || a == "dvts" || a == "best-first" || a == "mcts") return a;
  throw UsageError(fmt::format("--algo: '{}' is not one of best-of-n, beam, dvts, best-first, mcts", a));
}

/// The params of `algo` from the flags, with `n` as the algorithm's budget knob.
SearchParams make_params(const std::string& algo, int n, const Args& a) {
  SearchParams sp = default_params(algo);
  CommonParams& c = common(sp);
  if (auto v = a.get("max-depth")) c.max_depth = parse_int<int>("max-depth", *v, 1, 1000);
  if (auto v = a.get("max-step-tokens")) c.max_step_tokens = parse_int<int>("max-step-tokens", *v, 0, 1 << 24);
  c.aggregation = parse_enum(a, "aggregation", c.aggregation, aggregation_from_string, "min, prod, last, mean");
  if (c.aggregation == Aggregation::Custom) throw UsageError("--aggregation: 'custom' is only available from code");
  c.voting = parse_enum(a, "voting", c.voting, voting_from_string, "naive, majority, weighted, topk");
  if (auto v = a.get("top-k")) c.top_k = parse_int<int>("top-k", *v, 0, 1 << 20);
  constexpr std::int64_t big = std::int64_t{1} << 50;
  if (auto v = a.get("max-tokens")) c.budget.max_generated_tokens = parse_int<std::int64_t>("max-tokens", *v, 0, big);
  if (auto v = a.get("max-verifier-tokens"))
    c.budget.max_verifier_tokens = parse_int<std::int64_t>("max-verifier-tokens", *v, 0, big);
  if (auto v = a.get("max-calls")) c.budget.max_generator_calls = parse_int<std::int64_t>("max-calls", *v, 0, big);
  if (auto v = a.get("max-nodes")) c.budget.max_nodes = parse_int<std::int64_t>("max-nodes", *v, 0, big);
  if (auto v = a.get("max-seconds")) c.budget.max_wall_seconds = parse_double("max-seconds", *v);

  const auto width_of = [&](int def) {
    int w = def;
    if (auto v = a.get("width")) w = parse_int<int>("width", *v, 1, 1 << 20);
    return std::min(w, n);  // a budget below the width shrinks the width
  };
  if (auto* p = std::get_if<BestOfNParams>(&sp)) {
    p->n = n;
    if (auto v = a.get("scoring")) {
      if (*v == "auto") p->scoring = Scoring::Auto;
      else if (*v == "prm") p->scoring = Scoring::Prm;
      else if (*v == "orm") p->scoring = Scoring::Orm;
      else if (*v == "none") p->scoring = Scoring::None;
      else throw UsageError(fmt::format("--scoring: '{}' is not one of auto, prm, orm, none", *v));
    }
    if (a.has("orm")) {
      // --orm chooses the outcome verifier that ranks the samples: it means --scoring orm.
      if (a.has("scoring") && p->scoring != Scoring::Orm)
        throw UsageError(fmt::format("--orm ranks samples by outcome scores: it needs --scoring orm (or no --scoring), "
                                     "not --scoring {}", *a.get("scoring")));
      p->scoring = Scoring::Orm;
    }
  } else if (auto* p = std::get_if<BeamParams>(&sp)) {
    p->num_beams = n;
    p->width = width_of(p->width);
    if (auto v = a.get("lookahead")) p->lookahead = parse_int<int>("lookahead", *v, 0, 100);
    p->dedup = a.has("dedup");
  } else if (auto* p = std::get_if<DvtsParams>(&sp)) {
    p->n = n;
    p->width = width_of(p->width);
  } else if (auto* p = std::get_if<BestFirstParams>(&sp)) {
    p->max_expansions = n;
    if (auto v = a.get("expand-k")) p->expand_k = parse_int<int>("expand-k", *v, 1, 1 << 16);
    if (auto v = a.get("pops")) p->pops_per_iteration = parse_int<int>("pops", *v, 1, 1 << 16);
    if (auto v = a.get("lambda")) p->lambda = parse_double("lambda", *v);
    p->g_aggregation = parse_enum(a, "g-aggregation", p->g_aggregation, aggregation_from_string, "min, prod, last, mean");
    if (auto v = a.get("threshold")) p->stop_threshold = parse_double("threshold", *v);
    if (auto v = a.get("node-expansions")) p->max_node_expansions = parse_int<int>("node-expansions", *v, 1, 1 << 20);
  } else if (auto* p = std::get_if<MctsParams>(&sp)) {
    p->num_simulations = n;
    if (auto v = a.get("leaves")) p->leaves_per_iteration = parse_int<int>("leaves", *v, 1, 1 << 16);
    if (auto v = a.get("expand-k")) p->expand_k = parse_int<int>("expand-k", *v, 1, 1 << 16);
    if (auto v = a.get("selection")) {
      if (*v == "puct") p->selection = SelectionRule::Puct;
      else if (*v == "uct") p->selection = SelectionRule::Uct;
      else throw UsageError(fmt::format("--selection: '{}' is not one of puct, uct", *v));
    }
    if (auto v = a.get("c-puct")) p->c_puct_init = parse_double("c-puct", *v);
    if (auto v = a.get("c-puct-base")) p->c_puct_base = parse_double("c-puct-base", *v);
    if (auto v = a.get("c-uct")) p->c_uct = parse_double("c-uct", *v);
    p->progressive_widening = a.has("widening");
    if (auto v = a.get("pw-c")) p->pw_c = parse_double("pw-c", *v);
    if (auto v = a.get("pw-alpha")) p->pw_alpha = parse_double("pw-alpha", *v);
    if (auto v = a.get("virtual-loss")) p->virtual_loss = parse_int<int>("virtual-loss", *v, 0, 1 << 20);
    if (auto v = a.get("eval")) {
      if (*v == "value") p->eval = LeafEval::Value;
      else if (*v == "rollout") p->eval = LeafEval::Rollout;
      else if (*v == "mixed") p->eval = LeafEval::Mixed;
      else throw UsageError(fmt::format("--eval: '{}' is not one of value, rollout, mixed", *v));
    }
    if (auto v = a.get("rollout-mix")) p->rollout_mix = parse_double("rollout-mix", *v);
    p->rollout_greedy = !a.has("sampled-rollouts");
    if (auto v = a.get("backup")) {
      if (*v == "mean") p->backup = BackupRule::Mean;
      else if (*v == "max") p->backup = BackupRule::Max;
      else throw UsageError(fmt::format("--backup: '{}' is not one of mean, max", *v));
    }
    if (auto v = a.get("dirichlet-eps")) p->dirichlet_epsilon = parse_double("dirichlet-eps", *v);
    if (auto v = a.get("dirichlet-alpha")) p->dirichlet_alpha = parse_double("dirichlet-alpha", *v);
    p->normalize_q = a.has("normalize-q");
    if (auto v = a.get("final")) {
      if (*v == "visits") p->final_choice = FinalChoice::Visits;
      else if (*v == "value") p->final_choice = FinalChoice::Value;
      else if (*v == "vote") p->final_choice = FinalChoice::Vote;
      else throw UsageError(fmt::format("--final: '{}' is not one of visits, value, vote", *v));
    }
    p->vote_by_visits = !a.has("vote-by-score");
  }
  // Validate now so that bad values are reported as bad input, naming the flag's field.
  try {
    std::visit([](const auto& p) { p.validate(); }, sp);
  } catch (const InvalidArgument& e) {
    throw UsageError(fmt::format("invalid parameter for {}: {}", algo, e.what()));
  }
  return sp;
}

// ---- plug-ins ----------------------------------------------------------------------------

/// The verifier chosen on the command line: a PRM and/or an ORM.
/// p.validate(), an InvalidArgument reported as a usage error prefixed by `what`.
template <class P>
void validate_usage(const P& p, std::string_view what) {
  try {
    p.validate();
  } catch (const InvalidArgument& e) {
    throw UsageError(fmt::format("{}: {}", what, e.what()));
  }
}

struct CliVerifier {
  std::optional<AnyStepVerifier> step;
  std::optional<AnyOutcomeVerifier> outcome;
  std::string label;
  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> b) {
    if (!step) throw InvalidArgument(fmt::format("--verifier {} has no step scores (PRM)", label));
    return step->score_steps(b);
  }
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> b) {
    if (!outcome) throw InvalidArgument(fmt::format("--verifier {} has no outcome scores (ORM)", label));
    return outcome->score_outcomes(b);
  }
  std::string name() const { return label; }
};

/// A CliVerifier whose step and outcome scores both come from `v` (a PRM also acts as ORM).
template <class V>
CliVerifier step_and_outcome(const V& v, std::string label) {
  CliVerifier cv;
  cv.step.emplace(v);
  cv.outcome.emplace(v);
  cv.label = std::move(label);
  return cv;
}

struct Plugins {
  std::optional<AnyGenerator> gen;
  std::optional<CliVerifier> ver;  // nullopt: no verifier
  std::string gen_label, ver_label;
};

/// --greedy: forwards every request to the wrapped generator with greedy = true.
struct GreedyGenerator {
  AnyGenerator inner;
  std::vector<ExpandRequest> buf;
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch) {
    buf.assign(batch.begin(), batch.end());
    for (auto& r : buf) r.greedy = true;
    return inner.expand(buf);
  }
  std::string name() const { return inner.name(); }
  std::size_t max_batch_size() const { return inner.max_batch_size(); }
};

/// The flags that choose and configure plug-ins, added to a command's own flags.
std::set<std::string> with_plugin_flags(std::set<std::string> own) {
  for (const char* f : {"generator", "error-rate", "verifier", "device", "dtype", "prm-kind", "temperature", "top-p",
                        "top-k", "delimiter", "kv-cache-mb", "greedy", "step-tag", "http-api", "score-index",
                        "model-name", "http-timeout", "http-retries", "http-in-flight", "api-key-env"})
    own.insert(f);
  return own;
}

#ifdef QSTAR_HAS_TORCH
lm::LMGeneratorParams lm_generator_params(const Args& a) {
  lm::LMGeneratorParams p;
  if (auto v = a.get("device")) p.device = *v;
  if (auto v = a.get("dtype")) p.dtype = *v;
  if (auto v = a.get("temperature")) p.temperature = parse_double("temperature", *v);
  if (auto v = a.get("top-p")) p.top_p = parse_double("top-p", *v);
  if (auto v = a.get("top-k")) p.top_k = parse_int<int>("top-k", *v, 0, 1 << 24);
  if (auto v = a.get("delimiter")) p.step_delimiter = unescape(*v);
  if (auto v = a.get("kv-cache-mb")) p.kv_cache_bytes = parse_int<std::int64_t>("kv-cache-mb", *v, 0, 1 << 30) << 20;
  validate_usage(p, "generator parameters");
  return p;
}

/// The PRM settings --verifier prm:PATH and --orm prm:PATH share: --device, --dtype and
/// --kv-cache-mb (not validated: the caller adds its own and validates).
lm::PrmParams prm_params(const Args& a) {
  lm::PrmParams pp;
  if (auto x = a.get("device")) pp.device = *x;
  if (auto x = a.get("dtype")) pp.dtype = *x;
  if (auto x = a.get("kv-cache-mb")) pp.kv_cache_bytes = parse_int<std::int64_t>("kv-cache-mb", *x, 0, 1 << 30) << 20;
  return pp;
}
#endif

#ifdef QSTAR_HAS_HTTP
/// The transport settings of an http:URL[,URL...] plug-in.
http::ClientParams http_client_params(const Args& a, const std::string& urls, std::string_view flag) {
  http::ClientParams c;
  try {
    c.base_urls = http::split_urls(urls);
  } catch (const InvalidArgument& e) {
    throw UsageError(fmt::format("--{}: {}", flag, e.what()));
  }
  if (auto v = a.get("http-timeout")) c.request_timeout_s = parse_double("http-timeout", *v);
  if (auto v = a.get("http-retries")) c.max_retries = parse_int<int>("http-retries", *v, 0, 100);
  if (auto v = a.get("http-in-flight")) c.max_in_flight = parse_int<int>("http-in-flight", *v, 1, 4096);
  if (auto v = a.get("api-key-env")) c.api_key_env = *v;
  if (auto v = a.get("model-name")) c.model = *v;
  validate_usage(c, fmt::format("--{}", flag));
  return c;
}
#endif

// The defaults when no --generator / --verifier is given: the trained Game of 24 models
// (issue #4, models/generator and models/prm) in a LibTorch-enabled qstar that finds them,
// else the programmatic generator and the exact oracle. Where the models are looked for, in
// order: $QSTAR_MODELS_DIR (an error if it lacks them), <dir of the qstar executable>/../
// share/qstar/models (an installed qstar), <dir of the executable>/../models (a build
// folder inside the checkout), and the checkout qstar was built from.
#ifdef QSTAR_HAS_TORCH
bool has_models(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / "generator" / "config.json", ec) &&
         std::filesystem::is_regular_file(dir / "prm" / "config.json", ec);
}

std::optional<std::string> find_models_dir() {
  if (const char* env = std::getenv("QSTAR_MODELS_DIR"); env && *env) {
    if (!has_models(env))
      throw UsageError(fmt::format("QSTAR_MODELS_DIR={}: no generator/config.json and prm/config.json there", env));
    return std::string(env);
  }
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "share" / "qstar" / "models");
    candidates.push_back(exe.parent_path().parent_path() / "models");
  }
#ifdef QSTAR_SOURCE_MODELS
  candidates.emplace_back(QSTAR_SOURCE_MODELS);
#endif
  for (const auto& c : candidates)
    if (has_models(c)) return c.lexically_normal().string();
  return std::nullopt;
}
#endif

struct Defaults {
  std::string generator, verifier;
};

/// The default plug-ins; `note` gets one line when a LibTorch-enabled qstar falls back.
Defaults default_plugins(std::ostream* note) {
#ifdef QSTAR_HAS_TORCH
  if (auto dir = find_models_dir()) return {"lm:" + *dir + "/generator", "prm:" + *dir + "/prm"};
  if (note)
    *note << "qstar: note: the trained models were not found (set QSTAR_MODELS_DIR); using "
             "--generator programmatic --verifier oracle\n";
#else
  (void)note;
#endif
  return {"programmatic", "oracle"};
}

Plugins make_plugins(const Args& a, std::ostream* note) {
  Plugins p;
  const Defaults d = a.has("generator") && a.has("verifier") ? Defaults{} : default_plugins(note);
  const std::string g = a.has("generator") ? *a.get("generator") : d.generator;
  for (const char* f : {"temperature", "top-p", "top-k", "delimiter"})
    if (a.has(f) && g.rfind("lm:", 0) != 0 && g.rfind("http:", 0) != 0)
      throw UsageError(fmt::format("--{} applies only to --generator lm:DIR or http:URL", f));
  const bool http_any = g.rfind("http:", 0) == 0 || a.get("verifier").value_or("").rfind("http:", 0) == 0;
  for (const char* f : {"http-timeout", "http-retries", "http-in-flight", "api-key-env", "model-name"})
    if (a.has(f) && !http_any) throw UsageError(fmt::format("--{} applies only to http:URL plug-ins", f));
  for (const char* f : {"step-tag", "http-api", "score-index"})
    if (a.has(f) && a.get("verifier").value_or("").rfind("http:", 0) != 0)
      throw UsageError(fmt::format("--{} applies only to --verifier http:URL", f));
  const std::string v = a.has("verifier") ? *a.get("verifier") : d.verifier;
  if (a.has("prm-kind") && v.rfind("prm:", 0) != 0)
    throw UsageError("--prm-kind applies only to --verifier prm:PATH");
  if (g.rfind("lm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
    if (a.has("error-rate")) throw UsageError("--error-rate applies only to --generator programmatic");
    const std::string dir = g.substr(3);
    p.gen.emplace(lm::LMGenerator::load(dir, lm_generator_params(a)));
    p.gen_label = g;
#else
    throw UsageError("--generator lm:DIR needs a qstar built with LibTorch (QSTAR_WITH_TORCH)");
#endif
  } else if (g.rfind("http:", 0) == 0) {
#ifdef QSTAR_HAS_HTTP
    if (a.has("error-rate")) throw UsageError("--error-rate applies only to --generator programmatic");
    http::HttpGeneratorParams hp;
    hp.client = http_client_params(a, g.substr(5), "generator");
    if (auto v = a.get("temperature")) hp.temperature = parse_double("temperature", *v);
    if (auto v = a.get("top-p")) hp.top_p = parse_double("top-p", *v);
    if (auto v = a.get("top-k")) hp.top_k = parse_int<int>("top-k", *v, 0, 1 << 24);
    if (auto v = a.get("delimiter")) hp.step_delimiter = unescape(*v);
    hp.answer_marker = "Answer:";  // the Game of 24's answer steps (no longer the client default)
    validate_usage(hp, "generator parameters");
    p.gen.emplace(http::HttpGenerator(hp));
    p.gen_label = g;
#else
    throw UsageError("--generator http:URL needs a qstar built with libcurl (QSTAR_WITH_HTTP)");
#endif
  } else if (g == "programmatic") {
    game24::GeneratorParams gp;
    gp.error_rate = 0.1;
    if (auto v = a.get("error-rate")) gp.error_rate = parse_double("error-rate", *v);
    validate_usage(gp, "--error-rate");
    p.gen.emplace(game24::ProgrammaticGenerator(gp));
    p.gen_label = fmt::format("programmatic(err={})", gp.error_rate);
  } else {
    throw UsageError(fmt::format("--generator: '{}' is not one of programmatic, lm:DIR, http:URL", g));
  }
  if (v.rfind("prm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
    lm::PrmParams pp = prm_params(a);
    if (auto x = a.get("prm-kind")) pp.kind = *x;
    validate_usage(pp, "verifier parameters");
    p.ver = step_and_outcome(lm::PrmVerifier::load(v.substr(4), pp), v);
#else
    throw UsageError("--verifier prm:PATH needs a qstar built with LibTorch (QSTAR_WITH_TORCH)");
#endif
  } else if (v.rfind("http:", 0) == 0) {
#ifdef QSTAR_HAS_HTTP
    http::HttpVerifierParams hv;
    hv.client = http_client_params(a, v.substr(5), "verifier");
    if (auto x = a.get("step-tag")) hv.step_tag = unescape(*x);
    if (auto x = a.get("http-api")) hv.api = *x;
    if (auto x = a.get("score-index")) hv.score_index = parse_int<int>("score-index", *x, 0, 1 << 20);
    validate_usage(hv, "verifier parameters");
    p.ver = step_and_outcome(http::HttpVerifier(hv), v);
#else
    throw UsageError("--verifier http:URL needs a qstar built with libcurl (QSTAR_WITH_HTTP)");
#endif
  } else if (v == "oracle") {
    CliVerifier cv;
    cv.step.emplace(game24::OracleStepVerifier{});
    cv.outcome.emplace(game24::OracleOutcomeVerifier{});
    cv.label = "oracle";
    p.ver = std::move(cv);
  } else if (v != "none") {
    throw UsageError(fmt::format("--verifier: '{}' is not one of oracle, none, prm:PATH, http:URL", v));
  }
  p.ver_label = v;
  if (auto o = a.get("orm")) {
    // The outcome verifier: replaces the outcome scores of --verifier (or is the only one).
    if (!p.ver) p.ver.emplace();
    if (*o == "oracle") {
      p.ver->outcome.emplace(game24::OracleOutcomeVerifier{});
    } else if (o->rfind("prm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
      const lm::PrmParams pp = prm_params(a);  // kind inferred from the folder; read at the last step (Aggregation::Last)
      validate_usage(pp, "--orm parameters");
      p.ver->outcome.emplace(lm::PrmVerifier::load(o->substr(4), pp));
#else
      throw UsageError("--orm prm:PATH needs a qstar built with LibTorch (QSTAR_WITH_TORCH)");
#endif
    } else {
      throw UsageError(fmt::format("--orm: '{}' is not one of oracle, prm:PATH", *o));
    }
    p.ver_label = v == "none" ? fmt::format("orm={}", *o) : fmt::format("{},orm={}", v, *o);
    p.ver->label = p.ver_label;
  }
  if (a.has("greedy")) {
    p.gen.emplace(GreedyGenerator{std::move(*p.gen), {}});
    p.gen_label += ",greedy";
  }
  return p;
}

std::vector<SearchResult> run_search(std::span<const Problem> problems, Plugins& pl, const SearchParams& sp,
                                     std::uint64_t seed) {
  const game24::Game24Task task;
  if (!std::holds_alternative<BestOfNParams>(sp) && !(pl.ver && pl.ver->step))
    throw UsageError(fmt::format("--verifier none: algo '{}' needs a verifier (a PRM); only best-of-n runs without one",
                                 algorithm_name(sp)));
  if (pl.ver) {
    auto* bon = std::get_if<BestOfNParams>(&sp);
    if (bon && bon->scoring == Scoring::None) {
      NoVerifier none;
      return search(problems, task, *pl.gen, none, sp, seed);
    }
    if (bon && bon->scoring == Scoring::Auto && !pl.ver->step) {
      BestOfNParams p = *bon;
      p.scoring = Scoring::Orm;
      return best_of_n(problems, task, *pl.gen, *pl.ver, p, seed);
    }
    return search(problems, task, *pl.gen, *pl.ver, sp, seed);
  }
  NoVerifier none;
  return search(problems, task, *pl.gen, none, sp, seed);
}

json::Value stats_json(const Stats& s) {
  json::Value o = json::Value::object();
  o.set("generated_tokens", s.generated_tokens);
  o.set("verifier_tokens", s.verifier_tokens);
  o.set("generator_calls", s.generator_calls);
  o.set("verifier_calls", s.verifier_calls);
  o.set("generator_requests", s.generator_requests);
  o.set("generated_steps", s.generated_steps);
  o.set("verified_steps", s.verified_steps);
  o.set("empty_proposals", s.empty_proposals);
  o.set("pruned_nodes", s.pruned_nodes);
  o.set("nodes", s.nodes);
  o.set("iterations", s.iterations);
  o.set("generator_seconds", s.generator_seconds);
  o.set("verifier_seconds", s.verifier_seconds);
  o.set("overhead_seconds", s.overhead_seconds);
  o.set("wall_seconds", s.wall_seconds());
  auto hist = [](const BatchHistogram& h) {
    json::Value m = json::Value::object();
    for (std::size_t b = 0; b < BatchHistogram::kBuckets; ++b)
      if (h.counts[b]) m.set(fmt::format("<={}", BatchHistogram::bucket_limit(b)), h.counts[b]);
    return m;
  };
  o.set("generator_batches", hist(s.generator_batches));
  o.set("verifier_batches", hist(s.verifier_batches));
  return o;
}

/// One trace line with per-node correctness for every node that carries an answer.
std::string trace_line(const SearchResult& r) {
  const game24::Game24Task task;
  const Tree& t = *r.tree;
  std::vector<std::optional<bool>> node_correct(t.size());
  for (NodeId id = 0; id < static_cast<NodeId>(t.size()); ++id)
    if (auto ans = t.answer(id)) node_correct[static_cast<std::size_t>(id)] = task.check(r.problem, *ans);
  return write_trace_line(r.problem, t, r.answer, r.correct, to_string(r.stop), node_correct);
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

// ---- solve -----------------------------------------------------------------------------

int cmd_solve(const Args& a, std::ostream& out, std::ostream& err) {
  const std::string algo = canonical_algo(a.get("algo").value_or("beam"));
  a.check_known(with_plugin_flags({"algo", "seed", "n", "tree", "json"}), {algo});
  if (a.positional().size() != 1)
    throw UsageError(a.positional().empty() ? "solve: give the puzzle, e.g. qstar solve \"4 5 6 10\""
                                            : "solve: give exactly one puzzle (quote it: \"4 5 6 10\")");
  const std::string puzzle = a.positional()[0];
  game24::parse_puzzle(puzzle);  // ParseError names the puzzle
  int n = 16;
  if (auto v = a.get("n")) n = parse_int<int>("n", *v, 1, 1 << 20);
  const SearchParams sp0 = make_params(algo, n, a);
  SearchParams sp = sp0;
  common(sp).keep_tree = a.has("tree");
  Plugins pl = make_plugins(a, &err);
  const std::uint64_t seed = get_seed(a);
  std::vector<Problem> problems{{"cli", puzzle, std::nullopt}};
  auto results = run_search(problems, pl, sp, seed);
  const SearchResult& r = results.at(0);
  if (auto path = a.get("tree"))
    write_file(*path, trace_line(r) + "\n", "tree");
  if (a.has("json")) {
    json::Value o = json::Value::object();
    o.set("problem", puzzle);
    o.set("answer", r.answer ? json::Value(*r.answer) : json::Value());
    o.set("correct", r.correct ? json::Value(*r.correct) : json::Value());
    json::Value steps = json::Value::array();
    for (const auto& s : r.steps()) steps.push_back(s);
    o.set("steps", std::move(steps));
    o.set("stats", stats_json(r.stats));
    o.set("algo", algo);
    o.set("seed", static_cast<std::int64_t>(seed));
    o.set("stop_reason", to_string(r.stop));
    o.set("score", r.chosen >= 0 ? json::Value(r.candidates[static_cast<std::size_t>(r.chosen)].score) : json::Value());
    out << json::dump(o) << "\n";
    return 0;
  }
  out << fmt::format("problem:  {}\n", puzzle);
  out << fmt::format("search:   {} (seed {}), generator {}, verifier {}\n", algo, seed, pl.gen_label, pl.ver_label);
  if (r.steps().empty()) {
    out << "steps:    (none: no complete trajectory was found)\n";
  } else {
    out << "steps:\n";
    for (std::size_t i = 0; i < r.steps().size(); ++i) out << fmt::format("  {}. {}\n", i + 1, r.steps()[i]);
  }
  out << fmt::format("answer:   {}\n", r.answer ? *r.answer : "(none)");
  out << fmt::format("correct:  {}\n", r.correct ? (*r.correct ? "yes" : "no") : "unknown");
  out << fmt::format("stopped:  {}\n", to_string(r.stop));
  const Stats& s = r.stats;
  out << fmt::format(
      "stats:    {} generated tokens, {} verifier tokens, {} generator calls, {} verifier calls, "
      "{} nodes, {} candidates\n",
      s.generated_tokens, s.verifier_tokens, s.generator_calls, s.verifier_calls, s.nodes, r.candidates.size());
  out << fmt::format("time:     {:.3f} ms (generator {:.3f}, verifier {:.3f}, search {:.3f})\n",
                     1e3 * s.wall_seconds(), 1e3 * s.generator_seconds, 1e3 * s.verifier_seconds,
                     1e3 * s.overhead_seconds);
  return 0;
}

// ---- bench -----------------------------------------------------------------------------

class Progress {
 public:
  Progress(std::ostream& err, std::size_t total, std::string label)
      : err_(err), total_(total), label_(std::move(label)), t0_(std::chrono::steady_clock::now()) {}
  void update(std::size_t done) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double eta = done ? el / static_cast<double>(done) * static_cast<double>(total_ - done) : 0.0;
    if (g_tty) {
      constexpr int W = 30;
      const int fill = total_ ? static_cast<int>(W * done / total_) : W;
      err_ << fmt::format("\r{:<28} [{}{}] {:>4}/{} {:6.1f}s ETA {:6.1f}s", label_, std::string(fill, '#'),
                          std::string(W - fill, '.'), done, total_, el, eta)
           << std::flush;
      if (done == total_) err_ << "\n";
    } else {
      // Plain lines: about every 25% and at the end.
      const std::size_t step = std::max<std::size_t>(1, total_ / 4);
      if (done == total_ || done / step != last_ / step)
        err_ << fmt::format("[bench] {}: {}/{} problems, {:.1f}s elapsed, ETA {:.1f}s\n", label_, done, total_, el,
                            eta);
    }
    last_ = done;
  }

 private:
  std::ostream& err_;
  std::size_t total_;
  std::string label_;
  std::chrono::steady_clock::time_point t0_;
  std::size_t last_ = 0;
};

struct Row {
  std::string method, algo;
  int n = 0;
  int solved = 0, total = 0;
  double gen_tokens = 0, ver_tokens = 0, gen_calls = 0, ver_calls = 0, wall = 0, nodes = 0;
  double gen_steps = 0, ver_steps = 0;
  double elapsed = 0;  // wall clock of the whole row (all chunks), seconds
};

std::string method_label(const std::string& algo, const SearchParams& sp, const Plugins& pl) {
  std::string extra;
  if (auto* p = std::get_if<BestOfNParams>(&sp)) {
    const bool none = !pl.ver || p->scoring == Scoring::None;
    extra = none ? "majority" : fmt::format("{}", to_string(p->voting));
    if (!none && p->scoring == Scoring::Orm) extra += ",orm";
  } else if (auto* p = std::get_if<BeamParams>(&sp)) {
    extra = fmt::format("M={}", p->width);
  } else if (auto* p = std::get_if<DvtsParams>(&sp)) {
    extra = fmt::format("M={}", p->width);
  } else if (auto* p = std::get_if<BestFirstParams>(&sp)) {
    extra = fmt::format("K={},B={}", p->expand_k, p->pops_per_iteration);
  } else if (auto* p = std::get_if<MctsParams>(&sp)) {
    extra = fmt::format("{},B={}", p->selection == SelectionRule::Puct ? "puct" : "uct", p->leaves_per_iteration);
  }
  return fmt::format("{}({})+{}", algo, extra, pl.ver ? pl.ver_label : "none");
}

int cmd_bench(const Args& a, std::ostream& out, std::ostream& err) {
  std::vector<std::string> algos;
  for (const auto& s : split_list(a.get("algo").value_or("beam"))) algos.push_back(canonical_algo(s));
  a.check_known(with_plugin_flags({"algo", "seed", "n", "data", "ranks", "json", "trace", "chunk"}), algos);
  if (!a.positional().empty()) throw UsageError(fmt::format("bench: unexpected argument '{}'", a.positional()[0]));
  auto data = a.get("data");
  if (!data) throw UsageError("bench: --data FILE is required (e.g. --data data/game24/24.csv)");
  std::optional<std::pair<int, int>> ranks;
  if (auto r = a.get("ranks")) ranks = game24::parse_ranks(*r);
  std::vector<int> ns;
  for (const auto& s : split_list(a.get("n").value_or("1,4,16,64"))) ns.push_back(parse_int<int>("n", s, 1, 1 << 20));
  std::size_t chunk = 25;
  if (auto v = a.get("chunk")) chunk = parse_int<std::size_t>("chunk", *v, 1, 1 << 20);
  const std::uint64_t seed = get_seed(a);
  // Build and validate every configuration before running anything.
  std::vector<std::pair<std::string, SearchParams>> configs;
  for (const auto& algo : algos)
    for (int n : ns) configs.emplace_back(algo, make_params(algo, n, a));
  Plugins pl = make_plugins(a, &err);
  for (const auto& [algo, sp] : configs)
    if (!(pl.ver && pl.ver->step) && !std::holds_alternative<BestOfNParams>(sp))
      throw UsageError(
          fmt::format("--verifier none: algo '{}' needs a verifier (a PRM); only best-of-n runs without one", algo));
  const std::vector<Problem> problems = game24::load_csv(*data, ranks);
  if (problems.empty()) throw UsageError(fmt::format("--data {}: no problems in the selected ranks", *data));
  const auto trace_path = a.get("trace");
  std::ofstream trace;
  if (trace_path) {
    trace.open(*trace_path, std::ios::binary);
    if (!trace) throw UsageError(fmt::format("--trace: cannot open '{}' for writing", *trace_path));
  }

  std::vector<Row> rows;
  for (auto [algo, sp] : configs) {
    common(sp).keep_tree = trace_path.has_value();
    Row row;
    row.algo = algo;
    row.method = method_label(algo, sp, pl);
    row.n = std::visit(
        [](const auto& p) -> int {
          using P = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<P, BestOfNParams> || std::is_same_v<P, DvtsParams>) return p.n;
          else if constexpr (std::is_same_v<P, BeamParams>) return p.num_beams;
          else if constexpr (std::is_same_v<P, BestFirstParams>) return p.max_expansions;
          else return p.num_simulations;
        },
        sp);
    row.total = static_cast<int>(problems.size());
    Progress prog(err, problems.size(), fmt::format("{} n={}", row.method, row.n));
    const auto row_t0 = std::chrono::steady_clock::now();
    for (std::size_t lo = 0; lo < problems.size(); lo += chunk) {
      const std::size_t hi = std::min(problems.size(), lo + chunk);
      auto rs = run_search(std::span<const Problem>(problems).subspan(lo, hi - lo), pl, sp, seed);
      for (const auto& r : rs) {
        row.solved += r.correct.value_or(false) ? 1 : 0;
        row.gen_tokens += static_cast<double>(r.stats.generated_tokens);
        row.ver_tokens += static_cast<double>(r.stats.verifier_tokens);
        row.gen_calls += static_cast<double>(r.stats.generator_calls);
        row.ver_calls += static_cast<double>(r.stats.verifier_calls);
        row.nodes += static_cast<double>(r.stats.nodes);
        row.gen_steps += static_cast<double>(r.stats.generated_steps);
        row.ver_steps += static_cast<double>(r.stats.verified_steps);
        row.wall += r.stats.wall_seconds();
        if (trace_path) {
          trace << trace_line(r) << "\n";
        }
      }
      prog.update(hi);
    }
    row.elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - row_t0).count();
    const double P = static_cast<double>(row.total);
    row.gen_steps /= P;
    row.ver_steps /= P;
    row.gen_tokens /= P;
    row.ver_tokens /= P;
    row.gen_calls /= P;
    row.ver_calls /= P;
    row.nodes /= P;
    row.wall /= P;
    rows.push_back(row);
  }

  out << fmt::format("qstar bench: {} problems from {}{}, generator {}, seed {}\n", problems.size(), *data,
                     ranks ? fmt::format(" (ranks {}-{})", ranks->first, ranks->second) : "", pl.gen_label, seed);
  out << fmt::format("| {:<34} | {:>5} | {:>7} | {:>7} | {:>10} | {:>10} | {:>9} | {:>10} |\n", "method", "n",
                     "solved", "rate", "gen tok/pb", "ver tok/pb", "ver calls", "wall s/pb");
  out << fmt::format("|{:-<36}|{:->7}|{:->9}|{:->9}|{:->12}|{:->12}|{:->11}|{:->12}|\n", "", ":", ":", ":", ":", ":", ":", ":");
  for (const auto& r : rows)
    out << fmt::format("| {:<34} | {:>5} | {:>7} | {:>6.1f}% | {:>10.1f} | {:>10.1f} | {:>9.1f} | {:>10.6f} |\n",
                       r.method, r.n, fmt::format("{}/{}", r.solved, r.total), 100.0 * r.solved / r.total,
                       r.gen_tokens, r.ver_tokens, r.ver_calls, r.wall);

  if (auto path = a.get("json")) {
    json::Value o = json::Value::object();
    json::Value res = json::Value::array();
    for (const auto& r : rows) {
      json::Value x = json::Value::object();
      x.set("method", r.method);
      x.set("algo", r.algo);
      x.set("n", r.n);
      x.set("solved", r.solved);
      x.set("total", r.total);
      x.set("solve_rate", static_cast<double>(r.solved) / r.total);
      x.set("generated_tokens_per_problem", r.gen_tokens);
      x.set("verifier_tokens_per_problem", r.ver_tokens);
      x.set("wall_s_per_problem", r.wall);
      x.set("generator_calls_per_problem", r.gen_calls);
      x.set("verifier_calls_per_problem", r.ver_calls);
      x.set("nodes_per_problem", r.nodes);
      x.set("generated_steps_per_problem", r.gen_steps);
      x.set("verified_steps_per_problem", r.ver_steps);
      x.set("elapsed_s", r.elapsed);
      res.push_back(std::move(x));
    }
    o.set("results", std::move(res));
    json::Value cfg = json::Value::object();
    cfg.set("data", *data);
    cfg.set("ranks", ranks ? json::Value(fmt::format("{}-{}", ranks->first, ranks->second)) : json::Value());
    cfg.set("problems", static_cast<std::int64_t>(problems.size()));
    cfg.set("generator", pl.gen_label);
    cfg.set("verifier", pl.ver_label);
    cfg.set("seed", static_cast<std::int64_t>(seed));
    json::Value al = json::Value::array();
    for (const auto& s : algos) al.push_back(s);
    cfg.set("algos", std::move(al));
    json::Value nv = json::Value::array();
    for (int n : ns) nv.push_back(n);
    cfg.set("n", std::move(nv));
    cfg.set("qstar_version", QSTAR_VERSION_STRING);
    o.set("config", std::move(cfg));
    write_file(*path, json::dump(o) + "\n", "json");
  }
  return 0;
}


// ---- lm: the language-model backend's tools --------------------------------------------

#ifdef QSTAR_HAS_TORCH
std::vector<std::int32_t> lm_input(const Args& a, const std::string& model) {
  const bool text = a.has("text"), toks = a.has("tokens");
  if (text == toks) throw UsageError("lm: give exactly one of --text \"...\" or --tokens 1,2,3");
  if (toks) {
    std::vector<std::int32_t> ids;
    for (const auto& s : split_list(*a.get("tokens"))) ids.push_back(parse_int<std::int32_t>("tokens", s, 0, INT32_MAX));
    return ids;
  }
  const auto tok = hf::Tokenizer::from_file(model + "/tokenizer.json");
  return tok.encode(*a.get("text"));
}

int cmd_lm(const std::vector<std::string>& args, std::ostream& out) {
  if (args.size() < 2) throw UsageError("lm: give a subcommand: logits, tokenize (e.g. qstar lm logits --model DIR --text \"hi\")");
  const std::string sub = args[1];
  Args a(args, 2, true);
  auto model = a.get("model");
  if (sub == "logits") {
    a.check_known({"model", "text", "tokens", "json", "device", "dtype"}, {});
    if (!model) throw UsageError("lm logits: --model DIR is required");
    const auto ids = lm_input(a, *model);
    if (ids.empty()) throw UsageError("lm logits: the input has no tokens");
    const auto lmodel = lm::LanguageModel::load(*model, a.get("device").value_or("cpu"), a.get("dtype").value_or("float32"));
    for (auto id : ids)
      if (id >= lmodel.config().vocab_size)
        throw UsageError(fmt::format("--tokens: id {} is outside the vocabulary (size {})", id, lmodel.config().vocab_size));
    const auto rows = lmodel.logits(ids);
    if (a.has("json")) {
      json::Value o = json::Value::object();
      json::Value t = json::Value::array();
      for (auto id : ids) t.push_back(id);
      o.set("tokens", std::move(t));
      json::Value l = json::Value::array();
      for (const auto& row : rows) {
        json::Value r = json::Value::array();
        for (float x : row) r.push_back(static_cast<double>(x));
        l.push_back(std::move(r));
      }
      o.set("logits", std::move(l));
      out << json::dump(o) << "\n";
    } else {
      for (std::size_t i = 0; i < rows.size(); ++i) {
        out << fmt::format("position {} token {}:", i, ids[i]);
        for (float x : rows[i]) out << ' ' << fmt::format("{:.6g}", x);
        out << "\n";
      }
    }
    return 0;
  }
  if (sub == "tokenize") {
    a.check_known({"model", "text", "json"}, {});
    if (!model) throw UsageError("lm tokenize: --model DIR is required");
    auto text = a.get("text");
    if (!text) throw UsageError("lm tokenize: --text \"...\" is required");
    const auto tok = hf::Tokenizer::from_file(*model + "/tokenizer.json");
    const auto ids = tok.encode(*text);
    if (a.has("json")) {
      json::Value o = json::Value::object();
      json::Value t = json::Value::array(), p = json::Value::array();
      for (auto id : ids) {
        t.push_back(id);
        p.push_back(tok.id_to_token(id));
      }
      o.set("tokens", std::move(t));
      o.set("pieces", std::move(p));
      o.set("decoded", tok.decode(ids));
      out << json::dump(o) << "\n";
    } else {
      for (auto id : ids) out << fmt::format("{}\t{}\n", id, json::dump(json::Value(tok.id_to_token(id))));
    }
    return 0;
  }
  if (sub == "generate") {
    a.check_known({"model", "prompt", "steps", "seed", "json", "device", "dtype", "temperature", "top-p", "top-k",
                   "delimiter", "max-step-tokens", "kv-cache-mb", "greedy"},
                  {});
    if (!model) throw UsageError("lm generate: --model DIR is required");
    auto prompt = a.get("prompt");
    if (!prompt) throw UsageError("lm generate: --prompt \"...\" is required");
    int steps = 1;
    if (auto v = a.get("steps")) steps = parse_int<int>("steps", *v, 1, 1000);
    auto params = lm_generator_params(a);
    if (auto v = a.get("max-step-tokens")) params.max_step_tokens = parse_int<int>("max-step-tokens", *v, 1, 1 << 20);
    auto gen = lm::LMGenerator::load(*model, params);
    const std::uint64_t seed = get_seed(a);
    Problem problem{"lm", *prompt, std::nullopt};
    Tree tree;
    NodeId cur = Tree::root();
    json::Value out_steps = json::Value::array();
    for (int i = 0; i < steps && !tree[cur].terminal; ++i) {
      ExpandRequest r;
      r.problem = &problem;
      r.prompt = *prompt;
      r.prefix = tree.trajectory(cur);
      r.num_candidates = 1;
      r.seed = derive_seed(seed, static_cast<std::uint64_t>(i));
      r.greedy = a.has("greedy");
      auto got = gen.expand(std::span<const ExpandRequest>(&r, 1));
      if (got.empty() || got[0].empty()) break;
      const Step& st = got[0][0];
      cur = tree.add_child(cur, st);
      if (a.has("json")) {
        json::Value o = json::Value::object();
        o.set("text", st.text);
        json::Value t = json::Value::array();
        for (auto id : st.tokens) t.push_back(id);
        o.set("tokens", std::move(t));
        o.set("logprob", st.logprob);
        o.set("finish", to_string(st.finish));
        out_steps.push_back(std::move(o));
      } else {
        out << fmt::format("step {} [{} tokens, logprob {:.3f}, {}]: {}\n", i + 1, st.num_tokens, st.logprob,
                           to_string(st.finish), st.text);
      }
    }
    if (a.has("json")) {
      json::Value o = json::Value::object();
      o.set("prompt", *prompt);
      o.set("steps", std::move(out_steps));
      out << json::dump(o) << "\n";
    }
    return 0;
  }
  throw UsageError(fmt::format("lm: unknown subcommand '{}' (logits, tokenize, generate)", sub));
}
#endif
}  // namespace

void set_progress_tty(bool tty) { g_tty = tty; }

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    if (args.empty()) {
      err << "qstar: error: no command given (try 'qstar help')\n";
      return 2;
    }
    const std::string& cmd = args[0];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
      out << kUsage;
      return 0;
    }
    if (cmd == "version" || cmd == "--version") {
      out << "qstar " << QSTAR_VERSION_STRING << "\n";
      return 0;
    }
#ifdef QSTAR_HAS_HTTP_SERVER
    if (cmd == "serve") return cmd_serve(args, out);
#else
    if (cmd == "serve") throw UsageError("serve: this qstar was built without LibTorch or cpp-httplib (QSTAR_WITH_HTTP)");
#endif
#ifdef QSTAR_HAS_TORCH
    if (cmd == "lm") return cmd_lm(args, out);
    if (cmd == "train") return cmd_train(args, out, err, g_tty);
#else
    if (cmd == "lm") throw UsageError("lm: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF)");
    if (cmd == "train") throw UsageError("train: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF)");
#endif
    Args a(args, 1, cmd != "bench");
    if (a.has("help")) {
      out << kUsage;
      return 0;
    }
    if (cmd == "solve") return cmd_solve(a, out, err);
    if (cmd == "bench") return cmd_bench(a, out, err);
    throw UsageError(fmt::format("unknown command '{}' (try 'qstar help')", cmd));
  } catch (const PluginError& e) {
    err << "qstar: error: " << e.what() << "\n";
    return 1;
  } catch (const Error& e) {  // InvalidArgument, ParseError, IoError: bad input
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    err << "qstar: error: " << msg << "\n";
    return 2;
  } catch (const std::exception& e) {
    err << "qstar: internal error: " << e.what() << "\n";
    return 1;
  }
}

std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace qstar::cli
