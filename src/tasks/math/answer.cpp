// Final-answer extraction and text normalisation of the math grader
// (include/qstar/tasks/math/grader.hpp).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "expr.hpp"
#include "qstar/tasks/math/grader.hpp"

namespace qstar::math {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Index one past the '}' matching the '{' at `open` (escaped braces \{ \} skipped), or npos.
std::size_t match_brace(std::string_view s, std::size_t open) {
  int depth = 0;
  for (std::size_t k = open; k < s.size(); ++k) {
    if (s[k] == '\\' && k + 1 < s.size()) {
      ++k;
      continue;
    }
    if (s[k] == '{') ++depth;
    if (s[k] == '}' && --depth == 0) return k + 1;
  }
  return std::string_view::npos;
}

/// Last position of `needle` in `hay`, case-insensitive.
std::size_t rfind_nocase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (std::size_t k = hay.size() - needle.size() + 1; k-- > 0;) {
    bool ok = true;
    for (std::size_t j = 0; j < needle.size() && ok; ++j)
      ok = std::tolower(static_cast<unsigned char>(hay[k + j])) == std::tolower(static_cast<unsigned char>(needle[j]));
    if (ok) return k;
  }
  return std::string_view::npos;
}

std::string rest_of_line(std::string_view s) {
  const auto nl = s.find('\n');
  if (nl != std::string_view::npos) s = s.substr(0, nl);
  s = trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == '$' || s.back() == ',' || s.back() == ';' || is_space(s.back())))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ':' || s.front() == '$' || is_space(s.front()))) s.remove_prefix(1);
  return std::string(s);
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  std::size_t k = 0;
  for (;;) {
    const auto at = s.find(from, k);
    if (at == std::string::npos) break;
    out.append(s, k, at - k);
    out.append(to);
    k = at + from.size();
  }
  out.append(s, k, std::string::npos);
  s = std::move(out);
}

/// Removes a LaTeX command \name when not followed by a letter (\left( but not \leftarrow).
void remove_command(std::string& s, std::string_view name) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t k = 0; k < s.size();) {
    if (s.compare(k, name.size(), name) == 0 && (k + name.size() >= s.size() || !is_alpha(s[k + name.size()]))) {
      k += name.size();
      continue;
    }
    out += s[k++];
  }
  s = std::move(out);
}

/// \text{...}-like wrappers: a unit (letters after some value) is dropped, else unwrapped.
void unwrap_text(std::string& s) {
  static constexpr std::string_view kWrappers[] = {"\\text", "\\textbf", "\\textit", "\\mbox",   "\\mathrm",
                                                  "\\textrm", "\\mathbf", "\\operatorname", "\\mathit"};
  std::string out;
  out.reserve(s.size());
  for (std::size_t k = 0; k < s.size();) {
    bool done = false;
    if (s[k] == '\\') {
      for (auto w : kWrappers) {
        const std::size_t e = k + w.size();
        if (s.compare(k, w.size(), w) != 0 || e >= s.size() || is_alpha(s[e])) continue;
        std::size_t open = e;
        while (open < s.size() && is_space(s[open])) ++open;
        if (open >= s.size() || s[open] != '{') continue;
        const std::size_t close = match_brace(s, open);
        if (close == std::string::npos) continue;
        const std::string_view inner = trim(std::string_view(s).substr(open + 1, close - open - 2));
        const bool unit = !trim(out).empty() && !inner.empty() && is_alpha(inner.front());
        std::size_t next = close;
        if (unit) {
          // "\text{ cm}^2": the power belongs to the unit.
          std::string_view tail = std::string_view(s).substr(next);
          for (std::string_view p : {"^2", "^3", "^{2}", "^{3}"})
            if (tail.substr(0, p.size()) == p) next += p.size();
        } else {
          out += inner;
        }
        k = next;
        done = true;
        break;
      }
    }
    if (!done) out += s[k++];
  }
  s = std::move(out);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c); });
}

/// "12.5 dollars", "18 inches": a number followed by words of 2+ letters keeps the number.
void drop_unit_words(std::string& s) {
  std::size_t k = 0;
  if (k < s.size() && s[k] == '-') ++k;
  const std::size_t num_start = k;
  while (k < s.size() && (is_digit(s[k]) || s[k] == '.' || s[k] == ',')) ++k;
  if (k == num_start || k >= s.size() || !is_space(s[k])) return;
  const std::size_t num_end = k;
  std::size_t letters = 0, word = 0;
  for (; k < s.size(); ++k) {
    if (is_alpha(s[k])) {
      ++word;
      ++letters;
    } else if (is_space(s[k])) {
      if (word == 1) return;
      word = 0;
    } else {
      return;
    }
  }
  if (word == 1 || letters == 0) return;
  s.resize(num_end);
}

/// "3 1/2" -> "3\frac{1}{2}" (the whole text only).
void mixed_number(std::string& s) {
  const auto sp = s.find(' ');
  const auto slash = s.find('/');
  if (sp == std::string::npos || slash == std::string::npos || slash < sp) return;
  std::string_view whole(s.data(), sp);
  if (!whole.empty() && whole.front() == '-') whole.remove_prefix(1);
  std::string_view rest = trim(std::string_view(s).substr(sp));
  const auto sl = rest.find('/');
  if (!all_digits(whole) || sl == std::string_view::npos || !all_digits(rest.substr(0, sl)) ||
      !all_digits(rest.substr(sl + 1)))
    return;
  s = s.substr(0, sp) + "\\frac{" + std::string(rest.substr(0, sl)) + "}{" + std::string(rest.substr(sl + 1)) + "}";
}

/// -?\d{1,3}(,\d{3})+(\.\d+)? -> the commas removed.
void thousands(std::string& s) {
  std::string_view v = s;
  if (!v.empty() && v.front() == '-') v.remove_prefix(1);
  const auto dot = v.find('.');
  std::string_view ip = v.substr(0, dot);
  if (dot != std::string_view::npos && !all_digits(v.substr(dot + 1))) return;
  const auto first = ip.find(',');
  if (first == std::string_view::npos || first == 0 || first > 3) return;
  if (!all_digits(ip.substr(0, first))) return;
  for (std::size_t k = first; k < ip.size(); k += 4)
    if (ip[k] != ',' || k + 4 > ip.size() || !all_digits(ip.substr(k + 1, 3))) return;
  s.erase(std::remove(s.begin(), s.end(), ','), s.end());
}

bool top_level_comma(std::string_view s) {
  int depth = 0;
  for (char c : s) {
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (c == ',' && depth == 0) return true;
  }
  return false;
}

/// "_{9}" -> "_9", "^{x}" -> "^x": one-character braces after a sub/superscript.
void single_char_scripts(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) {
    out += s[k];
    if ((s[k] == '_' || s[k] == '^') && k + 3 < s.size() + 0 && s[k + 1] == '{' && s[k + 3] == '}' &&
        (is_alpha(s[k + 2]) || is_digit(s[k + 2]))) {
      out += s[k + 2];
      k += 3;
    }
  }
  s = std::move(out);
}

}  // namespace

std::optional<std::string> extract_answer(std::string_view text) {
  std::size_t best = std::string_view::npos, name_len = 0;
  for (std::string_view cmd : {"\\boxed", "\\fbox"}) {
    const auto at = text.rfind(cmd);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) {
      best = at;
      name_len = cmd.size();
    }
  }
  if (best != std::string_view::npos) {
    std::size_t k = best + name_len;
    while (k < text.size() && is_space(text[k])) ++k;
    if (k < text.size() && text[k] == '{') {
      const std::size_t close = match_brace(text, k);
      if (close == std::string_view::npos) return std::nullopt;
      return std::string(trim(text.substr(k + 1, close - k - 2)));
    }
    if (k > best + name_len) {  // "\boxed 5": up to a space or '$'
      std::size_t e = k;
      while (e < text.size() && !is_space(text[e]) && text[e] != '$') ++e;
      std::string_view v = text.substr(k, e - k);
      while (!v.empty() && (v.back() == '.' || v.back() == ',')) v.remove_suffix(1);
      if (!v.empty()) return std::string(v);
    }
    return std::nullopt;
  }
  static constexpr std::string_view kPhrase = "the answer is";
  if (const auto at = rfind_nocase(text, kPhrase); at != std::string_view::npos) {
    auto v = rest_of_line(text.substr(at + kPhrase.size()));
    if (!v.empty()) return v;
  }
  if (const auto at = text.rfind("####"); at != std::string_view::npos) {
    auto v = rest_of_line(text.substr(at + 4));
    if (!v.empty()) return v;
  }
  return std::nullopt;
}

namespace detail {

std::size_t lone_variable_prefix(std::string_view s) {
  std::size_t rel = s.find('='), rel_len = 1;
  for (std::size_t at = s.find("\\in"); at != std::string_view::npos; at = s.find("\\in", at + 1)) {
    if (at + 3 < s.size() && is_alpha(s[at + 3])) continue;  // \infty
    if (rel == std::string_view::npos || at < rel) {
      rel = at;
      rel_len = 3;
    }
    break;
  }
  if (rel == std::string_view::npos || rel + rel_len >= s.size()) return 0;
  if (rel_len == 1 && s.find('=', rel + 1) != std::string_view::npos) return 0;
  const std::string_view lhs = trim(s.substr(0, rel));
  std::size_t k = 0;
  if (!lhs.empty() && lhs[0] == '\\') {
    ++k;
    while (k < lhs.size() && is_alpha(lhs[k])) ++k;
  } else if (!lhs.empty() && is_alpha(lhs[0])) {
    k = 1;
  }
  if (k > 0 && k + 1 < lhs.size() && lhs[k] == '_') {  // x_1, a_{n}
    const std::string_view sub = lhs.substr(k + 1);
    const bool braced = sub.size() >= 2 && sub.front() == '{' && sub.back() == '}' &&
                        sub.find_first_of("{}", 1) == sub.size() - 1;
    if (braced || (sub.size() == 1 && (is_alpha(sub[0]) || is_digit(sub[0])))) k = lhs.size();
  }
  if (k == 0 || k != lhs.size()) return 0;
  return rel + rel_len;
}

std::string normalize_text(std::string_view answer, bool strip_lhs) {
  std::string s(trim(answer));
  for (std::string_view box : {"\\boxed", "\\fbox"}) {  // a whole answer still boxed
    std::size_t open = box.size();
    if (s.compare(0, box.size(), box) != 0) continue;
    while (open < s.size() && is_space(s[open])) ++open;
    if (open < s.size() && s[open] == '{' && match_brace(s, open) == s.size())
      s = std::string(trim(std::string_view(s).substr(open + 1, s.size() - open - 2)));
  }
  for (auto cmd : {"\\displaystyle", "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big"})
    remove_command(s, cmd);
  replace_all(s, "\\\\", "\x01");  // a row break "\\\\" is not the spacing "\\ "
  for (auto sp : {"\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\quad", "\\qquad"}) replace_all(s, sp, " ");
  replace_all(s, "\x01", "\\\\");
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "\\cfrac", "\\frac");
  replace_all(s, "\\leq", "\\le");
  replace_all(s, "\\geq", "\\ge");
  replace_all(s, "\\%", "%");
  replace_all(s, "\\$", "");
  replace_all(s, "$", "");
  for (auto deg : {"^{\\circ}", "^\\circ", "{}^\\circ", "\\circ", "\xc2\xb0"}) replace_all(s, deg, "");
  unwrap_text(s);
  replace_all(s, "{,}", ",");
  s = std::string(trim(s));
  while (!s.empty() && (s.back() == '.' || s.back() == ',' || s.back() == ';' || s.back() == ':')) {
    s.pop_back();
    s = std::string(trim(s));
  }
  drop_unit_words(s);
  mixed_number(s);
  // Spaces go, except one between two letters ("\pi r", "x y") or two digits (the mixed
  // number "8 2/3" inside a tuple, normalised again per element).
  std::string out;
  out.reserve(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) {
    if (!is_space(s[k])) {
      out += s[k];
      continue;
    }
    while (k + 1 < s.size() && is_space(s[k + 1])) ++k;
    if (!out.empty() && k + 1 < s.size() &&
        ((is_alpha(out.back()) && is_alpha(s[k + 1])) || (is_digit(out.back()) && is_digit(s[k + 1]))))
      out += ' ';
  }
  s = std::move(out);
  // "x = 5", "y=2x+1", "\theta = 30", "x \in [1, 2]": a lone variable on the left goes.
  if (strip_lhs && !top_level_comma(s)) {
    if (const auto at = detail::lone_variable_prefix(s); at != 0) s = std::string(trim(std::string_view(s).substr(at)));
  }
  // "(C)": a multiple-choice letter.
  if (s.size() == 3 && s[0] == '(' && s[2] == ')' && s[1] >= 'A' && s[1] <= 'Z') s = s.substr(1, 1);
  mixed_number(s);  // "x = 3 1/2"
  single_char_scripts(s);
  thousands(s);
  return s;
}

}  // namespace detail

std::string normalize_answer(std::string_view answer) { return detail::normalize_text(answer, true); }

}  // namespace qstar::math
