// libFuzzer target: the chat-template interpreter (include/qstar/hf/chat_template.hpp,
// src/hf/jinja/*.cpp). No LibTorch.
//
// Input: a template source. It is parsed, then rendered twice with a fixed conversation
// (system, user, assistant with <think> and a tool call, tool) and tight limits.
// Oracles (beyond "no crash, no sanitizer report, only qstar::ParseError or
// qstar::InvalidArgument escape"): every error message starts with "<name>:<line>:" and the
// line is within the template; the output respects max_output_bytes; rendering is
// deterministic (the two renders agree, or both fail with the same message).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_common.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/chat_template.hpp"

namespace {

const qstar::json::Value& messages() {
  static const qstar::json::Value m = qstar::json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2? ünï 🙂"},
    {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4", "reasoning_content": null,
     "tool_calls": [{"type": "function", "function": {"name": "calc", "arguments": {"x": [1, 2.5, true, null]}}}]},
    {"role": "tool", "content": "{\"r\": 4}"},
    {"role": "user", "content": ""}])");
  return m;
}

void check_message(const std::string& msg, std::size_t lines) {
  FUZZ_CHECK(msg.rfind("fuzz:", 0) == 0, "message without the name: %s", qstar_fuzz::shown(msg).c_str());
  const long line = std::strtol(msg.c_str() + 5, nullptr, 10);
  FUZZ_CHECK(line >= 1 && static_cast<std::size_t>(line) <= lines, "line %ld outside 1..%zu: %s", line, lines,
             qstar_fuzz::shown(msg).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 16384) return -1;
  const std::string_view src = qstar_fuzz::as_view(data, size);
  std::size_t lines = 1;
  for (const char c : src) lines += (c == '\n' || c == '\r') ? 1 : 0;
  qstar::hf::ChatTemplateLimits lim;
  lim.max_output_bytes = 1 << 16;
  lim.max_loop_iterations = 2000;
  lim.max_steps = 100000;
  lim.max_depth = 48;
  lim.max_alloc_bytes = 8u << 20;
  qstar::hf::ChatTemplate t;
  try {
    t = qstar::hf::ChatTemplate::from_string(std::string(src), "fuzz", lim);
  } catch (const qstar::ParseError& e) {
    check_message(e.what(), lines);
    return 0;
  }
  t.set_bos_token("<s>");
  t.set_eos_token("</s>");
  const auto kw = qstar::json::parse(R"({"enable_thinking": false})");
  std::string out[2], err[2];
  for (int i = 0; i < 2; ++i) {
    try {
      out[i] = t.render_json(messages(), i == 0, kw);
      FUZZ_CHECK(out[i].size() <= lim.max_output_bytes, "output of %zu bytes", out[i].size());
    } catch (const qstar::InvalidArgument& e) {
      err[i] = e.what();
      check_message(err[i], lines);
    }
  }
  // add_generation_prompt differs between the two renders; render the first again to check determinism.
  std::string again, again_err;
  try {
    again = t.render_json(messages(), true, kw);
  } catch (const qstar::InvalidArgument& e) {
    again_err = e.what();
  }
  FUZZ_CHECK(again == out[0] && again_err == err[0], "non-deterministic render: %s",
             qstar_fuzz::shown(src).c_str());
  return 0;
}
