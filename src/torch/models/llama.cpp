// The Llama-style decoder: loading from a Hugging Face folder and the batched, ragged,
// cached forward, and the llama family. See models/llama.hpp for the math.
#include "torch/models/llama.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "qstar/error.hpp"
#include "qstar/torch/threads.hpp"
#include "torch/kernels/small_m_linear.hpp"
#include "torch/models/layers.hpp"

namespace qstar::lm {

namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::string shape_str(const std::vector<std::int64_t>& s) { return shape_str(at::IntArrayRef(s)); }

// Drops the pages of [p, p + n) that lie wholly inside the range from this process's
// read-only file mapping once they are copied out: without it every weight would count twice
// in the resident set while loading (the mapped file pages plus the copy). The page cache
// keeps them, and the mapping re-reads them from the file if touched again.
void release_mapped(const std::byte* p, std::size_t n) {
  static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + n) / page * page;
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Reads weights out of a WeightStore into device tensors, checking shapes. Matrices (2-D:
// embedding, projections, heads) get the storage dtype; vectors (norms, biases) the compute
// dtype.
class Loader {
 public:
  Loader(const hf::WeightStore& ws, std::string dir, at::TensorOptions target,
         at::ScalarType storage)
      : ws_(ws), dir_(std::move(dir)), target_(target), storage_(storage) {}

  // The tensor `name` with exactly `shape`; ParseError naming the file and tensor when it
  // is missing (and `required`) or mis-shaped. Undefined when absent and not required.
  at::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape,
                 bool required = true, std::string_view hint = {}) const {
    const hf::TensorView* t = ws_.find(name);
    if (t == nullptr) {
      if (!required) return {};
      throw ParseError(fmt::format("{}: tensor '{}' is missing (expected shape {}){}", where(),
                                   name, shape_str(shape), hint));
    }
    if (t->shape != shape) {
      throw ParseError(fmt::format("{}: tensor '{}' has shape {}, expected {} from {}/config.json",
                                   file_of(name), name, shape_str(t->shape), shape_str(shape),
                                   dir_));
    }
    // Copy through an aligned CPU buffer: the mapped data may be unaligned.
    at::Tensor host =
        at::empty(at::IntArrayRef(t->shape), at::TensorOptions().dtype(to_scalar_type(t->dtype)));
    if (t->nbytes != host.nbytes()) {
      throw ParseError(fmt::format("{}: tensor '{}' holds {} bytes, expected {}", file_of(name),
                                   name, t->nbytes, host.nbytes()));
    }
    if (t->nbytes) std::memcpy(host.data_ptr(), t->data, t->nbytes);
    release_mapped(t->data, t->nbytes);
    // A file already in the target dtype on CPU: `to` returns `host` itself (no second copy).
    return host.to(shape.size() == 2 ? target_.dtype(storage_) : target_);
  }

  std::string file_of(const std::string& name) const {
    std::string f = ws_.file_of(name);
    return f.empty() ? where() : f;
  }
  std::string where() const { return ws_.source().empty() ? dir_ : dir_ + "/" + ws_.source(); }

 private:
  const hf::WeightStore& ws_;
  std::string dir_;
  at::TensorOptions target_;
  at::ScalarType storage_;
};

/// Per-row symmetric int8 of a float32 CPU [N, K] matrix (kernels::quantize_rows_int8):
/// {int8 [N, K], float32 scales [N]}.
std::pair<at::Tensor, at::Tensor> quantize_int8(const at::Tensor& w) {
  const at::Tensor c = w.to(at::kFloat).contiguous();
  at::Tensor q = at::empty(c.sizes(), at::TensorOptions().dtype(at::kChar));
  at::Tensor s = at::empty({c.size(0)}, at::TensorOptions().dtype(at::kFloat));
  kernels::quantize_rows_int8(c.data_ptr<float>(), c.size(0), c.size(1), q.data_ptr<std::int8_t>(),
                              s.data_ptr<float>());
  return {q, s};
}

/// The additive float32 mask [B, 1, 1, T, P + T] over keys [past (padded to P) | new (padded
/// to T)]: query i of sequence b sees past key j < P_b and new key j' <= i, and with
/// `window` > 0 only keys fewer than `window` tokens back in cache order (P_b + i - j for a
/// past key, i - j' for a new one), as transformers' sliding_window_overlay. Padded queries
/// (i >= T_b) see at least themselves, so no row is all -inf; real queries never see a
/// padded key. `past_lens` [B] int64 on the device.
at::Tensor attention_mask(std::int64_t B, std::int64_t T, std::int64_t P, const at::Tensor& past_lens,
                          std::int64_t window) {
  const auto dev_long = at::TensorOptions().dtype(at::kLong).device(past_lens.device());
  const at::Tensor qi = at::arange(T, dev_long).view({1, T, 1});
  const at::Tensor kj = at::arange(T, dev_long).view({1, 1, T});
  at::Tensor allowed = kj.le(qi);  // [1, T, T]
  if (window > 0) allowed = allowed.logical_and((qi - kj).lt(window));
  allowed = allowed.expand({B, T, T});
  if (P > 0) {
    const at::Tensor pj = at::arange(P, dev_long).view({1, 1, P});
    const at::Tensor pl = past_lens.view({B, 1, 1});
    at::Tensor past_ok = pj.lt(pl);  // [B, 1, P]
    if (window > 0) past_ok = past_ok.logical_and((pl + qi - pj).lt(window));  // [B, T, P]
    allowed = at::cat({past_ok.expand({B, T, P}), allowed}, 2);
  }
  return at::full({B, T, P + T}, -std::numeric_limits<float>::infinity(),
                  at::TensorOptions().dtype(at::kFloat).device(past_lens.device()))
      .masked_fill_(allowed, 0.0)
      .view({B, 1, 1, T, P + T});
}

}  // namespace

// ---- loading -----------------------------------------------------------------------------

std::shared_ptr<LlamaDecoder> LlamaDecoder::load(const hf::ModelConfig& cfg, const std::string& dir,
                                                 const LoadOptions& options,
                                                 const LlamaLayout& layout, std::string family) {
  c10::InferenceMode guard;
  const std::string config_path = dir + "/config.json";
  const std::string& arch = cfg.architecture;
  const bool score_head = cfg.has_score_head();
  // RoPE type and fields were validated with the config; head_dim must be even.
  (void)Rope::from_config(cfg, config_path, at::kCPU);
  if (cfg.num_key_value_heads <= 0 || cfg.num_attention_heads % cfg.num_key_value_heads != 0) {
    throw ParseError(
        fmt::format("{}: num_key_value_heads: {} does not divide num_attention_heads {}",
                    config_path, cfg.num_key_value_heads, cfg.num_attention_heads));
  }
  if (score_head && cfg.num_labels <= 0) {
    throw ParseError(fmt::format("{}: num_labels: must be positive for {}, got {}", config_path,
                                 arch, cfg.num_labels));
  }

  const auto [device, dtype] = resolve_device(options);
  if (device.is_cpu() && options.keep_freed_memory) (void)keep_freed_memory();
  hf::WeightStore ws = hf::WeightStore::open_dir(dir);

  std::shared_ptr<LlamaDecoder> m(new LlamaDecoder(cfg, dir, std::move(family), device, dtype));

  const std::int64_t V = cfg.vocab_size, D = cfg.hidden_size, I = cfg.intermediate_size;
  const std::int64_t H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, hd = cfg.head_dim;

  try {
    const at::ScalarType storage = to_scalar_type(options.dtype);  // == dtype on CUDA
    Loader ld(ws, dir, at::TensorOptions().dtype(dtype).device(device), storage);
    m->set_weight_dtype(options.int8 ? at::kChar : storage);
    // A linear layer's matrix, quantised to int8 with its row scales `s` under options.int8.
    const auto mat = [&](const std::string& name, const std::vector<std::int64_t>& shape, at::Tensor& w,
                         at::Tensor& s) {
      w = ld.get(name, shape);
      if (options.int8) std::tie(w, s) = quantize_int8(w);
    };
    m->embed_ = ld.get("model.embed_tokens.weight", {V, D});
    m->layers_.resize(static_cast<std::size_t>(cfg.num_hidden_layers));
    for (int i = 0; i < cfg.num_hidden_layers; ++i) {
      Layer& L = m->layers_[static_cast<std::size_t>(i)];
      const std::string p = fmt::format("model.layers.{}.", i);
      L.input_norm = ld.get(p + "input_layernorm.weight", {D});
      L.post_norm = ld.get(p + "post_attention_layernorm.weight", {D});
      mat(p + "self_attn.q_proj.weight", {H * hd, D}, L.wq, L.sq);
      mat(p + "self_attn.k_proj.weight", {KV * hd, D}, L.wk, L.sk);
      mat(p + "self_attn.v_proj.weight", {KV * hd, D}, L.wv, L.sv);
      mat(p + "self_attn.o_proj.weight", {D, H * hd}, L.wo, L.so);
      if (layout.qkv_bias) {
        L.bq = ld.get(p + "self_attn.q_proj.bias", {H * hd});
        L.bk = ld.get(p + "self_attn.k_proj.bias", {KV * hd});
        L.bv = ld.get(p + "self_attn.v_proj.bias", {KV * hd});
      }
      if (layout.o_bias) L.bo = ld.get(p + "self_attn.o_proj.bias", {D});
      if (layout.qk_norm) {
        L.q_norm = ld.get(p + "self_attn.q_norm.weight", {hd});
        L.k_norm = ld.get(p + "self_attn.k_norm.weight", {hd});
      }
      L.window = cfg.sliding_window_of(i);
      mat(p + "mlp.gate_proj.weight", {I, D}, L.w_gate, L.s_gate);
      mat(p + "mlp.up_proj.weight", {I, D}, L.w_up, L.s_up);
      mat(p + "mlp.down_proj.weight", {D, I}, L.w_down, L.s_down);
      if (layout.mlp_bias) {
        L.b_gate = ld.get(p + "mlp.gate_proj.bias", {I});
        L.b_up = ld.get(p + "mlp.up_proj.bias", {I});
        L.b_down = ld.get(p + "mlp.down_proj.bias", {D});
      }
    }
    m->norm_ = ld.get("model.norm.weight", {D});
    if (score_head) {
      m->head_ = ScoreHead::load(cfg, [&](const std::string& name, const std::vector<std::int64_t>& shape,
                                           bool required) { return ld.get(name, shape, required); });
    } else {
      // Tied checkpoints usually omit lm_head.weight; an untied one must have it.
      m->lm_head_ = ld.get("lm_head.weight", {V, D}, /*required=*/!cfg.tie_word_embeddings,
                           "; config.json has tie_word_embeddings false");
      if (!m->lm_head_.defined()) m->lm_head_ = m->embed_;
      if (options.int8) std::tie(m->lm_head_, m->lm_head_scale_) = quantize_int8(m->lm_head_);
    }
    m->set_device(m->embed_.device());  // "cuda" → "cuda:N", so segment checks compare equal
    m->rope_ = Rope::from_config(cfg, config_path, m->device());
  } catch (const c10::Error& e) {
    throw Error(fmt::format("{}: loading the model on {} failed: {}", dir, options.device,
                            e.what_without_backtrace()));
  }
  return m;
}

std::size_t LlamaDecoder::weight_bytes() const {
  std::size_t n = 0;
  auto add = [&](const at::Tensor& t) {
    if (t.defined()) n += static_cast<std::size_t>(t.numel()) * t.element_size();
  };
  add(embed_);
  add(norm_);
  if (lm_head_.defined() && !lm_head_.is_same(embed_)) add(lm_head_);
  add(lm_head_scale_);
  n += head_.bytes();
  for (const Layer& L : layers_)
    for (const at::Tensor* t :
         {&L.input_norm, &L.post_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.bo,
          &L.w_gate, &L.w_up, &L.w_down, &L.b_gate, &L.b_up, &L.b_down, &L.q_norm, &L.k_norm,
          &L.sq, &L.sk, &L.sv, &L.so, &L.s_gate, &L.s_up, &L.s_down})
      add(*t);
  return n;
}

// ---- forward -----------------------------------------------------------------------------

at::Tensor LlamaDecoder::lm_logits(const at::Tensor& hidden) const {
  if (!has_lm_head()) {
    throw InvalidArgument(fmt::format("logits: model {} ({}) has no language-model head", dir(),
                                      config().architecture));
  }
  c10::InferenceMode guard;
  return layers::linear(hidden, lm_head_, {}, lm_head_scale_).to(at::kFloat);
}

at::Tensor LlamaDecoder::score(const at::Tensor& hidden) const {
  if (!has_score_head()) {
    throw InvalidArgument(fmt::format("score: model {} ({}) has no token-classification head", dir(),
                                      config().architecture));
  }
  return head_.apply(hidden);
}

std::vector<SequenceOutput> LlamaDecoder::forward(std::span<const SequenceInput> batch,
                                                const ForwardOptions& options) const {
  c10::InferenceMode guard;
  std::vector<SequenceOutput> out(batch.size());
  if (batch.empty()) return out;
  if (options.logits != LogitsMode::None && !has_lm_head()) {
    throw InvalidArgument(
        fmt::format("forward: model {} ({}) has no language-model head; "
                    "use LogitsMode::None and score() on the hidden states",
                    dir(), config().architecture));
  }

  const auto B = static_cast<std::int64_t>(batch.size());
  const std::int64_t n_layers = config().num_hidden_layers;
  const std::int64_t H = config().num_attention_heads, KV = config().num_key_value_heads;
  const std::int64_t hd = config().head_dim, D = config().hidden_size;
  
  // Lengths and validation.
  std::vector<std::int64_t> t_len(batch.size()), p_len(batch.size()), pos0(batch.size());
  std::int64_t T = 0, P = 0;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const SequenceInput& s = batch[b];
    if (s.tokens.empty())
      throw InvalidArgument(fmt::format("forward: sequence {}: no new tokens", b));
    for (std::int64_t id : s.tokens)
      if (id < 0 || id >= config().vocab_size)
        throw InvalidArgument(fmt::format("forward: sequence {}: token id {} out of [0, {})", b, id,
                                          config().vocab_size));
    std::int64_t past = 0;
    for (std::size_t j = 0; j < s.past.size(); ++j) {
      const KVSegment* seg = s.past[j];
      if (seg == nullptr || seg->length() == 0) continue;
      const std::int64_t len = seg->length();
      if (static_cast<std::int64_t>(seg->k.size()) != n_layers ||
          static_cast<std::int64_t>(seg->v.size()) != n_layers)
        throw InvalidArgument(
            fmt::format("forward: sequence {} segment {}: {} K / {} V layers, "
                        "expected {}",
                        b, j, seg->k.size(), seg->v.size(), n_layers));
      for (std::int64_t l = 0; l < n_layers; ++l)
        for (const at::Tensor* t :
             {&seg->k[static_cast<std::size_t>(l)], &seg->v[static_cast<std::size_t>(l)]}) {
          if (!t->defined() || t->dim() != 3 || t->size(0) != KV || t->size(1) != len ||
              t->size(2) != hd || t->device() != device() || t->scalar_type() != dtype())
            throw InvalidArgument(fmt::format(
                "forward: sequence {} segment {} layer {}: expected a {} [{}, {}, {}] tensor on {}",
                b, j, l, c10::toString(dtype()), KV, len, hd, device().str()));
        }
      past += len;
    }
    if (s.position < -1)
      throw InvalidArgument(
          fmt::format("forward: sequence {}: negative position {}", b, s.position));
    t_len[b] = static_cast<std::int64_t>(s.tokens.size());
    p_len[b] = past;
    pos0[b] = s.position < 0 ? past : s.position;
    T = std::max(T, t_len[b]);
    P = std::max(P, past);
  }
  const std::int64_t S = P + T;

  try {
    const auto cpu_long = at::TensorOptions().dtype(at::kLong);
    const auto dev_act = at::TensorOptions().dtype(dtype()).device(device());

    // Token ids (padded with 0) and explicit position ids.
    at::Tensor ids = at::zeros({B, T}, cpu_long);
    at::Tensor pos = at::empty({B, T}, cpu_long);
    at::Tensor past_lens = at::empty({B}, cpu_long);
    {
      auto* ip = ids.data_ptr<std::int64_t>();
      auto* pp = pos.data_ptr<std::int64_t>();
      for (std::int64_t b = 0; b < B; ++b) {
        const auto& toks = batch[static_cast<std::size_t>(b)].tokens;
        std::copy(toks.begin(), toks.end(), ip + b * T);
        for (std::int64_t i = 0; i < T; ++i) pp[b * T + i] = pos0[static_cast<std::size_t>(b)] + i;
        past_lens.data_ptr<std::int64_t>()[b] = p_len[static_cast<std::size_t>(b)];
      }
    }
    ids = ids.to(device());
    pos = pos.to(device());

    // RoPE tables [B, 1, T, hd]: float32, cast to the compute dtype (as HF). Each
    // sequence's length so far matters to dynamic NTK only.
    std::vector<std::int64_t> lengths(batch.size());
    for (std::size_t b = 0; b < batch.size(); ++b) lengths[b] = pos0[b] + t_len[b];
    const auto [cos, sin] = rope_.tables(pos, lengths, dtype());

    // The causal mask, and the sliding layers' one when a key can be `window` or more
    // tokens back (else it equals the causal one).
    const at::Tensor past_lens_dev = past_lens.to(device());
    const at::Tensor mask = attention_mask(B, T, P, past_lens_dev, 0);
    std::int64_t window = 0, reach = 0;
    for (const Layer& L : layers_) window = std::max(window, L.window);
    for (std::size_t b = 0; b < batch.size(); ++b) reach = std::max(reach, p_len[b] + t_len[b]);
    const at::Tensor window_mask =
        window > 0 && reach > window ? attention_mask(B, T, P, past_lens_dev, window) : mask;

    for (auto& o : out) {
      o.kv.k.resize(static_cast<std::size_t>(n_layers));
      o.kv.v.resize(static_cast<std::size_t>(n_layers));
    }

    // Past assembly plan. Gather: per layer, cat the distinct segments (plus a zero row
    // for padding) and pick every sequence's padded past with one index_select.
    std::size_t pairs = 0;
    for (const auto& s : batch)
      for (const KVSegment* seg : s.past) pairs += (seg != nullptr && seg->length() > 0) ? 1 : 0;
    const bool gather =
        P > 0 && (options.past == PastAssembly::Gather ||
                  (options.past == PastAssembly::Auto && device().is_cuda() && pairs > 2));
    std::vector<const KVSegment*> uniq;
    at::Tensor gather_index, zero_row;
    if (gather) {
      std::vector<std::int64_t> seg_off;
      std::int64_t total = 0;
      std::vector<std::int64_t> idx(static_cast<std::size_t>(B * P));
      bool padded = false;
      for (std::int64_t b = 0; b < B; ++b) {
        std::int64_t j = 0;
        for (const KVSegment* seg : batch[static_cast<std::size_t>(b)].past) {
          if (seg == nullptr || seg->length() == 0) continue;
          const auto it = std::find(uniq.begin(), uniq.end(), seg);
          std::int64_t off;
          if (it == uniq.end()) {
            uniq.push_back(seg);
            seg_off.push_back(total);
            off = total;
            total += seg->length();
          } else {
            off = seg_off[static_cast<std::size_t>(it - uniq.begin())];
          }
          for (std::int64_t t = 0; t < seg->length(); ++t)
            idx[static_cast<std::size_t>(b * P + j++)] = off + t;
        }
        padded = padded || j < P;
        for (; j < P; ++j) idx[static_cast<std::size_t>(b * P + j)] = -1;
      }
      if (padded) {
        zero_row = at::zeros({KV, 1, hd}, dev_act);
        for (auto& i : idx)
          if (i < 0) i = total;
      }
      gather_index = at::tensor(idx, cpu_long).to(device());
    }

    const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
    const double eps = config().rms_norm_eps;
    at::Tensor x = layers::embedding(embed_, ids, dtype());  // [B, T, D]
    for (std::int64_t l = 0; l < n_layers; ++l) {
      const Layer& L = layers_[static_cast<std::size_t>(l)];
      const auto ul = static_cast<std::size_t>(l);
      const at::Tensor h = layers::rms_norm_inference(x, L.input_norm, eps);
      at::Tensor q = layers::linear(h, L.wq, L.bq, L.sq).view({B, T, H, hd});
      at::Tensor k = layers::linear(h, L.wk, L.bk, L.sk).view({B, T, KV, hd});
      const at::Tensor v = layers::linear(h, L.wv, L.bv, L.sv).view({B, T, KV, hd}).transpose(1, 2);
      if (L.q_norm.defined()) {  // Qwen3: RMSNorm over head_dim, per head, before RoPE
        q = layers::rms_norm(q, L.q_norm, eps);
        k = layers::rms_norm(k, L.k_norm, eps);
      }
      q = q.transpose(1, 2);
      k = k.transpose(1, 2);
      q = layers::apply_rope_inference(q, cos, sin);  // [B, H, T, hd], contiguous
      k = layers::apply_rope_inference(k, cos, sin);  // [B, KV, T, hd]

      // The new tokens' KV: one owning contiguous tensor per sequence, or views.
      for (std::int64_t b = 0; b < B; ++b) {
        const auto ub = static_cast<std::size_t>(b);
        at::Tensor kb = k.select(0, b).narrow(1, 0, t_len[ub]);
        at::Tensor vb = v.select(0, b).narrow(1, 0, t_len[ub]);
        if (options.copy_kv) {
          kb = kb.clone(at::MemoryFormat::Contiguous);
          vb = vb.clone(at::MemoryFormat::Contiguous);
        }
        out[ub].kv.k[ul] = std::move(kb);
        out[ub].kv.v[ul] = std::move(vb);
      }

      // Keys and values over [past (padded to P) | new (padded to T)].
      at::Tensor K = k, Vv = v;
      if (P > 0 && gather) {
        K = at::empty({B, KV, S, hd}, dev_act);
        Vv = at::empty({B, KV, S, hd}, dev_act);
        for (int side = 0; side < 2; ++side) {
          std::vector<at::Tensor> parts;
          parts.reserve(uniq.size() + 1);
          for (const KVSegment* seg : uniq) parts.push_back(side == 0 ? seg->k[ul] : seg->v[ul]);
          if (zero_row.defined()) parts.push_back(zero_row);
          const at::Tensor src =
              parts.size() == 1 ? parts.front() : at::cat(parts, 1);  // [KV, n, hd]
          const at::Tensor past =
              src.index_select(1, gather_index).view({KV, B, P, hd}).permute({1, 0, 2, 3});
          at::Tensor& dst = side == 0 ? K : Vv;
          dst.narrow(2, 0, P).copy_(past);
          dst.narrow(2, P, T).copy_(side == 0 ? k : v);
        }
      } else if (P > 0) {
        K = at::empty({B, KV, S, hd}, dev_act);
        Vv = at::empty({B, KV, S, hd}, dev_act);
        for (std::int64_t b = 0; b < B; ++b) {
          const auto ub = static_cast<std::size_t>(b);
          at::Tensor kb = K.select(0, b), vb = Vv.select(0, b);
          std::int64_t off = 0;
          for (const KVSegment* seg : batch[ub].past) {
            if (seg == nullptr || seg->length() == 0) continue;
            const std::int64_t len = seg->length();
            kb.narrow(1, off, len).copy_(seg->k[ul]);
            vb.narrow(1, off, len).copy_(seg->v[ul]);
            off += len;
          }
          if (off < P) {  // padding: zeros, so masked weights (0) times values stay 0
            kb.narrow(1, off, P - off).zero_();
            vb.narrow(1, off, P - off).zero_();
          }
        }
        K.narrow(2, P, T).copy_(k);
        Vv.narrow(2, P, T).copy_(v);
      }

      const at::Tensor attn = layers::gqa_attention_inference(
          q, K, Vv, L.window > 0 ? window_mask : mask, scale, dtype());
      // In place: x is this forward's own buffer (the embedding rows' copy), nothing else
      // holds it.
      x.add_(layers::linear(attn, L.wo, L.bo, L.so));
      const at::Tensor h2 = layers::rms_norm_inference(x, L.post_norm, eps);
      x.add_(layers::swiglu_mlp_inference(h2, L.w_gate, L.b_gate, L.w_up, L.b_up, L.w_down, L.b_down, L.s_gate,
                                          L.s_up, L.s_down));
    }
    x = layers::rms_norm_inference(x, norm_, eps);  // [B, T, D]

    if (options.hidden)
      for (std::int64_t b = 0; b < B; ++b)
        out[static_cast<std::size_t>(b)].hidden =
            x.select(0, b).narrow(0, 0, t_len[static_cast<std::size_t>(b)]);

    if (options.logits != LogitsMode::None) {
      const bool last = options.logits == LogitsMode::Last;
      const bool uniform =
          std::all_of(t_len.begin(), t_len.end(), [&](std::int64_t t) { return t == T; });
      at::Tensor rows;  // [N, D]: the real rows wanted, sequence by sequence
      if (last) {
        std::vector<std::int64_t> idx(batch.size());
        for (std::size_t b = 0; b < batch.size(); ++b)
          idx[b] = static_cast<std::int64_t>(b) * T + t_len[b] - 1;
        rows = x.reshape({B * T, D}).index_select(0, at::tensor(idx, cpu_long).to(device()));
      } else if (uniform) {
        rows = x.reshape({B * T, D});
      } else {
        std::vector<std::int64_t> idx;
        for (std::size_t b = 0; b < batch.size(); ++b)
          for (std::int64_t i = 0; i < t_len[b]; ++i)
            idx.push_back(static_cast<std::int64_t>(b) * T + i);
        rows = x.reshape({B * T, D}).index_select(0, at::tensor(idx, cpu_long).to(device()));
      }
      const at::Tensor logits = layers::linear(rows, lm_head_, {}, lm_head_scale_).to(at::kFloat);
      std::int64_t off = 0;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        const std::int64_t n = last ? 1 : t_len[b];
        out[b].logits = logits.narrow(0, off, n);
        off += n;
      }
    }
  } catch (const c10::Error& e) {
    throw Error(fmt::format("forward: model {} on {}: {}", dir(), device().str(),
                            e.what_without_backtrace()));
  }
  return out;
}

// ---- the llama family -------------------------------------------------------------------------

DecoderFamily llama_family() {
  DecoderFamily f;
  f.name = "llama";
  f.model_types = {"llama"};
  f.architectures = {"LlamaForCausalLM", "LlamaForTokenClassification", "LlamaForSequenceClassification"};
  f.load = [](const hf::ModelConfig& cfg, const std::string& dir, const LoadOptions& options) {
    // attention_bias puts a bias on q, k, v and o; mlp_bias on the three MLP projections.
    LlamaLayout layout;
    layout.qkv_bias = cfg.attention_bias;
    layout.o_bias = cfg.attention_bias;
    layout.mlp_bias = cfg.mlp_bias;
    return std::shared_ptr<Decoder>(LlamaDecoder::load(cfg, dir, options, layout, "llama"));
  };
  return f;
}

}  // namespace qstar::lm
