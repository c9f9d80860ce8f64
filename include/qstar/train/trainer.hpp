// The generic trainer of qstar::train (optional target; LibTorch inside, none in this
// header): supervised fine-tuning of a causal LM on prompt + steps, and training of a
// one-label token-classification verifier (PRM / ORM) on per-step targets, both with
// AdamW (linear warmup, cosine decay) on a trainable decoder built from the inference
// decoder's layer functions. Task-specific pipelines (data, labelling, search-based
// stages) are TrainingRecipes (qstar/train/recipe.hpp) that live with their task.
//
// The text a model is trained on is exactly what the backends read at search time: the
// generator sees the prompt tokenized whole (as LMGenerator's defaults encode it), followed
// by each step's text and kStepDelimiter (LMGenerator's default step_delimiter), and the verifier reads the same
// tokens with the delimiter after each step as its tag (PrmVerifier's token-class default
// step_tag "\n", no separator).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/hf/model_io.hpp"

namespace qstar::train {

/// What ends every step of a training example ("\n": LMGeneratorParams::step_delimiter's
/// and PrmParams' token-class step_tag's default).
inline constexpr std::string_view kStepDelimiter = "\n";

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

/// What one optimisation run measured.
struct TrainReport {
  std::vector<double> losses;  ///< the training loss of every step
  double first_loss = 0.0;     ///< mean over the first 10% of steps
  double last_loss = 0.0;      ///< mean over the last 10% of steps
  double seconds = 0.0;        ///< wall time
  std::int64_t tokens = 0;     ///< sequence tokens processed (prompts included)
};

/// One generator training example: a prompt (the task's Task::format) and the steps after it.
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
/// fine-tuned model keeps init_dir's; a new one gets `tokenizer_json`, which must then not
/// be empty, and sets spec.vocab_size). The loss is the next-token cross-entropy on the
/// steps' tokens and their delimiters (the prompt is context only). The longest token
/// prefix every prompt of `examples` shares runs once per batch (TrainableDecoder's
/// shared-prefix forward; the loss is the same as without it, up to float rounding). `progress` receives (step, loss); `threads` sets LibTorch's intra-op threads.
TrainReport train_generator(const std::string& init_dir, const hf::ModelSpec& spec,
                            const std::vector<TextExample>& examples, const OptimParams& optim,
                            std::uint64_t seed, const std::string& out_dir, int threads,
                            const std::function<void(int, double)>& progress = {},
                            const std::string& tokenizer_json = {});

/// Trains a one-label token-classification model on `examples` (binary cross-entropy of the
/// sigmoid of the score head at each step's delimiter against the step's target) and writes
/// it to out_dir. It starts from init_dir: a causal LM (its trunk is kept, the score head is
/// initialised from `seed`) or a token classifier (fine-tuned as is).
TrainReport train_verifier(const std::string& init_dir, const std::vector<ScoredExample>& examples,
                           const OptimParams& optim, std::uint64_t seed,
                           const std::string& out_dir, int threads,
                           const std::function<void(int, double)>& progress = {});

/// The mean loss of a causal LM folder on `examples` (the train_generator loss, no update).
double generator_loss(const std::string& dir, const std::vector<TextExample>& examples);

}  // namespace qstar::train
