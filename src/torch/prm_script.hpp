// Internal: PrmVerifier's TorchScript backend (prm_script.cpp).
#pragma once

#include <ATen/ATen.h>
#include <torch/script.h>

#include <string>
#include <vector>

#include "qstar/torch/prm.hpp"

namespace qstar::lm::detail {

/// The module in `file` on `device`, in eval mode. IoError when it is not a file, Error when
/// LibTorch cannot load it, ParseError without a forward method.
torch::jit::Module load_torchscript(const std::string& file, at::Device device);

/// Every step's score of each sequence (one module call; the calling convention of
/// prm.hpp). PluginError naming `script_file` for a misbehaving module. Counts the forward
/// and its tokens into `st`.
std::vector<std::vector<double>> run_torchscript(torch::jit::Module& module, at::Device device,
                                                 const std::string& name, const std::string& script_file,
                                                 const std::vector<PrmSequence>& seqs, PrmStats& st);

}  // namespace qstar::lm::detail
