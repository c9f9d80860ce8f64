// The tokenizer's shared helpers: UTF-8, the GPT-2 byte alphabet, PCRE2 regexes, Split
// patterns, and typed reading of tokenizer.json with field paths (see internal.hpp).
#include <algorithm>
#include <new>

#include <fmt/format.h>
#include <utf8proc.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

// ---- UTF-8 ----------------------------------------------------------------------------

bool is_word_char(std::uint32_t cp) noexcept {
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

// ---- the GPT-2 byte-to-unicode mapping -------------------------------------------------

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

namespace {

struct MatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(md); }
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return fmt::format("error {}", code);
  return std::string(reinterpret_cast<const char*>(buf));
}

}  // namespace

Regex::Regex(const std::string& pattern, std::string where) : where_(std::move(where)) {
  int err = 0;
  PCRE2_SIZE off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &off, nullptr);
  if (code_ == nullptr)
    throw ParseError(
        fmt::format("{}: invalid regex at offset {}: {}", where_, off, pcre2_message(err)));
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::find(std::string_view s, std::size_t start, std::size_t& ms, std::size_t& me) const {
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

// ---- Split patterns -----------------------------------------------------------------------

std::vector<Pattern::Span> Pattern::find_matches(std::string_view s) const {
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

std::string Pattern::replace_all(std::string_view s, std::string_view content) const {
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

void Reader::fail(std::string_view path, std::string_view msg) const {
  throw ParseError(fmt::format("{}: {}: {}", src, path, msg));
}
void Reader::unsupported(std::string_view path, std::string_view type) const {
  throw ParseError(fmt::format("{}: {}.type {} is not supported", src, path, json_quote(type)));
}
void Reader::wrong_type(std::string_view path, std::string_view want, const Value& v) const {
  fail(path, fmt::format("expected {}, got {}", want, json::type_name(v.type())));
}

std::int32_t Reader::token_id(const Value& v, std::string_view path) const {
  const std::int64_t i = integer(v, path);
  if (i < 0 || i > kMaxTokenId)
    fail(path, fmt::format("token id {} out of range", i));
  return static_cast<std::int32_t>(i);
}

std::string Reader::where(std::string_view path) const { return fmt::format("{}: {}", src, path); }

Pattern Reader::pattern(const Value& v, std::string_view path) const {
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

std::string Reader::one_char(const Value& v, std::string_view path) const {
  const std::string& s = str(v, path);
  if (s.empty() || cp_len(static_cast<unsigned char>(s[0])) != s.size())
    fail(path, fmt::format("expected a single character, got {}", json_quote(s)));
  return s;
}

}  // namespace qstar::hf::detail
