// answers_equal and canonical_key of the math grader (include/qstar/tasks/math/grader.hpp):
// answers parsed into structures (tuples, intervals, lists, sets, matrices) over scalars
// that are compared exactly where possible, else numerically.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <random>

#include "expr.hpp"
#include "qstar/error.hpp"
#include "qstar/tasks/math/grader.hpp"

namespace qstar::math {
namespace {

using namespace detail;

enum class Kind { Text, Scalar, Seq, List, Union, Matrix, Equation };  // List: unordered (sets too)

struct Answer {
  Kind kind = Kind::Text;
  std::string text;  // normalised text
  NodePtr expr;      // Scalar
  std::optional<Exact> exact;
  bool percent = false;
  char open = 0, close = 0;  // Seq
  std::size_t cols = 0;      // Matrix
  std::vector<Answer> elems;
};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

/// Splits on `sep` at bracket depth 0 ((, [, { count alike, so intervals split too).
std::vector<std::string_view> split_top(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> out;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const char c = s[k];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
    else if (depth == 0 && s.compare(k, sep.size(), sep) == 0) {
      out.push_back(s.substr(start, k - start));
      start = k + sep.size();
      k = start - 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

/// Whether the bracket at 0 closes at the very end.
bool wraps(std::string_view s) {
  int depth = 0;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const char c = s[k];
    if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') {
      if (--depth == 0) return k + 1 == s.size();
    }
  }
  return false;
}

Answer parse_answer(std::string text, Budget& budget, int depth);

bool parse_elems(Answer& a, const std::vector<std::string_view>& parts, Budget& budget, int depth,
                 bool strip_lhs = true) {
  if (parts.size() > budget.limits->max_elements) throw LimitHit{};
  for (auto p : parts) {
    a.elems.push_back(parse_answer(normalize_text(p, strip_lhs), budget, depth + 1));
    if (a.elems.back().text.empty()) return false;
  }
  return true;
}

Answer parse_answer(std::string text, Budget& budget, int depth) {
  budget.tick();
  if (depth > budget.limits->max_depth) throw LimitHit{};
  Answer a;
  a.text = std::move(text);
  std::string_view s = a.text;
  if (s.empty()) return a;
  for (std::string_view env : {"pmatrix", "bmatrix", "matrix", "vmatrix"}) {
    const std::string b = "\\begin{" + std::string(env) + "}", e = "\\end{" + std::string(env) + "}";
    if (!starts_with(s, b) || !ends_with(s, e)) continue;
    std::string_view inner = s.substr(b.size(), s.size() - b.size() - e.size());
    auto rows = split_top(inner, "\\\\");
    while (!rows.empty() && rows.back().find_first_not_of(' ') == std::string_view::npos) rows.pop_back();
    Answer m;
    m.kind = Kind::Matrix;
    for (auto r : rows) {
      auto cells = split_top(r, "&");
      if (m.cols == 0) m.cols = cells.size();
      if (cells.size() != m.cols || !parse_elems(m, cells, budget, depth)) return a;
    }
    if (m.elems.empty()) return a;
    m.text = std::move(a.text);
    return m;
  }
  if (auto parts = split_top(s, "\\cup"); parts.size() > 1) {
    Answer u;
    u.kind = Kind::Union;
    if (!parse_elems(u, parts, budget, depth)) return a;
    u.text = std::move(a.text);
    return u;
  }
  if (starts_with(s, "\\{") && ends_with(s, "\\}") && s.size() >= 4) {
    Answer set;
    set.kind = Kind::List;  // a set equals the same roots listed without braces
    if (!parse_elems(set, split_top(s.substr(2, s.size() - 4), ","), budget, depth)) return a;
    set.text = std::move(a.text);
    return set;
  }
  if ((s.front() == '(' || s.front() == '[') && (s.back() == ')' || s.back() == ']') && wraps(s)) {
    auto parts = split_top(s.substr(1, s.size() - 2), ",");
    if (parts.size() > 1) {
      Answer seq;
      seq.kind = Kind::Seq;
      seq.open = s.front();
      seq.close = s.back();
      if (!parse_elems(seq, parts, budget, depth)) return a;
      seq.text = std::move(a.text);
      return seq;
    }
  }
  if (const auto pm = s.find("\\pm"); pm != std::string_view::npos && s.find("\\pm", pm + 1) == std::string_view::npos &&
                                       split_top(s, ",").size() == 1) {
    // "1 \pm \sqrt{2}": the two roots, unordered.
    const std::string plus = std::string(s.substr(0, pm)) + "+" + std::string(s.substr(pm + 3));
    const std::string minus = std::string(s.substr(0, pm)) + "-" + std::string(s.substr(pm + 3));
    Answer list;
    list.kind = Kind::List;
    if (!parse_elems(list, {plus, minus}, budget, depth)) return a;
    list.text = std::move(a.text);
    return list;
  }
  if (auto parts = split_top(s, ","); parts.size() > 1) {
    Answer list;
    list.kind = Kind::List;
    // "x = 1, x = -2" are roots (the "x =" goes); "a = 1, b = 2" keep their names.
    bool same_lhs = true;
    for (auto p : parts) same_lhs = same_lhs && p.substr(0, lone_variable_prefix(p)) ==
                                                    parts[0].substr(0, lone_variable_prefix(parts[0]));
    if (!parse_elems(list, parts, budget, depth, same_lhs)) return a;
    list.text = std::move(a.text);
    return list;
  }
  std::string_view body = s;
  bool percent = false;
  if (!body.empty() && body.back() == '%') {
    percent = true;
    body.remove_suffix(1);
  }
  if (const auto eq = body.find('='); eq != std::string_view::npos && !percent) {
    // An equation "lhs = rhs" (x^2+y^2=1): its sides, compared as written or swapped.
    if (body.find('=', eq + 1) != std::string_view::npos || body.find_first_of("<>!") != std::string_view::npos)
      return a;
    Answer e;
    e.kind = Kind::Equation;
    if (!parse_elems(e, {body.substr(0, eq), body.substr(eq + 1)}, budget, depth, false)) return a;
    e.text = std::move(a.text);
    return e;
  }
  if (body.find('=') != std::string_view::npos || body.find('%') != std::string_view::npos) return a;
  auto e = parse_expression(body, budget);
  if (!e) return a;
  a.kind = Kind::Scalar;
  a.percent = percent;
  a.exact = eval_exact(*e, budget);
  a.expr = std::move(e);
  return a;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool close_to(std::complex<double> x, std::complex<double> y, double tol) {
  auto part = [tol](double a, double b) {
    if (std::isinf(a) || std::isinf(b)) return a == b;
    if (!std::isfinite(a) || !std::isfinite(b)) return false;
    const double d = std::abs(a - b);
    return d <= 1e-12 || d <= tol * std::max(std::abs(a), std::abs(b));
  };
  return part(x.real(), y.real()) && part(x.imag(), y.imag());
}

/// A number literal: [-]digits[.digits] (what PRM800K accepts as a float).
bool is_number_text(std::string_view s, bool allow_dot) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return false;
  bool dot = false;
  for (char c : s) {
    if (c == '.' && allow_dot && !dot) dot = true;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// "a/b", "-a/b", "\frac{a}{b}", "-\frac{a}{b}" as "[-]a/b"; empty if not a plain fraction.
std::string plain_fraction(std::string_view s) {
  std::string sign;
  if (!s.empty() && s.front() == '-') {
    sign = "-";
    s.remove_prefix(1);
  }
  std::string num, den;
  if (starts_with(s, "\\frac{")) {
    const auto mid = s.find("}{");
    if (mid == std::string_view::npos || s.back() != '}') return {};
    num = s.substr(6, mid - 6);
    den = s.substr(mid + 2, s.size() - mid - 3);
  } else if (const auto sl = s.find('/'); sl != std::string_view::npos) {
    num = s.substr(0, sl);
    den = s.substr(sl + 1);
  }
  if (!is_number_text(num, false) || !is_number_text(den, false) || num[0] == '-' || den[0] == '-') return {};
  return sign + num + "/" + den;
}

bool scalar_equal(const Answer& g, const Answer& a, GradeMode mode, Budget& budget) {
  const bool strict = mode == GradeMode::Strict;
  const std::string_view gt = std::string_view(g.text).substr(0, g.text.size() - (g.percent ? 1 : 0));
  const std::string_view at = std::string_view(a.text).substr(0, a.text.size() - (a.percent ? 1 : 0));
  if (gt == at) return true;
  if (strict) {
    if (is_number_text(gt, false) && !is_number_text(at, true)) return false;
    const auto gf = plain_fraction(gt), af = plain_fraction(at);
    if (!gf.empty() && !af.empty() && gf != af) return false;
  }
  const bool decimal = has_decimal(*g.expr) || has_decimal(*a.expr);
  // Lenient percentages: the gold as written, /100 and *100 (Qwen2.5-Math's math_equal).
  std::vector<Rational> scales{1};
  if (!strict && (g.percent || a.percent)) scales = {1, Rational(1, 100), 100};
  if (g.exact && a.exact) {
    for (const auto& k : scales) {
      const Exact gv{g.exact->re * k, g.exact->im * k};
      if (gv == *a.exact) return true;
      if (!strict && decimal &&
          close_to({gv.re.convert_to<double>(), gv.im.convert_to<double>()},
                   {a.exact->re.convert_to<double>(), a.exact->im.convert_to<double>()}, 1e-4))
        return true;
    }
    return false;
  }
  const double tol = strict ? 1e-9 : (decimal ? 1e-4 : 1e-6);
  std::vector<std::string> vars;
  collect_vars(*g.expr, vars);
  collect_vars(*a.expr, vars);
  std::sort(vars.begin(), vars.end());
  const int points = vars.empty() ? 1 : 8;
  std::mt19937_64 rng(0x5eed2024u);
  std::uniform_real_distribution<double> dist(0.3, 2.7);
  int valid = 0;
  for (int p = 0; p < points; ++p) {
    Assignment as;
    for (const auto& v : vars) as.emplace_back(v, std::complex<double>(dist(rng), 0.0));
    const auto gv = eval_complex(*g.expr, as, budget);
    const auto av = eval_complex(*a.expr, as, budget);
    if (!std::isfinite(std::abs(gv)) && !std::isfinite(std::abs(av)) && !std::isinf(gv.real())) continue;
    if (std::isnan(gv.real()) || std::isnan(gv.imag())) continue;
    bool any = false;
    for (const auto& k : scales) any = any || close_to(gv * k.convert_to<double>(), av, tol);
    if (!any) return false;
    ++valid;
  }
  return valid >= (vars.empty() ? 1 : 3);
}

bool equal(const Answer& g, const Answer& a, GradeMode mode, Budget& budget) {
  budget.tick();
  if (g.text == a.text) return true;
  if (g.kind == Kind::Text || a.kind == Kind::Text) {
    if (mode == GradeMode::Strict) return false;
    return lower(g.text) == lower(a.text);
  }
  if (g.kind != a.kind || g.elems.size() != a.elems.size()) return false;
  switch (g.kind) {
    case Kind::Scalar: return scalar_equal(g, a, mode, budget);
    case Kind::Equation:
      return (equal(g.elems[0], a.elems[0], mode, budget) && equal(g.elems[1], a.elems[1], mode, budget)) ||
             (equal(g.elems[0], a.elems[1], mode, budget) && equal(g.elems[1], a.elems[0], mode, budget));
    case Kind::Seq:
      if (g.open != a.open || g.close != a.close) return false;
      [[fallthrough]];
    case Kind::Union:
    case Kind::Matrix:
      if (g.cols != a.cols) return false;
      for (std::size_t k = 0; k < g.elems.size(); ++k)
        if (!equal(g.elems[k], a.elems[k], mode, budget)) return false;
      return true;
    case Kind::List: {
      std::vector<bool> used(a.elems.size(), false);
      for (const auto& ge : g.elems) {
        bool found = false;
        for (std::size_t k = 0; k < a.elems.size() && !found; ++k) {
          if (!used[k] && equal(ge, a.elems[k], mode, budget)) used[k] = found = true;
        }
        if (!found) return false;
      }
      return true;
    }
    case Kind::Text: break;
  }
  return false;
}

std::string key_of(const Answer& a, Budget& budget) {
  switch (a.kind) {
    case Kind::Text: return a.text;
    case Kind::Scalar: {
      if (a.exact) return a.exact->to_string();
      std::vector<std::string> vars;
      collect_vars(*a.expr, vars);
      if (!vars.empty()) return a.percent ? a.text.substr(0, a.text.size() - 1) : a.text;
      const auto v = eval_complex(*a.expr, {}, budget);
      char buf[96];
      if (v.imag() == 0 || std::isnan(v.imag()))
        std::snprintf(buf, sizeof buf, "~%.10g", v.real());
      else
        std::snprintf(buf, sizeof buf, "~%.10g%+.10gi", v.real(), v.imag());
      return buf;
    }
    default: break;
  }
  std::vector<std::string> keys;
  for (const auto& e : a.elems) keys.push_back(key_of(e, budget));
  if (a.kind == Kind::List) std::sort(keys.begin(), keys.end());
  std::string out;
  switch (a.kind) {
    case Kind::Seq: out += a.open; break;
    case Kind::Matrix: out += "matrix" + std::to_string(a.cols) + "["; break;
    default: break;
  }
  for (std::size_t k = 0; k < keys.size(); ++k) {
    if (k) out += a.kind == Kind::Union ? " U " : a.kind == Kind::Equation ? "=" : ",";
    out += keys[k];
  }
  switch (a.kind) {
    case Kind::Seq: out += a.close; break;
    case Kind::Matrix: out += "]"; break;
    default: break;
  }
  return out;
}

}  // namespace

void GraderLimits::validate() const {
  if (max_answer_bytes == 0) throw InvalidArgument("max_answer_bytes: must be positive");
  if (max_exponent < 0) throw InvalidArgument("max_exponent: must be >= 0");
  if (max_depth <= 0 || max_depth > 1000) throw InvalidArgument("max_depth: must be in 1..1000");
  if (max_steps == 0) throw InvalidArgument("max_steps: must be positive");
  if (max_exact_bits == 0) throw InvalidArgument("max_exact_bits: must be positive");
  if (max_elements == 0) throw InvalidArgument("max_elements: must be positive");
}

bool answers_equal(std::string_view gold, std::string_view answer, GradeMode mode, const GraderLimits& limits) {
  limits.validate();
  if (gold.size() > limits.max_answer_bytes || answer.size() > limits.max_answer_bytes)
    return gold == answer && gold.find_first_not_of(" \t\r\n") != std::string_view::npos;
  const std::string g = normalize_answer(gold), a = normalize_answer(answer);
  if (g == a) return !g.empty();
  Budget budget{&limits};
  try {
    const Answer ga = parse_answer(g, budget, 0);
    const Answer aa = parse_answer(a, budget, 0);
    return equal(ga, aa, mode, budget);
  } catch (const LimitHit&) {
    return false;
  }
}

std::string canonical_key(std::string_view answer, const GraderLimits& limits) {
  limits.validate();
  if (answer.size() > limits.max_answer_bytes) return std::string(answer);  // as text, unparsed
  std::string text = normalize_answer(answer);
  Budget budget{&limits};
  try {
    return key_of(parse_answer(text, budget, 0), budget);
  } catch (const LimitHit&) {
    return text;
  }
}

}  // namespace qstar::math
