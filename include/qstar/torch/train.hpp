// Training the Game of 24 models with LibTorch: the generator (LlamaForCausalLM), the PRM
// and the ORM (LlamaForTokenClassification, one label, sigmoid), all sharing one word-level
// tokenizer (game24::game24_word_tokenizer_json; "char" is the character-level alternative).
// No LibTorch in this header (src/torch/train*.cpp).
//
// Stages (run_stage / run_all; `qstar train STAGE --out DIR`):
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
// The text a model is trained on is exactly what the backends read at search time: the
// generator sees Game24Task::format(problem) followed by each step's text and "\n"
// (LMGenerator's default prompt_template and step_delimiter), and the PRM / ORM read the
// same characters with the "\n" after each step as its tag (PrmVerifier's token-class
// default step_tag "\n", no separator). Every stage writes DIR/logs/<stage>.json.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "qstar/tasks/game24_data.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/train/labeller.hpp"

namespace qstar::train {

/// One optimisation run: AdamW, linear warmup then cosine decay to min_lr_ratio * lr.
struct OptimParams {
  /// Optimiser steps (>= 1).
  int steps = 100;
  /// Sequences per step (>= 1).
  int batch_size = 32;
  /// Peak learning rate (> 0).
  double lr = 1e-3;
  /// Warmup steps (>= 0, < steps).
  int warmup = 20;
  /// The learning rate decays to lr * min_lr_ratio (in [0, 1]).
  double min_lr_ratio = 0.1;
  /// AdamW decoupled weight decay (>= 0).
  double weight_decay = 0.01;
  /// Global gradient-norm clip (> 0).
  double grad_clip = 1.0;

  /// InvalidArgument naming `what`.field.
  void validate(std::string_view what) const;
};

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
  OptimParams sft{.steps = 4000, .batch_size = 32, .lr = 3e-3, .warmup = 25};
  /// Puzzles (from the training split) whose sampled solutions get labelled (>= 1).
  int label_puzzles = 1000;
  /// Solutions sampled per labelled puzzle (>= 1).
  int samples_per_puzzle = 4;
  /// Rollouts and depth of the Math-Shepherd labeller.
  LabelParams label{.rollouts = 8, .max_depth = 6, .max_step_tokens = 48, .max_batch = 512};
  /// Sampling temperature of the generator while sampling and rolling out (> 0).
  double temperature = 1.0;
  /// PRM training (initialised from the generator's trunk).
  OptimParams prm{.steps = 1600, .batch_size = 32, .lr = 2e-3, .warmup = 10};
  /// ORM training (initialised from the generator's trunk).
  OptimParams orm{.steps = 800, .batch_size = 32, .lr = 2e-3, .warmup = 10};
  /// STaR iterations (>= 0).
  int star_iterations = 2;
  /// Training puzzles searched per STaR iteration (>= 1).
  int star_puzzles = 600;
  /// Beam search of STaR: beams N and width M (N a multiple of M).
  int star_beams = 16, star_width = 4;
  /// Replay in each STaR fine-tune: fresh synthetic SFT traces (the `traces` mix) added per
  /// kept trajectory (>= 0; 0 fine-tunes on the kept trajectories alone). Without replay a
  /// few hundred trajectories overfit: greedy dev accuracy fell from 39% to 26% and 34%.
  double star_replay = 1.0;
  /// Fine-tuning per STaR iteration.
  OptimParams star{.steps = 100, .batch_size = 32, .lr = 5e-4, .warmup = 8};
  /// Draw a progress bar (a TTY) instead of progress lines.
  bool tty = false;
  /// The command line that reproduces the run (written to the logs and model cards).
  std::string command;

  void validate() const;
};

/// What one optimisation run measured.
struct TrainReport {
  std::vector<double> losses;  ///< the training loss of every step
  double first_loss = 0.0;     ///< mean over the first 10% of steps
  double last_loss = 0.0;      ///< mean over the last 10% of steps
  double seconds = 0.0;        ///< wall time
  std::int64_t tokens = 0;     ///< sequence tokens processed (prompts included)
};

/// One generator training example: a prompt (Game24Task::format) and the steps after it.
struct TextExample {
  std::string prompt;
  std::vector<std::string> steps;
};

/// One verifier training example: a prompt, its steps and a target in [0, 1] per step.
struct ScoredExample {
  std::string prompt;
  std::vector<std::string> steps;
  std::vector<double> targets;  ///< one per step
};

/// Fine-tunes (or, with init_dir empty, creates from `spec` and `seed`) a causal LM on
/// `examples` and writes it to out_dir (config.json, model.safetensors, tokenizer.json: a
/// fine-tuned model keeps init_dir's; a new one gets game24::game24_word_tokenizer_json() for
/// `tokenizer` "word" or the character tokenizer of game24::game24_chars() for "char"). The
/// loss is the next-token cross-entropy on the steps' tokens and their "\n" delimiters.
/// `progress` receives (step, loss).
TrainReport train_generator(const std::string& init_dir, const hf::ModelSpec& spec,
                            const std::vector<TextExample>& examples, const OptimParams& optim,
                            std::uint64_t seed, const std::string& out_dir, int threads,
                            const std::function<void(int, double)>& progress = {},
                            std::string_view tokenizer = "word");

/// Trains a one-label token-classification model on `examples` (binary cross-entropy of the
/// sigmoid of the score head at each step's "\n" against the step's target) and writes it
/// to out_dir. It starts from init_dir: a causal LM (its trunk is kept, the score head is
/// initialised from `seed`) or a token classifier (fine-tuned as is).
TrainReport train_verifier(const std::string& init_dir, const std::vector<ScoredExample>& examples,
                           const OptimParams& optim, std::uint64_t seed,
                           const std::string& out_dir, int threads,
                           const std::function<void(int, double)>& progress = {});

/// The mean loss of a causal LM folder on `examples` (the train_generator loss, no update).
double generator_loss(const std::string& dir, const std::vector<TextExample>& examples);

/// Greedy accuracy of the generator in `dir` on `problems` (one greedy solution each,
/// checked exactly), in [0, 1].
double greedy_accuracy(const std::string& dir, std::span<const Problem> problems, int threads);

/// Runs one stage ("sft", "label", "prm", "orm", "star", "cards") or "all". Progress goes
/// to `log`. InvalidArgument for an unknown stage or bad params; IoError / ParseError for
/// missing inputs of a stage (e.g. "prm" before "label"), naming the file.
void run_stage(const std::string& stage, const PipelineParams& params, std::ostream& log);

}  // namespace qstar::train
