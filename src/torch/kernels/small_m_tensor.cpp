// The small-M linear kernel's at::Tensor wrapper (small_m_linear.hpp: try_linear).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <vector>

#include "torch/kernels/small_m_linear.hpp"

namespace qstar::lm::kernels {

namespace {
bool cpu_f32_vector(const at::Tensor& t, std::int64_t n) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 1 && t.size(0) == n &&
         t.is_contiguous();
}
}  // namespace

bool try_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& scale,
                at::Tensor& out, std::int64_t rows_limit) {
  if (rows_limit < 0) rows_limit = max_rows();
  if (rows_limit <= 0 || !x.defined() || !w.defined() || w.dim() != 2 || x.dim() < 1) return false;
  if (!x.device().is_cpu() || !w.device().is_cpu() || x.scalar_type() != at::kFloat || !w.is_contiguous())
    return false;
  const std::int64_t N = w.size(0), K = w.size(1);
  if (x.size(-1) != K || K == 0 || N == 0) return false;
  const std::int64_t M = x.numel() / K;
  if (M == 0 || M > rows_limit) return false;
  WeightType wt;
  switch (w.scalar_type()) {
    case at::kFloat:
      wt = WeightType::F32;
      break;
    case at::kBFloat16:
      wt = WeightType::BF16;
      break;
    case at::kChar:
      if (!scale.defined() || !cpu_f32_vector(scale, N)) return false;
      wt = WeightType::I8;
      break;
    default:
      return false;
  }
  if (b.defined() && !cpu_f32_vector(b, N)) return false;
  // Autograd: the kernel has no backward; a graph that needs one takes the ATen path.
  if (c10::GradMode::is_enabled() &&
      (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad())))
    return false;
  at::Tensor x2 = x.reshape({M, K});
  if (x2.stride(1) != 1 || x2.stride(0) < K) x2 = x2.contiguous();
  std::vector<std::int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = N;
  out = at::empty(shape, x.options());
  small_m_linear(x2.data_ptr<float>(), M, K, x2.stride(0), w.data_ptr(), wt,
                 wt == WeightType::I8 ? scale.data_ptr<float>() : nullptr,
                 b.defined() ? b.data_ptr<float>() : nullptr, N, out.data_ptr<float>(), N);
  return true;
}

}  // namespace qstar::lm::kernels
