// Prompt templates shared by the plug-ins that wrap a problem's text before sending it to a
// model (the LibTorch LM generator and PRMs, the HTTP generator and verifier).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qstar {

/// `tmpl` with every occurrence of "{prompt}" replaced by `prompt` (no other placeholder is
/// interpreted; text around it is copied unchanged).
inline std::string apply_prompt_template(std::string_view tmpl, std::string_view prompt) {
  static constexpr std::string_view key = "{prompt}";
  std::string out;
  out.reserve(tmpl.size() + prompt.size());
  std::size_t pos = 0;
  for (;;) {
    const std::size_t at = tmpl.find(key, pos);
    if (at == std::string_view::npos) break;
    out.append(tmpl.substr(pos, at - pos));
    out.append(prompt);
    pos = at + key.size();
  }
  out.append(tmpl.substr(pos));
  return out;
}

}  // namespace qstar
