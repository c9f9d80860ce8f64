// The trainable decoder: the inference decoder's layer functions on autograd tensors.
// See trainable_decoder.hpp.
#include "train/trainable_decoder.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "qstar/error.hpp"
#include "torch/models/layers.hpp"

namespace qstar::train::detail {

namespace layers = lm::layers;

TrainableDecoder TrainableDecoder::from_tensors(const hf::ModelSpec& spec,
                                const std::vector<hf::NamedTensor>& tensors) {
  const auto want = hf::expected_tensors(spec);
  if (tensors.size() != want.size())
    throw InvalidArgument(fmt::format("TrainableDecoder: {} tensors given, the spec needs {}",
                                      tensors.size(), want.size()));
  TrainableDecoder n;
  n.spec_ = spec;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.name != want[i].name || t.shape != want[i].shape)
      throw InvalidArgument(fmt::format("TrainableDecoder: tensor {} is '{}', expected '{}'", i, t.name,
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
  n.inv_freq_ = layers::rope_inv_freq(hd, spec.rope_theta);
  return n;
}

TrainableDecoder TrainableDecoder::load(const std::string& dir) {
  return from_tensors(hf::read_model_spec(dir), hf::read_model_tensors(dir));
}

const at::Tensor& TrainableDecoder::p(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) throw Error(fmt::format("TrainableDecoder: no tensor '{}'", name));
  return params_[it->second];
}

at::Tensor TrainableDecoder::hidden(const at::Tensor& prefix, const at::Tensor& ids) const {
  const std::int64_t B = ids.size(0), S = ids.size(1);
  const std::int64_t P = prefix.defined() ? prefix.numel() : 0;
  const std::int64_t H = spec_.num_attention_heads, KV = spec_.num_key_value_heads;
  const std::int64_t D = spec_.hidden_size, hd = D / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const double eps = spec_.rms_norm_eps;
  const auto flt = at::TensorOptions().dtype(at::kFloat);
  const auto lng = at::TensorOptions().dtype(at::kLong);
  const float ninf = -std::numeric_limits<float>::infinity();

  auto rope = [&](std::int64_t from, std::int64_t len) {  // [len, hd] each
    return layers::rope_tables(at::arange(from, from + len, lng).to(at::kFloat), inv_freq_,
                               at::kFloat);
  };
  const auto [cos_s, sin_s] = rope(P, S);
  // Suffix queries see every prefix key and the suffix keys up to themselves.
  at::Tensor mask_s;
  {
    const at::Tensor qi = at::arange(S, lng).unsqueeze(1), kj = at::arange(S, lng).unsqueeze(0);
    at::Tensor allowed = kj.le(qi);
    if (P > 0) allowed = at::cat({at::ones({S, P}, lng).to(at::kBool), allowed}, 1);
    mask_s = at::zeros({S, P + S}, flt)
                 .masked_fill(allowed.logical_not(), ninf)
                 .view({1, 1, 1, S, P + S});
  }
  at::Tensor x = at::embedding(p("model.embed_tokens.weight"), ids);  // [B, S, D]
  at::Tensor xp, cos_p, sin_p, mask_p;
  if (P > 0) {
    xp = at::embedding(p("model.embed_tokens.weight"), prefix.view({1, P}));  // [1, P, D]
    std::tie(cos_p, sin_p) = rope(0, P);
    const at::Tensor qi = at::arange(P, lng).unsqueeze(1), kj = at::arange(P, lng).unsqueeze(0);
    mask_p = at::zeros({P, P}, flt).masked_fill(kj.gt(qi), ninf).view({1, 1, 1, P, P});
  }
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
      return layers::swiglu_mlp(layers::rms_norm(y, n2, eps), wg, {}, wu, {}, wd, {});
    };
    const at::Tensor h = layers::rms_norm(x, n1, eps);
    at::Tensor q = layers::linear(h, wq).view({B, S, H, hd}).transpose(1, 2);
    at::Tensor k = layers::linear(h, wk).view({B, S, KV, hd}).transpose(1, 2);
    at::Tensor v = layers::linear(h, wv).view({B, S, KV, hd}).transpose(1, 2);
    q = layers::apply_rope(q, cos_s, sin_s);
    k = layers::apply_rope(k, cos_s, sin_s);
    at::Tensor K = k, V = v;
    at::Tensor xp_next;
    if (P > 0) {
      const at::Tensor hp = layers::rms_norm(xp, n1, eps);
      at::Tensor qp = layers::linear(hp, wq).view({1, P, H, hd}).transpose(1, 2);
      at::Tensor kp = layers::linear(hp, wk).view({1, P, KV, hd}).transpose(1, 2);
      const at::Tensor vp = layers::linear(hp, wv).view({1, P, KV, hd}).transpose(1, 2);
      qp = layers::apply_rope(qp, cos_p, sin_p);
      kp = layers::apply_rope(kp, cos_p, sin_p);
      K = at::cat({kp.expand({B, KV, P, hd}), k}, 2);
      V = at::cat({vp.expand({B, KV, P, hd}), v}, 2);
      if (l + 1 < L) {  // the prefix's own states feed the next layer's keys and values
        const at::Tensor ap = layers::gqa_attention(qp, kp, vp, mask_p, scale, at::kFloat);
        xp_next = xp + layers::linear(ap, wo);
        xp_next = xp_next + mlp(xp_next);
      }
    }
    const at::Tensor a = layers::gqa_attention(q, K, V, mask_s, scale, at::kFloat);
    x = x + layers::linear(a, wo);
    x = x + mlp(x);
    xp = xp_next;
  }
  return layers::rms_norm(x, p("model.norm.weight"), eps);
}

at::Tensor TrainableDecoder::lm_logits(const at::Tensor& h) const {
  if (spec_.is_token_classification()) throw Error("TrainableDecoder: a token classifier has no lm head");
  return at::linear(h, spec_.tie_word_embeddings ? p("model.embed_tokens.weight") : p("lm_head.weight"));
}

at::Tensor TrainableDecoder::score(const at::Tensor& h) const {
  if (!spec_.is_token_classification()) throw Error("TrainableDecoder: a causal LM has no score head");
  return at::linear(h, p("score.weight"));
}

std::vector<hf::NamedTensor> TrainableDecoder::to_named() const {
  auto out = hf::expected_tensors(spec_);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const at::Tensor t = params_[i].detach().contiguous();
    out[i].data.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  return out;
}

void TrainableDecoder::save(const std::string& dir, const std::string& tokenizer_json,
                    const std::map<std::string, std::string>& metadata) const {
  const auto named = to_named();
  hf::write_model_folder(dir, spec_, named, tokenizer_json, metadata);
}

TrainableDecoder TrainableDecoder::as_token_classifier(int num_labels, std::uint64_t seed) const {
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

}  // namespace qstar::train::detail
