// The tokenizer.json tokenizer's private parts, shared by the files of src/hf/tokenizer/.
// See include/qstar/hf/tokenizer.hpp for what is supported. The files follow the stages of
// the Hugging Face `tokenizers` crate, so ids match HF's:
//   support.cpp          UTF-8, the GPT-2 byte alphabet, PCRE2 regexes, Split patterns,
//                        reading tokenizer.json with field paths
//   normalizers.cpp      Normalizer (NFC.., Lowercase, Replace, Prepend, Strip, Sequence)
//   pre_tokenizers.cpp   PreTokenizer (Split, ByteLevel, Whitespace.., Metaspace, Sequence)
//   models.cpp           the BPE merge loop and cache, WordLevel, loading the model
//   added_tokens.cpp     the added-token matcher, loading added_tokens
//   decoders.cpp         DecodeStep (ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace)
//   post_processors.cpp  the single-sequence template (TemplateProcessing, Bert, Roberta)
//   tokenizer.cpp        the encode pipeline, loading a whole file, the public API
// Nothing here is installed; everything lives in qstar::hf::detail.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "qstar/core/json.hpp"
#include "qstar/hf/tokenizer.hpp"

namespace qstar::hf::detail {

using json::Value;

// ---- UTF-8 (support.cpp) -------------------------------------------------------------------

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
bool is_word_char(std::uint32_t cp) noexcept;

inline bool is_ascii(std::string_view s) noexcept {
  for (const char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// ---- the GPT-2 byte-to-unicode mapping (support.cpp) ----------------------------------------

struct ByteMap {
  std::array<std::string, 256> str{};           // byte -> the UTF-8 of its printable stand-in
  std::array<std::array<char, 2>, 256> utf8{};  // the same, 1 or 2 bytes
  std::array<std::uint8_t, 256> len{};
  std::array<std::int16_t, 0x144> byte{};  // code point -> byte, -1 when not a stand-in
};

const ByteMap& byte_map();
/// The byte-level form of `s`, written into `out`.
void byte_level_map(std::string_view s, std::string& out);
std::string byte_level_map(std::string_view s);
/// Appends the bytes a byte-level token stands for; a token with a character outside the
/// byte alphabet (an added token such as "<think>\n") is appended as is, as HF does.
void byte_level_unmap(std::string_view tok, std::string& out);

// ---- PCRE2 (support.cpp) -------------------------------------------------------------------

/// A compiled pattern (UTF, UCP, multi-line anchors as in Oniguruma; JIT when available).
class Regex {
 public:
  /// ParseError naming `where` when the pattern does not compile.
  Regex(const std::string& pattern, std::string where);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  /// The first match at or after `start` in `s` (valid UTF-8), as [ms, me).
  bool find(std::string_view s, std::size_t start, std::size_t& ms, std::size_t& me) const;

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

/// What a Split looks for: a regex, or a literal string ("" matches nothing, as in HF).
struct Pattern {
  std::shared_ptr<const Regex> regex;
  std::string literal;

  struct Span {
    std::size_t start, end;
    bool match;
  };
  /// HF's Pattern::find_matches: spans covering `s`, each flagged match or not.
  std::vector<Span> find_matches(std::string_view s) const;
  /// Replaces every match in `s` by `content`.
  std::string replace_all(std::string_view s, std::string_view content) const;
};

// ---- strings as hash keys ------------------------------------------------------------------

struct SvHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};
using Vocab = std::unordered_map<std::string, std::int32_t, SvHash, std::equal_to<>>;

// ---- reading tokenizer.json with field paths (support.cpp) -----------------------------------

std::string json_quote(std::string_view s);
std::string join_path(std::string_view path, std::string_view key);
std::string index_path(std::string_view path, std::size_t i);

/// Typed access to tokenizer.json values; every error is a ParseError naming `src` and the
/// field path.
struct Reader {
  std::string src;

  [[noreturn]] void fail(std::string_view path, std::string_view msg) const;
  [[noreturn]] void unsupported(std::string_view path, std::string_view type) const;
  [[noreturn]] void wrong_type(std::string_view path, std::string_view want, const Value& v) const;
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
  std::int32_t token_id(const Value& v, std::string_view path) const;
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
  std::string where(std::string_view path) const;

  /// A {"String": s} or {"Regex": r} pattern.
  Pattern pattern(const Value& v, std::string_view path) const;
  /// A single character (Strip's content, Metaspace's replacement).
  std::string one_char(const Value& v, std::string_view path) const;
};

// ---- normalizers (normalizers.cpp) --------------------------------------------------------

struct Normalizer {
  enum class Kind { Unicode, Lowercase, Replace, Prepend, Strip } kind = Kind::Unicode;
  int utf8proc_options = 0;          // Unicode
  Pattern pattern;                   // Replace
  std::string content;               // Replace content, Prepend text
  bool left = false, right = false;  // Strip

  void apply(std::string& s) const;
};

/// Appends the normalizer at `v` (a Sequence: each of its items) to `out`.
void parse_normalizer(const Reader& r, const Value& v, std::string_view path,
                      std::vector<Normalizer>& out);

// ---- pre-tokenizers (pre_tokenizers.cpp) ----------------------------------------------------

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

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
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
  void each(std::string_view text, bool at_start, const PieceSink& out) const;
};

/// Metaspace's prepend_scheme (or its older add_prefix_space), for the pre-tokenizer and
/// the decoder.
Prepend parse_prepend_scheme(const Reader& r, const Value& v, std::string_view path);
/// Appends the pre-tokenizer at `v` (a Sequence: each of its items) to `out`; sets
/// `byte_level` when one of them is ByteLevel.
void parse_pre_tokenizer(const Reader& r, const Value& v, std::string_view path,
                         std::vector<PreTokenizer>& out, bool& byte_level);

// ---- decoders (decoders.cpp) ----------------------------------------------------------------

struct DecodeStep {
  enum class Kind { ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace } kind = Kind::Fuse;
  std::string content;                // Strip's char, Replace's content, Metaspace's replacement
  std::size_t start = 0, stop = 0;    // Strip
  Pattern pattern;                    // Replace
  Prepend prepend = Prepend::Always;  // Metaspace

  /// One step of HF's decode_chain. `mid`: the tokens are one token from the middle of a
  /// sequence (token_bytes), so position-dependent steps do nothing.
  void apply(std::vector<std::string>& toks, bool mid) const;
};

/// Appends the decoder at `v` (a Sequence: each of its steps) to `out`.
void parse_decoder(const Reader& r, const Value& v, std::string_view path,
                   std::vector<DecodeStep>& out);

// ---- post-processors (post_processors.cpp) ----------------------------------------------------

/// One element of a single-sequence template: the sequence itself, or special-token ids.
struct TemplateItem {
  bool sequence = false;
  std::vector<std::int32_t> ids;
};
using Template = std::vector<TemplateItem>;

/// Appends the templates of the post-processor at `v` to `out` (none for ByteLevel).
void parse_post_processor(const Reader& r, const Value& v, std::string_view path,
                          std::vector<Template>& out);

// ---- added tokens (added_tokens.cpp) ----------------------------------------------------------

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

/// Leftmost-longest matching of a set of strings (a byte trie).
class AddedMatcher {
 public:
  bool empty() const noexcept { return terminal_.size() <= 1; }
  void add(std::string_view s, std::int32_t index);
  /// The leftmost match at or after `from`, longest there: (start, length, index).
  bool find(std::string_view s, std::size_t from, std::size_t& start, std::size_t& len,
            std::int32_t& index) const;

 private:
  std::unordered_map<std::uint64_t, std::int32_t> next_;
  std::vector<std::int32_t> terminal_;
  std::array<bool, 256> first_{};
};

// ---- models (models.cpp) ----------------------------------------------------------------------

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

}  // namespace qstar::hf::detail

namespace qstar::hf {

// ---- the tokenizer core -----------------------------------------------------------------------

struct Tokenizer::Core {
  using Value = detail::Value;

  std::string source;
  bool bpe = true;                     // else WordLevel
  detail::Vocab vocab;                 // the model's
  std::vector<std::string> id_token;   // by id: the model's or an added token's string
  std::vector<std::uint8_t> id_known;  // by id: 1 when the id has a token
  std::vector<std::uint8_t> id_special;

  // BPE
  std::unordered_map<std::uint64_t, detail::MergeVal> merges;
  std::optional<std::string> unk_token;
  std::optional<std::int32_t> unk_id;
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  std::string prefix, suffix;  // continuing_subword_prefix, end_of_word_suffix
  std::array<std::int32_t, 256> fallback_ids{};
  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>, detail::SvHash,
                             std::equal_to<>>
      cache;

  std::vector<detail::AddedToken> added;
  detail::AddedMatcher raw_matcher, normalized_matcher;
  std::vector<detail::Normalizer> normalizers;
  std::vector<detail::PreTokenizer> pre_tokenizers;
  bool byte_level = false;
  bool has_decoder = false;
  std::vector<detail::DecodeStep> decoder;
  bool decoder_is_byte_level = false;  // exactly [ByteLevel]: the fast path
  std::vector<detail::Template> templates;
  std::optional<std::int32_t> bos, eos;

  // ---- encoding --------------------------------------------------------------------------

  void normalize(std::string& s) const {
    for (const auto& n : normalizers) n.apply(s);
  }

  // models.cpp
  [[noreturn]] void missing_unk(std::string_view piece) const;
  void word_level(std::string_view piece, std::vector<std::int32_t>& out) const;
  /// HF's BPE::merge_word + Word::merge_all.
  void merge_word(std::string_view w, std::vector<std::int32_t>& out) const;
  void bpe_tokenize(std::string_view w, std::vector<std::int32_t>& out) const;
  void model_tokenize(std::string_view piece, std::vector<std::int32_t>& out) const {
    if (bpe)
      bpe_tokenize(piece, out);
    else
      word_level(piece, out);
  }

  // tokenizer.cpp (templates used only there)
  /// HF's AddedVocabulary::find_matches + split: calls on_text(piece, at_start) for the
  /// text between matches and on_added(index) for each added token.
  template <class OnText, class OnAdded>
  void split_added(std::string_view s, bool at_start, const detail::AddedMatcher& matcher,
                   OnText&& on_text, OnAdded&& on_added) const;
  /// Runs pre-tokenizer steps k.. on one piece; the last step's pieces go to `sink`.
  void pre_tokenize_from(std::size_t k, std::string_view text, bool at_start,
                         const detail::PieceSink& sink) const;
  /// The pipeline up to the model on valid UTF-8: calls on_piece(model_input) and
  /// on_added(index) in order.
  template <class OnPiece, class OnAdded>
  void pipeline(std::string_view text, bool at_start, OnPiece&& on_piece,
                OnAdded&& on_added) const;
  /// Splits `text` into valid UTF-8 runs and runs of invalid bytes.
  template <class OnValid, class OnInvalid>
  static void utf8_runs(std::string_view text, OnValid&& on_valid, OnInvalid&& on_invalid);
  /// The whole pipeline up to the model on any bytes (see the header on invalid UTF-8).
  template <class OnPiece, class OnAdded>
  void run(std::string_view text, OnPiece&& on_piece, OnAdded&& on_added) const;

  // ---- decoding ----------------------------------------------------------------------------

  bool known(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < id_known.size() &&
           id_known[static_cast<std::size_t>(id)] != 0;
  }
  bool special(std::int32_t id) const noexcept {
    return known(id) && id_special[static_cast<std::size_t>(id)] != 0;
  }
};

}  // namespace qstar::hf

namespace qstar::hf::detail {

// ---- loading ----------------------------------------------------------------------------------

/// Gives `id` the string `token` (growing the id tables); an id that already has one keeps
/// it unless `overwrite`. (models.cpp)
void set_id(Tokenizer::Core& c, std::int32_t id, const std::string& token, bool overwrite);
/// model.type "BPE" / "WordLevel" into `c`. (models.cpp)
void load_bpe(const Reader& r, const Value& m, Tokenizer::Core& c);
void load_word_level(const Reader& r, const Value& m, Tokenizer::Core& c);
/// The top-level added_tokens array (after the normalizer and the model). (added_tokens.cpp)
void load_added_tokens(const Reader& r, const Value& root, Tokenizer::Core& c);

}  // namespace qstar::hf::detail
