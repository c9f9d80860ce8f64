// Running tests/torch/reference_llama.py (the independent float64 Python reference forward)
// from the LibTorch tests, and comparing tensors. Include after the torch headers and
// doctest (it uses REQUIRE / FAIL / MESSAGE).
#pragma once

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef QSTAR_PYTHON
#define QSTAR_PYTHON "/usr/bin/python3"
#endif
#ifndef QSTAR_TEST_SCRIPTS
#define QSTAR_TEST_SCRIPTS "tests/torch"
#endif

namespace reference {

/// max |a - ref| / max |ref| (in float64, on the CPU).
inline double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  c10::InferenceMode guard;
  const at::Tensor x = a.to(at::kCPU).to(at::kDouble), y = ref.to(at::kCPU).to(at::kDouble);
  REQUIRE(x.sizes() == y.sizes());
  const double denom = y.abs().max().item<double>();
  return (x - y).abs().max().item<double>() / (denom > 0 ? denom : 1.0);
}

/// The reference script's output: int64 rows, int64 cols, float32 data.
inline at::Tensor read_matrix(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::int64_t rows = 0, cols = 0;
  in.read(reinterpret_cast<char*>(&rows), 8);
  in.read(reinterpret_cast<char*>(&cols), 8);
  REQUIRE(rows > 0);
  REQUIRE(cols > 0);
  at::Tensor t = at::empty({rows, cols}, at::kFloat);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()), static_cast<std::streamsize>(rows * cols * 4));
  REQUIRE(in.good());
  return t;
}

inline std::string join(const std::vector<std::int64_t>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

/// One forward of the reference: model folder, tokens, output file.
struct Job {
  std::string dir;
  std::vector<std::int64_t> tokens;
  std::string out;
};

/// Runs every job in one reference process (work_dir holds the job list and stderr). Returns
/// the interpreter that ran it, or "" when no python3 with torch and numpy exists (the caller
/// skips); FAILs with the script's stderr when it fails under an interpreter that has them.
inline std::string run(const std::vector<Job>& jobs, const std::string& work_dir) {
  namespace fs = std::filesystem;
  const std::string list = work_dir + "/jobs.tsv", err = work_dir + "/stderr.txt";
  {
    std::ofstream f(list);
    for (const Job& j : jobs) f << j.dir << "\t" << join(j.tokens) << "\t" << j.out << "\n";
  }
  const std::string script = std::string(QSTAR_TEST_SCRIPTS) + "/reference_llama.py";
  // CMake's Python3 may be an interpreter without torch: fall back to Debian's.
  for (const std::string& py : {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
    if (py.empty() || !fs::exists(py)) continue;
    const std::string cmd =
        "\"" + py + "\" \"" + script + "\" --jobs \"" + list + "\" 2> \"" + err + "\"";
    if (std::system(cmd.c_str()) == 0) return py;
    const std::string probe = "\"" + py + "\" -c \"import torch, numpy\" > /dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) {
      std::ifstream e(err);
      std::stringstream ss;
      ss << e.rdbuf();
      FAIL("reference_llama.py failed with " << py << ":\n" << ss.str());
    }
  }
  return {};
}

}  // namespace reference
