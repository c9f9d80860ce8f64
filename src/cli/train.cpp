// `qstar train STAGE ...`: the training pipeline of the shipped Game of 24 models (the
// Game of 24 recipe of qstar::train, include/qstar/tasks/game24/train_recipe.hpp). Built only with LibTorch. Bad input throws
// qstar::InvalidArgument, which cli.cpp reports in one line with exit code 2.
#ifdef QSTAR_HAS_TORCH

#include <charconv>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qstar/error.hpp"
#include "qstar/tasks/game24/train_recipe.hpp"

namespace qstar::cli {

namespace {

constexpr const char* kTrainUsage = R"(usage: qstar train STAGE [options]

stages: all (everything, then the model cards) | sft | label | prm | orm | star | cards

options (defaults are the shipped models' settings):
  --out DIR              output folder: DIR/generator, DIR/prm, DIR/orm, DIR/logs (default models)
  --seed S               seed of everything (default 0)
  --data FILE            the ToT 24.csv whose test ranks are excluded (default: the repo copy)
  --test-ranks A-B       excluded ranks (default 901-1000)
  --threads N            LibTorch threads (default 1; also export OPENBLAS_NUM_THREADS=1, as
                         scripts/train.sh does: OpenBLAS keeps its own threads otherwise)
  --dev-size N           held-out dev puzzles (default 100)
  --hidden N --intermediate N --layers N --heads N --kv-heads N   generator shape
  --sft-steps N --prm-steps N --orm-steps N --star-steps N  optimiser steps per stage
  --sft-init DIR         continue generator SFT from this folder (default: a fresh init)
  --tokenizer word|char  a new generator's tokenizer (default word: numbers and words are
                         tokens; char: one token per character)
  --batch N              sequences per step, every stage (default 32)
  --sft-lr X --prm-lr X --orm-lr X --star-lr X
  --label-puzzles N      training puzzles whose sampled solutions get labelled (default 1162:
                         the whole training split)
  --samples N            solutions sampled per labelled puzzle (default 6)
  --rollouts K           Math-Shepherd rollouts per step (default 8)
  --prm-targets soft|hard   the PRM's step targets: the fraction of rollouts reaching 24
                         (default soft) or 1 if any did (hard)
  --temperature T        sampling temperature for labels and STaR (default 1)
  --star-iterations N    (default 2)   --star-puzzles N (default 600)
  --star-seed S          seed of the STaR stage alone (default: --seed; the split stays
                         --seed's, so STaR can be repeated on one generator)
  --star-beams N --star-width M      STaR beam search (default 16, 4)
  --star-replay X        fresh synthetic SFT traces mixed into each STaR fine-tune, per kept
                         trajectory (default 1; 0: the kept trajectories alone)
  --dead-end-rate X --slip-rate X    imperfect-trace mix of the SFT data (0.15, 0.10)
)";

template <class T>
T parse_num(const std::string& flag, const std::string& v, T lo, T hi) {
  T x{};
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x < lo || x > hi)
    throw InvalidArgument(fmt::format("--{}: '{}' is not a number in [{}, {}]", flag, v, lo, hi));
  return x;
}

double parse_real(const std::string& flag, const std::string& v) {
  std::size_t n = 0;
  double x = 0;
  try {
    x = std::stod(v, &n);
  } catch (...) {
    n = 0;
  }
  if (n != v.size() || v.empty())
    throw InvalidArgument(fmt::format("--{}: '{}' is not a number", flag, v));
  return x;
}

}  // namespace

int cmd_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool tty) {
  if (args.size() < 2 || args[1] == "--help" || args[1] == "help") {
    if (args.size() < 2) throw InvalidArgument("train: give a stage (all, sft, label, prm, orm, star, cards); see qstar train --help");
    out << kTrainUsage;
    return 0;
  }
  const std::string stage = args[1];
  std::map<std::string, std::string> flags;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() < 3)
      throw InvalidArgument(fmt::format("train: unexpected argument '{}'", a));
    std::string name = a.substr(2), value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= args.size()) throw InvalidArgument(fmt::format("--{}: missing value", name));
      value = args[++i];
    }
    if (!flags.emplace(name, value).second) throw InvalidArgument(fmt::format("--{}: given twice", name));
  }
  game24::PipelineParams p;
#ifdef QSTAR_DEFAULT_DATA
  p.data_csv = QSTAR_DEFAULT_DATA;
#endif
  p.tty = tty;
  const int kBig = 1 << 24;
  for (const auto& [k, v] : flags) {
    if (k == "out") p.out_dir = v;
    else if (k == "seed") p.seed = parse_num<std::uint64_t>(k, v, 0, UINT64_MAX);
    else if (k == "data") p.data_csv = v;
    else if (k == "test-ranks") p.test_ranks = v;
    else if (k == "threads") p.threads = parse_num<int>(k, v, 1, 1024);
    else if (k == "dev-size") p.dev_size = parse_num<std::size_t>(k, v, 1, 100000);
    else if (k == "hidden") p.generator.hidden_size = parse_num<int>(k, v, 1, kBig);
    else if (k == "intermediate") p.generator.intermediate_size = parse_num<int>(k, v, 1, kBig);
    else if (k == "layers") p.generator.num_hidden_layers = parse_num<int>(k, v, 1, 1024);
    else if (k == "heads") p.generator.num_attention_heads = parse_num<int>(k, v, 1, 1024);
    else if (k == "kv-heads") p.generator.num_key_value_heads = parse_num<int>(k, v, 1, 1024);
    else if (k == "sft-steps") p.sft.steps = parse_num<int>(k, v, 1, kBig);
    else if (k == "sft-init") p.sft_init = v;
    else if (k == "tokenizer") p.tokenizer = v;
    else if (k == "prm-steps") p.prm.steps = parse_num<int>(k, v, 1, kBig);
    else if (k == "orm-steps") p.orm.steps = parse_num<int>(k, v, 1, kBig);
    else if (k == "star-steps") p.star.steps = parse_num<int>(k, v, 1, kBig);
    else if (k == "batch") p.sft.batch_size = p.prm.batch_size = p.orm.batch_size = p.star.batch_size = parse_num<int>(k, v, 1, kBig);
    else if (k == "sft-lr") p.sft.lr = parse_real(k, v);
    else if (k == "prm-lr") p.prm.lr = parse_real(k, v);
    else if (k == "orm-lr") p.orm.lr = parse_real(k, v);
    else if (k == "star-lr") p.star.lr = parse_real(k, v);
    else if (k == "label-puzzles") p.label_puzzles = parse_num<int>(k, v, 1, kBig);
    else if (k == "samples") p.samples_per_puzzle = parse_num<int>(k, v, 1, kBig);
    else if (k == "rollouts") p.label.rollouts = parse_num<int>(k, v, 1, kBig);
    else if (k == "temperature") p.temperature = parse_real(k, v);
    else if (k == "star-iterations") p.star_iterations = parse_num<int>(k, v, 0, 1000);
    else if (k == "star-seed") p.star_seed = parse_num<std::uint64_t>(k, v, 0, UINT64_MAX);
    else if (k == "star-puzzles") p.star_puzzles = parse_num<int>(k, v, 1, kBig);
    else if (k == "star-replay") p.star_replay = parse_real(k, v);
    else if (k == "prm-targets") p.prm_targets = v;
    else if (k == "star-beams") p.star_beams = parse_num<int>(k, v, 1, kBig);
    else if (k == "star-width") p.star_width = parse_num<int>(k, v, 1, kBig);
    else if (k == "dead-end-rate") p.traces.dead_end_rate = parse_real(k, v);
    else if (k == "slip-rate") p.traces.arithmetic_error_rate = parse_real(k, v);
    else throw InvalidArgument(fmt::format("train: unknown flag --{} (see qstar train --help)", k));
  }
  // Warmups follow shortened runs.
  for (auto* o : {&p.sft, &p.prm, &p.orm, &p.star}) o->warmup = std::min(o->warmup, o->steps / 5);
  p.command = "qstar train";
  for (std::size_t i = 1; i < args.size(); ++i) {
    const bool quote = args[i].find_first_of(" \t\"'") != std::string::npos;
    p.command += quote ? fmt::format(" \"{}\"", args[i]) : " " + args[i];
  }
  try {
    p.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("train: {}", e.what()));
  }
  game24::run_train_stage(stage, p, err);
  return 0;
}

}  // namespace qstar::cli

#endif  // QSTAR_HAS_TORCH
