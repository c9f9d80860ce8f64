// PrmVerifier's TorchScript backend (kind "torchscript"): loading the module and one call
// of the calling convention documented in include/qstar/torch/prm.hpp.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/torch/prm.hpp"
#include "torch/prm_script.hpp"

namespace qstar::lm::detail {

torch::jit::Module load_torchscript(const std::string& file, at::Device device) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    throw IoError(fmt::format("prm: TorchScript module '{}' is not a file", file));
  torch::jit::Module m;
  try {
    m = ::torch::jit::load(file, device);
  } catch (const c10::Error& e) {
    throw Error(fmt::format("prm: cannot load the TorchScript module '{}': {}", file, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(fmt::format("prm: cannot load the TorchScript module '{}': {}", file, e.what()));
  }
  m.eval();
  if (!m.find_method("forward"))
    throw ParseError(fmt::format("prm: TorchScript module '{}' has no forward method", file));
  return m;
}

// Every step's score of each sequence (one module call).
std::vector<std::vector<double>> run_torchscript(torch::jit::Module& module, at::Device device,
                                               const std::string& name, const std::string& script_file,
                                               const std::vector<PrmSequence>& seqs, PrmStats& st) {
  const auto B = static_cast<std::int64_t>(seqs.size());
  std::int64_t T = 0, S = 0;
  for (const auto& s : seqs) {
    T = std::max(T, static_cast<std::int64_t>(s.tokens.size()));
    S = std::max(S, static_cast<std::int64_t>(s.step_ends.size()));
  }
  std::vector<std::vector<double>> out(seqs.size());
  if (B == 0 || S == 0) return out;
  at::Tensor ids = at::zeros({B, T}, at::kLong), mask = at::zeros({B, T}, at::kLong);
  at::Tensor ends = at::full({B, S}, -1, at::kLong);
  {
    auto* pi = ids.data_ptr<std::int64_t>();
    auto* pm = mask.data_ptr<std::int64_t>();
    auto* pe = ends.data_ptr<std::int64_t>();
    for (std::int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[static_cast<std::size_t>(b)];
      for (std::size_t t = 0; t < s.tokens.size(); ++t) {
        pi[b * T + static_cast<std::int64_t>(t)] = s.tokens[t];
        pm[b * T + static_cast<std::int64_t>(t)] = 1;
      }
      for (std::size_t i = 0; i < s.step_ends.size(); ++i)
        pe[b * S + static_cast<std::int64_t>(i)] = s.step_ends[i];
      st.tokens_computed += static_cast<std::int64_t>(s.tokens.size());
    }
  }
  at::Tensor res;
  try {
    std::vector<c10::IValue> args{ids.to(device), mask.to(device), ends.to(device)};
    c10::IValue r = module.forward(std::move(args));
    ++st.forwards;
    if (!r.isTensor())
      throw PluginError(fmt::format(
          "{}: TorchScript module {}: forward returned a {}, expected a floating tensor [B, S] "
          "= [{}, {}]",
          name, script_file, r.tagKind(), B, S));
    res = r.toTensor();
  } catch (const qstar::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw PluginError(fmt::format("{}: TorchScript module {}: forward failed: {}", name,
                                  script_file, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("{}: TorchScript module {}: forward failed: {}", name,
                                  script_file, e.what()));
  }
  if (res.dim() != 2 || res.size(0) != B || res.size(1) != S || !res.is_floating_point()) {
    std::string shape = "[";
    for (std::int64_t d = 0; d < res.dim(); ++d)
      shape += (d ? ", " : "") + std::to_string(res.size(d));
    shape += "]";
    throw PluginError(fmt::format(
        "{}: TorchScript module {}: forward returned a {} tensor of shape {}, expected a "
        "floating tensor [B, S] = [{}, {}] (batch, steps; see qstar/torch/prm.hpp)",
        name, script_file, c10::toString(res.scalar_type()), shape, B, S));
  }
  const at::Tensor c = res.to(at::kCPU).to(at::kDouble).contiguous();
  const double* p = c.data_ptr<double>();
  for (std::int64_t b = 0; b < B; ++b) {
    const auto n = seqs[static_cast<std::size_t>(b)].step_ends.size();
    auto& o = out[static_cast<std::size_t>(b)];
    o.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double v = p[b * S + static_cast<std::int64_t>(i)];
      if (!std::isfinite(v) || v < 0.0 || v > 1.0)
        throw PluginError(fmt::format(
            "{}: TorchScript module {}: score [{}, {}] = {} is not in [0, 1]", name,
            script_file, b, i, v));
      o[i] = v;
    }
  }
  return out;
}

}  // namespace qstar::lm::detail
