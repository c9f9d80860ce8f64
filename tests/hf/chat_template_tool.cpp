// A tiny driver for tests/python/test_jinja_parity.py: reads JSON lines
//   {"template": "...", "messages": [...], "add_generation_prompt": bool,
//    "kwargs": {...}, "bos_token": "...", "eos_token": "..."}
// from stdin and writes one JSON line per input, in order:
//   {"text": "..."}  or  {"error": "ParseError" | "InvalidArgument", "message": "..."}
#include <iostream>
#include <string>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/chat_template.hpp"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    qstar::json::Value out = qstar::json::Value::object();
    try {
      const qstar::json::Value in = qstar::json::parse(line, "stdin");
      auto t = qstar::hf::ChatTemplate::from_string(in.get_string("template"), "template");
      if (const auto* b = in.find("bos_token"); b && b->is_string()) t.set_bos_token(b->as_string());
      if (const auto* e = in.find("eos_token"); e && e->is_string()) t.set_eos_token(e->as_string());
      const qstar::json::Value* kw = in.find("kwargs");
      const qstar::json::Value* agp = in.find("add_generation_prompt");
      out.as_object().emplace_back(
          "text", t.render_json(in.at("messages"), agp && agp->is_bool() && agp->as_bool(),
                                kw ? *kw : qstar::json::Value()));
    } catch (const qstar::ParseError& e) {
      out.as_object().emplace_back("error", "ParseError");
      out.as_object().emplace_back("message", e.what());
    } catch (const qstar::InvalidArgument& e) {
      out.as_object().emplace_back("error", "InvalidArgument");
      out.as_object().emplace_back("message", e.what());
    }
    std::cout << qstar::json::dump(out) << '\n' << std::flush;
  }
  return 0;
}
