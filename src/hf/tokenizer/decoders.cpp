// Decoders: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace and Sequence, as HF's
// decode_chain (with raw bytes kept where HF would insert U+FFFD).
#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

namespace {

bool hex2(char a, char b, unsigned& v) {
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

}  // namespace

void DecodeStep::apply(std::vector<std::string>& toks, bool mid) const {
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

}  // namespace qstar::hf::detail
