// Training pipelines over the generic trainer (qstar::train): a TrainingRecipe names its
// stages and runs them; run_recipe() runs one stage or "all" of them in order. A task
// ships its recipe beside the task (under qstar/tasks/<task>/); `qstar train STAGE` runs
// the recipe of the selected task. The helpers below are what
// recipes share: a progress bar, and the JSON pieces of the per-stage logs.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/train/trainer.hpp"

namespace qstar::train {

/// A task's training pipeline.
class TrainingRecipe {
 public:
  virtual ~TrainingRecipe() = default;
  /// The task it trains for (the task registry's name).
  virtual std::string name() const = 0;
  /// Its stages, in the order "all" runs them (never "all").
  virtual std::vector<std::string> stages() const = 0;
  /// Stages run_recipe() accepts besides stages() and "all", run alone (e.g. "cards").
  virtual std::vector<std::string> extra_stages() const { return {}; }
  /// Checks the recipe's parameters (InvalidArgument naming the field); called before any
  /// stage runs.
  virtual void validate() const {}
  /// Runs one stage of stages() or extra_stages(); progress goes to `log`.
  virtual void run_stage(const std::string& stage, std::ostream& log) = 0;
  /// Runs after "all" has run every stage (`seconds`: their wall time), e.g. to write
  /// model cards. Nothing by default.
  virtual void after_all(double seconds, std::ostream& log) {
    (void)seconds;
    (void)log;
  }
};

/// Runs `stage` of `recipe`, or every stage in order and then after_all() for "all".
/// InvalidArgument listing the stages for an unknown one.
void run_recipe(TrainingRecipe& recipe, const std::string& stage, std::ostream& log);

/// A progress bar with loss and ETA on a TTY, else a line about every 10% ("[train] label:
/// step i/n, loss x, ..."). Pass it (std::ref) as a train_* progress callback.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool tty, std::string label, int total);
  void operator()(int done, double loss);

 private:
  std::ostream& out_;
  bool tty_;
  std::string label_;
  int total_;
  std::chrono::steady_clock::time_point t0_;
  double ema_ = 0.0;
};

/// Seconds since `t0`.
double seconds_since(std::chrono::steady_clock::time_point t0);
/// The JSON of an OptimParams (with the optimiser's description).
json::Value optim_json(const OptimParams& o);
/// first/last loss, seconds, tokens and a ~20-point loss curve.
json::Value report_json(const TrainReport& r);
/// The architecture and shape of a model spec, with its parameter count.
json::Value spec_json(const hf::ModelSpec& s);
/// Writes `v` and a newline to `path`; IoError naming the file.
void write_json(const std::string& path, const json::Value& v);

/// RAII: LibTorch's intra-op threads set to `n` for the scope, restored after.
class ThreadScope {
 public:
  explicit ThreadScope(int n);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int old_;
};

}  // namespace qstar::train
