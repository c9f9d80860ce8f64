// Python's methods on str, dict and list (the non-mutating ones templates call, e.g.
// content.split('</think>'), .strip('\n'), .startswith(...), dict.get/items), loop.cycle, and the
// string helpers the filters share (str.strip, str.split, str.replace, case mapping).
#include <algorithm>
#include <cstdlib>

#include <utf8proc.h>

#include "hf/jinja/eval.hpp"

namespace qstar::hf::jinja {

/// Positional-or-keyword argument `i` named `name`, or nullptr.
const Value* arg(const Args& args, const Kwargs& kw, std::size_t i, const char* name) {
  if (i < args.size()) return &args[i];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

void check_arity(Evaluator& ev, const Node& at, const std::string& what, const Args& args, const Kwargs& kw,
                 std::initializer_list<const char*> names) {
  if (args.size() > names.size())
    fail(ev, at, fmt::format("{} takes at most {} argument(s), {} given", what, names.size(), args.size()));
  for (const auto& [k, v] : kw) {
    bool known = false;
    std::size_t idx = 0;
    for (const char* n : names) {
      if (k == n) {
        known = true;
        if (idx < args.size()) fail(ev, at, fmt::format("{} got multiple values for argument '{}'", what, k));
      }
      ++idx;
    }
    if (!known) fail(ev, at, fmt::format("{} got an unexpected keyword argument '{}'", what, k));
  }
}

std::string need_str(Evaluator& ev, const Node& at, const Value* v, const char* what) {
  if (!v || v->k != K::Str) fail(ev, at, fmt::format("{} must be a string", what));
  return v->s;
}

std::string map_case(const std::string& s, int mode) {  // 0 lower, 1 upper
  std::string out;
  for (const std::uint32_t cp : decode_utf8(s))
    append_utf8(out, static_cast<std::uint32_t>(mode ? utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))
                                                     : utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  return out;
}

bool is_cased(std::uint32_t cp) {
  const auto c = static_cast<utf8proc_int32_t>(cp);
  return utf8proc_tolower(c) != c || utf8proc_toupper(c) != c || utf8proc_totitle(c) != c;
}

std::string py_capitalize(const std::string& s) {
  const auto cps = decode_utf8(s);
  std::string out;
  for (std::size_t i = 0; i < cps.size(); ++i) {
    const auto c = static_cast<utf8proc_int32_t>(cps[i]);
    append_utf8(out, static_cast<std::uint32_t>(i == 0 ? utf8proc_totitle(c) : utf8proc_tolower(c)));
  }
  return out;
}

std::string py_title(const std::string& s) {  // str.title()
  std::string out;
  bool prev_cased = false;
  for (const std::uint32_t cp : decode_utf8(s)) {
    const auto c = static_cast<utf8proc_int32_t>(cp);
    append_utf8(out, static_cast<std::uint32_t>(prev_cased ? utf8proc_tolower(c) : utf8proc_totitle(c)));
    prev_cased = is_cased(cp);
  }
  return out;
}

std::string jinja_title(const std::string& s) {  // the title filter: words split on [-\s({\[<]+
  std::string out;
  bool at_word_start = true;
  for (const std::uint32_t cp : decode_utf8(s)) {
    const bool sep = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || py_isspace(cp);
    const auto c = static_cast<utf8proc_int32_t>(cp);
    if (sep) {
      append_utf8(out, cp);
      at_word_start = true;
    } else {
      append_utf8(out, static_cast<std::uint32_t>(at_word_start ? utf8proc_toupper(c) : utf8proc_tolower(c)));
      at_word_start = false;
    }
  }
  return out;
}

// str.strip / lstrip / rstrip; chars null: whitespace.
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  const auto cps = decode_utf8(s);
  std::vector<std::uint32_t> set;
  const bool ws = !chars || chars->k == K::None;
  if (!ws) set = decode_utf8(chars->s);
  auto strip_me = [&](std::uint32_t cp) {
    return ws ? py_isspace(cp) : std::find(set.begin(), set.end(), cp) != set.end();
  };
  std::size_t a = 0, b = cps.size();
  if (left) while (a < b && strip_me(cps[a])) ++a;
  if (right) while (b > a && strip_me(cps[b - 1])) --b;
  return encode_utf8(cps, a, b);
}

Value py_split(Evaluator& ev, const Node& at, const std::string& s, const Value* sep, std::int64_t maxsplit, bool from_right) {
  List parts;
  if (!sep || sep->k == K::None) {  // runs of whitespace; no empty strings
    const auto cps = decode_utf8(s);
    std::vector<std::pair<std::size_t, std::size_t>> words;
    std::size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && py_isspace(cps[i])) ++i;
      if (i >= cps.size()) break;
      std::size_t j = i;
      while (j < cps.size() && !py_isspace(cps[j])) ++j;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit >= 0 && static_cast<std::int64_t>(words.size()) > maxsplit + 1) {
      const auto keep = static_cast<std::size_t>(maxsplit);
      std::vector<std::pair<std::size_t, std::size_t>> w2;
      if (!from_right) {
        for (std::size_t k = 0; k < keep; ++k) w2.push_back(words[k]);
        w2.emplace_back(words[keep].first, cps.size());
        // trailing whitespace of the remainder is kept by Python only on the right side
        std::size_t e = cps.size();
        while (e > w2.back().first && py_isspace(cps[e - 1])) --e;
        w2.back().second = e;
      } else {
        std::size_t st = 0;
        while (st < cps.size() && py_isspace(cps[st])) ++st;
        w2.emplace_back(st, words[words.size() - keep - 1].second);
        for (std::size_t k = words.size() - keep; k < words.size(); ++k) w2.push_back(words[k]);
      }
      words = std::move(w2);
    }
    for (const auto& [a, b] : words) parts.push_back(Value::str(encode_utf8(cps, a, b)));
    return Value::make_list(std::move(parts));
  }
  if (sep->k != K::Str) fail(ev, at, "split() separator must be a string or None");
  if (sep->s.empty()) fail(ev, at, "split(): empty separator");
  const std::string& d = sep->s;
  std::vector<std::string> pieces;
  if (!from_right) {
    std::size_t start = 0;
    while (true) {
      if (maxsplit >= 0 && static_cast<std::int64_t>(pieces.size()) >= maxsplit) break;
      const std::size_t at_pos = s.find(d, start);
      if (at_pos == std::string::npos) break;
      pieces.push_back(s.substr(start, at_pos - start));
      start = at_pos + d.size();
    }
    pieces.push_back(s.substr(start));
  } else {
    std::size_t end = s.size();
    while (true) {
      if (maxsplit >= 0 && static_cast<std::int64_t>(pieces.size()) >= maxsplit) break;
      if (end < d.size()) break;
      const std::size_t at_pos = s.rfind(d, end - d.size());
      if (at_pos == std::string::npos) break;
      pieces.push_back(s.substr(at_pos + d.size(), end - at_pos - d.size()));
      end = at_pos;
    }
    pieces.push_back(s.substr(0, end));
    std::reverse(pieces.begin(), pieces.end());
  }
  for (auto& p : pieces) parts.push_back(Value::str(std::move(p)));
  return Value::make_list(std::move(parts));
}

std::string py_replace(Evaluator& ev, const Node& at, const std::string& s, const std::string& old,
                       const std::string& rep, std::int64_t count) {
  std::string out;
  if (old.empty()) {  // inserts between every code point
    const auto cps = decode_utf8(s);
    std::int64_t done = 0;
    for (std::size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) { out += rep; ++done; }
      if (i < cps.size()) append_utf8(out, cps[i]);
      charge_string(ev, at, out.size());
    }
    return out;
  }
  std::size_t start = 0;
  std::int64_t done = 0;
  while (count < 0 || done < count) {
    const std::size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += rep;
    charge_string(ev, at, out.size());
    start = p + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  charge_string(ev, at, out.size());
  return out;
}

/// jinja2's attribute getter for selectattr/map/sort/join: "a.b" item-then-attribute per part.
Value method_of(const Value& v, const std::string& name) {
  static const char* const str_methods[] = {"startswith", "endswith", "split", "rsplit", "strip", "lstrip",
                                            "rstrip", "lower", "upper", "title", "capitalize", "replace",
                                            "find", "rfind", "count", "join", "splitlines", "isdigit",
                                            "isalpha", "isspace", "isupper", "islower"};
  static const char* const dict_methods[] = {"items", "keys", "values", "get"};
  if (v.k == K::Str) {
    for (const char* m : str_methods)
      if (name == m) return Value::func("str." + name, std::make_shared<Value>(v));
  } else if (v.k == K::Dict) {
    for (const char* m : dict_methods)
      if (name == m) return Value::func("dict." + name, std::make_shared<Value>(v));
  } else if (v.k == K::List && (name == "count" || name == "index")) {
    return Value::func("list." + name, std::make_shared<Value>(v));
  }
  return Value::undefined(name);
}

Value call_method(Evaluator& ev, const Node& at, const Value& fn, const Args& args, const Kwargs& kw) {
  const Value& self = *fn.self;
  const std::string& m = fn.s;
  const std::string what = m + "()";
  if (m == "loop.cycle") {
    if (args.empty()) fail(ev, at, "loop.cycle() needs at least one argument");
    return args[static_cast<std::size_t>(self.i) % args.size()];
  }
  if (m == "dict.items" || m == "dict.keys" || m == "dict.values") {
    check_arity(ev, at, what, args, kw, {});
    List l;
    for (const auto& [key, e] : *self.dict) {
      if (m == "dict.items") l.push_back(Value::make_tuple({Value::str(key), e}));
      else if (m == "dict.keys") l.push_back(Value::str(key));
      else l.push_back(e);
    }
    Value r = Value::make_list(std::move(l));
    r.view = m == "dict.items" ? 1 : m == "dict.keys" ? 2 : 3;
    return r;
  }
  if (m == "dict.get") {
    check_arity(ev, at, what, args, kw, {"key", "default"});
    if (args.empty()) fail(ev, at, "get() needs a key");
    if (args[0].k == K::Str)
      if (const Value* x = self.find(args[0].s)) return *x;
    return args.size() > 1 ? args[1] : Value::none();
  }
  if (m == "list.count" || m == "list.index") {
    check_arity(ev, at, what, args, kw, {"value"});
    if (args.size() != 1) fail(ev, at, fmt::format("{} takes exactly one argument", what));
    std::int64_t n = 0;
    for (std::size_t j = 0; j < self.list->size(); ++j)
      if (equals((*self.list)[j], args[0])) {
        if (m == "list.index") return Value::integer(static_cast<std::int64_t>(j));
        ++n;
      }
    if (m == "list.index") fail(ev, at, fmt::format("{} is not in list", repr(args[0])));
    return Value::integer(n);
  }
  const std::string& s = self.s;
  if (m == "str.startswith" || m == "str.endswith") {
    check_arity(ev, at, what, args, kw, {"prefix"});
    if (args.empty()) fail(ev, at, fmt::format("{} takes at least 1 argument", what));
    auto test = [&](const Value& p) {
      if (p.k != K::Str) fail(ev, at, fmt::format("{}: the argument must be str or a tuple of str", what));
      if (p.s.size() > s.size()) return false;
      return m == "str.startswith" ? s.compare(0, p.s.size(), p.s) == 0 : s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0;
    };
    if (args[0].k == K::List) {
      for (const auto& p : *args[0].list)
        if (test(p)) return Value::boolean(true);
      return Value::boolean(false);
    }
    return Value::boolean(test(args[0]));
  }
  if (m == "str.split" || m == "str.rsplit") {
    check_arity(ev, at, what, args, kw, {"sep", "maxsplit"});
    const Value* mx = arg(args, kw, 1, "maxsplit");
    if (mx && mx->k != K::Int) fail(ev, at, "split(): maxsplit must be an integer");
    return py_split(ev, at, s, arg(args, kw, 0, "sep"), mx ? mx->i : -1, m == "str.rsplit");
  }
  if (m == "str.strip" || m == "str.lstrip" || m == "str.rstrip") {
    check_arity(ev, at, what, args, kw, {"chars"});
    const Value* chars = arg(args, kw, 0, "chars");
    if (chars && chars->k != K::Str && chars->k != K::None) fail(ev, at, fmt::format("{}: chars must be str or None", what));
    return Value::str(py_strip(s, chars, m != "str.rstrip", m != "str.lstrip"));
  }
  if (m == "str.lower" || m == "str.upper") { check_arity(ev, at, what, args, kw, {}); return Value::str(map_case(s, m == "str.upper")); }
  if (m == "str.title") { check_arity(ev, at, what, args, kw, {}); return Value::str(py_title(s)); }
  if (m == "str.capitalize") { check_arity(ev, at, what, args, kw, {}); return Value::str(py_capitalize(s)); }
  if (m == "str.replace") {
    check_arity(ev, at, what, args, kw, {"old", "new", "count"});
    const Value* c = arg(args, kw, 2, "count");
    if (c && c->k != K::Int) fail(ev, at, "replace(): count must be an integer");
    return Value::str(py_replace(ev, at, s, need_str(ev, at, arg(args, kw, 0, "old"), "replace(): old"),
                                 need_str(ev, at, arg(args, kw, 1, "new"), "replace(): new"), c ? c->i : -1));
  }
  if (m == "str.find" || m == "str.rfind" || m == "str.count") {
    check_arity(ev, at, what, args, kw, {"sub"});
    const std::string sub = need_str(ev, at, arg(args, kw, 0, "sub"), (what + ": sub").c_str());
    if (m == "str.count") {
      if (sub.empty()) return Value::integer(static_cast<std::int64_t>(decode_utf8(s).size()) + 1);
      std::int64_t n = 0;
      for (std::size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    const std::size_t p = m == "str.find" ? s.find(sub) : s.rfind(sub);
    if (p == std::string::npos) return Value::integer(-1);
    return Value::integer(static_cast<std::int64_t>(utf8_length(std::string_view(s).substr(0, p))));
  }
  if (m == "str.join") {
    check_arity(ev, at, what, args, kw, {"iterable"});
    if (args.empty()) fail(ev, at, "join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const auto& item : ev.iterate(at, args[0])) {
      if (item.k != K::Str) fail(ev, at, fmt::format("join(): expected str instance, {} found", type_name(item)));
      if (!first) out += s;
      first = false;
      out += item.s;
      charge_string(ev, at, out.size());
    }
    return Value::str(std::move(out));
  }
  if (m == "str.splitlines") {
    check_arity(ev, at, what, args, kw, {});
    List l;
    std::size_t start = 0;
    while (start < s.size()) {
      const std::size_t nl = s.find_first_of("\n\r", start);
      if (nl == std::string::npos) { l.push_back(Value::str(s.substr(start))); break; }
      l.push_back(Value::str(s.substr(start, nl - start)));
      start = nl + ((s[nl] == '\r' && nl + 1 < s.size() && s[nl + 1] == '\n') ? 2 : 1);
    }
    return Value::make_list(std::move(l));
  }
  if (m == "str.isdigit" || m == "str.isalpha" || m == "str.isspace" || m == "str.isupper" || m == "str.islower") {
    check_arity(ev, at, what, args, kw, {});
    const auto cps = decode_utf8(s);
    if (m == "str.isupper" || m == "str.islower") {
      Node dummy;
      return Value::boolean(apply_test(ev, at, m == "str.isupper" ? "upper" : "lower", self, {}));
    }
    if (cps.empty()) return Value::boolean(false);
    for (const std::uint32_t cp : cps) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      bool ok = false;
      if (m == "str.isdigit") ok = cp >= '0' && cp <= '9';
      else if (m == "str.isspace") ok = py_isspace(cp);
      else ok = cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
                cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_LO;
      if (!ok) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  fail(ev, at, fmt::format("'{}' is not callable", m));
}

}  // namespace qstar::hf::jinja
