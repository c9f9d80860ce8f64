// The Game of 24 training recipe: the pipeline stages over qstar::train (synthetic SFT,
// Math-Shepherd labels, PRM / ORM training, STaR). See
// include/qstar/tasks/game24/train_recipe.hpp.
#include "qstar/tasks/game24/train_recipe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "qstar/core/json.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/error.hpp"
#include "qstar/search/beam.hpp"
#include "qstar/tasks/game24.hpp"
#include "qstar/tasks/game24/vocab.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"

namespace qstar::game24 {

namespace fs = std::filesystem;
using data::Multiset;
using train::SampleParams;
using train::sample_solutions;
using train::optim_json;
using train::report_json;
using train::seconds_since;
using train::spec_json;
using train::write_json;

// ---- params -----------------------------------------------------------------------------

void PipelineParams::validate() const {
  auto bad = [](std::string_view field, const std::string& why) {
    throw InvalidArgument(fmt::format("PipelineParams.{}: {}", field, why));
  };
  if (out_dir.empty()) bad("out_dir", "empty");
  if (data_csv.empty()) bad("data_csv", "empty");
  parse_ranks(test_ranks);
  if (threads < 1) bad("threads", fmt::format("must be >= 1, got {}", threads));
  if (dev_size < 1) bad("dev_size", "must be >= 1");
  try {
    hf::ModelSpec g = generator;
    g.vocab_size = std::max(g.vocab_size, 1);
    g.validate();
  } catch (const InvalidArgument& e) {
    bad("generator", e.what());
  }
  if (generator.architecture != "LlamaForCausalLM") bad("generator", "must be LlamaForCausalLM");
  if (tokenizer != "word" && tokenizer != "char")
    bad("tokenizer", fmt::format("must be word or char, got '{}'", tokenizer));
  traces.validate();
  sft.validate("PipelineParams.sft");
  prm.validate("PipelineParams.prm");
  orm.validate("PipelineParams.orm");
  star.validate("PipelineParams.star");
  label.validate();
  if (label_puzzles < 1) bad("label_puzzles", fmt::format("must be >= 1, got {}", label_puzzles));
  if (samples_per_puzzle < 1)
    bad("samples_per_puzzle", fmt::format("must be >= 1, got {}", samples_per_puzzle));
  if (!(temperature > 0) || !std::isfinite(temperature))
    bad("temperature", fmt::format("must be finite and > 0, got {}", temperature));
  if (star_iterations < 0) bad("star_iterations", fmt::format("must be >= 0, got {}", star_iterations));
  if (star_puzzles < 1) bad("star_puzzles", fmt::format("must be >= 1, got {}", star_puzzles));
  if (prm_targets != "soft" && prm_targets != "hard")
    bad("prm_targets", fmt::format("must be soft or hard, got '{}'", prm_targets));
  if (!(star_replay >= 0.0 && star_replay <= 100.0))
    bad("star_replay", fmt::format("must be in [0, 100], got {}", star_replay));
  if (star_width < 1 || star_beams < star_width || star_beams % star_width != 0)
    bad("star_beams", fmt::format("must be a multiple of star_width ({}), got {}", star_width, star_beams));
}

std::string train_tokenizer_json(std::string_view kind) {
  if (kind == "word") return game24_word_tokenizer_json();
  if (kind == "char") return hf::char_tokenizer_json(game24_chars());
  throw InvalidArgument(fmt::format("tokenizer: must be word or char, got '{}'", kind));
}

double greedy_accuracy(const std::string& dir, std::span<const Problem> problems, int threads) {
  train::ThreadScope ts(threads);
  lm::LMGeneratorParams gp;
  gp.answer_marker = Game24Task::answer_marker();
  gp.max_step_tokens = 48;
  gp.max_batch = 256;
  auto gen = lm::LMGenerator::load(dir, gp);
  const Game24Task task;
  SampleParams sp;
  sp.greedy = true;
  sp.max_depth = 6;
  sp.max_step_tokens = 48;
  const auto sols = sample_solutions(problems, task, gen, sp, 0);
  std::size_t ok = 0;
  for (const auto& s : sols) ok += s.correct ? 1 : 0;
  return problems.empty() ? 0.0 : static_cast<double>(ok) / static_cast<double>(problems.size());
}

// ---- the pipeline ---------------------------------------------------------------------------

struct TrainRecipe::Ctx {
  const PipelineParams& P;
  std::ostream& log;
  data::Split split;
  std::vector<Problem> test;
  std::string gen_dir, prm_dir, orm_dir, log_dir;
};

using Ctx = TrainRecipe::Ctx;

namespace {

Ctx make_ctx(const PipelineParams& P, std::ostream& log) {
  P.validate();
  Ctx c{P, log, {}, {}, P.out_dir + "/generator", P.out_dir + "/prm", P.out_dir + "/orm",
        P.out_dir + "/logs"};
  c.test = load_csv(P.data_csv, parse_ranks(P.test_ranks));
  if (c.test.empty())
    throw InvalidArgument(fmt::format("{}: no puzzles in test ranks {}", P.data_csv, P.test_ranks));
  c.split = data::make_split(c.test, P.dev_size, P.seed);
  data::check_separation(c.split.train, c.test, "training split");
  data::check_separation(c.split.dev, c.test, "dev split");
  std::error_code ec;
  fs::create_directories(c.log_dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create: {}", c.log_dir, ec.message()));
  // The held-out dev puzzles, for comparing searches and models on them
  // (`qstar bench --data DIR/logs/dev.csv --ranks 1-N`); the same file for every stage.
  const std::string dev_csv = c.log_dir + "/dev.csv";
  std::ofstream out(dev_csv, std::ios::binary | std::ios::trunc);
  out << data::multisets_csv(c.split.dev);
  if (!out.flush()) throw IoError(fmt::format("{}: cannot write", dev_csv));
  return c;
}

json::Value common_json(const Ctx& c, const std::string& stage, double seconds) {
  json::Value v = json::Value::object();
  v.set("stage", stage);
  v.set("seed", static_cast<std::int64_t>(c.P.seed));
  v.set("threads", c.P.threads);
  v.set("seconds", seconds);
  v.set("command", c.P.command);
  v.set("train_puzzles", static_cast<std::int64_t>(c.split.train.size()));
  v.set("dev_puzzles", static_cast<std::int64_t>(c.split.dev.size()));
  v.set("excluded_test_multisets", static_cast<std::int64_t>(c.split.test.size()));
  v.set("test_ranks", c.P.test_ranks);
  return v;
}

std::vector<Multiset> pick(const std::vector<Multiset>& from, std::size_t n, std::uint64_t seed) {
  std::vector<Multiset> v = from;
  Rng rng(seed);
  n = std::min(n, v.size());
  for (std::size_t i = 0; i < n; ++i) std::swap(v[i], v[i + rng.below(v.size() - i)]);
  v.resize(n);
  return v;
}

// -- sft
void stage_sft(Ctx& c) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& P = c.P;
  const Game24Task task;
  // A continuation (sft_init) draws other traces than the run it continues.
  Rng rng(P.sft_init.empty() ? derive_seed(P.seed, std::uint64_t{0x5f7})
                             : derive_seed(P.seed, std::uint64_t{0x5f7}, std::uint64_t{1}));
  const std::size_t n = static_cast<std::size_t>(P.sft.steps) * static_cast<std::size_t>(P.sft.batch_size);
  std::vector<train::TextExample> ex;
  ex.reserve(n);
  std::map<std::string, std::int64_t> kinds;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& m = c.split.train[rng.below(c.split.train.size())];
    auto t = data::sample_trace(m, rng, P.traces);
    ++kinds[t.kind];
    ex.push_back({task.format({"", data::puzzle_text(m), std::nullopt}), std::move(t.steps)});
  }
  c.log << fmt::format("[train] sft: {} synthetic traces of {} training puzzles\n", n, c.split.train.size());
  hf::ModelSpec spec = P.generator;
  train::ProgressBar bar(c.log, P.tty, "sft", P.sft.steps);
  const auto rep = train::train_generator(P.sft_init, spec, ex, P.sft, P.seed, c.gen_dir, P.threads,
                                          std::ref(bar), train_tokenizer_json(P.tokenizer));
  const auto dev = data::to_problems(c.split.dev, "dev");
  const double acc = greedy_accuracy(c.gen_dir, dev, P.threads);
  c.log << fmt::format("[train] sft: loss {:.4f} -> {:.4f} in {:.0f}s; greedy dev accuracy {:.1f}%\n",
                       rep.first_loss, rep.last_loss, rep.seconds, 100 * acc);
  json::Value v = common_json(c, "sft", seconds_since(t0));
  v.set("model", spec_json(hf::read_model_spec(c.gen_dir)));
  v.set("optim", optim_json(P.sft));
  v.set("init", P.sft_init.empty() ? std::string("random (seeded)") : P.sft_init);
  v.set("train", report_json(rep));
  json::Value tr = json::Value::object();
  tr.set("examples", static_cast<std::int64_t>(n));
  tr.set("dead_end_rate", P.traces.dead_end_rate);
  tr.set("arithmetic_error_rate", P.traces.arithmetic_error_rate);
  json::Value kv = json::Value::object();
  for (const auto& [k, cnt] : kinds) kv.set(k, cnt);
  tr.set("kinds", std::move(kv));
  v.set("traces", std::move(tr));
  v.set("greedy_dev_accuracy", acc);
  write_json(c.log_dir + "/sft.json", v);
}

// -- label
void stage_label(Ctx& c) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& P = c.P;
  train::ThreadScope ts(P.threads);
  const auto puzzles = pick(c.split.train, static_cast<std::size_t>(P.label_puzzles),
                            derive_seed(P.seed, std::uint64_t{0x1abe1}));
  data::check_separation(puzzles, c.test, "labelled puzzles");
  const auto problems = data::to_problems(puzzles, "train");
  lm::LMGeneratorParams gp;
  gp.answer_marker = Game24Task::answer_marker();
  gp.temperature = P.temperature;
  gp.max_step_tokens = P.label.max_step_tokens;
  gp.max_batch = P.label.max_batch;
  auto gen = lm::LMGenerator::load(c.gen_dir, gp);
  const Game24Task task;
  SampleParams sp;
  sp.per_problem = P.samples_per_puzzle;
  sp.max_depth = P.label.max_depth;
  sp.max_step_tokens = P.label.max_step_tokens;
  sp.max_batch = P.label.max_batch;
  c.log << fmt::format("[train] label: sampling {} solutions of {} puzzles\n",
                       problems.size() * static_cast<std::size_t>(P.samples_per_puzzle), problems.size());
  const auto sols = sample_solutions(problems, task, gen, sp, derive_seed(P.seed, std::uint64_t{1}));
  std::size_t correct = 0, finished = 0;
  for (const auto& s : sols) {
    correct += s.correct ? 1 : 0;
    finished += s.finished ? 1 : 0;
  }
  c.log << fmt::format("[train] label: {}/{} sampled solutions correct; {} rollouts per step\n",
                       correct, sols.size(), P.label.rollouts);
  const auto t1 = std::chrono::steady_clock::now();
  train::LabelParams lp = P.label;
  auto last_line = t1;  // a progress line at most every 30 s: a full labelling run takes ~40 min
  lp.progress = [&](const train::LabelProgress& pr) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_line < std::chrono::seconds(30) && pr.wave_done < pr.wave_total) return;
    last_line = now;
    c.log << fmt::format("[train] label: rollout wave {} ({}), {}/{} requests; {} generator calls, "
                         "{} steps generated, {:.0f}s\n",
                         pr.wave + 1, pr.wave == 0 ? "K candidates per prefix" : "one step per rollout",
                         pr.wave_done, pr.wave_total, pr.generator_calls, pr.generated_steps,
                         seconds_since(t1));
    c.log.flush();
  };
  const auto lr = train::label_steps(problems, sols, task, gen, lp, derive_seed(P.seed, std::uint64_t{2}));
  const double label_s = seconds_since(t1);
  // Write the labels, and compare them with the exact oracle (a step is good iff it is
  // legal and 24 is still reachable).
  const OracleStepVerifier oracle;
  std::ofstream f(c.log_dir + "/labels.jsonl", std::ios::binary);
  if (!f) throw IoError(fmt::format("{}/labels.jsonl: cannot open for writing", c.log_dir));
  std::int64_t steps = 0, agree = 0, hard_pos = 0;
  double soft_sum = 0;
  for (std::size_t s = 0; s < sols.size(); ++s) {
    Tree tree;
    NodeId node = Tree::root();
    json::Value line = json::Value::object();
    line.set("puzzle", problems[sols[s].problem].text);
    json::Value st = json::Value::array(), soft = json::Value::array(), hard = json::Value::array();
    for (std::size_t i = 0; i < sols[s].steps.size(); ++i) {
      node = tree.add_child(node, sols[s].steps[i]);
      st.push_back(sols[s].steps[i].text);
      soft.push_back(lr.labels[s][i].soft);
      hard.push_back(lr.labels[s][i].hard);
      soft_sum += lr.labels[s][i].soft;
      hard_pos += lr.labels[s][i].hard ? 1 : 0;
    }
    if (!sols[s].steps.empty()) {
      StepScoreRequest rq;
      rq.problem = &problems[sols[s].problem];
      rq.trajectory = tree.trajectory(node);
      const auto os = oracle.score(rq);
      for (std::size_t i = 0; i < os.size(); ++i) {
        ++steps;
        agree += (os[i] > 0.5) == lr.labels[s][i].hard ? 1 : 0;
      }
    }
    line.set("steps", std::move(st));
    line.set("soft", std::move(soft));
    line.set("hard", std::move(hard));
    line.set("finished", sols[s].finished);
    line.set("correct", sols[s].correct);
    f << json::dump(line) << "\n";
  }
  if (!f) throw IoError(fmt::format("{}/labels.jsonl: write failed", c.log_dir));
  json::Value v = common_json(c, "label", seconds_since(t0));
  v.set("label_puzzles", static_cast<std::int64_t>(problems.size()));
  v.set("solutions", static_cast<std::int64_t>(sols.size()));
  v.set("solutions_correct", static_cast<std::int64_t>(correct));
  v.set("solutions_finished", static_cast<std::int64_t>(finished));
  v.set("rollouts", P.label.rollouts);
  v.set("max_depth", P.label.max_depth);
  v.set("temperature", P.temperature);
  v.set("labelled_steps", steps);
  v.set("mean_soft_label", steps ? soft_sum / static_cast<double>(steps) : 0.0);
  v.set("hard_positive_fraction", steps ? static_cast<double>(hard_pos) / static_cast<double>(steps) : 0.0);
  v.set("hard_label_agreement_with_oracle", steps ? static_cast<double>(agree) / static_cast<double>(steps) : 0.0);
  v.set("labeller_seconds", label_s);
  v.set("labeller_generator_calls", lr.generator_calls);
  v.set("labeller_generator_requests", lr.generator_requests);
  v.set("labeller_generated_steps", lr.generated_steps);
  v.set("labeller_generated_tokens", lr.generated_tokens);
  write_json(c.log_dir + "/label.json", v);
  c.log << fmt::format("[train] label: {} steps labelled in {:.0f}s ({} generator calls); hard labels "
                       "agree with the exact oracle on {:.1f}%\n",
                       steps, label_s, lr.generator_calls,
                       steps ? 100.0 * static_cast<double>(agree) / static_cast<double>(steps) : 0.0);
}

struct Labelled {
  std::string puzzle;
  std::vector<std::string> steps;
  std::vector<double> soft;
  std::vector<double> hard;  // 0 / 1
  bool correct = false;
};

std::vector<Labelled> read_labels(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open (run `qstar train label` first)", path));
  std::vector<Labelled> out;
  std::string line;
  int no = 0;
  while (std::getline(f, line)) {
    ++no;
    if (line.empty()) continue;
    const auto v = json::parse(line, fmt::format("{}:{}", path, no));
    Labelled l;
    l.puzzle = v.get_string("puzzle");
    for (const auto& s : v.get_array("steps")) l.steps.push_back(s.as_string());
    for (const auto& s : v.get_array("soft")) l.soft.push_back(s.as_double());
    for (const auto& s : v.get_array("hard")) l.hard.push_back(s.as_bool() ? 1.0 : 0.0);
    l.correct = v.get_bool("correct");
    if (l.soft.size() != l.steps.size() || l.hard.size() != l.steps.size())
      throw ParseError(fmt::format("{}:{}: {} soft and {} hard labels for {} steps", path, no, l.soft.size(),
                                   l.hard.size(), l.steps.size()));
    if (!l.steps.empty()) out.push_back(std::move(l));
  }
  return out;
}

/// Validation of a verifier through the real inference path (PrmVerifier): per-step
/// agreement of score > 0.5 with the exact oracle, and outcome accuracy of the last step's
/// score against the solution's correctness.
json::Value eval_verifier(const std::string& dir, const std::vector<Labelled>& val, int threads) {
  train::ThreadScope ts(threads);
  lm::PrmParams pp;
  pp.max_batch = 256;
  auto prm = lm::PrmVerifier::load(dir, pp);
  const Game24Task task;
  const OracleStepVerifier oracle;
  std::vector<Problem> problems;
  for (const auto& l : val) problems.push_back({"val", l.puzzle, std::nullopt});
  std::vector<std::string> prompts;
  for (const auto& p : problems) prompts.push_back(task.format(p));
  Tree tree;
  std::vector<StepScoreRequest> reqs;
  for (std::size_t i = 0; i < val.size(); ++i) {
    NodeId node = Tree::root();
    for (const auto& s : val[i].steps) {
      Step st;
      st.text = s;
      node = tree.add_child(node, st);
    }
    StepScoreRequest r;
    r.problem_index = i;
    r.problem = &problems[i];
    r.prompt = prompts[i];
    r.trajectory = tree.trajectory(node);
    reqs.push_back(std::move(r));
  }
  const auto scores = prm.score_steps(reqs);
  std::int64_t steps = 0, agree = 0, outcome_ok = 0;
  double bce = 0;
  for (std::size_t i = 0; i < val.size(); ++i) {
    const auto os = oracle.score(reqs[i]);
    for (std::size_t k = 0; k < os.size(); ++k) {
      ++steps;
      agree += (scores[i][k] > 0.5) == (os[k] > 0.5) ? 1 : 0;
      const double p = std::clamp(scores[i][k], 1e-7, 1 - 1e-7), y = val[i].soft[k];
      bce -= y * std::log(p) + (1 - y) * std::log(1 - p);
    }
    outcome_ok += (scores[i].back() > 0.5) == val[i].correct ? 1 : 0;
  }
  json::Value v = json::Value::object();
  v.set("val_solutions", static_cast<std::int64_t>(val.size()));
  v.set("val_steps", steps);
  v.set("val_bce_vs_soft_labels", steps ? bce / static_cast<double>(steps) : 0.0);
  v.set("step_agreement_with_oracle", steps ? static_cast<double>(agree) / static_cast<double>(steps) : 0.0);
  v.set("outcome_accuracy_last_step", val.empty() ? 0.0 : static_cast<double>(outcome_ok) / static_cast<double>(val.size()));
  return v;
}

// -- prm / orm
void stage_verifier(Ctx& c, bool orm) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& P = c.P;
  const std::string name = orm ? "orm" : "prm";
  const bool hard = !orm && P.prm_targets == "hard";  // the PRM on Math-Shepherd's hard labels
  auto all = read_labels(c.log_dir + "/labels.jsonl");
  std::vector<Multiset> used;
  for (const auto& l : all) used.push_back(data::multiset_of(l.puzzle));
  data::check_separation(used, c.test, "labels.jsonl");
  // Hold out the solutions of 10% of the puzzles for validation.
  std::set<std::string> val_puzzles;
  {
    std::vector<std::string> ps;
    for (const auto& l : all) ps.push_back(l.puzzle);
    std::sort(ps.begin(), ps.end());
    ps.erase(std::unique(ps.begin(), ps.end()), ps.end());
    Rng rng(derive_seed(P.seed, std::uint64_t{0x7a1}));
    for (std::size_t i = ps.size(); i > 1; --i) std::swap(ps[i - 1], ps[rng.below(i)]);
    for (std::size_t i = 0; i < std::max<std::size_t>(1, ps.size() / 10) && i < ps.size(); ++i)
      val_puzzles.insert(ps[i]);
  }
  const Game24Task task;
  std::vector<train::ScoredExample> train;
  std::vector<Labelled> val;
  for (const auto& l : all) {
    if (val_puzzles.contains(l.puzzle)) {
      val.push_back(l);
      continue;
    }
    train::ScoredExample e{task.format({"", l.puzzle, std::nullopt}), l.steps, {}};
    e.targets = orm ? std::vector<double>(l.steps.size(), l.correct ? 1.0 : 0.0) : hard ? l.hard : l.soft;
    train.push_back(std::move(e));
  }
  const train::OptimParams& o = orm ? P.orm : P.prm;
  c.log << fmt::format("[train] {}: {} labelled solutions for training, {} held out\n", name,
                       train.size(), val.size());
  train::ProgressBar bar(c.log, P.tty, name, o.steps);
  const std::string out = orm ? c.orm_dir : c.prm_dir;
  const auto rep = train::train_verifier(c.gen_dir, train, o, derive_seed(P.seed, std::uint64_t{orm ? 4u : 3u}),
                                  out, P.threads, std::ref(bar));
  json::Value v = common_json(c, name, seconds_since(t0));
  v.set("model", spec_json(hf::read_model_spec(out)));
  v.set("init", "the generator's trunk (model.*), a new score head");
  v.set("targets", orm    ? "final correctness of the sampled solution, at every step's tag"
                   : hard ? "Math-Shepherd hard labels (1 if any rollout reached 24), at every step's tag"
                          : "Math-Shepherd soft labels (fraction of rollouts reaching 24), at every step's tag");
  v.set("optim", optim_json(o));
  v.set("train", report_json(rep));
  v.set("train_solutions", static_cast<std::int64_t>(train.size()));
  v.set("val", eval_verifier(out, val, P.threads));
  v.set("seconds", seconds_since(t0));
  write_json(c.log_dir + "/" + name + ".json", v);
  const auto& ev = v.at("val");
  c.log << fmt::format("[train] {}: loss {:.4f} -> {:.4f}; held-out step agreement with the oracle {:.1f}%, "
                       "outcome accuracy {:.1f}%\n",
                       name, rep.first_loss, rep.last_loss,
                       100 * ev.get_double("step_agreement_with_oracle"),
                       100 * ev.get_double("outcome_accuracy_last_step"));
}

// -- star
void stage_star(Ctx& c) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& P = c.P;
  const std::uint64_t star_seed = P.star_seed.value_or(P.seed);
  const auto dev = data::to_problems(c.split.dev, "dev");
  const Game24Task task;
  json::Value iters = json::Value::array();
  double acc = greedy_accuracy(c.gen_dir, dev, P.threads);
  const double acc0 = acc;
  c.log << fmt::format("[train] star: greedy dev accuracy before: {:.1f}%\n", 100 * acc);
  for (int it = 0; it < P.star_iterations; ++it) {
    const auto ti = std::chrono::steady_clock::now();
    const auto puzzles = pick(c.split.train, static_cast<std::size_t>(P.star_puzzles),
                              derive_seed(star_seed, std::uint64_t{0x57a4}, static_cast<std::uint64_t>(it)));
    data::check_separation(puzzles, c.test, "STaR puzzles");
    const auto problems = data::to_problems(puzzles, "star");
    std::vector<train::TextExample> kept;
    std::int64_t solved = 0;
    {
      train::ThreadScope ts(P.threads);
      lm::LMGeneratorParams gp;
      gp.answer_marker = Game24Task::answer_marker();
      gp.temperature = P.temperature;
      gp.max_step_tokens = 48;
      gp.max_batch = 512;
      auto gen = lm::LMGenerator::load(c.gen_dir, gp);
      lm::PrmParams pp;
      pp.max_batch = 512;
      auto prm = lm::PrmVerifier::load(c.prm_dir, pp);
      BeamParams bp;
      bp.num_beams = P.star_beams;
      bp.width = P.star_width;
      bp.max_depth = 6;
      bp.max_step_tokens = 48;
      c.log << fmt::format("[train] star {}: beam search (N={}, M={}) with the PRM over {} training puzzles\n",
                           it + 1, bp.num_beams, bp.width, problems.size());
      const auto results = beam_search(std::span<const Problem>(problems), task, gen, prm, bp,
                                       derive_seed(star_seed, std::uint64_t{0x5eed}, static_cast<std::uint64_t>(it)));
      for (const auto& r : results) {
        std::set<std::vector<std::string>> seen;
        bool any = false;
        for (const auto& cand : r.candidates) {
          if (!cand.answer || !task.check(r.problem, *cand.answer)) continue;
          if (!seen.insert(cand.steps).second) continue;
          any = true;
          kept.push_back({task.format(r.problem), cand.steps});
        }
        solved += any ? 1 : 0;
      }
    }
    c.log << fmt::format("[train] star {}: {} of {} puzzles solved, {} verified trajectories kept\n", it + 1,
                         solved, problems.size(), kept.size());
    json::Value iv = json::Value::object();
    iv.set("iteration", it + 1);
    iv.set("puzzles", static_cast<std::int64_t>(problems.size()));
    iv.set("puzzles_solved_by_search", solved);
    iv.set("trajectories_kept", static_cast<std::int64_t>(kept.size()));
    iv.set("greedy_dev_accuracy_before", acc);
    if (kept.empty()) {
      iv.set("accepted", false);
      iters.push_back(std::move(iv));
      continue;
    }
    // Replay: fresh synthetic traces of random training puzzles, star_replay per kept one.
    const std::size_t n_kept = kept.size();
    const auto n_replay = static_cast<std::size_t>(std::llround(P.star_replay * static_cast<double>(n_kept)));
    {
      Rng rr(derive_seed(star_seed, std::uint64_t{0x5e91a}, static_cast<std::uint64_t>(it)));
      for (std::size_t i = 0; i < n_replay; ++i) {
        const auto& m = c.split.train[rr.below(c.split.train.size())];
        auto t = data::sample_trace(m, rr, P.traces);
        kept.push_back({task.format({"", data::puzzle_text(m), std::nullopt}), std::move(t.steps)});
      }
    }
    iv.set("replay_traces", static_cast<std::int64_t>(n_replay));
    const std::string cand_dir = P.out_dir + "/.star_candidate";
    train::ProgressBar bar(c.log, P.tty, fmt::format("star {}", it + 1), P.star.steps);
    const auto rep = train::train_generator(c.gen_dir, P.generator, kept, P.star,
                                     derive_seed(star_seed, std::uint64_t{0x57a}, static_cast<std::uint64_t>(it)),
                                     cand_dir, P.threads, std::ref(bar));
    const double after = greedy_accuracy(cand_dir, dev, P.threads);
    // Model selection on the dev split only (never the test split): keep the fine-tuned
    // generator unless it got worse.
    const bool accept = after >= acc;
    c.log << fmt::format("[train] star {}: greedy dev accuracy {:.1f}% -> {:.1f}% ({})\n", it + 1, 100 * acc,
                         100 * after, accept ? "kept" : "discarded");
    if (accept) {
      for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"})
        fs::copy_file(cand_dir + "/" + f, c.gen_dir + "/" + f, fs::copy_options::overwrite_existing);
      acc = after;
    }
    fs::remove_all(cand_dir);
    iv.set("greedy_dev_accuracy_after", after);
    iv.set("accepted", accept);
    iv.set("train", report_json(rep));
    iv.set("seconds", seconds_since(ti));
    iters.push_back(std::move(iv));
  }
  json::Value v = common_json(c, "star", seconds_since(t0));
  v.set("star_seed", static_cast<std::int64_t>(star_seed));
  v.set("optim", optim_json(P.star));
  v.set("beams", P.star_beams);
  v.set("replay", P.star_replay);
  v.set("width", P.star_width);
  v.set("iterations", std::move(iters));
  v.set("greedy_dev_accuracy_start", acc0);
  v.set("greedy_dev_accuracy_end", acc);
  v.set("greedy_test_accuracy_info_only", greedy_accuracy(c.gen_dir, c.test, P.threads));
  write_json(c.log_dir + "/star.json", v);
}

}  // namespace

// ---- the recipe -----------------------------------------------------------------------------

TrainRecipe::TrainRecipe(PipelineParams params) : params_(std::move(params)) {}
TrainRecipe::~TrainRecipe() = default;

std::vector<std::string> TrainRecipe::stages() const {
  return {"sft", "label", "prm", "orm", "star"};
}

void TrainRecipe::run_stage(const std::string& stage, std::ostream& log) {
  if (stage == "cards") {
    write_model_cards(params_, log);
    return;
  }
  if (!ctx_) ctx_ = std::make_unique<Ctx>(make_ctx(params_, log));
  Ctx& c = *ctx_;
  if (stage == "sft") stage_sft(c);
  else if (stage == "label") stage_label(c);
  else if (stage == "prm") stage_verifier(c, false);
  else if (stage == "orm") stage_verifier(c, true);
  else if (stage == "star") stage_star(c);
  else throw InvalidArgument(fmt::format("train: unknown stage '{}'", stage));
}

void TrainRecipe::after_all(double seconds, std::ostream& log) {
  json::Value v = json::Value::object();
  v.set("seconds", seconds);
  v.set("command", params_.command);
  v.set("seed", static_cast<std::int64_t>(params_.seed));
  v.set("threads", params_.threads);
  train::write_json(params_.out_dir + "/logs/all.json", v);
  write_model_cards(params_, log);
  log << fmt::format("[train] all stages done in {:.0f}s\n", seconds);
}

void run_train_stage(const std::string& stage, const PipelineParams& params, std::ostream& log) {
  TrainRecipe recipe(params);
  train::run_recipe(recipe, stage, log);
}

}  // namespace qstar::game24
