// The tasks qstar knows, and where qstar finds its data files.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "app/app.hpp"
#include "qstar/tasks/builtin.hpp"
#ifdef QSTAR_HAS_HF
#include "qstar/hf/chat_template.hpp"
#endif

namespace qstar::cli {

const TaskRegistry& builtin_tasks() { return qstar::builtin_tasks(); }

const TaskEntry& task_of(const Args& a) {
  const auto& r = builtin_tasks();
  const auto name = a.get("task");
  if (!name) return r.at(r.names().front());
  if (const auto* e = r.find(*name)) return *e;
  throw UsageError(fmt::format("--task: '{}' is not one of {}", *name, fmt::join(r.names(), ", ")));
}

std::vector<Problem> load_task_data(const Args& a, const TaskEntry& task, const std::string& path,
                                    std::optional<std::pair<int, int>> ranks) {
  PluginOptions options;
  for (const char* f : {"question-field", "answer-field", "limit", "level", "subject"}) {
    const auto v = a.get(f);
    if (!v) continue;
    if (std::find(task.data_options.begin(), task.data_options.end(), f) == task.data_options.end())
      throw UsageError(fmt::format("--{}: task '{}' reads no such data option", f, task.name));
    options.emplace(f, *v);
  }
  if (!task.load_data) throw UsageError(fmt::format("bench: task '{}' has no data loader", task.name));
  try {
    return task.load_data(path, ranks, options);
  } catch (const InvalidArgument& e) {
    throw UsageError(e.what());
  }
}

namespace {

#ifdef QSTAR_HAS_HF
/// Whether `dir`/tokenizer_config.json has a "chat_template".
bool has_chat_template(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto cfg = dir / "tokenizer_config.json";
  if (!std::filesystem::is_regular_file(cfg, ec)) return false;
  std::ifstream in(cfg, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    const json::Value v = json::parse(ss.str(), cfg.string());
    const json::Value* t = v.find("chat_template");
    return t != nullptr && !t->is_null();
  } catch (const ParseError&) {
    return false;
  }
}

/// The chat template --chat-template FILE names: a model folder or a tokenizer_config.json
/// (its chat_template, bos_token, eos_token), else a Jinja template file.
hf::ChatTemplate chat_template_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw UsageError(fmt::format("--chat-template: cannot open '{}'", path));
  return hf::ChatTemplate::from_path(path);
}
#endif

}  // namespace

AnyTask make_task(const Args& a, const TaskEntry& task, std::ostream* note) {
  const bool off = a.has("no-chat-template");
  const auto file = a.get("chat-template");
  if (off && file) throw UsageError("--chat-template and --no-chat-template exclude each other");
  if (!task.make_chat_task) {
    if (file || off) throw UsageError(fmt::format("--{}: task '{}' has plain prompts only", file ? "chat-template" : "no-chat-template", task.name));
    return task.make_task();
  }
  if (off) return task.make_task();
#ifdef QSTAR_HAS_HF
  std::optional<hf::ChatTemplate> tmpl;
  std::string source;
  if (file) {
    tmpl.emplace(chat_template_file(*file));
    source = *file;
  } else if (const auto g = a.get("generator"); g && g->rfind("lm:", 0) == 0 && has_chat_template(g->substr(3))) {
    tmpl.emplace(hf::ChatTemplate::from_tokenizer_config(g->substr(3)));
    source = g->substr(3) + "/tokenizer_config.json";
  }
  if (!tmpl) {
    if (note && a.get("generator").value_or("").rfind("http:", 0) == 0)
      *note << "qstar: note: plain prompts (an http:URL generator's chat template is not known here: give "
               "--chat-template FILE for an instruct model)\n";
    return task.make_task();
  }
  if (note) *note << fmt::format("qstar: note: prompts rendered with the chat template of {}\n", source);
  auto shared = std::make_shared<const hf::ChatTemplate>(std::move(*tmpl));
  return task.make_chat_task([shared](const std::vector<std::pair<std::string, std::string>>& messages) {
    std::vector<hf::ChatMessage> m;
    m.reserve(messages.size());
    for (const auto& [role, content] : messages) m.push_back(hf::ChatMessage{role, content});
    return shared->render(m, /*add_generation_prompt=*/true);
  });
#else
  if (file) throw UsageError("--chat-template: this qstar was built without qstar::hf (PCRE2/utf8proc)");
  (void)note;
  return task.make_task();
#endif
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
