// A small, strict, self-contained JSON library (RFC 8259) for configs and search traces.
//
//  * Value: null, bool, integer (int64, exact), double, string (UTF-8), array, object.
//    Objects keep insertion order (a vector of key/value pairs, looked up by a linear scan).
//  * parse(): strict RFC 8259: no comments, no trailing commas, no leading zeros, no
//    NaN/Infinity, \u escapes with surrogate pairs (lone surrogates rejected), strings
//    must be valid UTF-8 without raw control characters, duplicate object keys rejected,
//    nesting depth at most kMaxDepth. A number without fraction or exponent that fits in
//    an int64 becomes an integer (so token ids and counts round-trip exactly); any other
//    number becomes a double (overflow is an error, underflow gives 0). Errors throw
//    qstar::ParseError("<source>: line L col C: <reason>"), L and C 1-based, C in bytes.
//  * dump(): compact and deterministic. Integers as integers, doubles in the shortest form
//    that reads back bit-exactly (std::to_chars), NaN and infinities as null; strings keep
//    UTF-8 as is, escape '"', '\\' and control characters (\n \r \t \b \f, else \u00XX),
//    and replace each byte of invalid UTF-8 by U+FFFD so the output is always valid JSON.
//  * Accessors (at, get_int, as_string, ...) throw qstar::ParseError naming the key and
//    the expected type when a key is missing or holds another type.
#pragma once

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "qstar/error.hpp"

namespace qstar::json {

/// Deepest nesting of arrays and objects that parse() accepts.
inline constexpr int kMaxDepth = 256;

enum class Type : std::uint8_t { Null, Bool, Int, Double, String, Array, Object };

inline constexpr const char* type_name(Type t) noexcept {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "bool";
    case Type::Int: return "integer";
    case Type::Double: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "null";
}

class Value;
using Array = std::vector<Value>;
using Member = std::pair<std::string, Value>;
using Object = std::vector<Member>;

inline void dump_string(std::string& out, std::string_view s);

namespace detail {
[[noreturn]] inline void type_error(std::string_view key, Type want, Type got) {
  std::string k;
  dump_string(k, key);
  throw ParseError(
      fmt::format("json: key {}: expected {}, got {}", k, type_name(want), type_name(got)));
}
[[noreturn]] inline void type_error(Type want, Type got) {
  throw ParseError(fmt::format("json: expected {}, got {}", type_name(want), type_name(got)));
}
[[noreturn]] inline void missing_key(std::string_view key) {
  std::string k;
  dump_string(k, key);
  throw ParseError(fmt::format("json: key {}: missing", k));
}
/// The int64 equal to `d`, when `d` is an integer in int64 range.
inline bool double_to_int(double d, std::int64_t& out) noexcept {
  // -2^63 is exact; 2^63 is the first double beyond int64.
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
  const auto i = static_cast<std::int64_t>(d);
  if (static_cast<double>(i) != d) return false;
  out = i;
  return true;
}
}  // namespace detail

/// A JSON value. Copyable, movable, compared by value (objects compare in order).
class Value {
 public:
  Value() noexcept = default;
  Value(std::nullptr_t) noexcept {}
  Value(bool b) noexcept : v_(b) {}
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Value(T i) noexcept {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (i > static_cast<T>(std::numeric_limits<std::int64_t>::max())) {
        v_ = static_cast<double>(i);
        return;
      }
    }
    v_ = static_cast<std::int64_t>(i);
  }
  Value(double d) noexcept : v_(d) {}
  Value(float d) noexcept : v_(static_cast<double>(d)) {}
  Value(std::string s) noexcept : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Array a) noexcept : v_(std::move(a)) {}
  Value(Object o) noexcept : v_(std::move(o)) {}

  static Value array() { return Value(Array{}); }
  static Value object() { return Value(Object{}); }

  Type type() const noexcept { return static_cast<Type>(v_.index()); }
  bool is_null() const noexcept { return type() == Type::Null; }
  bool is_bool() const noexcept { return type() == Type::Bool; }
  /// An integer or a double.
  bool is_number() const noexcept { return type() == Type::Int || type() == Type::Double; }
  /// Stored as an exact int64 (parsed without fraction/exponent, or built from an integer).
  bool is_integer() const noexcept { return type() == Type::Int; }
  bool is_double() const noexcept { return type() == Type::Double; }
  bool is_string() const noexcept { return type() == Type::String; }
  bool is_array() const noexcept { return type() == Type::Array; }
  bool is_object() const noexcept { return type() == Type::Object; }

  bool as_bool() const {
    if (auto* p = std::get_if<bool>(&v_)) return *p;
    detail::type_error(Type::Bool, type());
  }
  /// The integer; a double is accepted when it is an integer in int64 range (e.g. 1e3).
  std::int64_t as_int() const {
    if (auto* p = std::get_if<std::int64_t>(&v_)) return *p;
    std::int64_t i = 0;
    if (auto* d = std::get_if<double>(&v_); d && detail::double_to_int(*d, i)) return i;
    detail::type_error(Type::Int, type());
  }
  /// The number as a double (an integer beyond 2^53 is rounded).
  double as_double() const {
    if (auto* p = std::get_if<double>(&v_)) return *p;
    if (auto* p = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*p);
    detail::type_error(Type::Double, type());
  }
  const std::string& as_string() const {
    if (auto* p = std::get_if<std::string>(&v_)) return *p;
    detail::type_error(Type::String, type());
  }
  std::string& as_string() {
    if (auto* p = std::get_if<std::string>(&v_)) return *p;
    detail::type_error(Type::String, type());
  }
  const Array& as_array() const {
    if (auto* p = std::get_if<Array>(&v_)) return *p;
    detail::type_error(Type::Array, type());
  }
  Array& as_array() {
    if (auto* p = std::get_if<Array>(&v_)) return *p;
    detail::type_error(Type::Array, type());
  }
  const Object& as_object() const {
    if (auto* p = std::get_if<Object>(&v_)) return *p;
    detail::type_error(Type::Object, type());
  }
  Object& as_object() {
    if (auto* p = std::get_if<Object>(&v_)) return *p;
    detail::type_error(Type::Object, type());
  }

  /// Elements of an array or members of an object; 0 for scalars.
  std::size_t size() const noexcept {
    if (auto* a = std::get_if<Array>(&v_)) return a->size();
    if (auto* o = std::get_if<Object>(&v_)) return o->size();
    return 0;
  }

  // ---- object access ---------------------------------------------------------------
  /// The member named `key`, or nullptr (also when this is not an object).
  const Value* find(std::string_view key) const noexcept {
    if (auto* o = std::get_if<Object>(&v_)) {
      for (const auto& m : *o)
        if (m.first == key) return &m.second;
    }
    return nullptr;
  }
  Value* find(std::string_view key) noexcept {
    return const_cast<Value*>(std::as_const(*this).find(key));
  }
  bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
  /// The member named `key`; throws ParseError when this is not an object or it is missing.
  const Value& at(std::string_view key) const {
    if (const Value* v = find(key)) return *v;
    if (!is_object()) detail::type_error(Type::Object, type());
    detail::missing_key(key);
  }
  Value& at(std::string_view key) { return const_cast<Value&>(std::as_const(*this).at(key)); }

  std::int64_t get_int(std::string_view key) const {
    const Value& v = at(key);
    if (v.is_integer()) return std::get<std::int64_t>(v.v_);
    std::int64_t i = 0;
    if (v.is_double() && detail::double_to_int(std::get<double>(v.v_), i)) return i;
    detail::type_error(key, Type::Int, v.type());
  }
  double get_double(std::string_view key) const {
    const Value& v = at(key);
    if (!v.is_number()) detail::type_error(key, Type::Double, v.type());
    return v.as_double();
  }
  bool get_bool(std::string_view key) const {
    const Value& v = at(key);
    if (!v.is_bool()) detail::type_error(key, Type::Bool, v.type());
    return std::get<bool>(v.v_);
  }
  const std::string& get_string(std::string_view key) const {
    const Value& v = at(key);
    if (!v.is_string()) detail::type_error(key, Type::String, v.type());
    return std::get<std::string>(v.v_);
  }
  const Array& get_array(std::string_view key) const {
    const Value& v = at(key);
    if (!v.is_array()) detail::type_error(key, Type::Array, v.type());
    return std::get<Array>(v.v_);
  }
  const Object& get_object(std::string_view key) const {
    const Value& v = at(key);
    if (!v.is_object()) detail::type_error(key, Type::Object, v.type());
    return v.as_object();
  }

  // ---- array access ----------------------------------------------------------------
  const Value& at(std::size_t i) const {
    const Array& a = as_array();
    if (i >= a.size())
      throw ParseError(fmt::format("json: index {} out of range (array of {})", i, a.size()));
    return a[i];
  }
  Value& at(std::size_t i) { return const_cast<Value&>(std::as_const(*this).at(i)); }

  // ---- building --------------------------------------------------------------------
  /// Appends to an array (a null becomes an empty array first).
  Value& push_back(Value v) {
    if (is_null()) v_ = Array{};
    Array& a = as_array();
    a.push_back(std::move(v));
    return a.back();
  }
  /// Sets member `key` of an object (a null becomes an empty object first): replaces an
  /// existing member in place, else appends.
  Value& set(std::string_view key, Value v) {
    if (is_null()) v_ = Object{};
    if (Value* old = find(key)) return *old = std::move(v);
    return append(std::string(key), std::move(v));
  }
  /// Removes member `key` of an object; false when there was none.
  bool erase(std::string_view key) {
    if (auto* o = std::get_if<Object>(&v_)) {
      for (auto it = o->begin(); it != o->end(); ++it)
        if (it->first == key) {
          o->erase(it);
          return true;
        }
    }
    return false;
  }
  /// Appends member `key` without looking for an existing one (the caller keeps keys
  /// unique; parse() rejects duplicates).
  Value& append(std::string key, Value v) {
    if (is_null()) v_ = Object{};
    Object& o = as_object();
    o.emplace_back(std::move(key), std::move(v));
    return o.back().second;
  }

  /// Equality by value. Numbers compare numerically and exactly (int 3 == double 3.0,
  /// 2^53+1 != 2^53 as double); NaN != NaN; objects compare member by member, in order.
  friend bool operator==(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
      if (a.is_integer() && b.is_integer())
        return std::get<std::int64_t>(a.v_) == std::get<std::int64_t>(b.v_);
      if (a.is_double() && b.is_double()) return std::get<double>(a.v_) == std::get<double>(b.v_);
      const std::int64_t i = a.is_integer() ? std::get<std::int64_t>(a.v_)
                                            : std::get<std::int64_t>(b.v_);
      const double d = a.is_double() ? std::get<double>(a.v_) : std::get<double>(b.v_);
      std::int64_t di = 0;
      return detail::double_to_int(d, di) && di == i;
    }
    return a.v_ == b.v_;
  }

 private:
  friend void dump_to(std::string& out, const Value& v);
  // The alternative order matches Type.
  std::variant<std::nullptr_t, bool, std::int64_t, double, std::string, Array, Object> v_;
};

// ---- writing ------------------------------------------------------------------------

namespace detail {
/// Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes there are not one.
inline std::size_t utf8_length(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  const auto avail = static_cast<std::size_t>(end - p);
  auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return i < avail && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no UTF-16 surrogates
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}
}  // namespace detail

/// Appends `s` as a quoted JSON string.
inline void dump_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  out.push_back('"');
  while (p < end) {
    const auto* run = p;
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const std::size_t n = detail::utf8_length(p, end);
      if (n == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD for each invalid byte
        ++p;
      } else {
        out.append(reinterpret_cast<const char*>(p), n);
        p += n;
      }
      continue;
    }
    ++p;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, 6);
      }
    }
  }
  out.push_back('"');
}

/// Appends an integer.
inline void dump_int(std::string& out, std::int64_t i) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, i);
  out.append(buf, r.ptr);
}

/// Appends a double in its shortest round-trip form; NaN and infinities as null.
inline void dump_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out.append("null");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
}

/// Appends a float in ITS shortest round-trip form (at most 9 significant digits, where the
/// double of the same value needs up to 17); NaN and infinities as null. Parsed as a double
/// and cast to float, it gives `f` back.
inline void dump_float(std::string& out, float f) {
  if (!std::isfinite(f)) {
    out.append("null");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  out.append(buf, r.ptr);
}

/// The double nearest to dump_float(f)'s decimal text, which dump_double writes as that same
/// text: a json::Value holding it dumps as dump_float does (NaN, infinities: unchanged).
inline double float_as_short_double(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0.0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

/// A float list as an array of doubles that dumps as dump_float writes each (NaN,
/// infinities: null).
inline Value float_array(const float* xs, std::size_t n) {
  Array a;
  a.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    a.emplace_back(std::isfinite(xs[i]) ? Value(float_as_short_double(xs[i])) : Value());
  return Value(std::move(a));
}

/// Appends the compact JSON text of `v`.
inline void dump_to(std::string& out, const Value& v) {
  switch (v.type()) {
    case Type::Null: out.append("null"); return;
    case Type::Bool: out.append(std::get<bool>(v.v_) ? "true" : "false"); return;
    case Type::Int: dump_int(out, std::get<std::int64_t>(v.v_)); return;
    case Type::Double: dump_double(out, std::get<double>(v.v_)); return;
    case Type::String: dump_string(out, std::get<std::string>(v.v_)); return;
    case Type::Array: {
      out.push_back('[');
      bool first = true;
      for (const Value& e : std::get<Array>(v.v_)) {
        if (!first) out.push_back(',');
        first = false;
        dump_to(out, e);
      }
      out.push_back(']');
      return;
    }
    case Type::Object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : std::get<Object>(v.v_)) {
        if (!first) out.push_back(',');
        first = false;
        dump_string(out, k);
        out.push_back(':');
        dump_to(out, e);
      }
      out.push_back('}');
      return;
    }
  }
}

/// The compact JSON text of `v` (no trailing newline).
inline std::string dump(const Value& v) {
  std::string out;
  dump_to(out, v);
  return out;
}

// ---- parsing ------------------------------------------------------------------------

namespace detail {

class Parser {
 public:
  Parser(std::string_view text, std::string_view source) : s_(text), src_(source) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_ws();
    if (pos_ < s_.size()) fail("unexpected trailing characters after the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  std::string_view src_;
  std::size_t pos_ = 0;
  std::vector<Value> elems_;     // scratch: elements of the open arrays
  std::vector<Member> members_;  // scratch: members of the open objects

  [[noreturn]] void fail_at(std::size_t pos, std::string_view reason) const {
    std::size_t line = 1, line_start = 0;
    for (std::size_t i = 0; i < pos && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    throw ParseError(fmt::format("{}: line {} col {}: {}", src_, line, pos - line_start + 1, reason));
  }
  [[noreturn]] void fail(std::string_view reason) const { fail_at(pos_, reason); }
  [[noreturn]] void unexpected(std::string_view expected = {}) const {
    std::string what;
    if (pos_ >= s_.size()) {
      what = "unexpected end of input";
    } else {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      what = (c > 0x20 && c < 0x7F) ? fmt::format("unexpected character '{}'", static_cast<char>(c))
                                    : fmt::format("unexpected byte 0x{:02X}", c);
    }
    if (!expected.empty()) what = fmt::format("{}, expected {}", what, expected);
    fail(what);
  }

  void skip_ws() noexcept {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }
  bool at_digit() const noexcept { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }

  Value parse_value(int depth) {
    skip_ws();
    if (pos_ >= s_.size()) unexpected("a JSON value");
    switch (s_[pos_]) {
      case '{': return parse_object(depth);
      case '[': return parse_array(depth);
      case '"': return Value(parse_string());
      case 't': literal("true"); return Value(true);
      case 'f': literal("false"); return Value(false);
      case 'n': literal("null"); return Value();
      default:
        if (s_[pos_] == '-' || at_digit()) return parse_number();
        unexpected("a JSON value");
    }
  }

  void literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word)
      fail(fmt::format("invalid literal, expected '{}'", word));
    pos_ += word.size();
  }

  void enter(int depth) const {
    if (depth >= kMaxDepth) fail(fmt::format("nesting depth exceeds {}", kMaxDepth));
  }

  // Elements and members being parsed live on shared scratch stacks (one per parser, not
  // per container) and move into an exactly sized vector once their container closes.
  Value parse_array(int depth) {
    enter(depth);
    ++pos_;  // '['
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return Value(Array{});
    }
    const std::size_t base = elems_.size();
    for (;;) {
      elems_.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') fail("trailing comma in array");
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        const auto first = elems_.begin() + static_cast<std::ptrdiff_t>(base);
        Array a(std::make_move_iterator(first), std::make_move_iterator(elems_.end()));
        elems_.erase(first, elems_.end());
        return Value(std::move(a));
      }
      unexpected("',' or ']'");
    }
  }

  Value parse_object(int depth) {
    enter(depth);
    ++pos_;  // '{'
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return Value(Object{});
    }
    const std::size_t base = members_.size();
    std::unordered_set<std::string> big;  // the keys, once the object is large
    constexpr std::size_t kLinear = 32;
    for (bool after_comma = false;; after_comma = true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') {
        if (after_comma && pos_ < s_.size() && s_[pos_] == '}') fail("trailing comma in object");
        unexpected("a string key");
      }
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      bool dup = false;
      if (members_.size() - base < kLinear) {
        for (std::size_t i = base; i < members_.size() && !dup; ++i) dup = members_[i].first == key;
      } else {
        if (big.empty())
          for (std::size_t i = base; i < members_.size(); ++i) big.insert(members_[i].first);
        dup = !big.insert(key).second;
      }
      if (dup) {
        std::string k;
        dump_string(k, key);
        fail_at(key_pos, fmt::format("duplicate key {}", k));
      }
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') unexpected("':' after an object key");
      ++pos_;
      Value v = parse_value(depth + 1);
      members_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        const auto first = members_.begin() + static_cast<std::ptrdiff_t>(base);
        Object o(std::make_move_iterator(first), std::make_move_iterator(members_.end()));
        members_.erase(first, members_.end());
        return Value(std::move(o));
      }
      unexpected("',' or '}'");
    }
  }

  unsigned hex4(std::size_t at) const {
    unsigned v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      if (at + i >= s_.size()) fail_at(s_.size(), "unexpected end of input in \\u escape");
      const char c = s_[at + i];
      unsigned d;
      if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
      else fail_at(at + i, "invalid hex digit in \\u escape");
      v = v * 16 + d;
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    const auto* base = reinterpret_cast<const unsigned char*>(s_.data());
    const std::size_t n = s_.size();
    for (;;) {
      const std::size_t run = pos_;
      while (pos_ < n) {
        const unsigned char c = base[pos_];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++pos_;
      }
      out.append(s_.data() + run, pos_ - run);
      if (pos_ >= n) fail("unexpected end of input in string");
      const unsigned char c = base[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c >= 0x80) {
        const std::size_t len = utf8_length(base + pos_, base + n);
        if (len == 0) fail("invalid UTF-8 in string");
        out.append(s_.data() + pos_, len);
        pos_ += len;
        continue;
      }
      if (c < 0x20) fail(fmt::format("unescaped control character U+{:04X} in string", c));
      // backslash
      const std::size_t esc = pos_;
      if (++pos_ >= n) fail("unexpected end of input in string");
      switch (s_[pos_]) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = hex4(pos_ + 1);
          pos_ += 4;
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(esc, "lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n - pos_ < 3 || s_[pos_ + 1] != '\\' || s_[pos_ + 2] != 'u')
              fail_at(esc, "lone high surrogate in \\u escape");
            const std::uint32_t lo = hex4(pos_ + 3);
            if (lo < 0xDC00 || lo > 0xDFFF) fail_at(esc, "lone high surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            pos_ += 6;
          }
          append_utf8(out, cp);
          break;
        }
        default: {
          const auto e = static_cast<unsigned char>(s_[pos_]);
          fail_at(esc, (e > 0x20 && e < 0x7F)
                           ? fmt::format("invalid escape '\\{}'", static_cast<char>(e))
                           : fmt::format("invalid escape: byte 0x{:02X} after '\\'", e));
        }
      }
      ++pos_;
    }
  }

  Value parse_number() {
    const std::size_t start = pos_;
    const bool neg = s_[pos_] == '-';
    if (neg) ++pos_;
    if (!at_digit()) unexpected("a digit");
    const std::size_t int_start = pos_;
    if (s_[pos_] == '0') {
      ++pos_;
      if (at_digit()) fail("leading zeros are not allowed");
    } else {
      while (at_digit()) ++pos_;
    }
    const std::size_t int_end = pos_;
    std::size_t frac_start = pos_, frac_end = pos_;
    bool is_int = true;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      is_int = false;
      ++pos_;
      if (!at_digit()) unexpected("a digit after the decimal point");
      frac_start = pos_;
      while (at_digit()) ++pos_;
      frac_end = pos_;
    }
    std::int64_t exp10 = 0;
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      is_int = false;
      ++pos_;
      bool eneg = false;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) eneg = s_[pos_++] == '-';
      if (!at_digit()) unexpected("a digit in the exponent");
      while (at_digit()) {
        if (exp10 < 1'000'000'000) exp10 = exp10 * 10 + (s_[pos_] - '0');
        ++pos_;
      }
      if (eneg) exp10 = -exp10;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (is_int && !(neg && int_end - int_start == 1 && s_[int_start] == '0')) {
      std::int64_t i = 0;
      const auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) return Value(i);
      // beyond int64: a double
    }
    double d = 0;
    const auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Decimal exponent of the leading significant digit decides overflow vs underflow.
      std::int64_t mag = 0;
      bool found = false;
      for (std::size_t i = int_start; i < int_end && !found; ++i)
        if (s_[i] != '0') {
          mag = static_cast<std::int64_t>(int_end - i) - 1;
          found = true;
        }
      for (std::size_t i = frac_start; i < frac_end && !found; ++i)
        if (s_[i] != '0') {
          mag = -static_cast<std::int64_t>(i - frac_start) - 1;
          found = true;
        }
      if (found && mag + exp10 >= 0) fail_at(start, "number out of range");
      return Value(neg ? -0.0 : 0.0);
    }
    if (r.ec != std::errc() || r.ptr != last) fail_at(start, "invalid number");
    return Value(d);
  }
};

}  // namespace detail

/// Parses one JSON text (the whole of `text`, surrounding whitespace allowed). Throws
/// ParseError("<source>: line L col C: <reason>").
inline Value parse(std::string_view text, std::string_view source = "json") {
  return detail::Parser(text, source).parse_document();
}

}  // namespace qstar::json
