// The trainer: TrainNet (autograd Llama), AdamW, the generator / verifier training loops and
// the Game of 24 pipeline stages. See include/qstar/torch/train.hpp.
#include "qstar/torch/train.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "qstar/core/json.hpp"
#include "qstar/core/rng.hpp"
#include "qstar/search/beam.hpp"
#include "qstar/tasks/game24.hpp"
#include "qstar/tasks/game24/vocab.hpp"
#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"
#include "qstar/hf/tokenizer.hpp"
#include "torch/train_net.hpp"

namespace qstar::train {

namespace fs = std::filesystem;
using detail::TrainNet;
using game24::data::Multiset;

// ---- TrainNet ---------------------------------------------------------------------------

namespace detail {

TrainNet TrainNet::from_tensors(const hf::ModelSpec& spec,
                                const std::vector<hf::NamedTensor>& tensors) {
  const auto want = hf::expected_tensors(spec);
  if (tensors.size() != want.size())
    throw InvalidArgument(fmt::format("TrainNet: {} tensors given, the spec needs {}",
                                      tensors.size(), want.size()));
  TrainNet n;
  n.spec_ = spec;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.name != want[i].name || t.shape != want[i].shape)
      throw InvalidArgument(fmt::format("TrainNet: tensor {} is '{}', expected '{}'", i, t.name,
                                        want[i].name));
    at::Tensor x = at::from_blob(const_cast<float*>(t.data.data()), at::IntArrayRef(t.shape),
                                 at::TensorOptions().dtype(at::kFloat))
                       .clone();
    x.set_requires_grad(true);
    n.index_[t.name] = n.params_.size();
    n.names_.push_back(t.name);
    n.params_.push_back(x);
  }
  const std::int64_t hd = spec.hidden_size / spec.num_attention_heads;
  const at::Tensor ar =
      at::arange(0, hd, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
      static_cast<double>(hd);
  n.inv_freq_ = at::reciprocal(at::pow(spec.rope_theta, ar));
  return n;
}

TrainNet TrainNet::load(const std::string& dir) {
  return from_tensors(hf::read_model_spec(dir), hf::read_model_tensors(dir));
}

const at::Tensor& TrainNet::p(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw Error(fmt::format("TrainNet: no tensor '{}'", name));
  return params_[it->second];
}

at::Tensor TrainNet::rms(const at::Tensor& x, const at::Tensor& w) const {
  const at::Tensor var = x.pow(2).mean({-1}, /*keepdim=*/true);
  return x * at::rsqrt(var + spec_.rms_norm_eps) * w;
}

namespace {
at::Tensor rotate_half(const at::Tensor& x) {
  const std::int64_t half = x.size(-1) / 2;
  return at::cat({x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)}, -1);
}
}  // namespace

at::Tensor TrainNet::hidden(const at::Tensor& prefix, const at::Tensor& ids) const {
  const std::int64_t B = ids.size(0), S = ids.size(1);
  const std::int64_t P = prefix.defined() ? prefix.numel() : 0;
  const std::int64_t H = spec_.num_attention_heads, KV = spec_.num_key_value_heads;
  const std::int64_t D = spec_.hidden_size, hd = D / H, n_rep = H / KV;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const auto flt = at::TensorOptions().dtype(at::kFloat);
  const auto lng = at::TensorOptions().dtype(at::kLong);
  const float ninf = -std::numeric_limits<float>::infinity();

  auto rope = [&](std::int64_t from, std::int64_t len) {
    const at::Tensor pos = at::arange(from, from + len, lng).to(at::kFloat);
    const at::Tensor f = pos.unsqueeze(-1) * inv_freq_;
    const at::Tensor e = at::cat({f, f}, -1);  // [len, hd]
    return std::pair{e.cos(), e.sin()};
  };
  const auto [cos_s, sin_s] = rope(P, S);
  // Suffix queries see every prefix key and the suffix keys up to themselves.
  at::Tensor mask_s;
  {
    const at::Tensor qi = at::arange(S, lng).unsqueeze(1), kj = at::arange(S, lng).unsqueeze(0);
    at::Tensor allowed = kj.le(qi);
    if (P > 0) allowed = at::cat({at::ones({S, P}, lng).to(at::kBool), allowed}, 1);
    mask_s = at::zeros({S, P + S}, flt).masked_fill(allowed.logical_not(), ninf);
  }
  at::Tensor x = at::embedding(p("model.embed_tokens.weight"), ids);  // [B, S, D]
  at::Tensor xp, cos_p, sin_p, mask_p;
  if (P > 0) {
    xp = at::embedding(p("model.embed_tokens.weight"), prefix.view({1, P}));  // [1, P, D]
    std::tie(cos_p, sin_p) = rope(0, P);
    const at::Tensor qi = at::arange(P, lng).unsqueeze(1), kj = at::arange(P, lng).unsqueeze(0);
    mask_p = at::zeros({P, P}, flt).masked_fill(kj.gt(qi), ninf);
  }
  auto attend = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& mask) {
    // q [b, H, T, hd], k/v [b, KV, T', hd]: repeat kv heads (head h reads kv head h / n_rep).
    const at::Tensor kk = n_rep > 1 ? k.repeat_interleave(n_rep, 1) : k;
    const at::Tensor vv = n_rep > 1 ? v.repeat_interleave(n_rep, 1) : v;
    const at::Tensor s = at::matmul(q, kk.transpose(-2, -1)) * scale + mask;
    return at::matmul(at::softmax(s, -1), vv);  // [b, H, T, hd]
  };
  const int L = spec_.num_hidden_layers;
  for (int l = 0; l < L; ++l) {
    const std::string pre = fmt::format("model.layers.{}.", l);
    const at::Tensor &wq = p(pre + "self_attn.q_proj.weight"), &wk = p(pre + "self_attn.k_proj.weight"),
                     &wv = p(pre + "self_attn.v_proj.weight"), &wo = p(pre + "self_attn.o_proj.weight");
    const at::Tensor& n1 = p(pre + "input_layernorm.weight");
    const at::Tensor& n2 = p(pre + "post_attention_layernorm.weight");
    const at::Tensor &wg = p(pre + "mlp.gate_proj.weight"), &wu = p(pre + "mlp.up_proj.weight"),
                     &wd = p(pre + "mlp.down_proj.weight");
    auto mlp = [&](const at::Tensor& y) {
      const at::Tensor h2 = rms(y, n2);
      return at::linear(at::silu(at::linear(h2, wg)) * at::linear(h2, wu), wd);
    };
    const at::Tensor h = rms(x, n1);
    at::Tensor q = at::linear(h, wq).view({B, S, H, hd}).transpose(1, 2);
    at::Tensor k = at::linear(h, wk).view({B, S, KV, hd}).transpose(1, 2);
    at::Tensor v = at::linear(h, wv).view({B, S, KV, hd}).transpose(1, 2);
    q = q * cos_s + rotate_half(q) * sin_s;
    k = k * cos_s + rotate_half(k) * sin_s;
    at::Tensor K = k, V = v;
    at::Tensor xp_next;
    if (P > 0) {
      const at::Tensor hp = rms(xp, n1);
      at::Tensor qp = at::linear(hp, wq).view({1, P, H, hd}).transpose(1, 2);
      at::Tensor kp = at::linear(hp, wk).view({1, P, KV, hd}).transpose(1, 2);
      const at::Tensor vp = at::linear(hp, wv).view({1, P, KV, hd}).transpose(1, 2);
      qp = qp * cos_p + rotate_half(qp) * sin_p;
      kp = kp * cos_p + rotate_half(kp) * sin_p;
      K = at::cat({kp.expand({B, KV, P, hd}), k}, 2);
      V = at::cat({vp.expand({B, KV, P, hd}), v}, 2);
      if (l + 1 < L) {  // the prefix's own states feed the next layer's keys and values
        const at::Tensor ap = attend(qp, kp, vp, mask_p).transpose(1, 2).reshape({1, P, H * hd});
        xp_next = xp + at::linear(ap, wo);
        xp_next = xp_next + mlp(xp_next);
      }
    }
    const at::Tensor a = attend(q, K, V, mask_s).transpose(1, 2).reshape({B, S, H * hd});
    x = x + at::linear(a, wo);
    x = x + mlp(x);
    xp = xp_next;
  }
  return rms(x, p("model.norm.weight"));
}

at::Tensor TrainNet::lm_logits(const at::Tensor& h) const {
  if (spec_.is_token_classification()) throw Error("TrainNet: a token classifier has no lm head");
  return at::linear(h, spec_.tie_word_embeddings ? p("model.embed_tokens.weight") : p("lm_head.weight"));
}

at::Tensor TrainNet::score(const at::Tensor& h) const {
  if (!spec_.is_token_classification()) throw Error("TrainNet: a causal LM has no score head");
  return at::linear(h, p("score.weight"));
}

std::vector<hf::NamedTensor> TrainNet::to_named() const {
  auto out = hf::expected_tensors(spec_);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const at::Tensor t = params_[i].detach().contiguous();
    out[i].data.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  return out;
}

void TrainNet::save(const std::string& dir, const std::string& tokenizer_json,
                    const std::map<std::string, std::string>& metadata) const {
  const auto named = to_named();
  hf::write_model_folder(dir, spec_, named, tokenizer_json, metadata);
}

TrainNet TrainNet::as_token_classifier(int num_labels, std::uint64_t seed) const {
  hf::ModelSpec s = spec_;
  s.architecture = "LlamaForTokenClassification";
  s.num_labels = num_labels;
  s.tie_word_embeddings = false;
  s.eos_token_id.reset();
  auto fresh = hf::init_weights(s, seed);
  const auto mine = to_named();
  for (auto& t : fresh)
    for (const auto& m : mine)
      if (m.name == t.name && m.shape == t.shape) t.data = m.data;
  return from_tensors(s, fresh);
}

}  // namespace detail

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

void PipelineParams::validate() const {
  auto bad = [](std::string_view field, const std::string& why) {
    throw InvalidArgument(fmt::format("PipelineParams.{}: {}", field, why));
  };
  if (out_dir.empty()) bad("out_dir", "empty");
  if (data_csv.empty()) bad("data_csv", "empty");
  game24::parse_ranks(test_ranks);
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
  if (!(star_replay >= 0.0 && star_replay <= 100.0))
    bad("star_replay", fmt::format("must be in [0, 100], got {}", star_replay));
  if (star_width < 1 || star_beams < star_width || star_beams % star_width != 0)
    bad("star_beams", fmt::format("must be a multiple of star_width ({}), got {}", star_width, star_beams));
}

// ---- encoding -------------------------------------------------------------------------------

namespace {

constexpr const char* kDelimiter = "\n";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Turns prompts + steps into token ids, splitting off the instruction every Game of 24
/// prompt starts with (computed once per batch).
class Encoder {
 public:
  // The shared prefix is cut at a token boundary: the longest run of leading token ids that
  // two prompts with different numbers share. Cutting the text instead ("...Input: ") would
  // tokenize differently from the whole prompt with a word tokenizer (" " + "1" in training
  // against " 1" at search time), and the model would learn a prompt it never sees.
  explicit Encoder(const std::string& tokenizer_json)
      : tok_(hf::Tokenizer::from_json(tokenizer_json)) {
    const game24::Game24Task task;
    const auto a = tok_.encode(task.format({"", "1 1 1 1", std::nullopt}));
    const auto b = tok_.encode(task.format({"", "2 2 2 2", std::nullopt}));
    std::size_t n = 0;
    while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
    prefix_.assign(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n));
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
    if (!shared) throw Error("trainer: a prompt does not start with the Game of 24 instruction's tokens");
    for (std::size_t i = prefix_.size(); i < ids.size(); ++i) e.ids.push_back(ids[i]);
    e.train.assign(e.ids.size(), 0);
    for (const auto& s : steps) {
      for (auto id : tok_.encode(s + kDelimiter)) {
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
std::pair<at::Tensor, std::int64_t> lm_loss(const TrainNet& net, const Encoder& enc,
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
at::Tensor verifier_loss(const TrainNet& net, const Encoder& enc,
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
TrainReport optimize(TrainNet& net, std::size_t n, const OptimParams& o, std::uint64_t seed,
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
                            std::string_view tokenizer_kind) {
  optim.validate("train_generator");
  if (tokenizer_kind != "word" && tokenizer_kind != "char")
    throw InvalidArgument(fmt::format("train_generator: tokenizer: must be word or char, got '{}'",
                                      tokenizer_kind));
  ThreadScope ts(threads);
  const std::string tokenizer = !init_dir.empty()          ? read_text(init_dir + "/tokenizer.json")
                                : tokenizer_kind == "word" ? game24::game24_word_tokenizer_json()
                                                           : hf::char_tokenizer_json(game24::game24_chars());
  const Encoder enc(tokenizer);
  TrainNet net = [&] {
    if (!init_dir.empty()) return TrainNet::load(init_dir);
    hf::ModelSpec s = spec;
    s.vocab_size = static_cast<int>(hf::Tokenizer::from_json(tokenizer).vocab_size());
    return TrainNet::from_tensors(s, hf::init_weights(s, seed));
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
  const Encoder enc(tokenizer);
  TrainNet base = TrainNet::load(init_dir);
  TrainNet net = base.spec().is_token_classification() ? std::move(base)
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
  const Encoder enc(read_text(dir + "/tokenizer.json"));
  const TrainNet net = TrainNet::load(dir);
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

double greedy_accuracy(const std::string& dir, std::span<const Problem> problems, int threads) {
  ThreadScope ts(threads);
  lm::LMGeneratorParams gp;
  gp.max_step_tokens = 48;
  gp.max_batch = 256;
  auto gen = lm::LMGenerator::load(dir, gp);
  const game24::Game24Task task;
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

namespace {

/// A progress bar with loss and ETA on a TTY, else a line about every 10%.
class Bar {
 public:
  Bar(std::ostream& out, bool tty, std::string label, int total)
      : out_(out), tty_(tty), label_(std::move(label)), total_(total),
        t0_(std::chrono::steady_clock::now()) {}
  void operator()(int done, double loss) {
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

 private:
  std::ostream& out_;
  bool tty_;
  std::string label_;
  int total_;
  std::chrono::steady_clock::time_point t0_;
  double ema_ = 0.0;
};

struct Ctx {
  const PipelineParams& P;
  std::ostream& log;
  game24::data::Split split;
  std::vector<Problem> test;
  std::string gen_dir, prm_dir, orm_dir, log_dir;
};

Ctx make_ctx(const PipelineParams& P, std::ostream& log) {
  P.validate();
  Ctx c{P, log, {}, {}, P.out_dir + "/generator", P.out_dir + "/prm", P.out_dir + "/orm",
        P.out_dir + "/logs"};
  c.test = game24::load_csv(P.data_csv, game24::parse_ranks(P.test_ranks));
  if (c.test.empty())
    throw InvalidArgument(fmt::format("{}: no puzzles in test ranks {}", P.data_csv, P.test_ranks));
  c.split = game24::data::make_split(c.test, P.dev_size, P.seed);
  game24::data::check_separation(c.split.train, c.test, "training split");
  game24::data::check_separation(c.split.dev, c.test, "dev split");
  std::error_code ec;
  fs::create_directories(c.log_dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create: {}", c.log_dir, ec.message()));
  return c;
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
  const game24::Game24Task task;
  // A continuation (sft_init) draws other traces than the run it continues.
  Rng rng(P.sft_init.empty() ? derive_seed(P.seed, std::uint64_t{0x5f7})
                             : derive_seed(P.seed, std::uint64_t{0x5f7}, std::uint64_t{1}));
  const std::size_t n = static_cast<std::size_t>(P.sft.steps) * static_cast<std::size_t>(P.sft.batch_size);
  std::vector<TextExample> ex;
  ex.reserve(n);
  std::map<std::string, std::int64_t> kinds;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& m = c.split.train[rng.below(c.split.train.size())];
    auto t = game24::data::sample_trace(m, rng, P.traces);
    ++kinds[t.kind];
    ex.push_back({task.format({"", game24::data::puzzle_text(m), std::nullopt}), std::move(t.steps)});
  }
  c.log << fmt::format("[train] sft: {} synthetic traces of {} training puzzles\n", n, c.split.train.size());
  hf::ModelSpec spec = P.generator;
  Bar bar(c.log, P.tty, "sft", P.sft.steps);
  const auto rep = train_generator(P.sft_init, spec, ex, P.sft, P.seed, c.gen_dir, P.threads, std::ref(bar),
                                   P.tokenizer);
  const auto dev = game24::data::to_problems(c.split.dev, "dev");
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
  ThreadScope ts(P.threads);
  const auto puzzles = pick(c.split.train, static_cast<std::size_t>(P.label_puzzles),
                            derive_seed(P.seed, std::uint64_t{0x1abe1}));
  game24::data::check_separation(puzzles, c.test, "labelled puzzles");
  const auto problems = game24::data::to_problems(puzzles, "train");
  lm::LMGeneratorParams gp;
  gp.temperature = P.temperature;
  gp.max_step_tokens = P.label.max_step_tokens;
  gp.max_batch = P.label.max_batch;
  auto gen = lm::LMGenerator::load(c.gen_dir, gp);
  const game24::Game24Task task;
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
  const auto lr = label_steps(problems, sols, task, gen, P.label, derive_seed(P.seed, std::uint64_t{2}));
  const double label_s = seconds_since(t1);
  // Write the labels, and compare them with the exact oracle (a step is good iff it is
  // legal and 24 is still reachable).
  const game24::OracleStepVerifier oracle;
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
    l.correct = v.get_bool("correct");
    if (l.soft.size() != l.steps.size())
      throw ParseError(fmt::format("{}:{}: {} labels for {} steps", path, no, l.soft.size(), l.steps.size()));
    if (!l.steps.empty()) out.push_back(std::move(l));
  }
  return out;
}

/// Validation of a verifier through the real inference path (PrmVerifier): per-step
/// agreement of score > 0.5 with the exact oracle, and outcome accuracy of the last step's
/// score against the solution's correctness.
json::Value eval_verifier(const std::string& dir, const std::vector<Labelled>& val, int threads) {
  ThreadScope ts(threads);
  lm::PrmParams pp;
  pp.max_batch = 256;
  auto prm = lm::PrmVerifier::load(dir, pp);
  const game24::Game24Task task;
  const game24::OracleStepVerifier oracle;
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
  auto all = read_labels(c.log_dir + "/labels.jsonl");
  std::vector<Multiset> used;
  for (const auto& l : all) used.push_back(game24::data::multiset_of(l.puzzle));
  game24::data::check_separation(used, c.test, "labels.jsonl");
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
  const game24::Game24Task task;
  std::vector<ScoredExample> train;
  std::vector<Labelled> val;
  for (const auto& l : all) {
    if (val_puzzles.contains(l.puzzle)) {
      val.push_back(l);
      continue;
    }
    ScoredExample e{task.format({"", l.puzzle, std::nullopt}), l.steps, {}};
    e.targets = orm ? std::vector<double>(l.steps.size(), l.correct ? 1.0 : 0.0) : l.soft;
    train.push_back(std::move(e));
  }
  const OptimParams& o = orm ? P.orm : P.prm;
  c.log << fmt::format("[train] {}: {} labelled solutions for training, {} held out\n", name,
                       train.size(), val.size());
  Bar bar(c.log, P.tty, name, o.steps);
  const std::string out = orm ? c.orm_dir : c.prm_dir;
  const auto rep = train_verifier(c.gen_dir, train, o, derive_seed(P.seed, std::uint64_t{orm ? 4u : 3u}),
                                  out, P.threads, std::ref(bar));
  json::Value v = common_json(c, name, seconds_since(t0));
  v.set("model", spec_json(hf::read_model_spec(out)));
  v.set("init", "the generator's trunk (model.*), a new score head");
  v.set("targets", orm ? "final correctness of the sampled solution, at every step's tag"
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
  const auto dev = game24::data::to_problems(c.split.dev, "dev");
  const game24::Game24Task task;
  json::Value iters = json::Value::array();
  double acc = greedy_accuracy(c.gen_dir, dev, P.threads);
  const double acc0 = acc;
  c.log << fmt::format("[train] star: greedy dev accuracy before: {:.1f}%\n", 100 * acc);
  for (int it = 0; it < P.star_iterations; ++it) {
    const auto ti = std::chrono::steady_clock::now();
    const auto puzzles = pick(c.split.train, static_cast<std::size_t>(P.star_puzzles),
                              derive_seed(P.seed, std::uint64_t{0x57a4}, static_cast<std::uint64_t>(it)));
    game24::data::check_separation(puzzles, c.test, "STaR puzzles");
    const auto problems = game24::data::to_problems(puzzles, "star");
    std::vector<TextExample> kept;
    std::int64_t solved = 0;
    {
      ThreadScope ts(P.threads);
      lm::LMGeneratorParams gp;
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
                                       derive_seed(P.seed, std::uint64_t{0x5eed}, static_cast<std::uint64_t>(it)));
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
      Rng rr(derive_seed(P.seed, std::uint64_t{0x5e91a}, static_cast<std::uint64_t>(it)));
      for (std::size_t i = 0; i < n_replay; ++i) {
        const auto& m = c.split.train[rr.below(c.split.train.size())];
        auto t = game24::data::sample_trace(m, rr, P.traces);
        kept.push_back({task.format({"", game24::data::puzzle_text(m), std::nullopt}), std::move(t.steps)});
      }
    }
    iv.set("replay_traces", static_cast<std::int64_t>(n_replay));
    const std::string cand_dir = P.out_dir + "/.star_candidate";
    Bar bar(c.log, P.tty, fmt::format("star {}", it + 1), P.star.steps);
    const auto rep = train_generator(c.gen_dir, P.generator, kept, P.star,
                                     derive_seed(P.seed, std::uint64_t{0x57a}, static_cast<std::uint64_t>(it)),
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

void write_model_cards(const PipelineParams& P, std::ostream& log);

void run_stage(const std::string& stage, const PipelineParams& params, std::ostream& log) {
  static const std::set<std::string> kStages = {"sft", "label", "prm", "orm", "star", "cards", "all"};
  if (!kStages.contains(stage))
    throw InvalidArgument(fmt::format(
        "train: unknown stage '{}' (sft, label, prm, orm, star, cards, all)", stage));
  if (stage == "cards") {
    params.validate();
    write_model_cards(params, log);
    return;
  }
  Ctx c = make_ctx(params, log);
  const auto t0 = std::chrono::steady_clock::now();
  auto run = [&](const std::string& s) {
    if (s == "sft") stage_sft(c);
    else if (s == "label") stage_label(c);
    else if (s == "prm") stage_verifier(c, false);
    else if (s == "orm") stage_verifier(c, true);
    else if (s == "star") stage_star(c);
  };
  if (stage == "all") {
    for (const char* s : {"sft", "label", "prm", "orm", "star"}) run(s);
    json::Value v = json::Value::object();
    v.set("seconds", seconds_since(t0));
    v.set("command", params.command);
    v.set("seed", static_cast<std::int64_t>(params.seed));
    v.set("threads", params.threads);
    write_json(c.log_dir + "/all.json", v);
    write_model_cards(params, log);
    log << fmt::format("[train] all stages done in {:.0f}s\n", seconds_since(t0));
  } else {
    run(stage);
  }
}

}  // namespace qstar::train
