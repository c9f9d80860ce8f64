// Internal, torch-typed: the layer functions of the Llama-style decoders (HF
// `modeling_llama.py` / `modeling_qwen2.py` math), shared by the inference forward
// (models/llama.cpp) and the trainable decoder (src/train/trainable_decoder.cpp) so that
// both compute the same thing with the same operations. Each works with autograd (the
// trainer) and under c10::InferenceMode (inference).
#pragma once

#include <ATen/ATen.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "torch/kernels/small_m_linear.hpp"

namespace qstar::lm::layers {

/// Elements of float32 weight that upcast_linear converts at a time by default: 1 Mi
/// (4 MiB), a whole number of rows. Measured (benchmarks/README.md, "bf16 / f16 weight
/// storage"): 256 KiB chunks lose to per-call overhead at 128 rows of x; a whole-matrix
/// upcast needs a weight-sized temporary (a 7B model's lm_head: 500 MB) whose fresh pages
/// made a [32000, 768] product 20-30x slower than float32 storage in two of three runs,
/// where 4 MiB chunks tracked float32 within the machine's noise.
inline constexpr std::int64_t kUpcastChunkElements = std::int64_t{1} << 20;

#if defined(__x86_64__) && defined(__GNUC__)
/// float16 -> float32 with the F16C instruction (8 at a time); callers check the CPU has it.
__attribute__((target("avx,f16c"))) inline void half_to_float_f16c(const std::uint16_t* s, float* d,
                                                                    std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = static_cast<float>(c10::Half(s[i], c10::Half::from_bits()));
}
#endif

/// Converts the `n` bfloat16 / float16 values at `src` to float32 at `dst` in this thread
/// (exact); int8 values (kChar, `n` a whole number of rows of `row_len`) times their row's
/// `scale` (float32, one per row of `src`: weight-only int8, kernels::quantize_rows_int8). Not an ATen op on purpose: ATen's conversion opens an OpenMP parallel region per
/// call, and with several threads on a busy machine every region's barrier waits for a
/// descheduled thread (measured: 2-thread decode 5x slower than float32 storage, see
/// benchmarks/README.md); the float32 matmul that follows is threaded by the BLAS.
inline void upcast_into(const at::Tensor& src, std::int64_t n, float* dst,
                        const float* scale = nullptr, std::int64_t row_len = 0) {
  if (src.scalar_type() == at::kChar) {
    const auto* s = static_cast<const std::int8_t*>(src.data_ptr());
    for (std::int64_t r = 0; r * row_len < n; ++r) {  // row by row: a loop the compiler vectorises
      const float sc = scale[r];
      const std::int8_t* q = s + r * row_len;
      float* d = dst + r * row_len;
      for (std::int64_t k = 0; k < row_len; ++k) d[k] = static_cast<float>(q[k]) * sc;
    }
  } else if (src.scalar_type() == at::kBFloat16) {
    const auto* s = static_cast<const std::uint16_t*>(src.data_ptr());
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint32_t u = static_cast<std::uint32_t>(s[i]) << 16;
      std::memcpy(dst + i, &u, sizeof u);
    }
  } else {  // kHalf
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool f16c = __builtin_cpu_supports("f16c");
    if (f16c) return half_to_float_f16c(static_cast<const std::uint16_t*>(src.data_ptr()), dst, n);
#endif
    const auto* s = static_cast<const c10::Half*>(src.data_ptr());
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
  }
}

/// x @ w^T (+ b) for a weight stored in a narrower dtype than x (bfloat16 / float16 weights
/// with float32 activations on CPU): `chunk_rows` rows of w at a time (<= 0: as many as fit
/// kUpcastChunkElements) are upcast into one reused float32 buffer and multiplied straight
/// into their columns of the output, so the float32 copy of the weight never exists whole.
/// Exact upcast (bf16/f16 -> f32 loses nothing), so the result equals at::linear with the
/// float32 weight up to the BLAS kernel's summation order for the narrower product (a few
/// float32 ulps). An int8 weight (kChar) needs `scale` (float32 [N], one per row): each
/// chunk is dequantised (q * scale) the same way. Inference only (no autograd through the
/// _out calls).
inline at::Tensor upcast_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                                std::int64_t chunk_rows = 0, const at::Tensor& scale = {}) {
  const std::int64_t N = w.size(0), K = w.size(1);
  const at::Tensor x2 = x.reshape({x.numel() / std::max<std::int64_t>(K, 1), K});
  if (chunk_rows <= 0) chunk_rows = std::max<std::int64_t>(1, kUpcastChunkElements / std::max<std::int64_t>(K, 1));
  chunk_rows = std::min(chunk_rows, std::max<std::int64_t>(N, 1));
  const bool int8 = w.scalar_type() == at::kChar;
  TORCH_CHECK(!int8 || (scale.defined() && scale.scalar_type() == at::kFloat && scale.numel() == N &&
                        x.scalar_type() == at::kFloat && w.is_contiguous() && scale.is_contiguous()),
              "upcast_linear: an int8 weight needs float32 activations and a float32 scale per row");
  const bool direct = x.scalar_type() == at::kFloat && w.is_contiguous() &&
                      (w.scalar_type() == at::kBFloat16 || w.scalar_type() == at::kHalf || int8);
  at::Tensor out = at::empty({x2.size(0), N}, x.options());
  at::Tensor buf = direct ? at::empty({chunk_rows, K}, x.options()) : at::Tensor();
  for (std::int64_t r = 0; r < N; r += chunk_rows) {
    const std::int64_t n = std::min(chunk_rows, N - r);
    at::Tensor wt;
    if (direct) {
      upcast_into(w.narrow(0, r, n), n * K, buf.data_ptr<float>(),
                  int8 ? scale.data_ptr<float>() + r : nullptr, K);
      wt = buf.narrow(0, 0, n).t();
    } else {
      wt = w.narrow(0, r, n).to(x.scalar_type()).t();
    }
    at::Tensor dst = out.narrow(1, r, n);
    if (b.defined())
      at::addmm_out(dst, b.narrow(0, r, n), x2, wt);
    else
      at::mm_out(dst, x2, wt);
  }
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  return out.view(shape);
}

/// x @ w^T (+ b when defined); `scale` (float32 [N]) only for an int8 weight (kChar, one
/// scale per output row). On CPU, when no autograd is needed and x has at most
/// kernels::max_rows() rows (decode), the small-M kernel (kernels/small_m_linear.hpp)
/// streams the float32 / bfloat16 / int8 weight once; otherwise a weight stored in another
/// dtype than x (bfloat16 / float16 / int8 storage on CPU) goes through upcast_linear and a
/// float32 one through at::linear (the BLAS).
inline at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {},
                         const at::Tensor& scale = {}) {
  if (at::Tensor out; kernels::try_linear(x, w, b, scale, out)) return out;
  if (w.scalar_type() != x.scalar_type()) return upcast_linear(x, w, b, 0, scale);
  return b.defined() ? at::linear(x, w, b) : at::linear(x, w);
}

/// The embedding rows of `ids` in `dtype`: gathered in the table's storage dtype, then
/// upcast (only the rows used are converted).
inline at::Tensor embedding(const at::Tensor& table, const at::Tensor& ids, at::ScalarType dtype) {
  at::Tensor rows = at::embedding(table, ids);
  return rows.scalar_type() == dtype ? rows : rows.to(dtype);
}

/// RMSNorm: in float32 (HF), cast back to x's dtype, then times the weight.
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return w * (xf * at::rsqrt(var + eps)).to(x.scalar_type());
}

/// RoPE's inverse frequencies 1 / theta^(arange(0, d, 2) / d), float32 on the CPU (as HF).
inline at::Tensor rope_inv_freq(std::int64_t head_dim, double theta) {
  const at::Tensor ar =
      at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
      static_cast<double>(head_dim);
  return at::reciprocal(at::pow(theta, ar));
}

/// cos / sin tables [..., T, head_dim] of float32 positions [..., T] (computed in float32,
/// cast to `dtype`, as HF).
inline std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& positions,
                                                     const at::Tensor& inv_freq,
                                                     at::ScalarType dtype) {
  const at::Tensor freqs = positions.unsqueeze(-1) * inv_freq;
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

/// The half-split rotation of RoPE.
inline at::Tensor rotate_half(const at::Tensor& x) {
  const std::int64_t half = x.size(-1) / 2;
  return at::cat({x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)}, -1);
}

/// x * cos + rotate_half(x) * sin.
inline at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

/// Grouped-query attention without repeating KV: q [B, H, T, hd] (contiguous), K / V
/// [B, KV, S, hd], `mask` float32 additive, broadcastable to [B, KV, H/KV, T, S] (-inf =
/// not seen). Query head h = g * n_rep + r reads kv head g. Scores are softmaxed in float32
/// and cast back to `dtype`. Returns [B, T, H * hd].
inline at::Tensor gqa_attention(const at::Tensor& q, const at::Tensor& K, const at::Tensor& V,
                                const at::Tensor& mask, double scale, at::ScalarType dtype) {
  const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const std::int64_t KV = K.size(1), S = K.size(2), n_rep = H / KV;
  const at::Tensor qg = q.reshape({B, KV, n_rep * T, hd});
  at::Tensor scores = at::matmul(qg, K.transpose(-2, -1)) * scale;  // [B, KV, n_rep*T, S]
  scores = scores.view({B, KV, n_rep, T, S}).to(at::kFloat) + mask;
  const at::Tensor probs = at::softmax(scores, -1).to(dtype).view({B, KV, n_rep * T, S});
  return at::matmul(probs, V)  // [B, KV, n_rep*T, hd]
      .view({B, H, T, hd})
      .transpose(1, 2)
      .reshape({B, T, H * hd});
}

// ---- inference-only variants (no autograd: they work in place) ----------------------------
// The forward of models/llama.cpp runs under c10::InferenceMode and calls these: the same
// math as the functions above with fewer passes over memory and fewer fresh buffers (each
// fresh multi-megabyte buffer costs page faults: benchmarks/README.md, "Where the time goes").
// The trainer keeps the functions above (in-place ops would break its backward).

/// rms_norm for float32 x: x * rsqrt(mean(x^2) + eps) * w, two full-size passes (square,
/// scale) instead of three. Other dtypes: rms_norm.
inline at::Tensor rms_norm_inference(const at::Tensor& x, const at::Tensor& w, double eps) {
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat) return rms_norm(x, w, eps);
  at::Tensor var = x.mul(x).mean(-1, /*keepdim=*/true);
  return x.mul(var.add_(eps).rsqrt_()).mul_(w);
}

/// apply_rope written into one new contiguous tensor: out = x * cos, then each half gets
/// its rotated term with addcmul_ (-x2 * sin1 on the first half, x1 * sin2 on the second):
/// one full-size buffer instead of five.
inline at::Tensor apply_rope_inference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  at::Tensor out = at::empty(x.sizes(), x.options());  // contiguous, whatever x's strides
  at::mul_out(out, x, cos);
  out.narrow(-1, 0, half).addcmul_(x.narrow(-1, half, half), sin.narrow(-1, 0, half), -1);
  out.narrow(-1, half, half).addcmul_(x.narrow(-1, 0, half), sin.narrow(-1, half, half), 1);
  return out;
}

/// gqa_attention with the scale and the mask fused into the score product (baddbmm: the
/// mask is copied into the scores buffer, the product added to it) and the softmax done in
/// place: the scores [B, KV, n_rep * T, S] exist once. Float32 only (other dtypes:
/// gqa_attention). Same arguments and result as gqa_attention.
inline at::Tensor gqa_attention_inference(const at::Tensor& q, const at::Tensor& K, const at::Tensor& V,
                                          const at::Tensor& mask, double scale, at::ScalarType dtype) {
  if (q.scalar_type() != at::kFloat || dtype != at::kFloat)
    return gqa_attention(q, K, V, mask, scale, dtype);
  const std::int64_t B = q.size(0), H = q.size(1), T = q.size(2), hd = q.size(3);
  const std::int64_t KV = K.size(1), S = K.size(2), n_rep = H / KV;
  const at::Tensor qg = q.reshape({B * KV, n_rep * T, hd});
  const at::Tensor Kt = K.reshape({B * KV, S, hd}).transpose(1, 2);
  at::Tensor scores = at::empty({B * KV, n_rep * T, S}, q.options());
  scores.view({B, KV, n_rep, T, S}).copy_(mask.expand({B, KV, n_rep, T, S}));
  scores.baddbmm_(qg, Kt, /*beta=*/1, /*alpha=*/scale);
  at::_softmax_out(scores, scores, -1, /*half_to_float=*/false);
  const at::Tensor o = at::bmm(scores, V.reshape({B * KV, S, hd}));  // [B*KV, n_rep*T, hd]
  // Head h = g * n_rep + r of token t: out[b, t, g, r, :] = o[b * KV + g, r * T + t, :].
  at::Tensor out = at::empty({B, T, KV, n_rep, hd}, q.options());
  out.permute({0, 2, 3, 1, 4}).copy_(o.view({B, KV, n_rep, T, hd}));
  return out.view({B, T, H * hd});
}

/// swiglu_mlp with silu and the product in place on the gate's output (s_*: the int8
/// weights' row scales, undefined otherwise).
inline at::Tensor swiglu_mlp_inference(const at::Tensor& h, const at::Tensor& w_gate, const at::Tensor& b_gate,
                                       const at::Tensor& w_up, const at::Tensor& b_up,
                                       const at::Tensor& w_down, const at::Tensor& b_down,
                                       const at::Tensor& s_gate = {}, const at::Tensor& s_up = {},
                                       const at::Tensor& s_down = {}) {
  at::Tensor g = linear(h, w_gate, b_gate, s_gate);
  at::silu_(g);
  g.mul_(linear(h, w_up, b_up, s_up));
  return linear(g, w_down, b_down, s_down);
}

/// SwiGLU MLP: down(silu(gate(h)) * up(h)) (biases when defined; s_* the int8 weights'
/// row scales, undefined otherwise).
inline at::Tensor swiglu_mlp(const at::Tensor& h, const at::Tensor& w_gate, const at::Tensor& b_gate,
                             const at::Tensor& w_up, const at::Tensor& b_up,
                             const at::Tensor& w_down, const at::Tensor& b_down,
                             const at::Tensor& s_gate = {}, const at::Tensor& s_up = {},
                             const at::Tensor& s_down = {}) {
  return linear(at::silu(linear(h, w_gate, b_gate, s_gate)) * linear(h, w_up, b_up, s_up), w_down,
                b_down, s_down);
}

}  // namespace qstar::lm::layers
