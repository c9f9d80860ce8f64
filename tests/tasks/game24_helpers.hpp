// Helpers shared by the Game of 24 test files (test_game24*.cpp).
#pragma once

#include <qstar/tasks/game24.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace game24_test {
using namespace qstar;
using namespace qstar::game24;

inline constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Appends a chain of steps under the root and returns the trajectory to its last step.
inline TrajectoryView chain(Tree& tree, const std::vector<std::string>& texts) {
  NodeId node = Tree::root();
  for (const auto& t : texts) {
    Step s;
    s.text = t;
    s.num_tokens = static_cast<std::int32_t>(t.size());
    s.finish = is_answer_step(t) ? FinishReason::FinalAnswer : FinishReason::StepEnd;
    node = tree.add_child(node, s);
  }
  return tree.trajectory(node);
}

// Independent oracle: floating-point brute force over all pairs and operators.
inline bool brute_force_24(std::vector<double> v) {
  if (v.size() == 1) return std::fabs(v[0] - 24.0) < 1e-9;
  for (std::size_t i = 0; i < v.size(); ++i) {
    for (std::size_t j = 0; j < v.size(); ++j) {
      if (i == j) continue;
      std::vector<double> rest;
      for (std::size_t k = 0; k < v.size(); ++k)
        if (k != i && k != j) rest.push_back(v[k]);
      const double a = v[i], b = v[j];
      std::vector<double> results{a + b, a - b, a * b};
      if (std::fabs(b) > 1e-12) results.push_back(a / b);
      for (const double r : results) {
        rest.push_back(r);
        if (brute_force_24(rest)) return true;
        rest.pop_back();
      }
    }
  }
  return false;
}
inline bool brute_force_24(const std::vector<Rational>& v) {
  std::vector<double> d;
  for (const auto& r : v) d.push_back(r.to_double());
  return brute_force_24(d);
}

inline std::vector<std::string> texts_of(const std::vector<Step>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(s.text);
  return out;
}

inline ExpandRequest request_for(const Problem& p, const TrajectoryView& prefix, int n,
                          std::uint64_t seed) {
  ExpandRequest r;
  r.problem = &p;
  r.prefix = prefix;
  r.num_candidates = n;
  r.seed = seed;
  return r;
}

// The reason check_step gives for `text` from `state`, or "parse: <why>" if it does not parse.
inline std::string legality(const std::vector<Rational>& state, const std::string& text) {
  std::string why;
  const auto step = parse_step(text, &why);
  if (!step) return "parse: " + why;
  return check_step(state, *step);
}

struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& contents) {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = std::filesystem::temp_directory_path() /
           ("qstar_game24_test_" + std::to_string(stamp) + "_" + std::to_string(counter++) +
            ".csv");
    std::ofstream(path, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace game24_test

using namespace game24_test;  // NOLINT: test files use the helpers and qstar::game24 unqualified
