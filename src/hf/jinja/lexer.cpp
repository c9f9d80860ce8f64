// The lexer: template source -> tokens, with jinja2's whitespace handling as transformers
// configures it (trim_blocks, lstrip_blocks, `-`/`+` modifiers, newlines normalised to "\n",
// one trailing newline dropped).
#include <cctype>
#include <cstring>

#include "hf/jinja/internal.hpp"

namespace qstar::hf::jinja {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

[[noreturn]] void lex_error(const std::string& name, int line, const std::string& msg) {
  throw ParseError(fmt::format("{}:{}: {}", name, line, msg));
}

std::string rstrip_ws(std::string_view s) {
  std::size_t n = s.size();
  while (n > 0 && is_ws(s[n - 1])) --n;
  return std::string(s.substr(0, n));
}

struct Lexer {
  std::string src;
  const std::string& name;
  std::size_t pos = 0;
  int line = 1;
  std::vector<Token> out;
  bool line_starting = true;

  void advance_to(std::size_t p) {
    for (std::size_t i = pos; i < p; ++i)
      if (src[i] == '\n') ++line;
    pos = p;
  }

  void emit_data(std::string text, int at_line) {
    if (!text.empty()) out.push_back({T::Data, std::move(text), at_line});
  }

  // Skips whitespace after a `-` closer; one "\n" after a plain block/comment closer.
  void after_close(bool strip, bool trim_newline) {
    std::size_t p = pos;
    if (strip) {
      while (p < src.size() && is_ws(src[p])) ++p;
    } else if (trim_newline && p < src.size() && src[p] == '\n') {
      ++p;
    }
    advance_to(p);
    line_starting = pos > 0 && src[pos - 1] == '\n';
  }

  void string_literal() {
    const char q = src[pos];
    const int start_line = line;
    std::size_t p = pos + 1;
    std::string val;
    while (true) {
      if (p >= src.size()) lex_error(name, start_line, "unterminated string literal");
      const char c = src[p];
      if (c == q) break;
      if (c == '\\') {
        if (p + 1 >= src.size()) lex_error(name, start_line, "unterminated string literal");
        const char e = src[p + 1];
        p += 2;
        auto hex = [&](int n) {
          std::uint32_t cp = 0;
          for (int j = 0; j < n; ++j) {
            if (p >= src.size() || !std::isxdigit(static_cast<unsigned char>(src[p])))
              lex_error(name, line, "bad \\x/\\u escape in string literal");
            const char h = src[p++];
            cp = cp * 16 + static_cast<std::uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            lex_error(name, line, "escape outside Unicode scalar values in string literal");
          append_utf8(val, cp);
        };
        switch (e) {
          case 'n': val += '\n'; break;
          case 't': val += '\t'; break;
          case 'r': val += '\r'; break;
          case '\\': val += '\\'; break;
          case '\'': val += '\''; break;
          case '"': val += '"'; break;
          case 'a': val += '\a'; break;
          case 'b': val += '\b'; break;
          case 'f': val += '\f'; break;
          case 'v': val += '\v'; break;
          case '\n': break;  // line continuation
          case 'x': hex(2); break;
          case 'u': hex(4); break;
          case 'U': hex(8); break;
          default:
            if (e >= '0' && e <= '7') {  // octal, up to 3 digits
              std::uint32_t cp = static_cast<std::uint32_t>(e - '0');
              for (int j = 0; j < 2 && p < src.size() && src[p] >= '0' && src[p] <= '7'; ++j)
                cp = cp * 8 + static_cast<std::uint32_t>(src[p++] - '0');
              append_utf8(val, cp);
            } else {
              val += '\\';
              val += e;
            }
        }
        continue;
      }
      val += c;
      ++p;
    }
    out.push_back({T::String, std::move(val), start_line});
    advance_to(p + 1);
  }

  // Tokens inside {{ }} or {% %} up to the closer; returns the closer's modifier ('-', '+', 0).
  char tag_tokens(bool block) {
    const char* closer = block ? "%}" : "}}";
    int depth = 0;
    while (true) {
      std::size_t p = pos;
      while (p < src.size() && is_ws(src[p])) ++p;
      advance_to(p);
      if (pos >= src.size()) lex_error(name, line, block ? "unexpected end of template: '%}' missing" : "unexpected end of template: '}}' missing");
      if (depth == 0) {
        if (src.compare(pos, 2, closer) == 0) { advance_to(pos + 2); return 0; }
        if ((src[pos] == '-' || (block && src[pos] == '+')) && src.compare(pos + 1, 2, closer) == 0) {
          const char m = src[pos];
          advance_to(pos + 3);
          return m;
        }
      }
      const char c = src[pos];
      if (c == '"' || c == '\'') { string_literal(); continue; }
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        std::size_t e = pos;
        while (e < src.size() && (std::isalnum(static_cast<unsigned char>(src[e])) || src[e] == '_')) ++e;
        out.push_back({T::Name, src.substr(pos, e - pos), line});
        advance_to(e);
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t e = pos;
        bool is_float = false;
        auto digits = [&] { while (e < src.size() && (std::isdigit(static_cast<unsigned char>(src[e])) || (src[e] == '_' && e + 1 < src.size() && std::isdigit(static_cast<unsigned char>(src[e + 1]))))) ++e; };
        digits();
        if (e + 1 < src.size() && src[e] == '.' && std::isdigit(static_cast<unsigned char>(src[e + 1]))) {
          is_float = true;
          ++e;
          digits();
        }
        if (e < src.size() && (src[e] == 'e' || src[e] == 'E')) {
          std::size_t f = e + 1;
          if (f < src.size() && (src[f] == '+' || src[f] == '-')) ++f;
          if (f < src.size() && std::isdigit(static_cast<unsigned char>(src[f]))) {
            is_float = true;
            e = f;
            digits();
          }
        }
        std::string text;
        for (std::size_t j = pos; j < e; ++j)
          if (src[j] != '_') text += src[j];
        out.push_back({is_float ? T::Float : T::Int, std::move(text), line});
        advance_to(e);
        continue;
      }
      static const char* const ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                        "<",  ">",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|", "="};
      bool matched = false;
      for (const char* op : ops) {
        const std::size_t n = std::strlen(op);
        if (src.compare(pos, n, op) == 0) {
          if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
          if (op[0] == ')' || op[0] == ']' || op[0] == '}') {
            if (depth == 0) lex_error(name, line, fmt::format("unexpected '{}'", op));
            --depth;
          }
          out.push_back({T::Op, op, line});
          advance_to(pos + n);
          matched = true;
          break;
        }
      }
      if (!matched) lex_error(name, line, fmt::format("unexpected character '{}'", c == '\0' ? std::string("\\0") : std::string(1, c)));
    }
  }

  void run() {
    while (pos < src.size()) {
      std::size_t tag = pos;
      char kind = 0;
      while (true) {
        tag = src.find('{', tag);
        if (tag == std::string::npos || tag + 1 >= src.size()) { tag = std::string::npos; break; }
        const char n = src[tag + 1];
        if (n == '{' || n == '%' || n == '#') { kind = n; break; }
        ++tag;
      }
      const int text_line = line;
      if (tag == std::string::npos) {
        emit_data(src.substr(pos), text_line);
        advance_to(src.size());
        break;
      }
      std::string text = src.substr(pos, tag - pos);
      const char mod = tag + 2 < src.size() ? src[tag + 2] : 0;
      if (mod == '-') {
        text = rstrip_ws(text);
      } else if (mod != '+' && kind != '{') {  // lstrip_blocks
        const std::size_t nl = text.rfind('\n');
        const std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if (l_pos > 0 || line_starting) {
          bool blank = true;
          for (std::size_t j = l_pos; j < text.size(); ++j)
            if (text[j] != ' ' && text[j] != '\t') { blank = false; break; }
          if (blank) text.resize(l_pos);
        }
      }
      emit_data(std::move(text), text_line);
      advance_to(tag + 2 + ((mod == '-' || (mod == '+' && kind != '{')) ? 1 : 0));
      line_starting = false;
      if (kind == '#') {
        const int start = line;
        const std::size_t end = src.find("#}", pos);
        if (end == std::string::npos) lex_error(name, start, "unterminated comment");
        const char m = end > pos ? src[end - 1] : 0;
        advance_to(end + 2);
        after_close(m == '-', m != '+');
        continue;
      }
      const bool block = kind == '%';
      out.push_back({block ? T::BlockBegin : T::VarBegin, "", line});
      const char m = tag_tokens(block);
      out.push_back({block ? T::BlockEnd : T::VarEnd, "", line});
      after_close(m == '-', block && m != '+');
    }
    out.push_back({T::Eof, "", line});
  }
};

}  // namespace

std::vector<Token> lex(std::string_view source, const std::string& name) {
  // Newlines normalised to "\n"; one trailing newline dropped (keep_trailing_newline=False).
  std::string s;
  s.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      s += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      s += source[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  Lexer lx{std::move(s), name, 0, 1, {}, true};
  lx.run();
  return std::move(lx.out);
}

}  // namespace qstar::hf::jinja
