// Internal, torch-typed: rotary position embeddings of the Llama-style decoders, with the
// scaling types of transformers' modeling_rope_utils.py (config.json's rope_scaling /
// rope_parameters):
//
//  * default: inv_freq[i] = theta^(-2i/d), d = head_dim.
//  * linear:  inv_freq / factor.
//  * dynamic (NTK): for a sequence of length L > max_position_embeddings M, theta becomes
//    theta * (factor * L / M - (factor - 1))^(d / (d - 2)); default RoPE up to M.
//  * yarn: per frequency, a blend of inv_freq (extrapolation) and inv_freq / factor
//    (interpolation) with a linear ramp between the correction dims of beta_fast and beta_slow
//    over original_max_position_embeddings (floored / ceiled unless truncate is false); cos
//    and sin are multiplied by the attention factor (default 0.1 ln(factor) + 1, or the ratio
//    of the mscale / mscale_all_dim ones).
//  * llama3: wavelengths 2 pi / inv_freq below original / high_freq_factor are kept, those
//    above original / low_freq_factor divided by factor, the band between smoothly blended.
//
// As in transformers, inv_freq, positions x inv_freq and cos / sin are float32, cast to the
// compute dtype at the end.
//
// Dynamic NTK, stateless: transformers' dynamic RoPE keeps state (its inv_freq grows with the
// longest sequence seen so far, max_seq_len_cached, and resets below M). Here each sequence's
// inv_freq comes from its own length in the current forward (its last position + 1), so a
// single full forward of a fresh model agrees with transformers, a batch equals each sequence
// alone, but a cached decode past M does not equal the full forward: the cached keys were
// rotated with the inv_freq of the shorter length they were computed at.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "qstar/hf/config.hpp"

namespace qstar::lm {

class Rope {
 public:
  Rope() = default;
  /// From a validated config (RoPE type and fields); ParseError naming `config_path` for an
  /// odd head_dim. The tables live on `device`.
  static Rope from_config(const hf::ModelConfig& cfg, const std::string& config_path,
                          at::Device device);

  /// cos / sin [B, 1, T, head_dim] in `dtype` for int64 `positions` [B, T] on the device.
  /// `lengths[b]` is sequence b's length up to its last new token (for dynamic NTK only).
  std::pair<at::Tensor, at::Tensor> tables(const at::Tensor& positions,
                                           std::span<const std::int64_t> lengths,
                                           at::ScalarType dtype) const;

  /// float32 [head_dim / 2] inverse frequencies (of a sequence of length `length`: only
  /// dynamic NTK depends on it), on the CPU.
  at::Tensor inv_freq(std::int64_t length = 0) const;
  /// The factor cos and sin are multiplied by (yarn; 1 otherwise).
  double attention_scaling() const { return attention_scaling_; }

 private:
  at::Tensor inv_freq_;  // float32 [d/2] on the device (the static one)
  double attention_scaling_ = 1.0;
  bool dynamic_ = false;
  double theta_ = 10000.0, factor_ = 1.0;
  std::int64_t dim_ = 0, max_positions_ = 0;
};

}  // namespace qstar::lm
