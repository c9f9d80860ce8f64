// The tasks qstar knows, and where qstar finds its data files.
#include <cstdlib>
#include <filesystem>

#include "app/app.hpp"
#include "qstar/tasks/builtin.hpp"

namespace qstar::cli {

const TaskRegistry& builtin_tasks() { return qstar::builtin_tasks(); }

const TaskEntry& task_of(const Args& a) {
  const auto& r = builtin_tasks();
  const auto name = a.get("task");
  if (!name) return r.at(r.names().front());
  if (const auto* e = r.find(*name)) return *e;
  throw UsageError(fmt::format("--task: '{}' is not one of {}", *name, fmt::join(r.names(), ", ")));
}

std::string answer_marker_of(const Args& a, const TaskEntry& task) {
  if (auto v = a.get("answer-marker")) return unescape(*v);
  return task.answer_marker;
}

std::vector<std::string> resource_dirs(const std::string& sub) {
  std::vector<std::string> out;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return out;
  const auto dir = exe.parent_path();
  out.push_back((dir.parent_path() / "share" / "qstar" / (sub == "data" ? "" : sub)).lexically_normal().string());
  auto up = dir;
  for (int i = 0; i < 3 && up.has_parent_path() && up != up.parent_path(); ++i) {
    up = up.parent_path();
    out.push_back((up / sub).lexically_normal().string());
  }
  return out;
}

std::optional<std::string> find_data_file(const std::string& rel) {
  std::error_code ec;
  if (const char* env = std::getenv("QSTAR_DATA_DIR"); env && *env) {
    const auto p = std::filesystem::path(env) / rel;
    if (std::filesystem::is_regular_file(p, ec)) return p.string();
    return std::nullopt;
  }
  for (const auto& d : resource_dirs("data")) {
    const auto p = std::filesystem::path(d) / rel;
    if (std::filesystem::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  return std::nullopt;
}

}  // namespace qstar::cli
