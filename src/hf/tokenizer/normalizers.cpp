// Normalizers: NFC / NFD / NFKC / NFKD (utf8proc), Lowercase, Replace, Prepend, Strip and
// Sequence, as HF's `tokenizers` normalizers.
#include <cstdlib>

#include <fmt/format.h>
#include <utf8proc.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

void Normalizer::apply(std::string& s) const {
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

}  // namespace qstar::hf::detail
