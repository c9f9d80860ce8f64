// RoPE inverse frequencies and cos / sin tables for every scaling type (see rope.hpp). The
// float32 operations follow transformers' order (a Python `s / tensor` is
// `tensor.reciprocal() * s` there), so band edges and ramps fall where they fall in
// transformers.
#include "torch/models/rope.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <tuple>
#include <vector>

#include "qstar/error.hpp"

namespace qstar::lm {

namespace {

const auto kCpuFloat = at::TensorOptions().dtype(at::kFloat);

/// theta^(arange(0, d, 2) / d) in float32 (transformers' exponent: int64 arange cast to float).
at::Tensor powers(double theta, std::int64_t d) {
  const at::Tensor ar =
      at::arange(0, d, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) / static_cast<double>(d);
  return at::pow(theta, ar);
}

at::Tensor default_inv_freq(double theta, std::int64_t d) { return at::reciprocal(powers(theta, d)); }

/// transformers' get_mscale: 1 for scale <= 1, else 0.1 * m * ln(scale) + 1.
double yarn_mscale(double scale, double m = 1.0) {
  return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
}

/// The dimension (in frequency pairs x 2) that makes `rotations` turns over `positions`.
double yarn_correction_dim(double rotations, std::int64_t d, double theta, double positions) {
  return static_cast<double>(d) * std::log(positions / (rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(theta));
}

std::pair<at::Tensor, double> yarn(const hf::ModelConfig& cfg, std::int64_t d) {
  const double theta = cfg.rope_theta;
  const double original = cfg.rope_original_max_position_embeddings > 0
                              ? cfg.rope_original_max_position_embeddings
                              : cfg.max_position_embeddings;
  const double factor = cfg.rope_factor ? *cfg.rope_factor : cfg.max_position_embeddings / original;
  double attention = 0.0;
  if (cfg.rope_attention_factor)
    attention = *cfg.rope_attention_factor;
  else if (cfg.rope_mscale.value_or(0.0) != 0.0 && cfg.rope_mscale_all_dim.value_or(0.0) != 0.0)
    attention = yarn_mscale(factor, *cfg.rope_mscale) / yarn_mscale(factor, *cfg.rope_mscale_all_dim);
  else
    attention = yarn_mscale(factor);
  const double beta_fast = cfg.rope_beta_fast.value_or(32.0);
  const double beta_slow = cfg.rope_beta_slow.value_or(1.0);

  double low = yarn_correction_dim(beta_fast, d, theta, original);
  double high = yarn_correction_dim(beta_slow, d, theta, original);
  if (cfg.rope_truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(d - 1));
  if (low == high) high += 0.001;  // as transformers: no zero-width ramp

  const at::Tensor pos_freqs = powers(theta, d);
  const at::Tensor extrapolation = at::reciprocal(pos_freqs);
  const at::Tensor interpolation = at::reciprocal(factor * pos_freqs);
  const at::Tensor ramp = at::clamp((at::arange(d / 2, kCpuFloat) - low) / (high - low), 0.0, 1.0);
  const at::Tensor extrapolation_share = 1.0 - ramp;
  const at::Tensor inv =
      interpolation * (1.0 - extrapolation_share) + extrapolation * extrapolation_share;
  return {inv, attention};
}

at::Tensor llama3(const hf::ModelConfig& cfg, std::int64_t d) {
  const at::Tensor inv = default_inv_freq(cfg.rope_theta, d);
  const double factor = *cfg.rope_factor;
  const double low_f = *cfg.rope_low_freq_factor, high_f = *cfg.rope_high_freq_factor;
  const double original = cfg.rope_original_max_position_embeddings > 0
                              ? cfg.rope_original_max_position_embeddings
                              : cfg.max_position_embeddings;
  const double low_wavelen = original / low_f;   // longer: divided by factor
  const double high_wavelen = original / high_f;  // shorter: kept
  const at::Tensor wavelen = at::reciprocal(inv) * (2.0 * std::numbers::pi);
  const at::Tensor scaled = at::where(wavelen > low_wavelen, inv / factor, inv);
  const at::Tensor smooth = (at::reciprocal(wavelen) * original - low_f) / (high_f - low_f);
  const at::Tensor smoothed = (1.0 - smooth) * scaled / factor + smooth * scaled;
  const at::Tensor medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
  return at::where(medium, smoothed, scaled);
}

}  // namespace

Rope Rope::from_config(const hf::ModelConfig& cfg, const std::string& config_path,
                       at::Device device) {
  const std::int64_t d = cfg.head_dim;
  if (d <= 0 || d % 2 != 0)
    throw ParseError(
        fmt::format("{}: head_dim: must be a positive even number, got {}", config_path, d));
  Rope r;
  r.dim_ = d;
  r.theta_ = cfg.rope_theta;
  r.max_positions_ = cfg.max_position_embeddings;
  const std::string& type = cfg.rope_scaling_type;
  at::Tensor inv;
  if (type.empty() || type == "default") {
    inv = default_inv_freq(cfg.rope_theta, d);
  } else if (type == "linear") {
    inv = default_inv_freq(cfg.rope_theta, d) / *cfg.rope_factor;
  } else if (type == "dynamic") {
    r.dynamic_ = true;
    r.factor_ = *cfg.rope_factor;
    inv = default_inv_freq(cfg.rope_theta, d);  // lengths up to max_position_embeddings
  } else if (type == "yarn") {
    std::tie(inv, r.attention_scaling_) = yarn(cfg, d);
  } else if (type == "llama3") {
    inv = llama3(cfg, d);
  } else {
    // validate() rejects these; a hand-built config may still carry one.
    throw ParseError(fmt::format("{}: rope_scaling: rope type '{}' is not supported (linear, "
                                 "dynamic, yarn, llama3)",
                                 config_path, type));
  }
  r.inv_freq_ = inv.contiguous().to(device);
  return r;
}

at::Tensor Rope::inv_freq(std::int64_t length) const {
  if (!dynamic_ || length <= max_positions_) return inv_freq_.to(at::kCPU);
  const double L = static_cast<double>(length), M = static_cast<double>(max_positions_);
  const double d = static_cast<double>(dim_);
  const double theta = theta_ * std::pow(factor_ * L / M - (factor_ - 1.0), d / (d - 2.0));
  return default_inv_freq(theta, dim_);
}

std::pair<at::Tensor, at::Tensor> Rope::tables(const at::Tensor& positions,
                                               std::span<const std::int64_t> lengths,
                                               at::ScalarType dtype) const {
  const at::Tensor pos = positions.to(at::kFloat).unsqueeze(-1);  // [B, T, 1]
  at::Tensor freqs;
  const bool per_sequence =
      dynamic_ && std::any_of(lengths.begin(), lengths.end(),
                              [&](std::int64_t L) { return L > max_positions_; });
  if (per_sequence) {
    std::vector<at::Tensor> rows;
    rows.reserve(lengths.size());
    for (std::int64_t L : lengths) rows.push_back(inv_freq(L));
    freqs = pos * at::stack(rows).to(positions.device()).unsqueeze(1);  // [B, T, d/2]
  } else {
    freqs = pos * inv_freq_;
  }
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  at::Tensor cos = emb.cos(), sin = emb.sin();
  if (attention_scaling_ != 1.0) {
    cos = cos * attention_scaling_;
    sin = sin * attention_scaling_;
  }
  return {cos.to(dtype).unsqueeze(1), sin.to(dtype).unsqueeze(1)};
}

}  // namespace qstar::lm
