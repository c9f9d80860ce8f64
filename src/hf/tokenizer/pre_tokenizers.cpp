// Pre-tokenizers: Split (HF's NormalizedString::split behaviours), ByteLevel (GPT-2 regex
// and byte alphabet), Whitespace, WhitespaceSplit, Digits, Punctuation, Metaspace, Sequence.
#include <algorithm>

#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

namespace {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation,
// Join_Control.
const char* const kWhitespacePattern =
    R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\s]+)";

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

}  // namespace

void PreTokenizer::each(std::string_view text, bool at_start, const PieceSink& out) const {
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

namespace {

Behavior parse_behavior(const Reader& r, const Value& v, std::string_view path) {
  const std::string& b = r.str(v, path);
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  r.fail(path, fmt::format("unknown behavior {}", json_quote(b)));
}

}  // namespace

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

}  // namespace qstar::hf::detail
