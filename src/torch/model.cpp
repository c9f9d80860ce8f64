// The public LanguageModel wrapper over a Decoder.
#include "qstar/torch/model.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "qstar/error.hpp"
#include "torch/decoder.hpp"

namespace qstar::lm {

namespace {

std::vector<std::int64_t> widen(std::span<const std::int32_t> tokens) {
  return {tokens.begin(), tokens.end()};
}

// float32 [T, N] tensor (any device) → rows.
std::vector<std::vector<float>> to_rows(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU).to(at::kFloat).contiguous();
  const std::int64_t rows = c.size(0), cols = c.size(1);
  const float* p = c.data_ptr<float>();
  std::vector<std::vector<float>> out(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    out[static_cast<std::size_t>(r)].assign(p + r * cols, p + (r + 1) * cols);
  return out;
}

}  // namespace

LanguageModel LanguageModel::load(const std::string& dir, const std::string& device,
                                  const std::string& dtype) {
  LoadOptions opts;
  opts.device = device;
  opts.dtype = parse_dtype(dtype, "dtype", &opts.int8);
  return LanguageModel(load_decoder(dir, opts));
}

LanguageModel::LanguageModel(std::shared_ptr<Decoder> impl) : impl_(std::move(impl)) {
  if (!impl_) throw InvalidArgument("LanguageModel: null model");
}

const hf::ModelConfig& LanguageModel::config() const { return impl_->config(); }

std::vector<std::vector<float>> LanguageModel::logits(std::span<const std::int32_t> tokens) const {
  c10::InferenceMode guard;
  if (tokens.empty()) return {};
  const auto ids = widen(tokens);
  return to_rows(impl_->forward_tokens(ids));
}

std::vector<std::vector<float>> LanguageModel::token_scores(
    std::span<const std::int32_t> tokens) const {
  c10::InferenceMode guard;
  if (!impl_->has_score_head()) {
    throw InvalidArgument("token_scores: model " + impl_->dir() + " (" +
                          impl_->config().architecture + ") has no token-classification head");
  }
  if (tokens.empty()) return {};
  const auto ids = widen(tokens);
  return to_rows(impl_->score(impl_->hidden_states(ids)));
}

std::string LanguageModel::device() const { return impl_->device().str(); }

namespace {
std::string dtype_string(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    case at::kChar:
      return "int8";
    default:
      return "float32";
  }
}
}  // namespace

std::string LanguageModel::dtype() const { return dtype_string(impl_->dtype()); }
std::string LanguageModel::weight_dtype() const { return dtype_string(impl_->weight_dtype()); }

bool LanguageModel::has_lm_head() const { return impl_->has_lm_head(); }
bool LanguageModel::has_score_head() const { return impl_->has_score_head(); }

}  // namespace qstar::lm
