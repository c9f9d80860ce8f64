// Filters and tests (jinja2's semantics, transformers' tojson). Nothing here mutates a value
// (the sandbox is immutable).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <utf8proc.h>

#include "hf/jinja/eval.hpp"

namespace qstar::hf::jinja {
namespace {

Value get_path(Evaluator& ev, const Node& at, const Value& v, const std::string& path) {
  Value cur = v;
  std::size_t start = 0;
  while (true) {
    if (cur.is_undefined()) fail(ev, at, fmt::format("'{}' is undefined (reading attribute '{}')", cur.s.empty() ? "value" : cur.s, path));
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur.k == K::List) {
      char* end = nullptr;
      const long long idx = std::strtoll(part.c_str(), &end, 10);
      if (!part.empty() && *end == '\0' && idx >= 0 && static_cast<std::size_t>(idx) < cur.list->size())
        cur = (*cur.list)[static_cast<std::size_t>(idx)];
      else
        return Value::undefined(part);
    } else if (const Value* m = cur.find(part)) {
      cur = *m;
    } else {
      Value meth = (cur.k == K::Dict || cur.k == K::Str) ? method_of(cur, part) : Value::undefined(part);
      if (meth.is_undefined()) return Value::undefined(part);
      cur = meth;
    }
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string to_str_checked(Evaluator& ev, const Node& at, const Value& v) {
  std::string s = to_str(v);
  charge_string(ev, at, s.size());
  return s;
}

Value select_like(Evaluator& ev, const Node& at, const std::string& fname, const Value& v, const Args& args,
                  bool by_attr, bool keep_if) {
  List items = truthy(v) ? ev.iterate(at, v) : List{};  // jinja2: `if value:` before iterating
  List out;
  std::size_t first_arg = 0;
  std::string attr;
  if (by_attr) {
    if (args.empty() || args[0].k != K::Str) fail(ev, at, fmt::format("{} needs an attribute name", fname));
    attr = args[0].s;
    first_arg = 1;
  }
  std::string test;
  Args targs;
  if (args.size() > first_arg) {
    if (args[first_arg].k != K::Str) fail(ev, at, fmt::format("{}: the test name must be a string", fname));
    test = args[first_arg].s;
    targs.assign(args.begin() + static_cast<std::ptrdiff_t>(first_arg + 1), args.end());
  }
  for (const auto& item : items) {
    const Value x = by_attr ? get_path(ev, at, item, attr) : item;
    const bool r = test.empty() ? truthy(x) : apply_test(ev, at, test, x, targs);
    if (r == keep_if) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

Value apply_filter(Evaluator& ev, const Node& at, const std::string& name, const Value& v, const Args& args,
                   const Kwargs& kw) {
  const std::string what = "filter '" + name + "'";
  if (name == "trim") {
    check_arity(ev, at, what, args, kw, {"chars"});
    const Value* chars = arg(args, kw, 0, "chars");
    if (chars && chars->k != K::Str && chars->k != K::None) fail(ev, at, "trim: chars must be a string");
    return Value::str(py_strip(to_str(v), chars, true, true));
  }
  if (name == "length" || name == "count") {
    check_arity(ev, at, what, args, kw, {});
    switch (v.k) {
      case K::Str: return Value::integer(static_cast<std::int64_t>(decode_utf8(v.s).size()));
      case K::List: return Value::integer(static_cast<std::int64_t>(v.list->size()));
      case K::Dict: return Value::integer(static_cast<std::int64_t>(v.dict->size()));
      case K::Undefined: return Value::integer(0);
      default: fail(ev, at, fmt::format("object of type '{}' has no len()", type_name(v)));
    }
  }
  if (name == "tojson") {
    check_arity(ev, at, what, args, kw, {"ensure_ascii", "indent", "separators", "sort_keys"});
    const Value* ea = arg(args, kw, 0, "ensure_ascii");
    const Value* ind = arg(args, kw, 1, "indent");
    const Value* sep = arg(args, kw, 2, "separators");
    const Value* sk = arg(args, kw, 3, "sort_keys");
    if (ea && truthy(*ea)) fail(ev, at, "tojson: ensure_ascii=True is not supported");
    if (sep && sep->k != K::None) fail(ev, at, "tojson: separators are not supported");
    int indent = -1;
    if (ind && ind->k != K::None) {
      if (ind->k != K::Int || ind->i < 0 || ind->i > 64) fail(ev, at, "tojson: indent must be an integer in [0, 64]");
      indent = static_cast<int>(ind->i);
    }
    bool ok = true;
    std::string s = to_json(v, indent, sk && truthy(*sk), ok);
    if (!ok) fail(ev, at, fmt::format("tojson: object of type '{}' is not JSON serializable", type_name(v)));
    charge_string(ev, at, s.size());
    return Value::str(std::move(s));
  }
  if (name == "string") { check_arity(ev, at, what, args, kw, {}); return Value::str(to_str_checked(ev, at, v)); }
  if (name == "upper") { check_arity(ev, at, what, args, kw, {}); return Value::str(map_case(to_str(v), 1)); }
  if (name == "lower") { check_arity(ev, at, what, args, kw, {}); return Value::str(map_case(to_str(v), 0)); }
  if (name == "capitalize") { check_arity(ev, at, what, args, kw, {}); return Value::str(py_capitalize(to_str(v))); }
  if (name == "title") { check_arity(ev, at, what, args, kw, {}); return Value::str(jinja_title(to_str(v))); }
  if (name == "safe") { check_arity(ev, at, what, args, kw, {}); return v; }
  if (name == "e" || name == "escape") { check_arity(ev, at, what, args, kw, {}); return Value::str(html_escape(to_str(v))); }
  if (name == "replace") {
    check_arity(ev, at, what, args, kw, {"old", "new", "count"});
    const Value* c = arg(args, kw, 2, "count");
    std::int64_t count = -1;
    if (c && c->k != K::None) {
      if (c->k != K::Int) fail(ev, at, "replace: count must be an integer");
      count = c->i;
    }
    return Value::str(py_replace(ev, at, to_str(v), need_str(ev, at, arg(args, kw, 0, "old"), "replace: old"),
                                 need_str(ev, at, arg(args, kw, 1, "new"), "replace: new"), count));
  }
  if (name == "join") {
    check_arity(ev, at, what, args, kw, {"d", "attribute"});
    const Value* d = arg(args, kw, 0, "d");
    const Value* attr = arg(args, kw, 1, "attribute");
    const std::string sep = d ? to_str(*d) : std::string();
    std::string out;
    bool first = true;
    for (const auto& item : ev.iterate(at, v)) {
      if (!first) out += sep;
      first = false;
      out += to_str(attr && attr->k == K::Str ? get_path(ev, at, item, attr->s) : item);
      charge_string(ev, at, out.size());
    }
    return Value::str(std::move(out));
  }
  if (name == "default" || name == "d") {
    check_arity(ev, at, what, args, kw, {"default_value", "boolean"});
    const Value* dv = arg(args, kw, 0, "default_value");
    const Value* boolean = arg(args, kw, 1, "boolean");
    const bool use = v.is_undefined() || (boolean && truthy(*boolean) && !truthy(v));
    if (!use) return v;
    return dv ? *dv : Value::str("");
  }
  if (name == "items") {
    check_arity(ev, at, what, args, kw, {});
    if (v.is_undefined()) return Value::make_list({});
    if (v.k != K::Dict) fail(ev, at, fmt::format("items: can only get items from a mapping, not {}", type_name(v)));
    List l;
    for (const auto& [key, e] : *v.dict) l.push_back(Value::make_tuple({Value::str(key), e}));
    return Value::make_list(std::move(l));
  }
  if (name == "first" || name == "last") {
    check_arity(ev, at, what, args, kw, {});
    List items = ev.iterate(at, v);
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") { check_arity(ev, at, what, args, kw, {}); return Value::make_list(ev.iterate(at, v)); }
  if (name == "reverse") {
    check_arity(ev, at, what, args, kw, {});
    if (v.k == K::Str) {
      auto cps = decode_utf8(v.s);
      std::reverse(cps.begin(), cps.end());
      return Value::str(encode_utf8(cps, 0, cps.size()));
    }
    List items = ev.iterate(at, v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "sort" || name == "unique" || name == "min" || name == "max") {
    const bool sort = name == "sort";
    if (sort) check_arity(ev, at, what, args, kw, {"reverse", "case_sensitive", "attribute"});
    else check_arity(ev, at, what, args, kw, {"case_sensitive", "attribute"});
    const std::size_t off = sort ? 1 : 0;
    const Value* rev = sort ? arg(args, kw, 0, "reverse") : nullptr;
    const Value* cs = arg(args, kw, off, "case_sensitive");
    const Value* attr = arg(args, kw, off + 1, "attribute");
    const bool case_sensitive = cs && truthy(*cs);
    List items = ev.iterate(at, v);
    auto key = [&](const Value& x) {
      Value k = attr && attr->k == K::Str ? get_path(ev, at, x, attr->s) : x;
      if (!case_sensitive && k.k == K::Str) k.s = map_case(k.s, 0);
      return k;
    };
    auto less = [&](const Value& a, const Value& b) {
      bool ok = true;
      const int c = compare(key(a), key(b), ok);
      if (!ok) fail(ev, at, fmt::format("{}: '<' not supported between '{}' and '{}'", name, type_name(a), type_name(b)));
      return c < 0;
    };
    if (sort) {
      std::stable_sort(items.begin(), items.end(), less);
      if (rev && truthy(*rev)) {  // Python's reverse=True keeps equal items in order
        std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) { return less(b, a); });
      }
      return Value::make_list(std::move(items));
    }
    if (name == "unique") {
      List out;
      for (const auto& x : items) {
        const Value kx = key(x);
        if ((kx.k == K::List && !kx.tuple) || kx.k == K::Dict || kx.k == K::Namespace)
          fail(ev, at, fmt::format("unique: unhashable type: '{}'", type_name(kx)));
        bool seen = false;
        for (const auto& y : out) seen = seen || equals(key(x), key(y));
        if (!seen) out.push_back(x);
      }
      return Value::make_list(std::move(out));
    }
    if (items.empty()) return Value::undefined(name);
    Value best = items[0];
    for (std::size_t j = 1; j < items.size(); ++j)
      if (name == "min" ? less(items[j], best) : less(best, items[j])) best = items[j];
    return best;
  }
  if (name == "selectattr" || name == "rejectattr") return select_like(ev, at, name, v, args, true, name == "selectattr");
  if (name == "select" || name == "reject") return select_like(ev, at, name, v, args, false, name == "select");
  if (name == "map") {
    List out;
    const Value* attr = nullptr;
    const Value* dflt = nullptr;
    for (const auto& [k, x] : kw) {
      if (k == "attribute") attr = &x;
      else if (k == "default") dflt = &x;
      else if (args.empty()) fail(ev, at, fmt::format("map: unexpected keyword argument '{}'", k));
    }
    if (!truthy(v)) return Value::make_list({});  // jinja2: `if value:` before iterating
    if (attr) {
      if (attr->k != K::Str) fail(ev, at, "map: attribute must be a string");
      for (const auto& item : ev.iterate(at, v)) {
        Value x = get_path(ev, at, item, attr->s);
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      }
      return Value::make_list(std::move(out));
    }
    if (args.empty() || args[0].k != K::Str) fail(ev, at, "map needs a filter name or attribute=");
    const Args fargs(args.begin() + 1, args.end());
    for (const auto& item : ev.iterate(at, v)) out.push_back(apply_filter(ev, at, args[0].s, item, fargs, kw));
    return Value::make_list(std::move(out));
  }
  if (name == "sum") {
    check_arity(ev, at, what, args, kw, {"attribute", "start"});
    const Value* attr = arg(args, kw, 0, "attribute");
    const Value* start = arg(args, kw, 1, "start");
    Value acc = start ? *start : Value::integer(0);
    for (const auto& item : ev.iterate(at, v))
      acc = ev.arith(at, "+", acc, attr && attr->k == K::Str ? get_path(ev, at, item, attr->s) : item);
    return acc;
  }
  if (name == "int" || name == "float") {
    check_arity(ev, at, what, args, kw, name == "int" ? std::initializer_list<const char*>{"default", "base"} : std::initializer_list<const char*>{"default"});
    const Value* d = arg(args, kw, 0, "default");
    const Value dv = d ? *d : (name == "int" ? Value::integer(0) : Value::number(0.0));
    if (v.is_undefined()) fail(ev, at, fmt::format("{}: '{}' is undefined", name, v.s.empty() ? "value" : v.s));
    if (v.k == K::Int || v.k == K::Bool) return name == "int" ? Value::integer(v.k == K::Int ? v.i : v.b) : Value::number(static_cast<double>(v.k == K::Int ? v.i : v.b));
    if (v.k == K::Float) {
      if (name == "float") return v;
      if (!std::isfinite(v.f) || std::fabs(v.f) >= 9.2e18) return dv;
      return Value::integer(static_cast<std::int64_t>(v.f));
    }
    if (v.k == K::Str) {
      std::string t = py_strip(v.s, nullptr, true, true);
      std::string u;
      for (const char c : t) if (c != '_') u += c;
      char* end = nullptr;
      if (name == "int") {
        errno = 0;
        const long long x = std::strtoll(u.c_str(), &end, 10);
        if (!u.empty() && end && *end == '\0' && errno == 0) return Value::integer(x);
        const double f = std::strtod(u.c_str(), &end);  // jinja: int(float(s)) as a fallback
        if (!u.empty() && end && *end == '\0' && std::isfinite(f) && std::fabs(f) < 9.2e18) return Value::integer(static_cast<std::int64_t>(f));
        return dv;
      }
      const double f = std::strtod(u.c_str(), &end);
      if (!u.empty() && end && *end == '\0') return Value::number(f);
      return dv;
    }
    return dv;
  }
  if (name == "abs") {
    check_arity(ev, at, what, args, kw, {});
    if (v.k == K::Float) return Value::number(std::fabs(v.f));
    if (v.k == K::Int || v.k == K::Bool) {
      const std::int64_t x = v.k == K::Int ? v.i : v.b;
      if (x == std::numeric_limits<std::int64_t>::min()) fail(ev, at, "abs: integer overflow");
      return Value::integer(x < 0 ? -x : x);
    }
    fail(ev, at, fmt::format("bad operand type for abs(): '{}'", type_name(v)));
  }
  if (name == "round") {
    check_arity(ev, at, what, args, kw, {"precision", "method"});
    const Value* p = arg(args, kw, 0, "precision");
    const Value* m = arg(args, kw, 1, "method");
    const std::int64_t prec = p && p->k == K::Int ? p->i : 0;
    const std::string method = m && m->k == K::Str ? m->s : "common";
    if (!v.is_numeric()) fail(ev, at, "round: not a number");
    if (prec < 0 || prec > 15) fail(ev, at, "round: precision must be in [0, 15]");
    if (method == "common" && v.k != K::Float) return Value::integer(v.k == K::Int ? v.i : v.b);  // round(int) is an int
    const double x = v.k == K::Float ? v.f : static_cast<double>(v.k == K::Int ? v.i : v.b);
    const double scale = std::pow(10.0, static_cast<double>(prec));
    double r = 0;
    if (method == "common") {  // Python's round(): correctly rounded, ties to even
      char buf[400];
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(prec), x);
      r = std::strtod(buf, nullptr);
    }
    else if (method == "ceil") r = std::ceil(x * scale) / scale;
    else if (method == "floor") r = std::floor(x * scale) / scale;
    else fail(ev, at, "round: method must be common, ceil or floor");
    return Value::number(r);
  }
  if (name == "indent") {
    check_arity(ev, at, what, args, kw, {"width", "first", "blank"});
    const Value* w = arg(args, kw, 0, "width");
    const Value* first = arg(args, kw, 1, "first");
    const Value* blank = arg(args, kw, 2, "blank");
    std::string pad;
    if (!w) pad = "    ";
    else if (w->k == K::Str) pad = w->s;
    else if (w->k == K::Int && w->i >= 0 && w->i <= 256) pad.assign(static_cast<std::size_t>(w->i), ' ');
    else fail(ev, at, "indent: width must be an integer in [0, 256] or a string");
    if (v.k != K::Str) fail(ev, at, fmt::format("indent: expected a string, got {}", type_name(v)));
    const std::string& s = v.s;
    std::string out;
    std::size_t start = 0;
    bool first_line = true;
    while (true) {  // "\n" separated lines (str.splitlines on "\n" only)
      const std::size_t nl = s.find('\n', start);
      const std::string line = s.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      const bool indent_it = first_line ? (first && truthy(*first)) : (!line.empty() || (blank && truthy(*blank)));
      if (indent_it) out += pad;
      out += line;
      charge_string(ev, at, out.size());
      if (nl == std::string::npos) break;
      out += '\n';
      start = nl + 1;
      first_line = false;
    }
    return Value::str(std::move(out));
  }
  if (name == "wordcount") {
    check_arity(ev, at, what, args, kw, {});
    std::int64_t words = 0;  // runs of \w (letters, digits, marks, underscore)
    bool in_word = false;
    for (const std::uint32_t cp : decode_utf8(to_str(v))) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
      const bool w = cp == '_' || (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO);
      if (w && !in_word) ++words;
      in_word = w;
    }
    return Value::integer(words);
  }
  fail(ev, at, fmt::format("no filter named '{}'", name));
}

bool apply_test(Evaluator& ev, const Node& at, const std::string& name, const Value& v, const Args& args) {
  auto nargs = [&](std::size_t n) {
    if (args.size() != n) fail(ev, at, fmt::format("test '{}' takes {} argument(s), {} given", name, n, args.size()));
  };
  auto cmp = [&](int& c) {
    nargs(1);
    bool ok = true;
    c = compare(v, args[0], ok);
    if (!ok) fail(ev, at, fmt::format("test '{}': cannot compare '{}' and '{}'", name, type_name(v), type_name(args[0])));
  };
  int c = 0;
  if (name == "defined") { nargs(0); return !v.is_undefined(); }
  if (name == "undefined") { nargs(0); return v.is_undefined(); }
  if (name == "none") { nargs(0); return v.k == K::None; }
  if (name == "string") { nargs(0); return v.k == K::Str; }
  if (name == "mapping") { nargs(0); return v.k == K::Dict; }
  if (name == "iterable") { nargs(0); return v.k == K::Str || v.k == K::List || v.k == K::Dict || v.k == K::Undefined; }
  if (name == "sequence") { nargs(0); return v.k == K::Str || v.k == K::List || v.k == K::Dict || v.k == K::Undefined; }
  if (name == "number") { nargs(0); return v.is_numeric(); }
  if (name == "integer") { nargs(0); return v.k == K::Int; }
  if (name == "float") { nargs(0); return v.k == K::Float; }
  if (name == "boolean") { nargs(0); return v.k == K::Bool; }
  if (name == "true") { nargs(0); return v.k == K::Bool && v.b; }
  if (name == "false") { nargs(0); return v.k == K::Bool && !v.b; }
  if (name == "callable") { nargs(0); return v.k == K::Func; }
  if (name == "equalto" || name == "eq" || name == "==") { nargs(1); return equals(v, args[0]); }
  if (name == "ne" || name == "!=") { nargs(1); return !equals(v, args[0]); }
  if (name == "lt" || name == "lessthan" || name == "<") { cmp(c); return c < 0; }
  if (name == "le" || name == "<=") { cmp(c); return c <= 0; }
  if (name == "gt" || name == "greaterthan" || name == ">") { cmp(c); return c > 0; }
  if (name == "ge" || name == ">=") { cmp(c); return c >= 0; }
  if (name == "in") { nargs(1); return ev.contains(at, v, args[0]); }
  if (name == "sameas") {
    nargs(1);
    const Value& o = args[0];
    if (v.k != o.k) return false;
    switch (v.k) {
      case K::None:
      case K::Undefined: return true;
      case K::Bool: return v.b == o.b;
      case K::List: return v.list == o.list;
      case K::Dict:
      case K::Namespace: return v.dict == o.dict;
      case K::Int: return v.i == o.i && v.i >= -5 && v.i <= 256;  // CPython's small-int cache
      default: return false;
    }
  }
  if (name == "odd" || name == "even") {  // value % 2 == 1 / == 0, as jinja2 computes it
    nargs(0);
    const Value r = ev.arith(at, "%", v, Value::integer(2));
    return equals(r, Value::integer(name == "odd" ? 1 : 0));
  }
  if (name == "divisibleby") {
    nargs(1);
    if (args[0].k == K::Int && args[0].i == -1 && v.k == K::Int) return true;  // no INT64_MIN % -1
    return equals(ev.arith(at, "%", v, args[0]), Value::integer(0));
  }
  if (name == "lower" || name == "upper") {
    nargs(0);
    const std::string s = to_str(v);
    bool cased = false;
    for (const std::uint32_t cp : decode_utf8(s)) {
      if (!is_cased(cp)) continue;
      cased = true;
      const auto x = static_cast<utf8proc_int32_t>(cp);
      if (name == "lower" ? utf8proc_tolower(x) != x : utf8proc_toupper(x) != x) return false;
    }
    return cased;
  }
  fail(ev, at, fmt::format("no test named '{}'", name));
}

}  // namespace qstar::hf::jinja
