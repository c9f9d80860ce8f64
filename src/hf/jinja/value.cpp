// Values as Python sees them: truthiness, ==, ordering, str(), repr(), json.dumps, UTF-8.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "hf/jinja/internal.hpp"

namespace qstar::hf::jinja {

const Value* Value::find(std::string_view key) const noexcept {
  if ((k != K::Dict && k != K::Namespace) || !dict) return nullptr;
  for (const auto& [name, v] : *dict)
    if (name == key) return &v;
  return nullptr;
}

Value from_json(const json::Value& v) {
  switch (v.type()) {
    case json::Type::Null: return Value::none();
    case json::Type::Bool: return Value::boolean(v.as_bool());
    case json::Type::Int: return Value::integer(v.as_int());
    case json::Type::Double: return Value::number(v.as_double());
    case json::Type::String: return Value::str(v.as_string());
    case json::Type::Array: {
      List l;
      l.reserve(v.size());
      for (const auto& e : v.as_array()) l.push_back(from_json(e));
      return Value::make_list(std::move(l));
    }
    case json::Type::Object: {
      Dict d;
      d.reserve(v.size());
      for (const auto& [key, e] : v.as_object()) d.emplace_back(key, from_json(e));
      return Value::make_dict(std::move(d));
    }
  }
  return Value::none();
}

bool truthy(const Value& v) noexcept {
  switch (v.k) {
    case K::Undefined:
    case K::None: return false;
    case K::Bool: return v.b;
    case K::Int: return v.i != 0;
    case K::Float: return v.f != 0.0;
    case K::Str: return !v.s.empty();
    case K::List: return !v.list->empty();
    case K::Dict: return !v.dict->empty();
    case K::Namespace:
    case K::Func: return true;
  }
  return false;
}

namespace {
bool as_exact_int(const Value& v, std::int64_t& out) {
  if (v.k == K::Int) { out = v.i; return true; }
  if (v.k == K::Bool) { out = v.b ? 1 : 0; return true; }
  return false;
}
double as_double(const Value& v) {
  if (v.k == K::Float) return v.f;
  if (v.k == K::Int) return static_cast<double>(v.i);
  return v.b ? 1.0 : 0.0;
}
}  // namespace

bool equals(const Value& a, const Value& b) {
  if (a.is_numeric() && b.is_numeric()) {
    std::int64_t x = 0, y = 0;
    if (as_exact_int(a, x) && as_exact_int(b, y)) return x == y;
    if (a.k == K::Float && b.k == K::Float) return a.f == b.f;
    // int vs float: exact (Python compares exactly)
    const double d = a.k == K::Float ? a.f : b.f;
    std::int64_t i = 0;
    as_exact_int(a.k == K::Float ? b : a, i);
    if (!std::isfinite(d) || d != std::floor(d)) return false;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
    return static_cast<std::int64_t>(d) == i;
  }
  if (a.k != b.k) return false;
  switch (a.k) {
    case K::Undefined:
    case K::None: return true;
    case K::Str: return a.s == b.s;
    case K::List: {
      if (a.tuple != b.tuple || a.view != b.view || a.list->size() != b.list->size()) return false;
      for (std::size_t i = 0; i < a.list->size(); ++i)
        if (!equals((*a.list)[i], (*b.list)[i])) return false;
      return true;
    }
    case K::Dict: {
      if (a.dict->size() != b.dict->size()) return false;
      for (const auto& [key, v] : *a.dict) {
        const Value* w = b.find(key);
        if (!w || !equals(v, *w)) return false;
      }
      return true;
    }
    case K::Namespace: return a.dict == b.dict;
    case K::Func: return a.s == b.s && a.self == b.self && a.macro == b.macro;
    default: return false;
  }
}

int compare(const Value& a, const Value& b, bool& ok) {
  ok = true;
  if (a.is_numeric() && b.is_numeric()) {
    std::int64_t x = 0, y = 0;
    if (as_exact_int(a, x) && as_exact_int(b, y)) return x < y ? -1 : x > y ? 1 : 0;
    const double p = as_double(a), q = as_double(b);
    return p < q ? -1 : p > q ? 1 : 0;  // NaN compares equal here (no order either way)
  }
  if (a.k == K::Str && b.k == K::Str) {
    const int c = a.s.compare(b.s);  // UTF-8 byte order is code point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.k == K::List && b.k == K::List && a.tuple == b.tuple && !a.view && !b.view) {
    const std::size_t n = std::min(a.list->size(), b.list->size());
    for (std::size_t i = 0; i < n; ++i) {
      if (equals((*a.list)[i], (*b.list)[i])) continue;
      return compare((*a.list)[i], (*b.list)[i], ok);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  ok = false;
  return 0;
}

std::string type_name(const Value& v) {
  switch (v.k) {
    case K::Undefined: return "Undefined";
    case K::None: return "NoneType";
    case K::Bool: return "bool";
    case K::Int: return "int";
    case K::Float: return "float";
    case K::Str: return "str";
    case K::List: return "list";
    case K::Dict: return "dict";
    case K::Namespace: return "Namespace";
    case K::Func: return "function";
  }
  return "object";
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const auto e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  if (exp >= -4 && exp < 16) {
    r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
    std::string fixed(buf, r.ptr);
    if (fixed.find('.') == std::string::npos) fixed += ".0";
    return fixed;
  }
  // Python: mantissa digits, 'e', sign, at least two exponent digits
  std::string mant = sci.substr(0, e);
  std::string out = mant + "e" + (exp < 0 ? "-" : "+");
  const int ax = exp < 0 ? -exp : exp;
  if (ax < 10) out += '0';
  out += std::to_string(ax);
  return out;
}

namespace {
void repr_str(std::string& out, const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char q = (has_single && !has_double) ? '"' : '\'';
  out += q;
  for (const std::uint32_t cp : decode_utf8(s)) {
    if (cp == static_cast<std::uint32_t>(q) || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0xAD) {
      out += fmt::format("\\x{:02x}", cp);
    } else {
      append_utf8(out, cp);  // printable beyond ASCII as is (approximation of isprintable)
    }
  }
  out += q;
}
void repr_to(std::string& out, const Value& v, int depth) {
  if (depth > 200) {
    out += "...";
    return;
  }
  switch (v.k) {
    case K::Str: repr_str(out, v.s); return;
    case K::List: {
      static const char* const views[] = {"", "dict_items(", "dict_keys(", "dict_values("};
      if (v.view > 0 && v.view < 4) out += views[v.view];
      out += v.tuple ? '(' : '[';
      bool first = true;
      for (const auto& e : *v.list) {
        if (!first) out += ", ";
        first = false;
        repr_to(out, e, depth + 1);
      }
      if (v.tuple && v.list->size() == 1) out += ',';
      out += v.tuple ? ')' : ']';
      if (v.view) out += ')';
      return;
    }
    case K::Dict: {
      out += '{';
      bool first = true;
      for (const auto& [key, e] : *v.dict) {
        if (!first) out += ", ";
        first = false;
        repr_str(out, key);
        out += ": ";
        repr_to(out, e, depth + 1);
      }
      out += '}';
      return;
    }
    case K::Undefined: out += "Undefined"; return;
    default: out += to_str(v);
  }
}
}  // namespace

std::string repr(const Value& v) {
  std::string out;
  repr_to(out, v, 0);
  return out;
}

std::string to_str(const Value& v) {
  switch (v.k) {
    case K::Undefined: return "";
    case K::None: return "None";
    case K::Bool: return v.b ? "True" : "False";
    case K::Int: return std::to_string(v.i);
    case K::Float: return float_repr(v.f);
    case K::Str: return v.s;
    case K::List:
    case K::Dict: return repr(v);
    case K::Namespace: return "<Namespace>";
    case K::Func: return fmt::format("<function {}>", v.s);
  }
  return "";
}

namespace {
void json_str(std::string& out, const std::string& s) {
  out += '"';
  for (const std::uint32_t cp : decode_utf8(s)) {
    switch (cp) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (cp < 0x20) out += fmt::format("\\u{:04x}", cp);
        else append_utf8(out, cp);
    }
  }
  out += '"';
}
bool json_to(std::string& out, const Value& v, int indent, bool sort_keys, int level) {
  if (level > 200) return false;
  auto newline = [&](int lv) {
    out += '\n';
    out.append(static_cast<std::size_t>(indent) * static_cast<std::size_t>(lv), ' ');
  };
  switch (v.k) {
    case K::None: out += "null"; return true;
    case K::Bool: out += v.b ? "true" : "false"; return true;
    case K::Int: out += std::to_string(v.i); return true;
    case K::Float:
      if (std::isnan(v.f)) out += "NaN";
      else if (std::isinf(v.f)) out += v.f > 0 ? "Infinity" : "-Infinity";
      else out += float_repr(v.f);
      return true;
    case K::Str: json_str(out, v.s); return true;
    case K::List: {
      if (v.list->empty()) { out += "[]"; return true; }
      out += '[';
      bool first = true;
      for (const auto& e : *v.list) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(level + 1);
        if (!json_to(out, e, indent, sort_keys, level + 1)) return false;
      }
      if (indent >= 0) newline(level);
      out += ']';
      return true;
    }
    case K::Dict: {
      if (v.dict->empty()) { out += "{}"; return true; }
      std::vector<const std::pair<std::string, Value>*> members;
      for (const auto& m : *v.dict) members.push_back(&m);
      if (sort_keys)
        std::stable_sort(members.begin(), members.end(), [](auto* x, auto* y) { return x->first < y->first; });
      out += '{';
      bool first = true;
      for (const auto* m : members) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(level + 1);
        json_str(out, m->first);
        out += ": ";
        if (!json_to(out, m->second, indent, sort_keys, level + 1)) return false;
      }
      if (indent >= 0) newline(level);
      out += '}';
      return true;
    }
    default: return false;
  }
}
}  // namespace

std::string to_json(const Value& v, int indent, bool sort_keys, bool& ok) {
  std::string out;
  ok = json_to(out, v, indent, sort_keys, 0);
  return out;
}

// ---- UTF-8 -------------------------------------------------------------------------------------
std::vector<std::uint32_t> decode_utf8(std::string_view s) {
  std::vector<std::uint32_t> out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = c;
    std::size_t n = 1;
    if (c >= 0xF0 && c < 0xF8) { cp = c & 0x07; n = 4; }
    else if (c >= 0xE0) { cp = c & 0x0F; n = 3; }
    else if (c >= 0xC0) { cp = c & 0x1F; n = 2; }
    if (c >= 0xF8 || (c >= 0x80 && c < 0xC0) || i + n > s.size()) {  // invalid: U+FFFD
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    bool ok = true;
    for (std::size_t j = 1; j < n; ++j) {
      const auto d = static_cast<unsigned char>(s[i + j]);
      if ((d & 0xC0) != 0x80) { ok = false; break; }
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | ((cp >> 18) & 0x07));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(const std::vector<std::uint32_t>& cps, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to && i < cps.size(); ++i) append_utf8(out, cps[i]);
  return out;
}

bool py_isspace(std::uint32_t cp) noexcept {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace qstar::hf::jinja
