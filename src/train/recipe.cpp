// run_recipe and the helpers recipes share. See include/qstar/train/recipe.hpp.
#include "qstar/train/recipe.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <ostream>

#include "qstar/error.hpp"

namespace qstar::train {

void run_recipe(TrainingRecipe& recipe, const std::string& stage, std::ostream& log) {
  const auto stages = recipe.stages();
  const auto extra = recipe.extra_stages();
  const auto has = [&](const std::vector<std::string>& v) {
    return std::find(v.begin(), v.end(), stage) != v.end();
  };
  if (stage != "all" && !has(stages) && !has(extra)) {
    std::string list;
    for (const auto* v : {&stages, &extra})
      for (const auto& s : *v) list += s + ", ";
    throw InvalidArgument(fmt::format("train: unknown stage '{}' ({}all)", stage, list));
  }
  recipe.validate();
  if (stage != "all") {
    recipe.run_stage(stage, log);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& s : stages) recipe.run_stage(s, log);
  recipe.after_all(seconds_since(t0), log);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ThreadScope::ThreadScope(int n) : old_(at::get_num_threads()) { at::set_num_threads(n); }
ThreadScope::~ThreadScope() { at::set_num_threads(old_); }

ProgressBar::ProgressBar(std::ostream& out, bool tty, std::string label, int total)
    : out_(out), tty_(tty), label_(std::move(label)), total_(total),
      t0_(std::chrono::steady_clock::now()) {}

void ProgressBar::operator()(int done, double loss) {
  ema_ = done == 1 ? loss : 0.9 * ema_ + 0.1 * loss;
  const double el = seconds_since(t0_);
  const double eta = done ? el / done * (total_ - done) : 0.0;
  if (tty_) {
    constexpr int W = 30;
    const int fill = total_ ? W * done / total_ : W;
    out_ << fmt::format("\r{:<14} [{}{}] {:>5}/{} loss {:.4f} {:6.1f}s ETA {:6.1f}s", label_,
                        std::string(static_cast<std::size_t>(fill), '#'),
                        std::string(static_cast<std::size_t>(W - fill), '.'), done, total_, ema_,
                        el, eta)
         << std::flush;
    if (done == total_) out_ << "\n";
  } else {
    const int every = std::max(1, total_ / 10);
    if (done == total_ || done % every == 0)
      out_ << fmt::format("[train] {}: step {}/{}, loss {:.4f}, {:.1f}s elapsed, ETA {:.1f}s\n",
                          label_, done, total_, ema_, el, eta)
           << std::flush;
  }
}

json::Value optim_json(const OptimParams& o) {
  json::Value v = json::Value::object();
  v.set("steps", o.steps);
  v.set("batch_size", o.batch_size);
  v.set("lr", o.lr);
  v.set("warmup", o.warmup);
  v.set("min_lr_ratio", o.min_lr_ratio);
  v.set("weight_decay", o.weight_decay);
  v.set("grad_clip", o.grad_clip);
  v.set("optimizer", "AdamW(beta1=0.9, beta2=0.95, eps=1e-8), linear warmup + cosine decay");
  return v;
}

json::Value report_json(const TrainReport& r) {
  json::Value v = json::Value::object();
  v.set("first_loss", r.first_loss);
  v.set("last_loss", r.last_loss);
  v.set("seconds", r.seconds);
  v.set("tokens", r.tokens);
  json::Value curve = json::Value::array();  // every ~5% of the run
  const std::size_t every = std::max<std::size_t>(1, r.losses.size() / 20);
  for (std::size_t i = 0; i < r.losses.size(); i += every) {
    json::Value pt = json::Value::array();
    pt.push_back(static_cast<std::int64_t>(i + 1));
    pt.push_back(r.losses[i]);
    curve.push_back(std::move(pt));
  }
  v.set("loss_curve", std::move(curve));
  return v;
}

json::Value spec_json(const hf::ModelSpec& s) {
  json::Value v = json::Value::object();
  v.set("architecture", s.architecture);
  v.set("vocab_size", s.vocab_size);
  v.set("hidden_size", s.hidden_size);
  v.set("intermediate_size", s.intermediate_size);
  v.set("num_hidden_layers", s.num_hidden_layers);
  v.set("num_attention_heads", s.num_attention_heads);
  v.set("num_key_value_heads", s.num_key_value_heads);
  v.set("parameters", s.num_parameters());
  return v;
}

void write_json(const std::string& path, const json::Value& v) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open for writing", path));
  f << json::dump(v) << "\n";
  if (!f) throw IoError(fmt::format("{}: write failed", path));
}

}  // namespace qstar::train
