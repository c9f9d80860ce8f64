// The tokenizer.json tokenizer: see include/qstar/hf/tokenizer.hpp for what is supported.
// Each step follows the Hugging Face `tokenizers` crate (its normalizer, pre-tokenizer, BPE
// merge loop, added-vocabulary matching, post-processor and decoders), so ids match HF's.
#include "qstar/hf/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <variant>

#include <fmt/format.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"

namespace qstar::hf {

namespace {

using json::Value;

// ---- UTF-8 ----------------------------------------------------------------------------

/// Length of the UTF-8 sequence starting with lead byte `c` (the text is known valid).
inline std::size_t cp_len(unsigned char c) noexcept {
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/// The code point at s[i] (valid UTF-8), advancing i.
inline std::uint32_t next_cp(std::string_view s, std::size_t& i) noexcept {
  const auto b = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[k]));
  };
  const std::uint32_t c = b(i);
  if (c < 0x80) {
    i += 1;
    return c;
  }
  if (c < 0xE0) {
    const std::uint32_t cp = ((c & 0x1F) << 6) | (b(i + 1) & 0x3F);
    i += 2;
    return cp;
  }
  if (c < 0xF0) {
    const std::uint32_t cp = ((c & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
    i += 3;
    return cp;
  }
  const std::uint32_t cp =
      ((c & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) | (b(i + 3) & 0x3F);
  i += 4;
  return cp;
}

/// Start of the code point that ends just before s[i] (i > 0, valid UTF-8).
inline std::size_t prev_cp_start(std::string_view s, std::size_t i) noexcept {
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

/// Rust's char::is_whitespace: the Unicode White_Space property.
inline bool is_white_space(std::uint32_t cp) noexcept {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/// A word character for added tokens' single_word: letter, mark, number or connector
/// punctuation (such as '_').
inline bool is_word_char(std::uint32_t cp) noexcept {
  if (cp < 0x80)
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') ||
           cp == '_';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_PC: return true;
    default: return false;
  }
}

inline bool is_ascii(std::string_view s) noexcept {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// ---- the GPT-2 byte-to-unicode mapping -------------------------------------------------

struct ByteMap {
  std::array<std::string, 256> str{};           // byte -> the UTF-8 of its printable stand-in
  std::array<std::array<char, 2>, 256> utf8{};  // the same, 1 or 2 bytes
  std::array<std::uint8_t, 256> len{};
  std::array<std::int16_t, 0x144> byte{};  // code point -> byte, -1 when not a stand-in
};

const ByteMap& byte_map() {
  static const ByteMap m = [] {
    ByteMap r;
    r.byte.fill(-1);
    std::uint32_t n = 0;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const std::uint32_t cp = printable ? b : 256 + n++;
      json::detail::append_utf8(r.str[b], cp);
      r.len[b] = static_cast<std::uint8_t>(r.str[b].size());
      for (std::size_t k = 0; k < r.str[b].size(); ++k) r.utf8[b][k] = r.str[b][k];
      r.byte[cp] = static_cast<std::int16_t>(b);
    }
    return r;
  }();
  return m;
}

/// The byte-level form of `s`, written into `out`.
void byte_level_map(std::string_view s, std::string& out) {
  const ByteMap& m = byte_map();
  out.resize(s.size() * 2);
  char* p = out.data();
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    p[0] = m.utf8[b][0];
    p[1] = m.utf8[b][1];
    p += m.len[b];
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
}

std::string byte_level_map(std::string_view s) {
  std::string out;
  byte_level_map(s, out);
  return out;
}

/// Appends the bytes a byte-level token stands for; a token with a character outside the
/// byte alphabet (an added token such as "<think>\n") is appended as is, as HF does.
void byte_level_unmap(std::string_view tok, std::string& out) {
  const ByteMap& m = byte_map();
  const std::size_t base = out.size();
  for (std::size_t i = 0; i < tok.size();) {
    const std::uint32_t cp = next_cp(tok, i);
    if (cp >= m.byte.size() || m.byte[cp] < 0) {
      out.resize(base);
      out.append(tok);
      return;
    }
    out.push_back(static_cast<char>(m.byte[cp]));
  }
}

// ---- PCRE2 ------------------------------------------------------------------------------

struct MatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(md); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return fmt::format("error {}", code);
  return std::string(reinterpret_cast<const char*>(buf));
}

/// A compiled pattern (UTF, UCP, multi-line anchors as in Oniguruma; JIT when available).
class Regex {
 public:
  Regex(const std::string& pattern, std::string where) : where_(std::move(where)) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &off, nullptr);
    if (code_ == nullptr)
      throw ParseError(
          fmt::format("{}: invalid regex at offset {}: {}", where_, off, pcre2_message(err)));
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }

  /// The first match at or after `start` in `s` (valid UTF-8), as [ms, me).
  bool find(std::string_view s, std::size_t start, std::size_t& ms, std::size_t& me) const {
    thread_local MatchData data;
    if (data.md == nullptr) throw std::bad_alloc();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    int rc = pcre2_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK, data.md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(code_, subject, s.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data.md,
                       nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) throw Error(fmt::format("{}: regex match failed: {}", where_, pcre2_message(rc)));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    ms = ov[0];
    me = std::max(ov[0], ov[1]);
    return true;
  }

  /// Calls f(ms, me) for each match, iterating as Oniguruma's find_iter does (an empty
  /// match right after the previous match is skipped by one character).
  template <class F>
  void for_each(std::string_view s, F&& f) const {
    std::size_t last_end = 0;
    std::size_t last_match_end = std::string_view::npos;
    while (last_end <= s.size()) {
      std::size_t ms = 0, me = 0;
      if (!find(s, last_end, ms, me)) break;
      if (ms == me && last_end == last_match_end) {
        last_end += last_end < s.size() ? cp_len(static_cast<unsigned char>(s[last_end])) : 1;
        continue;
      }
      last_end = me;
      last_match_end = me;
      f(ms, me);
    }
  }

 private:
  pcre2_code* code_ = nullptr;
  std::string where_;
};

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation,
// Join_Control.
const char* const kWhitespacePattern =
    R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\s]+)";

/// What a Split looks for: a regex, or a literal string ("" matches nothing, as in HF).
struct Pattern {
  std::shared_ptr<const Regex> regex;
  std::string literal;

  struct Span {
    std::size_t start, end;
    bool match;
  };
  /// HF's Pattern::find_matches: spans covering `s`, each flagged match or not.
  std::vector<Span> find_matches(std::string_view s) const {
    std::vector<Span> out;
    if (s.empty()) {
      out.push_back({0, 0, false});
      return out;
    }
    std::size_t prev = 0;
    auto on_match = [&](std::size_t ms, std::size_t me) {
      if (prev != ms) out.push_back({prev, ms, false});
      out.push_back({ms, me, true});
      prev = me;
    };
    if (regex) {
      regex->for_each(s, on_match);
    } else if (!literal.empty()) {
      for (std::size_t at = s.find(literal); at != std::string_view::npos;
           at = s.find(literal, at + literal.size()))
        on_match(at, at + literal.size());
    }
    if (prev != s.size()) out.push_back({prev, s.size(), false});
    return out;
  }

  /// Replaces every match in `s` by `content`.
  std::string replace_all(std::string_view s, std::string_view content) const {
    std::string out;
    std::size_t prev = 0;
    for (const Span& sp : find_matches(s)) {
      if (!sp.match) continue;
      out.append(s.substr(prev, sp.start - prev));
      out.append(content);
      prev = sp.end;
    }
    out.append(s.substr(prev));
    return out;
  }
};

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

/// HF's NormalizedString::split: the kept [start, end) ranges (empty ones included; the
/// caller drops them).
std::vector<std::pair<std::size_t, std::size_t>> split_spans(std::vector<Pattern::Span> m,
                                                             Behavior behavior, bool invert) {
  if (invert)
    for (auto& sp : m) sp.match = !sp.match;
  struct Out {
    std::size_t start, end;
    bool remove;
  };
  std::vector<Out> acc;
  acc.reserve(m.size());
  switch (behavior) {
    case Behavior::Isolated:
      for (const auto& sp : m) acc.push_back({sp.start, sp.end, false});
      break;
    case Behavior::Removed:
      for (const auto& sp : m) acc.push_back({sp.start, sp.end, sp.match});
      break;
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (const auto& sp : m) {
        if (sp.match == prev_match && !acc.empty())
          acc.back().end = sp.end;
        else
          acc.push_back({sp.start, sp.end, false});
        prev_match = sp.match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool prev_match = false;
      for (const auto& sp : m) {
        if (sp.match && !prev_match && !acc.empty())
          acc.back().end = sp.end;
        else
          acc.push_back({sp.start, sp.end, false});
        prev_match = sp.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->match && !prev_match && !acc.empty())
          acc.back().start = it->start;
        else
          acc.push_back({it->start, it->end, false});
        prev_match = it->match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
    }
  }
  std::vector<std::pair<std::size_t, std::size_t>> out;
  out.reserve(acc.size());
  for (const auto& o : acc)
    if (!o.remove) out.emplace_back(o.start, o.end);
  return out;
}

// ---- strings as hash keys ---------------------------------------------------------------

struct SvHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using Vocab = std::unordered_map<std::string, std::int32_t, SvHash, std::equal_to<>>;

// ---- reading tokenizer.json with field paths -------------------------------------------

std::string json_quote(std::string_view s) {
  std::string q;
  json::dump_string(q, s);
  return q;
}

std::string join_path(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string index_path(std::string_view path, std::size_t i) {
  return fmt::format("{}[{}]", path, i);
}

struct Reader {
  std::string src;

  [[noreturn]] void fail(std::string_view path, std::string_view msg) const {
    throw ParseError(fmt::format("{}: {}: {}", src, path, msg));
  }
  [[noreturn]] void unsupported(std::string_view path, std::string_view type) const {
    throw ParseError(fmt::format("{}: {}.type {} is not supported", src, path, json_quote(type)));
  }
  [[noreturn]] void wrong_type(std::string_view path, std::string_view want, const Value& v) const {
    fail(path, fmt::format("expected {}, got {}", want, json::type_name(v.type())));
  }
  const Value& object(const Value& v, std::string_view path) const {
    if (!v.is_object()) wrong_type(path, "an object", v);
    return v;
  }
  const json::Array& array(const Value& v, std::string_view path) const {
    if (!v.is_array()) wrong_type(path, "an array", v);
    return v.as_array();
  }
  const std::string& str(const Value& v, std::string_view path) const {
    if (!v.is_string()) wrong_type(path, "a string", v);
    return v.as_string();
  }
  bool boolean(const Value& v, std::string_view path) const {
    if (!v.is_bool()) wrong_type(path, "a bool", v);
    return v.as_bool();
  }
  std::int64_t integer(const Value& v, std::string_view path) const {
    if (!v.is_integer()) wrong_type(path, "an integer", v);
    return v.as_int();
  }
  /// Largest token id accepted (0..2^24-1). Id-indexed tables are sized max id + 1, so a
  /// sparse id costs memory (about 34 bytes per id below it): the cap keeps a hostile file
  /// under ~0.6 GB (INT32_MAX asked for 64 GiB) and allows 60x the largest vocabularies in
  /// use (~262k).
  static constexpr std::int64_t kMaxTokenId = (std::int64_t{1} << 24) - 1;
  std::int32_t token_id(const Value& v, std::string_view path) const {
    const std::int64_t i = integer(v, path);
    if (i < 0 || i > kMaxTokenId)
      fail(path, fmt::format("token id {} out of range", i));
    return static_cast<std::int32_t>(i);
  }
  /// The member `key` of object `obj` (at `path`); ParseError when missing.
  const Value& req(const Value& obj, std::string_view key, std::string_view path) const {
    object(obj, path);
    const Value* v = obj.find(key);
    if (v == nullptr) fail(join_path(path, key), "missing");
    return *v;
  }
  /// The member `key`, or nullptr when missing or null.
  const Value* opt(const Value& obj, std::string_view key) const {
    const Value* v = obj.find(key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  }
  bool opt_bool(const Value& obj, std::string_view key, std::string_view path, bool dflt) const {
    const Value* v = opt(obj, key);
    return v != nullptr ? boolean(*v, join_path(path, key)) : dflt;
  }
  std::string opt_str(const Value& obj, std::string_view key, std::string_view path,
                      std::string_view dflt) const {
    const Value* v = opt(obj, key);
    return v != nullptr ? str(*v, join_path(path, key)) : std::string(dflt);
  }
  const std::string& type_of(const Value& obj, std::string_view path) const {
    return str(req(obj, "type", path), join_path(path, "type"));
  }
  std::string where(std::string_view path) const { return fmt::format("{}: {}", src, path); }

  /// A {"String": s} or {"Regex": r} pattern.
  Pattern pattern(const Value& v, std::string_view path) const {
    object(v, path);
    Pattern p;
    if (const Value* s = v.find("String")) {
      p.literal = str(*s, join_path(path, "String"));
    } else if (const Value* r = v.find("Regex")) {
      const std::string rp = join_path(path, "Regex");
      p.regex = std::make_shared<const Regex>(str(*r, rp), where(rp));
    } else {
      fail(path, "expected {\"String\": ...} or {\"Regex\": ...}");
    }
    return p;
  }

  /// A single character (Strip's content, Metaspace's replacement).
  std::string one_char(const Value& v, std::string_view path) const {
    const std::string& s = str(v, path);
    if (s.empty() || cp_len(static_cast<unsigned char>(s[0])) != s.size())
      fail(path, fmt::format("expected a single character, got {}", json_quote(s)));
    return s;
  }
};

// ---- normalizers ------------------------------------------------------------------------

struct Normalizer {
  enum class Kind { Unicode, Lowercase, Replace, Prepend, Strip } kind = Kind::Unicode;
  int utf8proc_options = 0;          // Unicode
  Pattern pattern;                   // Replace
  std::string content;               // Replace content, Prepend text
  bool left = false, right = false;  // Strip

  void apply(std::string& s) const {
    switch (kind) {
      case Kind::Unicode: {
        if (is_ascii(s)) return;
        utf8proc_uint8_t* out = nullptr;
        const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                                static_cast<utf8proc_ssize_t>(s.size()), &out,
                                                static_cast<utf8proc_option_t>(utf8proc_options));
        if (n < 0) {
          std::free(out);
          throw Error(fmt::format("tokenizer: normalization failed: {}", utf8proc_errmsg(n)));
        }
        s.assign(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
        std::free(out);
        return;
      }
      case Kind::Lowercase: {
        if (is_ascii(s)) {
          for (char& c : s)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          return;
        }
        std::string out;
        out.reserve(s.size());
        for (std::size_t i = 0; i < s.size();) {
          const std::uint32_t cp = next_cp(s, i);
          json::detail::append_utf8(
              out, static_cast<std::uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
        }
        s = std::move(out);
        return;
      }
      case Kind::Replace: s = pattern.replace_all(s, content); return;
      case Kind::Prepend:
        if (!s.empty()) s.insert(0, content);
        return;
      case Kind::Strip: {
        std::size_t b = 0, e = s.size();
        if (left)
          while (b < e) {
            std::size_t j = b;
            if (!is_white_space(next_cp(s, j))) break;
            b = j;
          }
        if (right)
          while (e > b) {
            std::size_t j = prev_cp_start(s, e), k = j;
            if (!is_white_space(next_cp(s, k))) break;
            e = j;
          }
        s = s.substr(b, e - b);
        return;
      }
    }
  }
};

void parse_normalizer(const Reader& r, const Value& v, std::string_view path,
                      std::vector<Normalizer>& out) {
  r.object(v, path);
  const std::string& type = r.type_of(v, path);
  Normalizer n;
  if (type == "Sequence") {
    const std::string p = join_path(path, "normalizers");
    const auto& items = r.array(r.req(v, "normalizers", path), p);
    for (std::size_t i = 0; i < items.size(); ++i)
      parse_normalizer(r, items[i], index_path(p, i), out);
    return;
  }
  if (type == "NFC") {
    n.utf8proc_options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  } else if (type == "NFD") {
    n.utf8proc_options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
  } else if (type == "NFKC") {
    n.utf8proc_options = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  } else if (type == "NFKD") {
    n.utf8proc_options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  } else if (type == "Lowercase") {
    n.kind = Normalizer::Kind::Lowercase;
  } else if (type == "Replace") {
    n.kind = Normalizer::Kind::Replace;
    n.pattern = r.pattern(r.req(v, "pattern", path), join_path(path, "pattern"));
    n.content = r.str(r.req(v, "content", path), join_path(path, "content"));
  } else if (type == "Prepend") {
    n.kind = Normalizer::Kind::Prepend;
    n.content = r.str(r.req(v, "prepend", path), join_path(path, "prepend"));
  } else if (type == "Strip") {
    n.kind = Normalizer::Kind::Strip;
    n.left = r.opt_bool(v, "strip_left", path, true);
    n.right = r.opt_bool(v, "strip_right", path, true);
  } else {
    r.unsupported(path, type);
  }
  out.push_back(std::move(n));
}

// ---- pre-tokenizers ---------------------------------------------------------------------

/// A non-owning reference to a callable void(std::string_view piece, bool at_start), where
/// at_start says the piece begins the original text (for Metaspace's prepend_scheme
/// "first"). Pieces stream from one pre-tokenizer step to the next without being stored.
class PieceSink {
 public:
  template <class F>
  explicit PieceSink(F& f) noexcept
      : obj_(&f), fn_([](void* o, std::string_view s, bool st) { (*static_cast<F*>(o))(s, st); }) {}
  void operator()(std::string_view s, bool at_start) const { fn_(obj_, s, at_start); }

 private:
  void* obj_;
  void (*fn_)(void*, std::string_view, bool);
};

/// Sends the non-empty kept pieces of `text` split by `pat` with `behavior` to `out`.
void split_to(std::string_view text, bool at_start, const Pattern& pat, Behavior behavior,
              bool invert, const PieceSink& out) {
  if (behavior == Behavior::Isolated || behavior == Behavior::Removed) {
    // Streaming: no span list needed.
    const bool removed = behavior == Behavior::Removed;
    auto emit = [&](std::size_t s, std::size_t e, bool match) {
      if (e > s && !(removed && match != invert)) out(text.substr(s, e - s), at_start && s == 0);
    };
    if (text.empty()) return;
    std::size_t prev = 0;
    auto on_match = [&](std::size_t ms, std::size_t me) {
      if (prev != ms) emit(prev, ms, false);
      emit(ms, me, true);
      prev = me;
    };
    if (pat.regex) {
      pat.regex->for_each(text, on_match);
    } else if (!pat.literal.empty()) {
      for (std::size_t at = text.find(pat.literal); at != std::string_view::npos;
           at = text.find(pat.literal, at + pat.literal.size()))
        on_match(at, at + pat.literal.size());
    }
    if (prev != text.size()) emit(prev, text.size(), false);
    return;
  }
  for (const auto& [s, e] : split_spans(pat.find_matches(text), behavior, invert))
    if (e > s) out(text.substr(s, e - s), at_start && s == 0);
}

enum class Prepend { Always, First, Never };

struct PreTokenizer {
  enum class Kind { Split, ByteLevel, Metaspace } kind = Kind::Split;
  // Split
  Pattern pattern;
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  // ByteLevel: `pattern` holds the GPT-2 regex when use_regex
  bool add_prefix_space = false;
  bool use_regex = false;
  // Metaspace
  std::string replacement;
  Prepend prepend = Prepend::Always;
  bool split = true;

  /// Pre-tokenizes one piece, sending the results to `out`.
  void each(std::string_view text, bool at_start, const PieceSink& out) const {
    switch (kind) {
      case Kind::Split: split_to(text, at_start, pattern, behavior, invert, out); return;
      case Kind::ByteLevel: {
        std::string prefixed;
        if (add_prefix_space && !text.empty() && text[0] != ' ') {
          prefixed.reserve(text.size() + 1);
          prefixed.push_back(' ');
          prefixed.append(text);
          text = prefixed;
        }
        std::string mapped;
        auto map = [&](std::string_view piece, bool st) {
          byte_level_map(piece, mapped);
          out(mapped, st);
        };
        if (use_regex)
          split_to(text, at_start, pattern, Behavior::Isolated, false, PieceSink(map));
        else if (!text.empty())
          map(text, at_start);
        return;
      }
      case Kind::Metaspace: {
        if (text.empty()) return;
        std::string t;
        t.reserve(text.size() + replacement.size());
        for (const char c : text) {
          if (c == ' ')
            t += replacement;
          else
            t.push_back(c);
        }
        const bool starts = t.compare(0, replacement.size(), replacement) == 0;
        if (!starts && (prepend == Prepend::Always || (prepend == Prepend::First && at_start)))
          t.insert(0, replacement);
        if (split) {
          Pattern pat;
          pat.literal = replacement;
          split_to(t, at_start, pat, Behavior::MergedWithNext, false, out);
        } else {
          out(t, at_start);
        }
        return;
      }
    }
  }
};

Behavior parse_behavior(const Reader& r, const Value& v, std::string_view path) {
  const std::string& b = r.str(v, path);
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  r.fail(path, fmt::format("unknown behavior {}", json_quote(b)));
}

Prepend parse_prepend_scheme(const Reader& r, const Value& v, std::string_view path) {
  const Value* scheme = r.opt(v, "prepend_scheme");
  if (scheme != nullptr) {
    const std::string p = join_path(path, "prepend_scheme");
    const std::string& s = r.str(*scheme, p);
    if (s == "always") return Prepend::Always;
    if (s == "first") return Prepend::First;
    if (s == "never") return Prepend::Never;
    r.fail(p, fmt::format("unknown prepend_scheme {}", json_quote(s)));
  }
  return r.opt_bool(v, "add_prefix_space", path, true) ? Prepend::Always : Prepend::Never;
}

void parse_pre_tokenizer(const Reader& r, const Value& v, std::string_view path,
                         std::vector<PreTokenizer>& out, bool& byte_level) {
  r.object(v, path);
  const std::string& type = r.type_of(v, path);
  PreTokenizer p;
  auto regex = [&](const char* pattern, std::string_view name) {
    return std::make_shared<const Regex>(pattern, r.where(fmt::format("{} ({})", path, name)));
  };
  if (type == "Sequence") {
    const std::string sp = join_path(path, "pretokenizers");
    const auto& items = r.array(r.req(v, "pretokenizers", path), sp);
    for (std::size_t i = 0; i < items.size(); ++i)
      parse_pre_tokenizer(r, items[i], index_path(sp, i), out, byte_level);
    return;
  }
  if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::ByteLevel;
    p.add_prefix_space = r.opt_bool(v, "add_prefix_space", path, true);
    p.use_regex = r.opt_bool(v, "use_regex", path, true);
    if (p.use_regex) p.pattern.regex = regex(kGpt2Pattern, "ByteLevel");
    byte_level = true;
  } else if (type == "Split") {
    p.pattern = r.pattern(r.req(v, "pattern", path), join_path(path, "pattern"));
    p.behavior = parse_behavior(r, r.req(v, "behavior", path), join_path(path, "behavior"));
    p.invert = r.opt_bool(v, "invert", path, false);
  } else if (type == "Whitespace") {
    p.pattern.regex = regex(kWhitespacePattern, "Whitespace");
    p.behavior = Behavior::Removed;
    p.invert = true;
  } else if (type == "WhitespaceSplit") {
    p.pattern.regex = regex(R"(\s)", "WhitespaceSplit");
    p.behavior = Behavior::Removed;
  } else if (type == "Digits") {
    p.pattern.regex = regex(R"(\p{N})", "Digits");
    p.behavior =
        r.opt_bool(v, "individual_digits", path, false) ? Behavior::Isolated : Behavior::Contiguous;
  } else if (type == "Punctuation") {
    p.pattern.regex = regex(R"([\p{P}!-/:-@\[-`{-~])", "Punctuation");
    const Value* b = r.opt(v, "behavior");
    p.behavior =
        b != nullptr ? parse_behavior(r, *b, join_path(path, "behavior")) : Behavior::Isolated;
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::Metaspace;
    const Value* rep = r.opt(v, "replacement");
    p.replacement =
        rep != nullptr ? r.one_char(*rep, join_path(path, "replacement")) : "\xE2\x96\x81";
    p.prepend = parse_prepend_scheme(r, v, path);
    p.split = r.opt_bool(v, "split", path, true);
  } else {
    r.unsupported(path, type);
  }
  out.push_back(std::move(p));
}

// ---- decoders ---------------------------------------------------------------------------

struct DecodeStep {
  enum class Kind { ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace } kind = Kind::Fuse;
  std::string content;                // Strip's char, Replace's content, Metaspace's replacement
  std::size_t start = 0, stop = 0;    // Strip
  Pattern pattern;                    // Replace
  Prepend prepend = Prepend::Always;  // Metaspace

  /// One step of HF's decode_chain. `mid`: the tokens are one token from the middle of a
  /// sequence (token_bytes), so position-dependent steps do nothing.
  void apply(std::vector<std::string>& toks, bool mid) const {
    switch (kind) {
      case Kind::ByteLevel: {
        std::string out;
        for (const auto& t : toks) byte_level_unmap(t, out);
        toks.assign(1, std::move(out));
        return;
      }
      case Kind::ByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        bool pending = false;
        for (auto& t : toks) {
          unsigned value = 0;
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
              hex2(t[3], t[4], value)) {
            bytes.push_back(static_cast<char>(value));
            pending = true;
            continue;
          }
          if (pending) {
            out.push_back(std::move(bytes));
            bytes.clear();
            pending = false;
          }
          out.push_back(std::move(t));
        }
        if (pending) out.push_back(std::move(bytes));
        toks = std::move(out);
        return;
      }
      case Kind::Fuse: {
        std::string out;
        for (const auto& t : toks) out += t;
        toks.assign(1, std::move(out));
        return;
      }
      case Kind::Strip: {
        if (mid) return;
        for (auto& t : toks) {
          // Character-wise, as HF: up to `start` leading and `stop` trailing `content`.
          std::size_t b = 0, e = t.size();
          const std::size_t n = content.size();
          for (std::size_t k = 0; k < start && b + n <= e && t.compare(b, n, content) == 0; ++k)
            b += n;
          for (std::size_t k = 0; k < stop && e >= b + n && t.compare(e - n, n, content) == 0; ++k)
            e -= n;
          t = t.substr(b, e - b);
        }
        return;
      }
      case Kind::Replace:
        for (auto& t : toks) t = pattern.replace_all(t, content);
        return;
      case Kind::Metaspace:
        for (std::size_t i = 0; i < toks.size(); ++i) {
          const bool drop = !mid && i == 0 && prepend != Prepend::Never;
          std::string out;
          const std::string& t = toks[i];
          for (std::size_t at = 0; at < t.size();) {
            if (t.compare(at, content.size(), content) == 0) {
              if (!drop) out.push_back(' ');
              at += content.size();
            } else {
              out.push_back(t[at++]);
            }
          }
          toks[i] = std::move(out);
        }
        return;
    }
  }

  static bool hex2(char a, char b, unsigned& v) {
    auto d = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = d(a), lo = d(b);
    if (hi < 0 || lo < 0) return false;
    v = static_cast<unsigned>(hi * 16 + lo);
    return true;
  }
};

void parse_decoder(const Reader& r, const Value& v, std::string_view path,
                   std::vector<DecodeStep>& out) {
  r.object(v, path);
  const std::string& type = r.type_of(v, path);
  DecodeStep d;
  if (type == "Sequence") {
    const std::string p = join_path(path, "decoders");
    const auto& items = r.array(r.req(v, "decoders", path), p);
    for (std::size_t i = 0; i < items.size(); ++i)
      parse_decoder(r, items[i], index_path(p, i), out);
    return;
  }
  if (type == "ByteLevel") {
    d.kind = DecodeStep::Kind::ByteLevel;
  } else if (type == "ByteFallback") {
    d.kind = DecodeStep::Kind::ByteFallback;
  } else if (type == "Fuse") {
    d.kind = DecodeStep::Kind::Fuse;
  } else if (type == "Strip") {
    d.kind = DecodeStep::Kind::Strip;
    d.content = r.one_char(r.req(v, "content", path), join_path(path, "content"));
    auto count = [&](std::string_view key) -> std::size_t {
      const Value* c = r.opt(v, key);
      if (c == nullptr) return 0;
      const std::int64_t n = r.integer(*c, join_path(path, key));
      if (n < 0) r.fail(join_path(path, key), "must be >= 0");
      return static_cast<std::size_t>(n);
    };
    d.start = count("start");
    d.stop = count("stop");
  } else if (type == "Replace") {
    d.kind = DecodeStep::Kind::Replace;
    d.pattern = r.pattern(r.req(v, "pattern", path), join_path(path, "pattern"));
    d.content = r.str(r.req(v, "content", path), join_path(path, "content"));
  } else if (type == "Metaspace") {
    d.kind = DecodeStep::Kind::Metaspace;
    const Value* rep = r.opt(v, "replacement");
    d.content = rep != nullptr ? r.one_char(*rep, join_path(path, "replacement")) : "\xE2\x96\x81";
    d.prepend = parse_prepend_scheme(r, v, path);
  } else {
    r.unsupported(path, type);
  }
  out.push_back(std::move(d));
}

// ---- post-processors --------------------------------------------------------------------

/// One element of a single-sequence template: the sequence itself, or special-token ids.
struct TemplateItem {
  bool sequence = false;
  std::vector<std::int32_t> ids;
};
using Template = std::vector<TemplateItem>;

Template parse_template_processing(const Reader& r, const Value& v, std::string_view path) {
  // special_tokens: name -> {"id": name, "ids": [...], "tokens": [...]}
  std::unordered_map<std::string, std::vector<std::int32_t>> specials;
  if (const Value* st = r.opt(v, "special_tokens")) {
    const std::string sp = join_path(path, "special_tokens");
    r.object(*st, sp);
    for (const auto& [name, entry] : st->as_object()) {
      const std::string ep = join_path(sp, json_quote(name));
      const std::string ip = join_path(ep, "ids");
      const auto& ids = r.array(r.req(entry, "ids", ep), ip);
      std::vector<std::int32_t> out;
      for (std::size_t i = 0; i < ids.size(); ++i)
        out.push_back(r.token_id(ids[i], index_path(ip, i)));
      specials[name] = std::move(out);
    }
  }
  const std::string tp = join_path(path, "single");
  const auto& items = r.array(r.req(v, "single", path), tp);
  Template t;
  bool has_a = false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string ip = index_path(tp, i);
    const Value& it = items[i];
    std::string seq_id, special;
    bool is_seq = false;
    if (it.is_string()) {
      // "$A", "$B:1", "$0", "<s>", "<s>:0"
      std::string s = it.as_string();
      if (const auto colon = s.rfind(':');
          colon != std::string::npos && colon + 1 < s.size() &&
          s.find_first_not_of("0123456789", colon + 1) == std::string::npos)
        s.resize(colon);
      if (!s.empty() && s[0] == '$') {
        is_seq = true;
        seq_id = s.size() == 1 ? "A" : s.substr(1);
      } else {
        special = s;
      }
    } else if (const Value* sq = it.find("Sequence")) {
      is_seq = true;
      seq_id = r.str(r.req(*sq, "id", join_path(ip, "Sequence")), join_path(ip, "Sequence.id"));
    } else if (const Value* sk = it.find("SpecialToken")) {
      special =
          r.str(r.req(*sk, "id", join_path(ip, "SpecialToken")), join_path(ip, "SpecialToken.id"));
    } else {
      r.fail(ip, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (is_seq) {
      if (seq_id != "A" && seq_id != "0")
        r.fail(ip, fmt::format("the single template can only use sequence A, not {}",
                               json_quote(seq_id)));
      has_a = true;
      t.push_back({true, {}});
    } else {
      const auto f = specials.find(special);
      if (f == specials.end())
        r.fail(ip, fmt::format("special token {} is not in {}", json_quote(special),
                               join_path(path, "special_tokens")));
      t.push_back({false, f->second});
    }
  }
  if (!has_a) r.fail(tp, "the template has no sequence $A");
  return t;
}

void parse_post_processor(const Reader& r, const Value& v, std::string_view path,
                          std::vector<Template>& out) {
  r.object(v, path);
  const std::string& type = r.type_of(v, path);
  if (type == "Sequence") {
    const std::string p = join_path(path, "processors");
    const auto& items = r.array(r.req(v, "processors", path), p);
    for (std::size_t i = 0; i < items.size(); ++i)
      parse_post_processor(r, items[i], index_path(p, i), out);
  } else if (type == "ByteLevel") {
    // offsets only
  } else if (type == "TemplateProcessing") {
    out.push_back(parse_template_processing(r, v, path));
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto pair = [&](std::string_view key) {
      const std::string p = join_path(path, key);
      const auto& a = r.array(r.req(v, key, path), p);
      if (a.size() != 2) r.fail(p, "expected [token, id]");
      r.str(a[0], index_path(p, 0));
      return r.token_id(a[1], index_path(p, 1));
    };
    const std::int32_t cls = pair("cls");
    const std::int32_t sep = pair("sep");
    out.push_back(Template{{false, {cls}}, {true, {}}, {false, {sep}}});
  } else {
    r.unsupported(path, type);
  }
}

// ---- added tokens -----------------------------------------------------------------------

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

/// Leftmost-longest matching of a set of strings (a byte trie).
class AddedMatcher {
 public:
  bool empty() const noexcept { return terminal_.size() <= 1; }

  void add(std::string_view s, std::int32_t index) {
    if (s.empty()) return;
    if (terminal_.empty()) terminal_.push_back(-1);
    std::int32_t node = 0;
    for (const char c : s) {
      const std::uint64_t key =
          (static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(c);
      auto it = next_.find(key);
      if (it == next_.end()) {
        terminal_.push_back(-1);
        it = next_.emplace(key, static_cast<std::int32_t>(terminal_.size() - 1)).first;
      }
      node = it->second;
    }
    first_[static_cast<unsigned char>(s[0])] = true;
    if (terminal_[static_cast<std::size_t>(node)] < 0)
      terminal_[static_cast<std::size_t>(node)] = index;
  }

  /// The leftmost match at or after `from`, longest there: (start, length, index).
  bool find(std::string_view s, std::size_t from, std::size_t& start, std::size_t& len,
            std::int32_t& index) const {
    if (empty()) return false;
    for (std::size_t i = from; i < s.size(); ++i) {
      if (!first_[static_cast<unsigned char>(s[i])]) continue;
      std::int32_t node = 0;
      std::size_t best = 0;
      std::int32_t best_index = -1;
      for (std::size_t j = i; j < s.size(); ++j) {
        const std::uint64_t key =
            (static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(s[j]);
        const auto it = next_.find(key);
        if (it == next_.end()) break;
        node = it->second;
        if (terminal_[static_cast<std::size_t>(node)] >= 0) {
          best = j + 1 - i;
          best_index = terminal_[static_cast<std::size_t>(node)];
        }
      }
      if (best_index >= 0) {
        start = i;
        len = best;
        index = best_index;
        return true;
      }
    }
    return false;
  }

 private:
  std::unordered_map<std::uint64_t, std::int32_t> next_;
  std::vector<std::int32_t> terminal_;
  std::array<bool, 256> first_{};
};

// ---- models -----------------------------------------------------------------------------

struct MergeVal {
  std::int32_t rank;
  std::int32_t new_id;
};

inline std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

constexpr std::size_t kCacheCapacity = 20000;  // pre-tokens
constexpr std::size_t kCacheMaxLength = 256;   // bytes of a cached pre-token

}  // namespace

// ---- the tokenizer core -----------------------------------------------------------------

struct Tokenizer::Core {
  std::string source;
  bool bpe = true;                     // else WordLevel
  Vocab vocab;                         // the model's
  std::vector<std::string> id_token;   // by id: the model's or an added token's string
  std::vector<std::uint8_t> id_known;  // by id: 1 when the id has a token
  std::vector<std::uint8_t> id_special;

  // BPE
  std::unordered_map<std::uint64_t, MergeVal> merges;
  std::optional<std::string> unk_token;
  std::optional<std::int32_t> unk_id;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  std::array<std::int32_t, 256> fallback_ids{};
  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, SvHash, std::equal_to<>> cache;

  std::vector<AddedToken> added;
  AddedMatcher raw_matcher, normalized_matcher;
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  bool byte_level = false;
  bool has_decoder = false;
  std::vector<DecodeStep> decoder;
  bool decoder_is_byte_level = false;  // exactly [ByteLevel]: the fast path
  std::vector<Template> templates;
  std::optional<std::int32_t> bos, eos;

  // ---- encoding --------------------------------------------------------------------------

  void normalize(std::string& s) const {
    for (const auto& n : normalizers) n.apply(s);
  }

  [[noreturn]] void missing_unk(std::string_view piece) const {
    if (unk_token)
      throw InvalidArgument(
          fmt::format("{}: model.unk_token {} is not in model.vocab (needed for {})", source,
                      json_quote(*unk_token), json_quote(piece)));
    throw InvalidArgument(fmt::format("{}: {} is not in model.vocab and model.unk_token is not set",
                                      source, json_quote(piece)));
  }

  void word_level(std::string_view piece, std::vector<std::int32_t>& out) const {
    if (const auto it = vocab.find(piece); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
    if (!unk_id) missing_unk(piece);
    out.push_back(*unk_id);
  }

  /// HF's BPE::merge_word + Word::merge_all.
  void merge_word(std::string_view w, std::vector<std::int32_t>& out) const {
    struct Sym {
      std::int32_t id, prev, next;
      bool alive;
    };
    std::vector<Sym> syms;
    syms.reserve(w.size());
    auto add = [&](std::int32_t id) {
      const auto n = static_cast<std::int32_t>(syms.size());
      if (n > 0) syms.back().next = n;
      syms.push_back({id, n - 1, -1, true});
    };
    bool unk_pending = false;
    std::string key;
    for (std::size_t i = 0; i < w.size();) {
      const std::size_t len = cp_len(static_cast<unsigned char>(w[i]));
      const bool first = i == 0, last = i + len >= w.size();
      std::string_view s = w.substr(i, len);
      if ((!first && !prefix.empty()) || (last && !suffix.empty())) {
        key.clear();
        if (!first) key += prefix;
        key += s;
        if (last) key += suffix;
        s = key;
      }
      i += len;
      if (const auto it = vocab.find(s); it != vocab.end()) {
        if (unk_pending) {
          add(*unk_id);
          unk_pending = false;
        }
        add(it->second);
        continue;
      }
      if (byte_fallback) {
        bool all = true;
        for (const char c : s) all = all && fallback_ids[static_cast<unsigned char>(c)] >= 0;
        if (all) {
          if (unk_pending) {
            add(*unk_id);
            unk_pending = false;
          }
          for (const char c : s) add(fallback_ids[static_cast<unsigned char>(c)]);
          continue;
        }
      }
      if (unk_token) {
        if (!unk_id) missing_unk(s);
        if (unk_pending && !fuse_unk) add(*unk_id);
        unk_pending = true;
      }
      // else: dropped, as HF does
    }
    if (unk_pending) add(*unk_id);

    if (syms.size() > 1 && !merges.empty()) {
      struct Cand {
        std::int32_t rank, pos, new_id;
      };
      // std heap keeps the "largest" on top: the lowest rank, then the leftmost position.
      auto lower = [](const Cand& a, const Cand& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
      };
      std::vector<Cand> heap;
      heap.reserve(syms.size() * 2);
      for (std::size_t k = 0; k + 1 < syms.size(); ++k) {
        const auto m = merges.find(pair_key(syms[k].id, syms[k + 1].id));
        if (m != merges.end())
          heap.push_back({m->second.rank, static_cast<std::int32_t>(k), m->second.new_id});
      }
      std::make_heap(heap.begin(), heap.end(), lower);
      while (!heap.empty()) {
        std::pop_heap(heap.begin(), heap.end(), lower);
        const Cand top = heap.back();
        heap.pop_back();
        Sym& cur = syms[static_cast<std::size_t>(top.pos)];
        if (!cur.alive || cur.next < 0) continue;
        const Sym right = syms[static_cast<std::size_t>(cur.next)];
        const auto m = merges.find(pair_key(cur.id, right.id));
        if (m == merges.end() || m->second.new_id != top.new_id) continue;  // stale
        syms[static_cast<std::size_t>(cur.next)].alive = false;
        cur.id = top.new_id;
        cur.next = right.next;
        if (right.next >= 0) syms[static_cast<std::size_t>(right.next)].prev = top.pos;
        if (cur.prev >= 0) {
          const auto pm =
              merges.find(pair_key(syms[static_cast<std::size_t>(cur.prev)].id, cur.id));
          if (pm != merges.end()) {
            heap.push_back({pm->second.rank, cur.prev, pm->second.new_id});
            std::push_heap(heap.begin(), heap.end(), lower);
          }
        }
        if (cur.next >= 0) {
          const auto nm =
              merges.find(pair_key(cur.id, syms[static_cast<std::size_t>(cur.next)].id));
          if (nm != merges.end()) {
            heap.push_back({nm->second.rank, top.pos, nm->second.new_id});
            std::push_heap(heap.begin(), heap.end(), lower);
          }
        }
      }
    }
    for (const Sym& s : syms)
      if (s.alive) out.push_back(s.id);
  }

  void bpe_tokenize(std::string_view w, std::vector<std::int32_t>& out) const {
    if (w.empty()) return;
    if (ignore_merges) {
      if (const auto it = vocab.find(w); it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    }
    const bool cacheable = w.size() <= kCacheMaxLength;
    if (cacheable) {
      std::shared_lock lock(cache_mutex);
      if (const auto it = cache.find(w); it != cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    const std::size_t base = out.size();
    merge_word(w, out);
    if (cacheable) {
      std::vector<std::int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(base), out.end());
      std::unique_lock lock(cache_mutex);
      if (cache.size() >= kCacheCapacity) cache.clear();
      cache.emplace(std::string(w), std::move(ids));
    }
  }

  void model_tokenize(std::string_view piece, std::vector<std::int32_t>& out) const {
    if (bpe)
      bpe_tokenize(piece, out);
    else
      word_level(piece, out);
  }

  /// HF's AddedVocabulary::find_matches + split: calls on_text(piece, at_start) for the
  /// text between matches and on_added(index) for each added token.
  template <class OnText, class OnAdded>
  void split_added(std::string_view s, bool at_start, const AddedMatcher& matcher, OnText&& on_text,
                   OnAdded&& on_added) const {
    std::size_t start_offset = 0, pos = 0;
    std::size_t ms = 0, len = 0;
    std::int32_t index = -1;
    while (pos < s.size() && matcher.find(s, pos, ms, len, index)) {
      const AddedToken& tok = added[static_cast<std::size_t>(index)];
      std::size_t start = ms, stop = ms + len;
      pos = stop;
      if (start < start_offset) continue;  // inside a previous token's stripped whitespace
      if (tok.single_word) {
        bool before_word = false, after_word = false;
        if (start > 0) {
          std::size_t k = prev_cp_start(s, start);
          before_word = is_word_char(next_cp(s, k));
        }
        if (stop < s.size()) {
          std::size_t k = stop;
          after_word = is_word_char(next_cp(s, k));
        }
        if (before_word || after_word) continue;
      }
      if (tok.lstrip) {
        std::size_t b = start;
        while (b > 0) {
          const std::size_t p = prev_cp_start(s, b);
          std::size_t k = p;
          if (!is_white_space(next_cp(s, k))) break;
          b = p;
        }
        start = std::max(b, start_offset);
      }
      if (tok.rstrip) {
        while (stop < s.size()) {
          std::size_t k = stop;
          if (!is_white_space(next_cp(s, k))) break;
          stop = k;
        }
      }
      if (start_offset < start)
        on_text(s.substr(start_offset, start - start_offset), at_start && start_offset == 0);
      on_added(index);
      start_offset = stop;
      pos = std::max(pos, stop);
    }
    if (start_offset < s.size()) on_text(s.substr(start_offset), at_start && start_offset == 0);
  }

  /// The pipeline up to the model on valid UTF-8: calls on_piece(model_input) and
  /// on_added(index) in order.
  /// Runs pre-tokenizer steps k.. on one piece; the last step's pieces go to `sink`.
  void pre_tokenize_from(std::size_t k, std::string_view text, bool at_start,
                         const PieceSink& sink) const {
    if (k == pre_tokenizers.size()) {
      if (!text.empty()) sink(text, at_start);
      return;
    }
    auto next = [&](std::string_view sub, bool st) { pre_tokenize_from(k + 1, sub, st, sink); };
    pre_tokenizers[k].each(text, at_start, PieceSink(next));
  }

  /// The pipeline up to the model on valid UTF-8: calls on_piece(model_input) and
  /// on_added(index) in order.
  template <class OnPiece, class OnAdded>
  void pipeline(std::string_view text, bool at_start, OnPiece&& on_piece,
                OnAdded&& on_added) const {
    auto model_input = [&](std::string_view piece, bool) { on_piece(piece); };
    const PieceSink sink(model_input);
    auto pre_tokenize_piece = [&](std::string_view normalized, bool first) {
      pre_tokenize_from(0, normalized, first, sink);
    };
    auto text_piece = [&](std::string_view piece, bool first) {
      if (normalizers.empty()) {
        if (normalized_matcher.empty())
          pre_tokenize_piece(piece, first);
        else
          split_added(piece, first, normalized_matcher, pre_tokenize_piece, on_added);
        return;
      }
      std::string s(piece);
      normalize(s);
      if (s.empty()) return;
      if (normalized_matcher.empty())
        pre_tokenize_piece(s, first);
      else
        split_added(s, first, normalized_matcher, pre_tokenize_piece, on_added);
    };
    if (raw_matcher.empty()) {
      if (!text.empty()) text_piece(text, at_start);
    } else {
      split_added(text, at_start, raw_matcher, text_piece, on_added);
    }
  }

  /// Splits `text` into valid UTF-8 runs and runs of invalid bytes.
  template <class OnValid, class OnInvalid>
  static void utf8_runs(std::string_view text, OnValid&& on_valid, OnInvalid&& on_invalid) {
    const auto* base = reinterpret_cast<const unsigned char*>(text.data());
    const auto* end = base + text.size();
    std::size_t run = 0, i = 0;
    bool valid_run = true;
    while (i < text.size()) {
      const std::size_t n = base[i] < 0x80 ? 1 : json::detail::utf8_length(base + i, end);
      const bool ok = n != 0;
      if (ok != valid_run && i > run) {
        if (valid_run)
          on_valid(text.substr(run, i - run), run == 0);
        else
          on_invalid(text.substr(run, i - run));
        run = i;
      }
      valid_run = ok;
      i += ok ? n : 1;
    }
    if (i > run) {
      if (valid_run)
        on_valid(text.substr(run, i - run), run == 0);
      else
        on_invalid(text.substr(run, i - run));
    }
  }

  template <class OnPiece, class OnAdded>
  void run(std::string_view text, OnPiece&& on_piece, OnAdded&& on_added) const {
    bool valid = true;
    {
      const auto* base = reinterpret_cast<const unsigned char*>(text.data());
      for (std::size_t i = 0; i < text.size();) {
        if (base[i] < 0x80) {
          ++i;
          continue;
        }
        const std::size_t n = json::detail::utf8_length(base + i, base + text.size());
        if (n == 0) {
          valid = false;
          break;
        }
        i += n;
      }
    }
    if (valid) {
      pipeline(text, true, on_piece, on_added);
    } else if (byte_level) {
      utf8_runs(
          text, [&](std::string_view run, bool first) { pipeline(run, first, on_piece, on_added); },
          [&](std::string_view bytes) { on_piece(std::string_view(byte_level_map(bytes))); });
    } else {
      std::string clean;
      utf8_runs(
          text, [&](std::string_view run, bool) { clean += run; },
          [&](std::string_view bytes) {
            for (std::size_t k = 0; k < bytes.size(); ++k) clean += "\xEF\xBF\xBD";
          });
      pipeline(clean, true, on_piece, on_added);
    }
  }

  // ---- decoding ----------------------------------------------------------------------------

  bool known(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < id_known.size() &&
           id_known[static_cast<std::size_t>(id)] != 0;
  }
  bool special(std::int32_t id) const noexcept {
    return known(id) && id_special[static_cast<std::size_t>(id)] != 0;
  }
};

// ---- loading ----------------------------------------------------------------------------

namespace {

void set_id(Tokenizer::Core& c, std::int32_t id, const std::string& token, bool overwrite) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= c.id_token.size()) {
    c.id_token.resize(i + 1);
    c.id_known.resize(i + 1, 0);
    c.id_special.resize(i + 1, 0);
  }
  if (c.id_known[i] == 0 || overwrite) c.id_token[i] = token;
  c.id_known[i] = 1;
}

void load_vocab(const Reader& r, const Value& model, Tokenizer::Core& c) {
  const Value& v = r.req(model, "vocab", "model");
  r.object(v, "model.vocab");
  c.vocab.reserve(v.size());
  std::int32_t max_id = -1;
  for (const auto& [tok, idv] : v.as_object()) {
    const std::int32_t id = r.token_id(idv, join_path("model.vocab", json_quote(tok)));
    c.vocab.emplace(tok, id);
    max_id = std::max(max_id, id);
  }
  c.id_token.resize(static_cast<std::size_t>(max_id + 1));
  c.id_known.assign(static_cast<std::size_t>(max_id + 1), 0);
  c.id_special.assign(static_cast<std::size_t>(max_id + 1), 0);
  for (const auto& [tok, idv] : v.as_object())
    set_id(c, static_cast<std::int32_t>(idv.as_int()), tok, false);
}

void load_bpe(const Reader& r, const Value& m, Tokenizer::Core& c) {
  c.bpe = true;
  load_vocab(r, m, c);
  if (const Value* d = r.opt(m, "dropout")) {
    if (!d->is_number()) r.wrong_type("model.dropout", "a number", *d);
    if (d->as_double() != 0.0) r.fail("model.dropout", "BPE dropout is not supported");
  }
  if (const Value* u = r.opt(m, "unk_token")) {
    c.unk_token = r.str(*u, "model.unk_token");
    if (const auto it = c.vocab.find(*c.unk_token); it != c.vocab.end()) c.unk_id = it->second;
  }
  c.fuse_unk = r.opt_bool(m, "fuse_unk", "model", false);
  c.byte_fallback = r.opt_bool(m, "byte_fallback", "model", false);
  c.ignore_merges = r.opt_bool(m, "ignore_merges", "model", false);
  c.prefix = r.opt_str(m, "continuing_subword_prefix", "model", "");
  c.suffix = r.opt_str(m, "end_of_word_suffix", "model", "");
  c.fallback_ids.fill(-1);
  if (c.byte_fallback)
    for (int b = 0; b < 256; ++b)
      if (const auto it = c.vocab.find(fmt::format("<0x{:02X}>", b)); it != c.vocab.end())
        c.fallback_ids[static_cast<std::size_t>(b)] = it->second;

  const auto& merges = r.array(r.req(m, "merges", "model"), "model.merges");
  c.merges.reserve(merges.size());
  std::int32_t rank = 0;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string path = index_path("model.merges", i);
    std::string a, b;
    if (merges[i].is_string()) {
      const std::string& line = merges[i].as_string();
      if (line.rfind("#version", 0) == 0) continue;
      const auto sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
        r.fail(path, fmt::format("expected \"a b\" (two tokens and one space), got {}",
                                 json_quote(line)));
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (merges[i].is_array()) {
      const auto& pr = merges[i].as_array();
      if (pr.size() != 2)
        r.fail(path, fmt::format("expected a pair of tokens, got {} elements", pr.size()));
      a = r.str(pr[0], index_path(path, 0));
      b = r.str(pr[1], index_path(path, 1));
    } else {
      r.wrong_type(path, "a string or a pair of strings", merges[i]);
    }
    auto id_of = [&](const std::string& tok) {
      const auto it = c.vocab.find(tok);
      if (it == c.vocab.end())
        r.fail(path, fmt::format("token {} is not in model.vocab", json_quote(tok)));
      return it->second;
    };
    const std::int32_t ia = id_of(a), ib = id_of(b);
    std::string merged = a;
    merged += (!c.prefix.empty() && b.rfind(c.prefix, 0) == 0) ? b.substr(c.prefix.size()) : b;
    const std::int32_t im = id_of(merged);
    c.merges.insert_or_assign(pair_key(ia, ib),
                              MergeVal{rank, im});  // a repeat: the last wins, as in HF
    ++rank;
  }
}

void load_word_level(const Reader& r, const Value& m, Tokenizer::Core& c) {
  c.bpe = false;
  load_vocab(r, m, c);
  c.unk_token = r.opt_str(m, "unk_token", "model", "<unk>");
  if (const auto it = c.vocab.find(*c.unk_token); it != c.vocab.end()) c.unk_id = it->second;
}

void load_added_tokens(const Reader& r, const Value& root, Tokenizer::Core& c) {
  const Value* at = r.opt(root, "added_tokens");
  if (at == nullptr) return;
  const auto& items = r.array(*at, "added_tokens");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string p = index_path("added_tokens", i);
    const Value& it = r.object(items[i], p);
    AddedToken t;
    t.content = r.str(r.req(it, "content", p), join_path(p, "content"));
    if (t.content.empty()) r.fail(join_path(p, "content"), "empty added token");
    t.special = r.opt_bool(it, "special", p, false);
    t.lstrip = r.opt_bool(it, "lstrip", p, false);
    t.rstrip = r.opt_bool(it, "rstrip", p, false);
    t.single_word = r.opt_bool(it, "single_word", p, false);
    t.normalized = r.opt_bool(it, "normalized", p, !t.special);
    if (const auto vit = c.vocab.find(t.content); vit != c.vocab.end()) {
      t.id = vit->second;
    } else {
      t.id = r.token_id(r.req(it, "id", p), join_path(p, "id"));
      if (c.known(t.id) && c.id_token[static_cast<std::size_t>(t.id)] != t.content)
        r.fail(join_path(p, "id"),
               fmt::format("id {} of {} is already the token {}", t.id, json_quote(t.content),
                           json_quote(c.id_token[static_cast<std::size_t>(t.id)])));
    }
    set_id(c, t.id, t.content, true);
    if (t.special) c.id_special[static_cast<std::size_t>(t.id)] = 1;
    const auto index = static_cast<std::int32_t>(c.added.size());
    if (t.normalized) {
      std::string norm = t.content;
      c.normalize(norm);
      c.normalized_matcher.add(norm, index);
    } else {
      c.raw_matcher.add(t.content, index);
    }
    c.added.push_back(std::move(t));
  }
}

std::optional<std::int32_t> named_id(const Tokenizer::Core& c,
                                     std::initializer_list<const char*> names) {
  for (const char* n : names) {
    for (const auto& t : c.added)
      if (t.content == n) return t.id;
    if (const auto it = c.vocab.find(std::string_view(n)); it != c.vocab.end()) return it->second;
  }
  return std::nullopt;
}

std::shared_ptr<Tokenizer::Core> load(std::string_view text, std::string_view source) {
  auto core = std::make_shared<Tokenizer::Core>();
  Tokenizer::Core& c = *core;
  c.source = std::string(source);
  const Reader r{c.source};
  const Value root = json::parse(text, source);
  r.object(root, "(top level)");

  // The normalizer first: normalized added tokens are matched in their normalized form.
  if (const Value* n = r.opt(root, "normalizer"))
    parse_normalizer(r, *n, "normalizer", c.normalizers);
  if (const Value* p = r.opt(root, "pre_tokenizer"))
    parse_pre_tokenizer(r, *p, "pre_tokenizer", c.pre_tokenizers, c.byte_level);

  const Value* model = r.opt(root, "model");
  if (model == nullptr) r.fail("model", "missing");
  r.object(*model, "model");
  std::string type;
  if (const Value* t = r.opt(*model, "type"))
    type = r.str(*t, "model.type");
  else
    type = model->contains("merges") ? "BPE" : "WordLevel";
  if (type == "BPE")
    load_bpe(r, *model, c);
  else if (type == "WordLevel")
    load_word_level(r, *model, c);
  else
    r.unsupported("model", type);

  load_added_tokens(r, root, c);

  if (const Value* d = r.opt(root, "decoder")) {
    c.has_decoder = true;
    parse_decoder(r, *d, "decoder", c.decoder);
    c.decoder_is_byte_level =
        c.decoder.size() == 1 && c.decoder[0].kind == DecodeStep::Kind::ByteLevel;
  }
  if (const Value* p = r.opt(root, "post_processor"))
    parse_post_processor(r, *p, "post_processor", c.templates);

  // BOS / EOS: around $A in the (first) template, else by name.
  for (const Template& t : c.templates) {
    std::size_t a = 0;
    while (a < t.size() && !t[a].sequence) ++a;
    if (a > 0 && t[a - 1].ids.size() == 1) c.bos = t[a - 1].ids[0];
    if (a + 1 < t.size() && t[a + 1].ids.size() == 1) c.eos = t[a + 1].ids[0];
    break;
  }
  if (!c.bos)
    c.bos = named_id(c, {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<BOS>"});
  if (!c.eos)
    c.eos = named_id(c, {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eos|>", "<EOS>"});
  return core;
}

}  // namespace

// ---- the public API ---------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Core> core) : core_(std::move(core)) {
  bos_ = core_->bos;
  eos_ = core_->eos;
}

Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view text, std::string_view source) {
  return Tokenizer(load(text, source));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError(fmt::format("{}: cannot read: is a directory", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return from_json(ss.str(), path);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Core& c = *core_;
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  c.run(
      text, [&](std::string_view piece) { c.model_tokenize(piece, ids); },
      [&](std::int32_t index) { ids.push_back(c.added[static_cast<std::size_t>(index)].id); });
  if (add_special_tokens) {
    for (const Template& t : c.templates) {
      std::vector<std::int32_t> out;
      out.reserve(ids.size() + 4);
      for (const TemplateItem& item : t) {
        if (item.sequence)
          out.insert(out.end(), ids.begin(), ids.end());
        else
          out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
      ids = std::move(out);
    }
  }
  return ids;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  const Core& c = *core_;
  std::vector<std::string> out;
  c.run(
      text, [&](std::string_view piece) { out.emplace_back(piece); },
      [&](std::int32_t index) { out.push_back(c.added[static_cast<std::size_t>(index)].content); });
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  const Core& c = *core_;
  auto keep = [&](std::int32_t id) {
    return c.known(id) && !(skip_special_tokens && c.special(id));
  };
  std::string out;
  if (c.decoder_is_byte_level) {
    for (const std::int32_t id : ids)
      if (keep(id)) byte_level_unmap(c.id_token[static_cast<std::size_t>(id)], out);
    return out;
  }
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (const std::int32_t id : ids)
    if (keep(id)) toks.push_back(c.id_token[static_cast<std::size_t>(id)]);
  if (!c.has_decoder) {
    for (std::size_t i = 0; i < toks.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += toks[i];
    }
    return out;
  }
  for (const DecodeStep& d : c.decoder) d.apply(toks, false);
  for (const auto& t : toks) out += t;
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  const Core& c = *core_;
  if (!c.known(id)) return {};
  const std::string& tok = c.id_token[static_cast<std::size_t>(id)];
  if (!c.has_decoder) return tok;
  std::vector<std::string> toks{tok};
  for (const DecodeStep& d : c.decoder) d.apply(toks, true);
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const Core& c = *core_;
  for (const AddedToken& t : c.added)
    if (t.content == token) return t.id;
  if (const auto it = c.vocab.find(token); it != c.vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (!core_->known(id))
    throw InvalidArgument(fmt::format("id_to_token: id {} has no token in {} (vocab size {})", id,
                                      core_->source, vocab_size()));
  return core_->id_token[static_cast<std::size_t>(id)];
}

bool Tokenizer::has_id(std::int32_t id) const noexcept { return core_->known(id); }
std::size_t Tokenizer::vocab_size() const noexcept { return core_->id_known.size(); }
bool Tokenizer::is_special(std::int32_t id) const noexcept { return core_->special(id); }

std::vector<std::int32_t> Tokenizer::special_ids() const {
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < core_->id_special.size(); ++i)
    if (core_->id_special[i] != 0) out.push_back(static_cast<std::int32_t>(i));
  return out;
}

std::optional<std::int32_t> Tokenizer::bos_id() const noexcept { return bos_; }
std::optional<std::int32_t> Tokenizer::eos_id() const noexcept { return eos_; }
void Tokenizer::set_bos_id(std::optional<std::int32_t> id) { bos_ = id; }
void Tokenizer::set_eos_id(std::optional<std::int32_t> id) { eos_ = id; }

std::string Tokenizer::kind() const { return core_->bpe ? "bpe" : "wordlevel"; }
bool Tokenizer::byte_level() const noexcept { return core_->byte_level; }

std::size_t Tokenizer::cache_size() const {
  std::shared_lock lock(core_->cache_mutex);
  return core_->cache.size();
}

const std::string& Tokenizer::source() const noexcept { return core_->source; }

}  // namespace qstar::hf
