// The plug-ins of the search commands: the generator and verifier the flags choose (the
// task's own, lm:DIR and prm:PATH with LibTorch, http:URL with libcurl), their defaults, and
// the search run with them.
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "app/app.hpp"

#ifdef QSTAR_HAS_HTTP
#include "qstar/http/client.hpp"
#endif
#ifdef QSTAR_HAS_TORCH
#include "qstar/torch/prm.hpp"
#endif

namespace qstar::cli {

namespace {

/// A VerifierSet whose step and outcome scores both come from `v` (a PRM also acts as ORM).
template <class V>
VerifierSet step_and_outcome(const V& v, std::string label) {
  VerifierSet cv;
  cv.step.emplace(v);
  cv.outcome.emplace(v);
  cv.label = std::move(label);
  return cv;
}


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

/// What the LM and HTTP generators share: the task's answer marker and step delimiter
/// (--answer-marker and --delimiter override them), --temperature, --top-p and --top-k.
template <class P>
void set_step_sampling(P& p, const Args& a, const TaskEntry& task) {
  p.answer_marker = answer_marker_of(a, task);
  if (!task.step_delimiter.empty()) p.step_delimiter = task.step_delimiter;
  if (auto v = a.get("delimiter")) p.step_delimiter = unescape(*v);
  if (auto v = a.get("temperature")) p.temperature = parse_double("temperature", *v);
  if (auto v = a.get("top-p")) p.top_p = parse_double("top-p", *v);
  if (auto v = a.get("top-k")) p.top_k = parse_int<int>("top-k", *v, 0, 1 << 24);
}

#ifdef QSTAR_HAS_TORCH
}  // namespace

lm::LMGeneratorParams lm_generator_params(const Args& a, const TaskEntry& task) {
  lm::LMGeneratorParams p;
  if (auto v = a.get("device")) p.device = *v;
  if (auto v = a.get("dtype")) p.dtype = *v;
  set_step_sampling(p, a, task);
  if (auto v = a.get("kv-cache-mb")) p.kv_cache_bytes = parse_int<std::int64_t>("kv-cache-mb", *v, 0, 1 << 30) << 20;
  if (a.has("no-token-stats")) p.token_stats = false;
  validate_usage(p, "generator parameters");
  return p;
}

namespace {

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
// order: $QSTAR_MODELS_DIR (an error if it lacks them), then resource_dirs("models"): the
// installation's share/qstar/models and the models/ folder of the checkout a build folder is in.
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
  for (const auto& c : resource_dirs("models"))
    if (has_models(c)) return c;
  return std::nullopt;
}
#endif

struct Defaults {
  std::string generator, verifier;
};

/// The default plug-ins: the trained models when found (a LibTorch-enabled qstar), else the
/// task's own generator and verifier; `note` gets one line when a LibTorch-enabled qstar
/// falls back.
Defaults default_plugins(const TaskEntry& task, std::ostream* note) {
  Defaults own{task.generators.empty() ? "" : task.generators.begin()->first,
               task.verifiers.empty() ? "none" : task.verifiers.begin()->first};
#ifdef QSTAR_HAS_TORCH
  // The trained models are the default task's (qstar train trains only it).
  if (task.name != builtin_tasks().names().front()) return own;
  if (auto dir = find_models_dir()) return {"lm:" + *dir + "/generator", "prm:" + *dir + "/prm"};
  if (note)
    *note << fmt::format("qstar: note: the trained models were not found (set QSTAR_MODELS_DIR); using "
                         "--generator {} --verifier {}\n", own.generator, own.verifier);
#else
  (void)note;
#endif
  return own;
}

/// "a, b, " for the kinds of a task's plug-ins (for messages).
template <class M>
std::string kinds(const M& m) {
  std::string out;
  for (const auto& [k, v] : m) out += k + ", ";
  return out;
}

}  // namespace

Plugins make_plugins(const Args& a, const TaskEntry& task, std::ostream* note) {
  Plugins p;
  const Defaults d = a.has("generator") && a.has("verifier") ? Defaults{} : default_plugins(task, note);
  const std::string g = a.has("generator") ? *a.get("generator") : d.generator;
  if (g.empty()) throw UsageError(fmt::format("--generator: task '{}' has no generator of its own; give lm:DIR or http:URL", task.name));
  const auto own_gen = task.generators.find(g);
  for (const auto& [kind, tg] : task.generators)
    for (const auto& o : tg.options)
      if (a.has(o) && (own_gen == task.generators.end() ||
                       std::find(own_gen->second.options.begin(), own_gen->second.options.end(), o) ==
                           own_gen->second.options.end()))
        throw UsageError(fmt::format("--{} applies only to --generator {}", o, kind));
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
  for (const char* f : {"prm-kind", "prm-chat-template", "prm-system"})
    if (a.has(f) && v.rfind("prm:", 0) != 0)
      throw UsageError(fmt::format("--{} applies only to --verifier prm:PATH", f));
  if (a.has("orm-kind") && a.get("orm").value_or("").rfind("prm:", 0) != 0)
    throw UsageError("--orm-kind applies only to --orm prm:PATH");
  if (g.rfind("lm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
    const std::string dir = g.substr(3);
    p.gen.emplace(lm::LMGenerator::load(dir, lm_generator_params(a, task)));
    p.gen_label = g;
#else
    throw UsageError("--generator lm:DIR needs a qstar built with LibTorch (QSTAR_WITH_TORCH)");
#endif
  } else if (g.rfind("http:", 0) == 0) {
#ifdef QSTAR_HAS_HTTP
    http::HttpGeneratorParams hp;
    hp.client = http_client_params(a, g.substr(5), "generator");
    set_step_sampling(hp, a, task);
    validate_usage(hp, "generator parameters");
    p.gen.emplace(http::HttpGenerator(hp));
    p.gen_label = g;
#else
    throw UsageError("--generator http:URL needs a qstar built with libcurl (QSTAR_WITH_HTTP)");
#endif
  } else if (own_gen != task.generators.end()) {
    PluginOptions options;
    for (const auto& o : own_gen->second.options)
      if (auto v = a.get(o)) options.emplace(o, *v);
    auto [gen, label] = own_gen->second.make(options);
    p.gen.emplace(std::move(gen));
    p.gen_label = std::move(label);
  } else {
    throw UsageError(fmt::format("--generator: '{}' is not one of {}lm:DIR, http:URL", g, kinds(task.generators)));
  }
  if (v.rfind("prm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
    lm::PrmParams pp = prm_params(a);
    if (auto x = a.get("prm-kind")) pp.kind = *x;
    if (auto x = a.get("prm-chat-template")) pp.chat_template = *x;
    if (auto x = a.get("prm-system")) pp.chat_system = unescape(*x);
    validate_usage(pp, "verifier parameters");
    auto prm = lm::PrmVerifier::load(v.substr(4), pp);
    if (prm.outcome_only()) {  // a reward model / sequence classifier: outcome scores only
      p.ver.emplace();
      p.ver->outcome.emplace(std::move(prm));
      p.ver->label = v;
    } else {
      p.ver = step_and_outcome(std::move(prm), v);
    }
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
  } else if (auto it = task.verifiers.find(v); it != task.verifiers.end()) {
    p.ver = it->second.make();
    p.ver->label = v;
  } else if (v != "none") {
    throw UsageError(
        fmt::format("--verifier: '{}' is not one of {}none, prm:PATH, http:URL", v, kinds(task.verifiers)));
  }
  p.ver_label = v;
  if (auto o = a.get("orm")) {
    // The outcome verifier: replaces the outcome scores of --verifier (or is the only one).
    if (!p.ver) p.ver.emplace();
    if (auto it = task.verifiers.find(*o); it != task.verifiers.end()) {
      VerifierSet own = it->second.make();
      if (!own.outcome) throw UsageError(fmt::format("--orm: '{}' has no outcome scores", *o));
      p.ver->outcome = std::move(own.outcome);
    } else if (o->rfind("prm:", 0) == 0) {
#ifdef QSTAR_HAS_TORCH
      // The kind inferred from the folder unless --orm-kind says; a PRM is read at the last
      // step (Aggregation::Last), an outcome kind at the response's last token.
      lm::PrmParams pp = prm_params(a);
      if (auto x = a.get("orm-kind")) pp.kind = *x;
      validate_usage(pp, "--orm parameters");
      p.ver->outcome.emplace(lm::PrmVerifier::load(o->substr(4), pp));
#else
      throw UsageError("--orm prm:PATH needs a qstar built with LibTorch (QSTAR_WITH_TORCH)");
#endif
    } else {
      throw UsageError(fmt::format("--orm: '{}' is not one of {}prm:PATH", *o, kinds(task.verifiers)));
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

/// --verifier/--orm against the algorithm: a usage error before anything runs.
void check_plugins(const SearchParams& sp, const Plugins& pl) {
  try {
    check_verifier(sp, pl.ver ? &*pl.ver : nullptr);
  } catch (const InvalidArgument& e) {
    throw UsageError(e.what());
  }
}

std::vector<SearchResult> run_search(std::span<const Problem> problems, const AnyTask& task, Plugins& pl,
                                     const SearchParams& sp, std::uint64_t seed) {
  check_plugins(sp, pl);
  return qstar::run_search(problems, task, *pl.gen, pl.ver ? &*pl.ver : nullptr, sp, seed);
}

}  // namespace qstar::cli
