// The evaluator: scopes (a for loop's or macro's body gets its own, as in jinja2, so `set`
// inside a loop does not leak), loops, macros, operators, and the limits; ChatTemplate.
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "hf/jinja/eval.hpp"

namespace qstar::hf::jinja {

void fail(const Evaluator& ev, const Node& at, const std::string& msg) {
  throw InvalidArgument(fmt::format("{}:{}: {}", ev.name, at.line, msg));
}

void charge_string(const Evaluator& ev, const Node& at, std::size_t bytes) {
  if (bytes > ev.limits.max_output_bytes)
    fail(ev, at, fmt::format("a string of {} bytes exceeds max_output_bytes {}", bytes, ev.limits.max_output_bytes));
}

const Value* Evaluator::lookup(const std::string& n) const {
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it)
    for (const auto& [key, v] : *it)
      if (key == n) return &v;
  return nullptr;
}

void Evaluator::assign(const std::string& n, Value v) {
  auto& top = scopes.back();
  for (auto& [key, old] : top)
    if (key == n) {
      old = std::move(v);
      return;
    }
  top.emplace_back(n, std::move(v));
}

void Evaluator::step(const Node& at) {
  if (++steps > limits.max_steps) fail(*this, at, fmt::format("more than max_steps {} evaluation steps", limits.max_steps));
}

namespace {
// Approximate bytes of a value: string bytes plus 32 per element, nested; stops counting past `cap`.
std::size_t weight(const Value& v, std::size_t cap, int depth = 0) {
  std::size_t w = 32 + v.s.size();
  if (depth > 300) return w;
  if (v.k == K::List && v.list)
    for (const auto& e : *v.list) {
      w += weight(e, cap, depth + 1);
      if (w > cap) return w;
    }
  if ((v.k == K::Dict || v.k == K::Namespace) && v.dict)
    for (const auto& [key, e] : *v.dict) {
      w += key.size() + weight(e, cap, depth + 1);
      if (w > cap) return w;
    }
  return w;
}
}  // namespace

void Evaluator::charge_alloc(const Node& at, std::size_t bytes) {
  allocated += bytes;
  if (allocated > limits.max_alloc_bytes)
    fail(*this, at, fmt::format("the render built or copied more than max_alloc_bytes {} bytes", limits.max_alloc_bytes));
}

Value Evaluator::alloc(const Node& at, Value v) {
  if (v.k == K::Str || v.k == K::List || v.k == K::Dict) charge_alloc(at, weight(v, limits.max_alloc_bytes));
  return v;
}

Value Evaluator::copied(const Node& at, Value v) {
  if (v.k == K::Str) charge_alloc(at, v.s.size());
  return v;
}

void Evaluator::emit(const Node& at, std::string_view s) {
  if (out->size() + s.size() > limits.max_output_bytes)
    fail(*this, at, fmt::format("output exceeds max_output_bytes {}", limits.max_output_bytes));
  out->append(s);
}

namespace {

bool to_int64(const Value& v, std::int64_t& out) {
  if (v.k == K::Int) { out = v.i; return true; }
  if (v.k == K::Bool) { out = v.b; return true; }
  return false;
}

Value python_index(Evaluator& ev, const Node& at, const Value& obj, const Value& key) {
  if (obj.view) return Value::undefined();  // dict views are not subscriptable
  if (obj.k == K::List || obj.k == K::Str) {
    std::int64_t i = 0;
    if (!to_int64(key, i)) {  // jinja2: a failed lookup is undefined, a str key tries getattr
      if (key.k == K::Str) return method_of(obj, key.s);
      return Value::undefined();
    }
    if (obj.k == K::List) {
      const auto n = static_cast<std::int64_t>(obj.list->size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::undefined("index");
      return (*obj.list)[static_cast<std::size_t>(i)];
    }
    const auto cps = decode_utf8(obj.s);
    const auto n = static_cast<std::int64_t>(cps.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("index");
    return Value::str(encode_utf8(cps, static_cast<std::size_t>(i), static_cast<std::size_t>(i) + 1));
  }
  if (obj.k == K::Dict || obj.k == K::Namespace) {
    if (key.k == K::Str) {
      if (const Value* v = obj.find(key.s)) return *v;
      return obj.k == K::Dict ? method_of(obj, key.s) : Value::undefined(key.s);
    }
    return Value::undefined();
  }
  if (obj.is_undefined()) fail(ev, at, fmt::format("'{}' is undefined", obj.s.empty() ? "value" : obj.s));
  return Value::undefined();
}

Value attribute(Evaluator& ev, const Node& at, const Value& obj, const std::string& name) {
  if (obj.is_undefined())
    fail(ev, at, fmt::format("'{}' is undefined (reading attribute '{}')", obj.s.empty() ? "value" : obj.s, name));
  // jinja2's getattr: the Python attribute (a method) first, then the item.
  if (obj.k == K::Dict || obj.k == K::Str || obj.k == K::List) {
    Value m = method_of(obj, name);
    if (!m.is_undefined()) return m;
  }
  if (obj.k == K::Dict || obj.k == K::Namespace) {
    if (const Value* v = obj.find(name)) return *v;
  }
  return Value::undefined(name);
}

Value slice(Evaluator& ev, const Node& at, const Value& obj, const Value* parts[3]) {
  std::int64_t st[3] = {0, 0, 1};
  bool given[3] = {false, false, false};
  for (int j = 0; j < 3; ++j) {
    if (!parts[j] || parts[j]->k == K::None) continue;
    if (!to_int64(*parts[j], st[j])) fail(ev, at, "slice indices must be integers or None");
    given[j] = true;
  }
  if (st[2] == 0) fail(ev, at, "slice step cannot be zero");
  std::vector<std::uint32_t> cps;
  std::int64_t n = 0;
  if (obj.view) fail(ev, at, "dict views are not subscriptable");
  if (obj.k == K::List) n = static_cast<std::int64_t>(obj.list->size());
  else if (obj.k == K::Str) { cps = decode_utf8(obj.s); n = static_cast<std::int64_t>(cps.size()); }
  else fail(ev, at, fmt::format("'{}' object is not subscriptable with a slice", type_name(obj)));
  const std::int64_t step = st[2];
  auto clamp = [&](std::int64_t v, bool g, std::int64_t dflt) {
    if (!g) return dflt;
    if (v < 0) v += n;
    if (step > 0) return std::min(std::max<std::int64_t>(v, 0), n);
    return std::min(std::max<std::int64_t>(v, -1), n - 1);
  };
  const std::int64_t start = clamp(st[0], given[0], step > 0 ? 0 : n - 1);
  const std::int64_t stop = clamp(st[1], given[1], step > 0 ? n : -1);
  std::vector<std::size_t> idx;
  for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) idx.push_back(static_cast<std::size_t>(i));
  if (obj.k == K::List) {
    List l;
    for (auto i : idx) l.push_back((*obj.list)[i]);
    Value r = Value::make_list(std::move(l));
    r.tuple = obj.tuple;
    return r;
  }
  std::string s;
  for (auto i : idx) append_utf8(s, cps[i]);
  return Value::str(std::move(s));
}

}  // namespace

Value Evaluator::arith(const Node& at, const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = to_str(a) + to_str(b);
    charge_string(*this, at, s.size());
    return Value::str(std::move(s));
  }
  if (op == "%" && a.k == K::Str) {  // printf-style formatting: only the no-placeholder cases
    if (a.s.find('%') != std::string::npos) fail(*this, at, "printf-style string formatting is not supported");
    // Python treats an argument with __getitem__ (list, dict, Undefined) as a mapping: no error
    if ((b.k == K::List && (!b.tuple || b.list->empty())) || b.k == K::Dict || b.is_undefined()) return a;
    fail(*this, at, "not all arguments converted during string formatting");
  }
  if (a.is_undefined() || b.is_undefined())
    fail(*this, at, fmt::format("'{}' is undefined (operand of '{}')", (a.is_undefined() ? a : b).s.empty() ? "value" : (a.is_undefined() ? a : b).s, op));
  if (op == "+") {
    if (a.k == K::Str && b.k == K::Str) {
      charge_string(*this, at, a.s.size() + b.s.size());
      return Value::str(a.s + b.s);
    }
    if (a.k == K::List && b.k == K::List) {
      if (a.tuple != b.tuple || a.view || b.view)
        fail(*this, at, fmt::format("can only concatenate {} to {}", b.tuple ? "tuple" : "list", a.tuple ? "tuple" : "list"));
      charge_string(*this, at, (a.list->size() + b.list->size()) * sizeof(Value));
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return a.tuple ? Value::make_tuple(std::move(l)) : Value::make_list(std::move(l));
    }
  }
  if (op == "*" && ((a.k == K::Str || a.k == K::List) != (b.k == K::Str || b.k == K::List))) {
    const Value& seq = (a.k == K::Str || a.k == K::List) ? a : b;
    const Value& cnt = &seq == &a ? b : a;
    std::int64_t n = 0;
    if (!to_int64(cnt, n)) fail(*this, at, fmt::format("can't multiply sequence by non-int of type '{}'", type_name(cnt)));
    if (n < 0) n = 0;
    const std::size_t unit = seq.k == K::Str ? seq.s.size() : seq.list->size() * sizeof(Value);
    if (unit != 0 && static_cast<std::uint64_t>(n) > limits.max_output_bytes / unit)
      fail(*this, at, fmt::format("repetition exceeds max_output_bytes {}", limits.max_output_bytes));
    if (seq.k == K::Str) {
      std::string s;
      for (std::int64_t i = 0; i < n; ++i) s += seq.s;
      return Value::str(std::move(s));
    }
    List l;
    for (std::int64_t i = 0; i < n; ++i) l.insert(l.end(), seq.list->begin(), seq.list->end());
    return seq.tuple ? Value::make_tuple(std::move(l)) : Value::make_list(std::move(l));
  }
  if (!a.is_numeric() || !b.is_numeric())
    fail(*this, at, fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, type_name(a), type_name(b)));
  std::int64_t x = 0, y = 0;
  const bool ints = to_int64(a, x) && to_int64(b, y);
  const double p = a.k == K::Float ? a.f : static_cast<double>(a.k == K::Int ? a.i : a.b);
  const double q = b.k == K::Float ? b.f : static_cast<double>(b.k == K::Int ? b.i : b.b);
  auto overflow = [&] { fail(*this, at, fmt::format("integer overflow in '{}' (64-bit integers only)", op)); };
  if (op == "+" || op == "-" || op == "*") {
    if (ints) {
      std::int64_t r = 0;
      const bool o = op == "+" ? __builtin_add_overflow(x, y, &r) : op == "-" ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r);
      if (o) overflow();
      return Value::integer(r);
    }
    return Value::number(op == "+" ? p + q : op == "-" ? p - q : p * q);
  }
  if (op == "/") {
    if (q == 0) fail(*this, at, "division by zero");
    return Value::number(p / q);
  }
  if (op == "//" || op == "%") {
    if (ints) {
      if (y == 0) fail(*this, at, "integer division or modulo by zero");
      if (x == std::numeric_limits<std::int64_t>::min() && y == -1) overflow();
      std::int64_t d = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) { --d; m += y; }
      return Value::integer(op == "//" ? d : m);
    }
    if (q == 0) fail(*this, at, "float division or modulo by zero");
    const double m = std::fmod(p, q);
    const double mm = (m != 0 && ((m < 0) != (q < 0))) ? m + q : m;
    if (op == "%") return Value::number(mm);
    return Value::number(std::floor(p / q));
  }
  if (op == "**") {
    if (ints && y >= 0) {
      std::int64_t r = 1, base = x;
      std::int64_t e = y;
      while (e > 0) {
        if (e & 1) { if (__builtin_mul_overflow(r, base, &r)) overflow(); }
        e >>= 1;
        if (e > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
      }
      return Value::integer(r);
    }
    if (p == 0 && q < 0) fail(*this, at, "0.0 cannot be raised to a negative power");
    return Value::number(std::pow(p, q));
  }
  fail(*this, at, fmt::format("unknown operator '{}'", op));
}

bool Evaluator::contains(const Node& at, const Value& needle, const Value& hay) {
  switch (hay.k) {
    case K::Str:
      if (needle.k != K::Str) fail(*this, at, fmt::format("'in <string>' requires string as left operand, not {}", type_name(needle)));
      return hay.s.find(needle.s) != std::string::npos;
    case K::List:
      for (const auto& e : *hay.list)
        if (equals(e, needle)) return true;
      return false;
    case K::Dict:
      if ((needle.k == K::List && !needle.tuple) || needle.k == K::Dict || needle.k == K::Namespace)
        fail(*this, at, fmt::format("unhashable type: '{}'", type_name(needle)));
      return needle.k == K::Str && hay.find(needle.s) != nullptr;
    case K::Undefined: return false;  // jinja2's Undefined iterates as empty
    default:
      fail(*this, at, fmt::format("argument of type '{}' is not iterable", type_name(hay)));
  }
}

Value Evaluator::eval(const Node& n) {
  step(n);
  if (++depth > limits.max_depth * 4) fail(*this, n, fmt::format("evaluation nested deeper than max_depth {}", limits.max_depth));
  struct Dec { int& d; ~Dec() { --d; } } dec{depth};
  switch (n.kind) {
    case N::Lit: return n.lit;
    case N::Name: {
      if (const Value* v = lookup(n.str)) return copied(n, *v);
      if (n.str == "namespace" || n.str == "range" || n.str == "raise_exception" || n.str == "dict" ||
          n.str == "strftime_now")
        return Value::func(n.str);
      return Value::undefined(n.str);
    }
    case N::Attr: return copied(n, attribute(*this, n, eval(*n.kids[0]), n.str));
    case N::Item: {
      Value obj = eval(*n.kids[0]);
      Value key = eval(*n.kids[1]);
      if (obj.is_undefined()) fail(*this, n, fmt::format("'{}' is undefined", obj.s.empty() ? "value" : obj.s));
      return copied(n, python_index(*this, n, obj, key));
    }
    case N::Slice: {
      Value obj = eval(*n.kids[0]);
      Value parts[3];
      const Value* pp[3] = {nullptr, nullptr, nullptr};
      for (int j = 0; j < 3; ++j)
        if (n.kids[1 + j]) {
          parts[j] = eval(*n.kids[1 + j]);
          pp[j] = &parts[j];
        }
      if (obj.is_undefined()) fail(*this, n, fmt::format("'{}' is undefined", obj.s.empty() ? "value" : obj.s));
      return alloc(n, slice(*this, n, obj, pp));
    }
    case N::Call: {
      Value fn = eval(*n.kids[0]);
      std::vector<Value> args;
      std::vector<std::pair<std::string, Value>> kwargs;
      for (std::size_t j = 0; j < n.npos; ++j) args.push_back(eval(*n.kids[1 + j]));
      for (std::size_t j = 0; j < n.strs.size(); ++j) kwargs.emplace_back(n.strs[j], eval(*n.kids[1 + n.npos + j]));
      return alloc(n, call(n, fn, args, kwargs));
    }
    case N::Filter: {
      Value v = eval(*n.kids[0]);
      std::vector<Value> args;
      std::vector<std::pair<std::string, Value>> kwargs;
      for (std::size_t j = 0; j < n.npos; ++j) args.push_back(eval(*n.kids[1 + j]));
      for (std::size_t j = 0; j < n.strs.size(); ++j) kwargs.emplace_back(n.strs[j], eval(*n.kids[1 + n.npos + j]));
      return alloc(n, apply_filter(*this, n, n.str, v, args, kwargs));
    }
    case N::Test: {
      Value v = eval(*n.kids[0]);
      std::vector<Value> args;
      for (std::size_t j = 0; j < n.npos; ++j) args.push_back(eval(*n.kids[1 + j]));
      if (!n.strs.empty()) fail(*this, n, fmt::format("test '{}' takes no keyword arguments", n.str));
      const bool r = apply_test(*this, n, n.str, v, args);
      return Value::boolean(n.flag ? !r : r);
    }
    case N::Unary: {
      Value v = eval(*n.kids[0]);
      if (n.str == "not") return Value::boolean(!truthy(v));
      if (v.is_undefined()) fail(*this, n, fmt::format("'{}' is undefined", v.s.empty() ? "value" : v.s));
      if (!v.is_numeric()) fail(*this, n, fmt::format("bad operand type for unary {}: '{}'", n.str, type_name(v)));
      if (n.str == "+") return v.k == K::Bool ? Value::integer(v.b) : v;
      if (v.k == K::Float) return Value::number(-v.f);
      std::int64_t x = v.k == K::Int ? v.i : v.b;
      if (x == std::numeric_limits<std::int64_t>::min()) fail(*this, n, "integer overflow in unary '-'");
      return Value::integer(-x);
    }
    case N::Binary: {
      if (n.str == "and") {
        Value a = eval(*n.kids[0]);
        return truthy(a) ? eval(*n.kids[1]) : a;
      }
      if (n.str == "or") {
        Value a = eval(*n.kids[0]);
        return truthy(a) ? a : eval(*n.kids[1]);
      }
      Value a = eval(*n.kids[0]);
      Value b = eval(*n.kids[1]);
      return alloc(n, arith(n, n.str, a, b));
    }
    case N::Compare: {
      Value left = eval(*n.kids[0]);
      for (std::size_t j = 0; j < n.strs.size(); ++j) {
        Value right = eval(*n.kids[j + 1]);
        const std::string& op = n.strs[j];
        bool r = false;
        if (op == "==") r = equals(left, right);
        else if (op == "!=") r = !equals(left, right);
        else if (op == "in") r = contains(n, left, right);
        else if (op == "notin") r = !contains(n, left, right);
        else {
          bool ok = true;
          if (left.is_undefined() || right.is_undefined()) ok = false;
          const int c = ok ? compare(left, right, ok) : 0;
          if (!ok)
            fail(*this, n, fmt::format("'{}' not supported between instances of '{}' and '{}'", op, type_name(left), type_name(right)));
          r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
        }
        if (!r) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case N::Cond: {
      if (truthy(eval(*n.kids[1]))) return eval(*n.kids[0]);
      return n.kids[2] ? eval(*n.kids[2]) : Value::undefined();
    }
    case N::ListLit:
    case N::TupleLit: {
      List l;
      for (const auto& k : n.kids) l.push_back(eval(*k));
      return alloc(n, n.kind == N::TupleLit ? Value::make_tuple(std::move(l)) : Value::make_list(std::move(l)));
    }
    case N::DictLit: {
      Dict d;
      for (std::size_t j = 0; j + 1 < n.kids.size(); j += 2) {
        Value key = eval(*n.kids[j]);
        if (key.k != K::Str) fail(*this, n, "dict keys must be strings here");
        Value v = eval(*n.kids[j + 1]);
        bool replaced = false;
        for (auto& [kk, vv] : d)
          if (kk == key.s) { vv = v; replaced = true; }
        if (!replaced) d.emplace_back(key.s, std::move(v));
      }
      return alloc(n, Value::make_dict(std::move(d)));
    }
    default: fail(*this, n, "statement where an expression was expected");
  }
}

Value Evaluator::call(const Node& at, const Value& fn, const std::vector<Value>& args,
                      const std::vector<std::pair<std::string, Value>>& kwargs) {
  if (fn.k != K::Func) {
    if (fn.is_undefined()) fail(*this, at, fmt::format("'{}' is undefined", fn.s.empty() ? "value" : fn.s));
    fail(*this, at, fmt::format("'{}' object is not callable", type_name(fn)));
  }
  if (fn.macro) return call_macro(at, *fn.macro, args, kwargs);
  if (fn.self) return call_method(*this, at, fn, args, kwargs);
  if (fn.s == "raise_exception") {
    const std::string msg = args.empty() ? std::string() : to_str(args[0]);
    fail(*this, at, "raise_exception: " + msg);
  }
  if (fn.s == "namespace" || fn.s == "dict") {
    Dict d;
    if (!args.empty()) {
      if (args.size() > 1 || args[0].k != K::Dict) fail(*this, at, fmt::format("{}() takes a dict or keyword arguments", fn.s));
      d = *args[0].dict;
    }
    for (const auto& [key, v] : kwargs) {
      bool done = false;
      for (auto& [kk, vv] : d)
        if (kk == key) { vv = v; done = true; }
      if (!done) d.emplace_back(key, v);
    }
    Value v = Value::make_dict(std::move(d));
    if (fn.s == "namespace") v.k = K::Namespace;
    return v;
  }
  if (fn.s == "strftime_now") {  // transformers' global: datetime.now().strftime(format)
    if (args.size() != 1 || args[0].k != K::Str || !kwargs.empty()) fail(*this, at, "strftime_now() takes one format string");
    if (args[0].s.size() > 256) fail(*this, at, "strftime_now(): format longer than 256 bytes");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[2048];
    const std::size_t len = args[0].s.empty() ? 0 : std::strftime(buf, sizeof buf, args[0].s.c_str(), &tm);
    return Value::str(std::string(buf, len));
  }
  if (fn.s == "range") {
    std::int64_t a[3] = {0, 0, 1};
    if (args.empty() || args.size() > 3 || !kwargs.empty()) fail(*this, at, "range() takes 1 to 3 integer arguments");
    for (std::size_t j = 0; j < args.size(); ++j)
      if (!to_int64(args[j], a[j])) fail(*this, at, fmt::format("range() argument {} must be an integer, not {}", j + 1, type_name(args[j])));
    std::int64_t start = 0, stop = 0, st = 1;
    if (args.size() == 1) stop = a[0];
    else { start = a[0]; stop = a[1]; st = args.size() == 3 ? a[2] : 1; }
    if (st == 0) fail(*this, at, "range() arg 3 must not be zero");
    List l;
    for (std::int64_t i = start; st > 0 ? i < stop : i > stop; i += st) {
      if (l.size() >= limits.max_loop_iterations) fail(*this, at, fmt::format("range() longer than max_loop_iterations {}", limits.max_loop_iterations));
      l.push_back(Value::integer(i));
      if ((st > 0 && i > std::numeric_limits<std::int64_t>::max() - st) || (st < 0 && i < std::numeric_limits<std::int64_t>::min() - st)) break;
    }
    return Value::make_list(std::move(l));
  }
  fail(*this, at, fmt::format("'{}' is not callable", fn.s));
}

Value Evaluator::call_macro(const Node& at, const Node& m, const std::vector<Value>& args,
                            const std::vector<std::pair<std::string, Value>>& kwargs) {
  if (++macro_depth > limits.max_depth) fail(*this, at, fmt::format("macro calls nested deeper than max_depth {}", limits.max_depth));
  struct Dec { int& d; ~Dec() { --d; } } dec{macro_depth};
  if (args.size() > m.strs.size()) fail(*this, at, fmt::format("macro '{}' takes not more than {} argument(s)", m.str, m.strs.size()));
  Scope sc;
  for (std::size_t j = 0; j < m.strs.size(); ++j) {
    Value v;
    bool set = false;
    if (j < args.size()) { v = args[j]; set = true; }
    for (const auto& [key, kv] : kwargs)
      if (key == m.strs[j]) {
        if (set) fail(*this, at, fmt::format("macro '{}' got multiple values for argument '{}'", m.str, key));
        v = kv;
        set = true;
      }
    if (!set) v = m.kids[1 + j] ? eval(*m.kids[1 + j]) : Value::undefined(m.strs[j]);
    sc.emplace_back(m.strs[j], std::move(v));
  }
  for (const auto& [key, kv] : kwargs) {
    bool known = false;
    for (const auto& p : m.strs) known = known || p == key;
    if (!known) fail(*this, at, fmt::format("macro '{}' takes no keyword argument '{}'", m.str, key));
  }
  std::string buf;
  std::string* saved = out;
  out = &buf;
  scopes.push_back(std::move(sc));
  try {
    exec(*m.kids[0]);
  } catch (...) {
    scopes.pop_back();
    out = saved;
    throw;
  }
  scopes.pop_back();
  out = saved;
  return Value::str(std::move(buf));
}

Flow Evaluator::exec(const Node& n) {
  step(n);
  switch (n.kind) {
    case N::Block:
      for (const auto& k : n.kids) {
        const Flow f = exec(*k);
        if (f != Flow::Normal) return f;
      }
      return Flow::Normal;
    case N::Text: emit(n, n.str); return Flow::Normal;
    case N::Output: {
      Value v = eval(*n.kids[0]);
      emit(n, to_str(v));
      return Flow::Normal;
    }
    case N::If:
      for (std::size_t j = 0; j < n.npos; ++j)
        if (truthy(eval(*n.kids[2 * j]))) return exec(*n.kids[2 * j + 1]);
      if (n.kids.size() > 2 * n.npos) return exec(*n.kids.back());
      return Flow::Normal;
    case N::For: return exec_for(n);
    case N::Set: {
      Value v = eval(*n.kids[0]);
      if (n.flag) {
        const Value* ns = lookup(n.strs[0]);
        if (!ns || ns->k != K::Namespace)
          fail(*this, n, fmt::format("cannot assign attribute on non-namespace object '{}'", n.strs[0]));
        for (auto& [key, old] : *ns->dict)
          if (key == n.strs[1]) {
            old = std::move(v);
            return Flow::Normal;
          }
        ns->dict->emplace_back(n.strs[1], std::move(v));
        return Flow::Normal;
      }
      if (n.strs.size() == 1) {
        assign(n.strs[0], std::move(v));
        return Flow::Normal;
      }
      List items = iterate(n, v);
      if (items.size() != n.strs.size())
        fail(*this, n, fmt::format("cannot unpack {} values into {} names", items.size(), n.strs.size()));
      for (std::size_t j = 0; j < items.size(); ++j) assign(n.strs[j], std::move(items[j]));
      return Flow::Normal;
    }
    case N::SetBlock: {
      std::string buf;
      std::string* saved = out;
      out = &buf;
      try {
        exec(*n.kids[0]);
      } catch (...) {
        out = saved;
        throw;
      }
      out = saved;
      assign(n.strs[0], Value::str(std::move(buf)));
      return Flow::Normal;
    }
    case N::Macro: {
      Value f = Value::func(n.str);
      f.macro = &n;
      assign(n.str, std::move(f));
      return Flow::Normal;
    }
    case N::Break: return Flow::Break;
    case N::Continue: return Flow::Continue;
    default: {
      eval(n);
      return Flow::Normal;
    }
  }
}

List Evaluator::iterate(const Node& at, const Value& v) {
  switch (v.k) {
    case K::List: return *v.list;
    case K::Dict: {
      List keys;
      for (const auto& [key, e] : *v.dict) keys.push_back(Value::str(key));
      return keys;
    }
    case K::Str: {
      List chars;
      const auto cps = decode_utf8(v.s);
      for (std::size_t j = 0; j < cps.size(); ++j) chars.push_back(Value::str(encode_utf8(cps, j, j + 1)));
      return chars;
    }
    case K::Undefined: return {};
    default: fail(*this, at, fmt::format("'{}' object is not iterable", type_name(v)));
  }
}

Flow Evaluator::exec_for(const Node& n) {
  const Value seq = eval(*n.kids[0]);
  List items = iterate(n, seq);
  alloc(n, seq);  // the loop copies the sequence (and each item again for loop.previtem/nextitem)
  auto bind = [&](Scope& sc, const Value& item) {
    if (n.strs.size() == 1) {
      sc.emplace_back(n.strs[0], item);
      return;
    }
    List parts = iterate(n, item);
    if (parts.size() != n.strs.size())
      fail(*this, n, fmt::format("cannot unpack {} values into {} loop variables", parts.size(), n.strs.size()));
    for (std::size_t j = 0; j < parts.size(); ++j) sc.emplace_back(n.strs[j], parts[j]);
  };
  if (n.kids[1]) {  // {% for x in xs if cond %}: filtered before loop.* is computed
    List kept;
    for (const auto& item : items) {
      Scope sc;
      bind(sc, item);
      scopes.push_back(std::move(sc));
      bool keep = false;
      try {
        keep = truthy(eval(*n.kids[1]));
      } catch (...) {
        scopes.pop_back();
        throw;
      }
      scopes.pop_back();
      if (keep) kept.push_back(item);
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (n.kids[3]) return exec(*n.kids[3]);
    return Flow::Normal;
  }
  const auto len = static_cast<std::int64_t>(items.size());
  for (std::int64_t j = 0; j < len; ++j) {
    if (++iterations > limits.max_loop_iterations)
      fail(*this, n, fmt::format("more than max_loop_iterations {} loop iterations", limits.max_loop_iterations));
    Dict loop;
    loop.emplace_back("index", Value::integer(j + 1));
    loop.emplace_back("index0", Value::integer(j));
    loop.emplace_back("revindex", Value::integer(len - j));
    loop.emplace_back("revindex0", Value::integer(len - j - 1));
    loop.emplace_back("first", Value::boolean(j == 0));
    loop.emplace_back("last", Value::boolean(j == len - 1));
    loop.emplace_back("length", Value::integer(len));
    loop.emplace_back("depth", Value::integer(1));
    loop.emplace_back("depth0", Value::integer(0));
    loop.emplace_back("previtem", j > 0 ? items[static_cast<std::size_t>(j - 1)] : Value::undefined("previtem"));
    loop.emplace_back("nextitem", j + 1 < len ? items[static_cast<std::size_t>(j + 1)] : Value::undefined("nextitem"));
    auto idx = std::make_shared<Value>(Value::integer(j));
    loop.emplace_back("cycle", Value::func("loop.cycle", idx));
    Scope sc;
    sc.emplace_back("loop", Value::make_dict(std::move(loop)));
    bind(sc, items[static_cast<std::size_t>(j)]);
    scopes.push_back(std::move(sc));
    Flow f = Flow::Normal;
    try {
      f = exec(*n.kids[2]);
    } catch (...) {
      scopes.pop_back();
      throw;
    }
    scopes.pop_back();
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

}  // namespace qstar::hf::jinja
