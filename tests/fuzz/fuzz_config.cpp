// libFuzzer target: the config.json reader (include/qstar/hf/config.hpp,
// src/hf/config.cpp). No LibTorch.
//
// Input: the text of a config.json.
// Oracles (beyond "no crash, no sanitizer report, only qstar::ParseError escapes"): a config
// that loads passes validate() again and satisfies what validate() promises (positive
// sizes, kv heads divide heads, a known architecture that matches model_type, ...).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 65536) return -1;
  qstar::hf::ModelConfig c;
  try {
    c = qstar::hf::ModelConfig::from_json(qstar_fuzz::as_view(data, size), "fuzz.json");
  } catch (const qstar::ParseError&) {
    return 0;  // every other exception escapes and is reported
  }
  c.validate();
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0,
             "non-positive size");
  FUZZ_CHECK(c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.head_dim > 0, "non-positive heads");
  FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, "kv heads do not divide heads");
  FUZZ_CHECK(c.head_dim_given || c.model_type == "qwen3" || c.head_dim * c.num_attention_heads == c.hidden_size,
             "head_dim");
  FUZZ_CHECK(c.is_causal_lm() != c.has_score_head(), "architecture '%s'", c.architecture.c_str());
  FUZZ_CHECK(c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "qwen3" || c.model_type == "mistral",
             "model_type '%s'", c.model_type.c_str());
  for (int i = 0; i < std::min(c.num_hidden_layers, 64); ++i)
    FUZZ_CHECK(c.sliding_window_of(i) >= 0 && (c.sliding_window_of(i) == 0 || c.sliding_window.has_value()),
               "sliding_window_of(%d)", i);
  FUZZ_CHECK(std::isfinite(c.rms_norm_eps) && c.rms_norm_eps > 0, "rms_norm_eps %g", c.rms_norm_eps);
  FUZZ_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0, "rope_theta %g", c.rope_theta);
  FUZZ_CHECK(c.max_position_embeddings > 0, "max_position_embeddings");
  FUZZ_CHECK(c.num_labels >= (c.has_score_head() ? 1 : 0), "num_labels %d", c.num_labels);
  FUZZ_CHECK(c.source == "fuzz.json", "source");
  return 0;
}
