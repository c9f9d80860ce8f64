// ChatTemplate: the public face of the interpreter (include/qstar/hf/chat_template.hpp).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hf/jinja/eval.hpp"

namespace qstar::hf {

void ChatTemplateLimits::validate() const {
  if (max_template_bytes == 0) throw InvalidArgument("max_template_bytes: must be positive");
  if (max_output_bytes == 0) throw InvalidArgument("max_output_bytes: must be positive");
  if (max_loop_iterations == 0) throw InvalidArgument("max_loop_iterations: must be positive");
  if (max_steps == 0) throw InvalidArgument("max_steps: must be positive");
  if (max_alloc_bytes == 0) throw InvalidArgument("max_alloc_bytes: must be positive");
  if (max_depth < 4 || max_depth > 1000)
    throw InvalidArgument(fmt::format("max_depth: must be in [4, 1000], got {}", max_depth));
}

ChatTemplate ChatTemplate::from_string(std::string source, std::string name, ChatTemplateLimits limits) {
  limits.validate();
  if (source.size() > limits.max_template_bytes)
    throw ParseError(fmt::format("{}: template of {} bytes exceeds max_template_bytes {}", name, source.size(),
                                 limits.max_template_bytes));
  auto prog = std::make_shared<jinja::Program>(jinja::parse(jinja::lex(source, name), name, limits.max_depth));
  ChatTemplate t;
  t.program_ = std::move(prog);
  t.name_ = std::move(name);
  t.source_ = std::move(source);
  t.limits_ = limits;
  return t;
}

namespace {
std::string token_text(const json::Value* v) {
  if (!v || v->is_null()) return {};
  if (v->is_string()) return v->as_string();
  if (v->is_object()) {
    if (const json::Value* c = v->find("content"); c && c->is_string()) return c->as_string();
  }
  return {};
}
}  // namespace

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path_or_model_dir, ChatTemplateLimits limits) {
  namespace fs = std::filesystem;
  fs::path p(path_or_model_dir);
  std::error_code ec;
  if (fs::is_directory(p, ec)) p /= "tokenizer_config.json";
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open", p.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read error", p.string()));
  const std::string file = p.string();
  const json::Value cfg = json::parse(ss.str(), file);
  if (!cfg.is_object()) throw ParseError(fmt::format("{}: expected a JSON object", file));
  const json::Value* ct = cfg.find("chat_template");
  std::string source;
  if (!ct || ct->is_null()) throw ParseError(fmt::format("{}: no \"chat_template\"", file));
  if (ct->is_string()) {
    source = ct->as_string();
  } else if (ct->is_array()) {
    bool found = false;
    for (const auto& e : ct->as_array()) {
      if (!e.is_object()) throw ParseError(fmt::format("{}: \"chat_template\" entries must be objects", file));
      const json::Value* n = e.find("name");
      const json::Value* t = e.find("template");
      if (n && n->is_string() && n->as_string() == "default" && t && t->is_string()) {
        source = t->as_string();
        found = true;
      }
    }
    if (!found) throw ParseError(fmt::format("{}: \"chat_template\" list has no \"default\" entry", file));
  } else {
    throw ParseError(fmt::format("{}: \"chat_template\" must be a string or a list", file));
  }
  ChatTemplate t = from_string(std::move(source), file + ":chat_template", limits);
  t.bos_token_ = token_text(cfg.find("bos_token"));
  t.eos_token_ = token_text(cfg.find("eos_token"));
  return t;
}

ChatTemplate ChatTemplate::from_path(const std::string& path, ChatTemplateLimits limits) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec) || path.ends_with(".json")) return from_tokenizer_config(path, limits);
  limits.validate();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open", path));
  // One byte past the cap is enough for from_string to name the limit.
  std::string source(limits.max_template_bytes + 1, '\0');
  in.read(source.data(), static_cast<std::streamsize>(source.size()));
  if (in.bad()) throw IoError(fmt::format("{}: read error", path));
  source.resize(static_cast<std::size_t>(in.gcount()));
  return from_string(std::move(source), path, limits);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                 const json::Value& extra_kwargs) const {
  json::Value arr = json::Value::array();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    json::Value o = json::Value::object();
    o.as_object().emplace_back("role", m.role);
    o.as_object().emplace_back("content", m.content);
    if (!m.extra.is_null()) {
      if (!m.extra.is_object()) throw InvalidArgument(fmt::format("messages[{}].extra: must be an object or null", i));
      for (const auto& [k, v] : m.extra.as_object()) {
        if (k == "role" || k == "content") throw InvalidArgument(fmt::format("messages[{}].extra: \"{}\" is a field of its own", i, k));
        o.as_object().emplace_back(k, v);
      }
    }
    arr.push_back(std::move(o));
  }
  return render_json(arr, add_generation_prompt, extra_kwargs);
}

std::string ChatTemplate::render_json(const json::Value& messages, bool add_generation_prompt,
                                      const json::Value& extra_kwargs) const {
  if (!program_) throw InvalidArgument("ChatTemplate: empty (build it with from_string or from_tokenizer_config)");
  if (!messages.is_array()) throw InvalidArgument("messages: must be an array");
  if (!extra_kwargs.is_null() && !extra_kwargs.is_object()) throw InvalidArgument("extra_kwargs: must be an object or null");
  jinja::Evaluator ev;
  ev.name = name_;
  ev.limits = limits_;
  jinja::Scope globals;
  globals.emplace_back("messages", jinja::from_json(messages));
  globals.emplace_back("tools", jinja::Value::none());
  globals.emplace_back("documents", jinja::Value::none());
  globals.emplace_back("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  globals.emplace_back("bos_token", jinja::Value::str(bos_token_));
  globals.emplace_back("eos_token", jinja::Value::str(eos_token_));
  if (extra_kwargs.is_object())
    for (const auto& [k, v] : extra_kwargs.as_object()) {
      bool replaced = false;
      for (auto& [gk, gv] : globals)
        if (gk == k) {
          gv = jinja::from_json(v);
          replaced = true;
        }
      if (!replaced) globals.emplace_back(k, jinja::from_json(v));
    }
  ev.scopes.push_back(std::move(globals));
  ev.scopes.emplace_back();  // the template's own top-level `set`s
  std::string out;
  ev.out = &out;
  ev.exec(*program_->root);
  return out;
}

}  // namespace qstar::hf
