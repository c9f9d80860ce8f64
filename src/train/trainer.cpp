// The generic trainer: encoding, the AdamW loop and the generator / verifier entry points.
// See include/qstar/train/trainer.hpp.
#include "qstar/train/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "qstar/core/rng.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "train/trainable_decoder.hpp"

namespace qstar::train {

using detail::TrainableDecoder;

// ---- params -----------------------------------------------------------------------------

void OptimParams::validate(std::string_view what) const {
  auto bad = [&](std::string_view field, const std::string& why) {
    throw InvalidArgument(fmt::format("{}.{}: {}", what, field, why));
  };
  if (steps < 1) bad("steps", fmt::format("must be >= 1, got {}", steps));
  if (batch_size < 1) bad("batch_size", fmt::format("must be >= 1, got {}", batch_size));
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr", fmt::format("must be finite and > 0, got {}", lr));
  if (warmup < 0 || warmup >= steps)
    bad("warmup", fmt::format("must be in [0, steps={}), got {}", steps, warmup));
  if (!(min_lr_ratio >= 0 && min_lr_ratio <= 1))
    bad("min_lr_ratio", fmt::format("must be in [0, 1], got {}", min_lr_ratio));
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    bad("weight_decay", fmt::format("must be finite and >= 0, got {}", weight_decay));
  if (!(grad_clip > 0) || !std::isfinite(grad_clip))
    bad("grad_clip", fmt::format("must be finite and > 0, got {}", grad_clip));
}

// ---- encoding -------------------------------------------------------------------------------

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Turns prompts + steps into token ids, splitting off the tokens every prompt starts with
/// (an instruction common to all prompts), which the trainable decoder runs once per batch.
class Encoder {
 public:
  // The shared prefix is cut at a token boundary: the longest run of leading token ids that
  // every prompt's own encoding shares. Cutting the text instead would tokenize differently
  // from the whole prompt (a word tokenizer reads " " + "1" where search reads " 1"), and
  // the model would learn a prompt it never sees.
  Encoder(const std::string& tokenizer_json, const std::vector<const std::string*>& prompts)
      : tok_(hf::Tokenizer::from_json(tokenizer_json)) {
    bool first = true;
    std::string last;
    std::size_t min_len = static_cast<std::size_t>(-1);
    for (const std::string* p : prompts) {
      if (!first && *p == last) continue;
      const auto ids = tok_.encode(*p);
      if (first) {
        prefix_.assign(ids.begin(), ids.end());
        first = false;
      } else {
        std::size_t n = 0;
        while (n < prefix_.size() && n < ids.size() && prefix_[n] == ids[n]) ++n;
        prefix_.resize(n);
      }
      last = *p;
      min_len = std::min(min_len, ids.size());
    }
    // Every suffix keeps at least its prompt's last token: it predicts the first step token.
    if (!prefix_.empty() && prefix_.size() >= min_len) prefix_.resize(min_len > 0 ? min_len - 1 : 0);
  }
  const std::vector<std::int64_t>& prefix() const { return prefix_; }

  struct Encoded {
    std::vector<std::int64_t> ids;       // the suffix (after the shared prefix)
    std::vector<std::uint8_t> train;     // ids[t] is a step token (trained)
    std::vector<std::int64_t> step_end;  // positions (in ids) of each step's delimiter
  };
  /// The exact tokens LMGenerator / PrmVerifier see (the prompt tokenized whole, then each
  /// step and its delimiter), minus the shared prefix.
  Encoded encode(const std::string& prompt, const std::vector<std::string>& steps) const {
    Encoded e;
    const auto ids = tok_.encode(prompt);
    const bool shared = ids.size() >= prefix_.size() &&
                        std::equal(prefix_.begin(), prefix_.end(), ids.begin(),
                                   [](std::int64_t x, auto y) { return x == static_cast<std::int64_t>(y); });
    if (!shared) throw Error("trainer: a prompt does not start with the examples' shared prefix");
    for (std::size_t i = prefix_.size(); i < ids.size(); ++i) e.ids.push_back(ids[i]);
    e.train.assign(e.ids.size(), 0);
    for (const auto& s : steps) {
      for (auto id : tok_.encode(s + std::string(kStepDelimiter))) {
        e.ids.push_back(id);
        e.train.push_back(1);
      }
      e.step_end.push_back(static_cast<std::int64_t>(e.ids.size()) - 1);
    }
    return e;
  }

 private:
  hf::Tokenizer tok_;
  std::vector<std::int64_t> prefix_;
};

/// AdamW (decoupled weight decay, not applied to 1-D RMSNorm weights), hand-written on
/// ATen so it is the same under LibTorch 1.13 and 2.x.
class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, double wd) : params_(std::move(params)), wd_(wd) {
    for (const auto& p : params_) {
      m_.push_back(at::zeros_like(p).detach());
      v_.push_back(at::zeros_like(p).detach());
    }
  }
  /// Clips the global gradient norm to `clip`, takes one step at `lr`, clears the grads.
  /// Returns the gradient norm before clipping.
  double step(double lr, double clip) {
    c10::AutoGradMode no_grad(false);
    ++t_;
    double sq = 0.0;
    for (const auto& p : params_)
      if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
    const double norm = std::sqrt(sq);
    const double mult = norm > clip ? clip / (norm + 1e-6) : 1.0;
    const double b1 = 0.9, b2 = 0.95, eps = 1e-8;
    const double c1 = 1.0 - std::pow(b1, t_), c2 = 1.0 - std::pow(b2, t_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      at::Tensor p = params_[i];
      if (!p.grad().defined()) continue;
      const at::Tensor g = p.grad() * mult;
      m_[i].mul_(b1).add_(g, 1.0 - b1);
      v_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
      if (p.dim() > 1 && wd_ > 0) p.mul_(1.0 - lr * wd_);
      const at::Tensor denom = (v_[i] / c2).sqrt_().add_(eps);
      p.addcdiv_(m_[i], denom, -lr / c1);
      p.mutable_grad() = at::Tensor();
    }
    return norm;
  }

 private:
  std::vector<at::Tensor> params_, m_, v_;
  double wd_;
  std::int64_t t_ = 0;
};

double lr_at(const OptimParams& o, int step) {
  if (step < o.warmup) return o.lr * (step + 1) / (o.warmup + 1);
  const double prog = static_cast<double>(step - o.warmup) / std::max(1, o.steps - o.warmup);
  const double cosv = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, prog)));
  return o.lr * (o.min_lr_ratio + (1.0 - o.min_lr_ratio) * cosv);
}

/// Right-padded [B, S] ids of the chosen examples.
at::Tensor pad_ids(const std::vector<const Encoder::Encoded*>& batch, std::int64_t S) {
  at::Tensor ids = at::zeros({static_cast<std::int64_t>(batch.size()), S},
                             at::TensorOptions().dtype(at::kLong));
  auto* d = ids.data_ptr<std::int64_t>();
  for (std::size_t b = 0; b < batch.size(); ++b)
    std::copy(batch[b]->ids.begin(), batch[b]->ids.end(), d + static_cast<std::int64_t>(b) * S);
  return ids;
}

at::Tensor prefix_tensor(const Encoder& enc) {
  return at::tensor(at::ArrayRef<std::int64_t>(enc.prefix()), at::TensorOptions().dtype(at::kLong));
}

/// Next-token cross-entropy on the trained (step) tokens of a batch; returns the mean loss
/// tensor and the number of trained tokens.
std::pair<at::Tensor, std::int64_t> lm_loss(const TrainableDecoder& net, const Encoder& enc,
                                            const std::vector<const Encoder::Encoded*>& batch) {
  std::int64_t S = 0;
  for (const auto* e : batch) S = std::max<std::int64_t>(S, static_cast<std::int64_t>(e->ids.size()));
  const at::Tensor ids = pad_ids(batch, S);
  const auto B = static_cast<std::int64_t>(batch.size());
  at::Tensor w = at::zeros({B, S - 1}, at::TensorOptions().dtype(at::kFloat));
  auto* wd = w.data_ptr<float>();
  std::int64_t n = 0;
  for (std::int64_t b = 0; b < B; ++b) {
    const auto& tr = batch[static_cast<std::size_t>(b)]->train;
    for (std::size_t t = 1; t < tr.size(); ++t)
      if (tr[t]) {
        wd[b * (S - 1) + static_cast<std::int64_t>(t) - 1] = 1.0f;
        ++n;
      }
  }
  const at::Tensor h = net.hidden(prefix_tensor(enc), ids);
  const at::Tensor logits = net.lm_logits(h.narrow(1, 0, S - 1));  // [B, S-1, V]
  const at::Tensor logp = at::log_softmax(logits, -1);
  const at::Tensor tgt = ids.narrow(1, 1, S - 1).unsqueeze(-1);
  const at::Tensor nll = -logp.gather(-1, tgt).squeeze(-1);  // [B, S-1]
  return {(nll * w).sum() / static_cast<double>(std::max<std::int64_t>(n, 1)), n};
}

/// Binary cross-entropy of sigmoid(score) at every step end against the targets.
at::Tensor verifier_loss(const TrainableDecoder& net, const Encoder& enc,
                         const std::vector<const Encoder::Encoded*>& batch,
                         const std::vector<const std::vector<double>*>& targets) {
  std::int64_t S = 0;
  for (const auto* e : batch) S = std::max<std::int64_t>(S, static_cast<std::int64_t>(e->ids.size()));
  const at::Tensor ids = pad_ids(batch, S);
  std::vector<std::int64_t> rows;
  std::vector<float> y;
  for (std::size_t b = 0; b < batch.size(); ++b)
    for (std::size_t i = 0; i < batch[b]->step_end.size(); ++i) {
      rows.push_back(static_cast<std::int64_t>(b) * S + batch[b]->step_end[i]);
      y.push_back(static_cast<float>((*targets[b])[i]));
    }
  const at::Tensor h = net.hidden(prefix_tensor(enc), ids);
  const at::Tensor sel = h.reshape({-1, h.size(-1)})
                             .index_select(0, at::tensor(at::ArrayRef<std::int64_t>(rows),
                                                         at::TensorOptions().dtype(at::kLong)));
  const at::Tensor logit = net.score(sel).select(-1, 0);
  const at::Tensor target = at::tensor(at::ArrayRef<float>(y), at::TensorOptions().dtype(at::kFloat));
  return at::binary_cross_entropy_with_logits(logit, target);
}

/// The optimisation loop shared by every stage: shuffled epochs over n examples.
template <class LossFn>
TrainReport optimize(TrainableDecoder& net, std::size_t n, const OptimParams& o, std::uint64_t seed,
                     const std::function<void(int, double)>& progress, LossFn&& loss_of) {
  o.validate("OptimParams");
  if (n == 0) throw InvalidArgument("training: no examples");
  TrainReport r;
  const auto t0 = std::chrono::steady_clock::now();
  AdamW opt(net.parameters(), o.weight_decay);
  Rng rng(derive_seed(seed, std::uint64_t{0xba7c4}));
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::size_t cursor = n;
  for (int step = 0; step < o.steps; ++step) {
    std::vector<std::size_t> idx;
    for (int b = 0; b < o.batch_size; ++b) {
      if (cursor == n) {
        for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
        cursor = 0;
      }
      idx.push_back(order[cursor++]);
    }
    at::Tensor loss = loss_of(idx, r.tokens);
    loss.backward();
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) throw Error(fmt::format("training diverged: loss {} at step {}", lv, step));
    opt.step(lr_at(o, step), o.grad_clip);
    r.losses.push_back(lv);
    if (progress) progress(step + 1, lv);
  }
  const std::size_t k = std::max<std::size_t>(1, r.losses.size() / 10);
  r.first_loss = std::accumulate(r.losses.begin(), r.losses.begin() + static_cast<std::ptrdiff_t>(k), 0.0) / k;
  r.last_loss = std::accumulate(r.losses.end() - static_cast<std::ptrdiff_t>(k), r.losses.end(), 0.0) / k;
  r.seconds = seconds_since(t0);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

template <class Example>
std::vector<const std::string*> prompts_of(const std::vector<Example>& examples) {
  std::vector<const std::string*> out;
  out.reserve(examples.size());
  for (const auto& e : examples) out.push_back(&e.prompt);
  return out;
}

struct ThreadScope {
  explicit ThreadScope(int n) : old(at::get_num_threads()) { at::set_num_threads(n); }
  ~ThreadScope() { at::set_num_threads(old); }
  int old;
};

}  // namespace

// ---- training entry points ------------------------------------------------------------------

TrainReport train_generator(const std::string& init_dir, const hf::ModelSpec& spec,
                            const std::vector<TextExample>& examples, const OptimParams& optim,
                            std::uint64_t seed, const std::string& out_dir, int threads,
                            const std::function<void(int, double)>& progress,
                            const std::string& tokenizer_json) {
  optim.validate("train_generator");
  if (init_dir.empty() && tokenizer_json.empty())
    throw InvalidArgument("train_generator: tokenizer_json: a new model (no init_dir) needs one");
  ThreadScope ts(threads);
  const std::string tokenizer =
      !init_dir.empty() ? read_text(init_dir + "/tokenizer.json") : tokenizer_json;
  const Encoder enc(tokenizer, prompts_of(examples));
  TrainableDecoder net = [&] {
    if (!init_dir.empty()) return TrainableDecoder::load(init_dir);
    hf::ModelSpec s = spec;
    s.vocab_size = static_cast<int>(hf::Tokenizer::from_json(tokenizer).vocab_size());
    return TrainableDecoder::from_tensors(s, hf::init_weights(s, seed));
  }();
  std::vector<Encoder::Encoded> data;
  data.reserve(examples.size());
  for (const auto& e : examples) data.push_back(enc.encode(e.prompt, e.steps));
  auto report = optimize(net, data.size(), optim, seed, progress,
                         [&](const std::vector<std::size_t>& idx, std::int64_t& tokens) {
                           std::vector<const Encoder::Encoded*> batch;
                           for (auto i : idx) {
                             batch.push_back(&data[i]);
                             tokens += static_cast<std::int64_t>(data[i].ids.size());
                           }
                           return lm_loss(net, enc, batch).first;
                         });
  net.save(out_dir, tokenizer);
  return report;
}

TrainReport train_verifier(const std::string& init_dir, const std::vector<ScoredExample>& examples,
                           const OptimParams& optim, std::uint64_t seed,
                           const std::string& out_dir, int threads,
                           const std::function<void(int, double)>& progress) {
  optim.validate("train_verifier");
  ThreadScope ts(threads);
  const std::string tokenizer = read_text(init_dir + "/tokenizer.json");
  const Encoder enc(tokenizer, prompts_of(examples));
  TrainableDecoder base = TrainableDecoder::load(init_dir);
  TrainableDecoder net = base.spec().is_token_classification() ? std::move(base)
                                                        : base.as_token_classifier(1, seed);
  std::vector<Encoder::Encoded> data;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const auto& e = examples[i];
    if (e.targets.size() != e.steps.size())
      throw InvalidArgument(fmt::format("train_verifier: example {}: {} targets for {} steps", i,
                                        e.targets.size(), e.steps.size()));
    for (double t : e.targets)
      if (!(t >= 0 && t <= 1))
        throw InvalidArgument(fmt::format("train_verifier: example {}: target {} not in [0, 1]", i, t));
    data.push_back(enc.encode(e.prompt, e.steps));
  }
  auto report = optimize(net, data.size(), optim, seed, progress,
                         [&](const std::vector<std::size_t>& idx, std::int64_t& tokens) {
                           std::vector<const Encoder::Encoded*> batch;
                           std::vector<const std::vector<double>*> targets;
                           for (auto i : idx) {
                             batch.push_back(&data[i]);
                             targets.push_back(&examples[i].targets);
                             tokens += static_cast<std::int64_t>(data[i].ids.size());
                           }
                           return verifier_loss(net, enc, batch, targets);
                         });
  net.save(out_dir, tokenizer);
  return report;
}

double generator_loss(const std::string& dir, const std::vector<TextExample>& examples) {
  c10::AutoGradMode no_grad(false);
  const Encoder enc(read_text(dir + "/tokenizer.json"), prompts_of(examples));
  const TrainableDecoder net = TrainableDecoder::load(dir);
  double total = 0;
  std::int64_t n = 0;
  for (std::size_t lo = 0; lo < examples.size(); lo += 64) {
    std::vector<Encoder::Encoded> data;
    for (std::size_t i = lo; i < std::min(examples.size(), lo + 64); ++i)
      data.push_back(enc.encode(examples[i].prompt, examples[i].steps));
    std::vector<const Encoder::Encoded*> batch;
    for (const auto& d : data) batch.push_back(&d);
    auto [loss, k] = lm_loss(net, enc, batch);
    total += loss.item<double>() * static_cast<double>(k);
    n += k;
  }
  return n ? total / static_cast<double>(n) : 0.0;
}

}  // namespace qstar::train
