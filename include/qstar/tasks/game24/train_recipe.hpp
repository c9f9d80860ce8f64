// Training the Game of 24 models: the Game of 24 recipe of qstar::train (the generator, a
// LlamaForCausalLM, the PRM and the ORM, LlamaForTokenClassification with one label,
// sigmoid), all sharing one word-level tokenizer (game24::game24_word_tokenizer_json; "char"
// is the character-level alternative). Built into the target qstar_game24_train (on
// qstar::train); `qstar train` runs it. No LibTorch in this header.
//
// Stages (TrainRecipe; `qstar train STAGE --out DIR`):
//   sft    generator SFT on synthetic traces (game24_data.hpp) of the training puzzles:
//          next-token cross-entropy on the step tokens (the prompt is context only).
//          Writes DIR/generator.
//   label  samples solutions of training puzzles with DIR/generator and labels every step
//          Math-Shepherd style (qstar::train::label_steps: K rollouts per step through the
//          batched Generator interface; soft = fraction reaching 24, hard = any). Writes
//          DIR/logs/labels.jsonl.
//   prm    trains DIR/prm on the soft labels: binary cross-entropy of sigmoid(score) at
//          each step's tag position, initialised from the generator's trunk.
//   orm    trains DIR/orm on final correctness (the same head, every step's tag position
//          labelled with the solution's outcome; read at the last step).
//   star   STaR / expert iteration: beam search with the generator and DIR/prm over
//          training puzzles, keep the checker-verified trajectories, fine-tune the
//          generator on them, repeat; greedy dev accuracy before and after each iteration.
//   all    every stage in order, then the model cards.
//
// The prompts are Game24Task::format(problem) (qstar/train/trainer.hpp says what the models
// see). Every stage writes DIR/logs/<stage>.json.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/types.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/tasks/game24_data.hpp"
#include "qstar/train/labeller.hpp"
#include "qstar/train/recipe.hpp"
#include "qstar/train/trainer.hpp"

namespace qstar::game24 {

/// Every knob of the pipeline. validate() throws InvalidArgument naming the field.
struct PipelineParams {
  /// Where the models and logs go (DIR/generator, DIR/prm, DIR/orm, DIR/logs).
  std::string out_dir = "models";
  /// The ToT 24.csv: the test split is read from it to be excluded from all training data.
  std::string data_csv = "data/game24/24.csv";
  /// The test ranks whose multisets never appear in training or dev data.
  std::string test_ranks = "901-1000";
  /// Seeds everything: the split, traces, initialisation, batches, sampling.
  std::uint64_t seed = 0;
  /// LibTorch intra-op threads (>= 1). 1 by default: on the shared 2-core machine the
  /// models were trained on, 2 threads made each step about 2.5x slower (contention).
  /// OpenBLAS (Debian's libopenblas0-pthread) runs its own thread pool that this does not
  /// limit: export OPENBLAS_NUM_THREADS=1 as well (a step took 0.41 s with it, 0.51 s
  /// without, generator SFT at the default shape beside a busy second core).
  int threads = 1;
  /// Held-out dev puzzles (>= 1), drawn from the non-test solvable multisets.
  std::size_t dev_size = 100;
  /// The generator's shape (vocab_size is set from the tokenizer).
  hf::ModelSpec generator{.architecture = "LlamaForCausalLM", .hidden_size = 128,
                          .intermediate_size = 384, .num_hidden_layers = 4,
                          .num_attention_heads = 4, .num_key_value_heads = 2};
  /// The synthetic traces' mix of correct and imperfect solutions.
  game24::data::TraceParams traces;
  /// The tokenizer of a new generator: "word" (numbers, words and symbols are tokens:
  /// game24::game24_word_tokenizer_json) or "char" (one token per character). The PRM and ORM
  /// inherit it from the generator.
  std::string tokenizer = "word";
  /// Continue SFT from this generator folder instead of a fresh seeded initialisation
  /// (empty: fresh). With another seed the continuation sees new traces.
  std::string sft_init;
  /// Generator SFT.
  train::OptimParams sft{.steps = 4000, .batch_size = 32, .lr = 3e-3, .warmup = 25};
  /// Puzzles (from the training split) whose sampled solutions get labelled (>= 1; more
  /// than the split holds means all of them: 1162 with the default test ranks and dev size).
  int label_puzzles = 1162;
  /// Solutions sampled per labelled puzzle (>= 1).
  int samples_per_puzzle = 6;
  /// Rollouts and depth of the Math-Shepherd labeller.
  train::LabelParams label{
      .rollouts = 8, .max_depth = 6, .max_step_tokens = 48, .max_batch = 512, .progress = {}};
  /// Sampling temperature of the generator while sampling and rolling out (> 0).
  double temperature = 1.0;
  /// The PRM's per-step targets: "soft" (the fraction of rollouts that reached 24) or
  /// "hard" (1 if any did: Math-Shepherd's hard estimation).
  std::string prm_targets = "soft";
  /// PRM training (initialised from the generator's trunk).
  train::OptimParams prm{.steps = 2400, .batch_size = 32, .lr = 2e-3, .warmup = 10};
  /// ORM training (initialised from the generator's trunk).
  train::OptimParams orm{.steps = 1200, .batch_size = 32, .lr = 2e-3, .warmup = 10};
  /// STaR iterations (>= 0).
  int star_iterations = 2;
  /// Seed of the STaR stage alone (its puzzles, searches, replay traces and fine-tunes);
  /// unset: `seed`. The split stays `seed`'s, so STaR can be repeated with other seeds on one
  /// pipeline's generator to measure its seed noise (docs/training.md).
  std::optional<std::uint64_t> star_seed;
  /// Training puzzles searched per STaR iteration (>= 1).
  int star_puzzles = 600;
  /// Beam search of STaR: beams N and width M (N a multiple of M).
  int star_beams = 16, star_width = 4;
  /// Replay in each STaR fine-tune: fresh synthetic SFT traces (the `traces` mix) added per
  /// kept trajectory (>= 0; 0 fine-tunes on the kept trajectories alone). Without replay a
  /// few hundred trajectories overfit: greedy dev accuracy fell from 39% to 26% and 34%.
  double star_replay = 1.0;
  /// Fine-tuning per STaR iteration.
  train::OptimParams star{.steps = 100, .batch_size = 32, .lr = 5e-4, .warmup = 8};
  /// Draw a progress bar (a TTY) instead of progress lines.
  bool tty = false;
  /// The command line that reproduces the run (written to the logs and model cards).
  std::string command;

  void validate() const;
};

/// The tokenizer.json of a new generator: "word" (game24::game24_word_tokenizer_json) or
/// "char" (one token per character of game24::game24_chars). InvalidArgument naming
/// `tokenizer` otherwise.
std::string train_tokenizer_json(std::string_view kind);

/// Greedy accuracy of the generator in `dir` on `problems` (one greedy solution each,
/// checked exactly), in [0, 1].
double greedy_accuracy(const std::string& dir, std::span<const Problem> problems, int threads);

/// The Game of 24 pipeline as a TrainingRecipe: stages sft, label, prm, orm, star ("all"
/// runs them in order, then writes DIR/logs/all.json and the model cards), and "cards"
/// alone. Bad params throw InvalidArgument (PipelineParams.field) before any stage runs;
/// a stage's missing inputs (e.g. "prm" before "label") IoError / ParseError naming the file.
class TrainRecipe final : public train::TrainingRecipe {
 public:
  explicit TrainRecipe(PipelineParams params);
  ~TrainRecipe() override;

  std::string name() const override { return "game24"; }
  std::vector<std::string> stages() const override;
  std::vector<std::string> extra_stages() const override { return {"cards"}; }
  void validate() const override { params_.validate(); }
  void run_stage(const std::string& stage, std::ostream& log) override;
  void after_all(double seconds, std::ostream& log) override;

  const PipelineParams& params() const { return params_; }

  struct Ctx;  // the split and paths of a run (src/tasks/game24/train_recipe.cpp)

 private:
  PipelineParams params_;
  std::unique_ptr<Ctx> ctx_;  // the split and paths, made by the first data stage
};

/// train::run_recipe(TrainRecipe(params), stage, log).
void run_train_stage(const std::string& stage, const PipelineParams& params, std::ostream& log);

/// Writes MODEL_CARD.md into each model folder of params.out_dir from the stages' logs.
void write_model_cards(const PipelineParams& params, std::ostream& log);

}  // namespace qstar::game24
