// A Hugging Face `tokenizers`-compatible tokenizer, loaded from a tokenizer.json.
//
// No LibTorch here (and none in the implementation): the tokenizer is plain C++ on top of
// PCRE2 (pre-tokenizer regexes, UTF + UCP, JIT when available) and utf8proc (Unicode
// normalisation). The pipeline is HF's, step for step:
//
//   text -> added tokens (non-normalized ones, in the raw text) -> normalizer
//        -> added tokens (normalized ones, in the normalized text) -> pre-tokenizer
//        -> model (BPE / WordLevel) -> post-processor (only with add_special_tokens)
//   ids  -> tokens (added vocabulary first, then the model's) -> decoder -> bytes
//
// Supported tokenizer.json contents (anything else is rejected with a qstar::ParseError
// that names the source and the field, e.g. `tokenizer.json: normalizer.type "Foo" is not
// supported`):
//
//  * model:
//    - "BPE": vocab, merges as ["a b", ...] (a "#version" line is skipped) or as
//      [["a","b"], ...]; rank = merge order; unk_token, fuse_unk, byte_fallback
//      ("<0xXX>" tokens), continuing_subword_prefix, end_of_word_suffix, ignore_merges (a
//      pre-token that is itself in the vocab is emitted whole, as Llama-3 asks). dropout
//      must be null or 0. As in HF, a character that is not in the vocab becomes unk_token
//      when there is one and is dropped otherwise. The merge loop is HF's (a priority queue
//      over (rank, position)), and results are cached per pre-token (pre-tokens of at most
//      256 bytes, at most 20000 of them; the cache is emptied when full).
//    - "WordLevel": vocab + unk_token. A pre-token not in the vocab becomes unk_token; when
//      unk_token is not in the vocab, encode throws InvalidArgument (as HF errors).
//    - A model without "type" is inferred as HF does: "merges" -> BPE, else WordLevel.
//  * normalizer: null, "NFC", "NFD", "NFKC", "NFKD" (utf8proc), "Lowercase" (simple
//    per-code-point lowercase; HF's full lowercase differs only for a few special cases such
//    as U+0130), "Replace" (String or Regex pattern), "Prepend", "Strip", "Sequence".
//  * pre_tokenizer: null, "ByteLevel" (add_prefix_space, use_regex = the GPT-2 pattern,
//    then the GPT-2 byte-to-unicode mapping), "Split" (pattern {"String": s} or
//    {"Regex": r}; behavior "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
//    "Contiguous"; invert), "Whitespace" (\w+|[^\w\s]+ with HF's Unicode \w),
//    "WhitespaceSplit", "Digits" (individual_digits), "Punctuation", "Metaspace"
//    (replacement, prepend_scheme / add_prefix_space, split), "Sequence". Regexes are
//    compiled by PCRE2 with UTF|UCP|MULTILINE (JIT when available); the GPT-2, Llama-3 and
//    Qwen2 patterns split exactly as HF's Oniguruma does (checked against Python `regex` on
//    thousands of texts). Two differences remain for hand-written patterns: inline option
//    letters are PCRE2's ((?s) for dot-all, where Oniguruma spells it (?m)), and character
//    properties come from PCRE2's Unicode tables (Unicode 14 in PCRE2 10.42), so a code
//    point assigned later (e.g. U+14118) is not \p{L} here. A Split {"String": ""} matches
//    nothing (as in HF).
//  * added_tokens: matched before anything else, leftmost then longest, never split.
//    `normalized: false` tokens are matched in the raw text, `normalized: true` ones in the
//    normalized text (their content normalized too, as HF does). `lstrip`/`rstrip` swallow
//    the Unicode whitespace to the left/right of the match, `single_word` requires the match
//    not to touch a word character (letter, mark, number, connector punctuation) on either
//    side, `special` marks the token as special (is_special, skip_special_tokens). A token's
//    id is its vocab id when its content is in the model vocab, else the file's "id".
//  * post_processor: null, "ByteLevel" (adds nothing), "TemplateProcessing" (the `single`
//    template, objects or "$A"/"<s>:0" strings, with its special_tokens table),
//    "BertProcessing", "RobertaProcessing", "Sequence". Only applied when
//    add_special_tokens is true.
//  * decoder: null, "ByteLevel", "ByteFallback", "Fuse", "Strip", "Replace", "Metaspace",
//    "Sequence". As in HF, a null decoder joins the tokens with a single space; otherwise
//    the decoder's pieces are concatenated.
//  * "truncation", "padding" and added tokens' "encode special tokens" mode are ignored.
//
// Character vocabularies (the project's own tiny models): use a WordLevel model whose
// pre_tokenizer isolates every code point and whose decoder fuses the tokens:
//
//   "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"},
//                     "behavior": "Isolated", "invert": false},
//   "decoder": {"type": "Fuse"},
//   "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1, ...}, "unk_token": "<unk>"}
//
// ("." would not match "\n".) decode then concatenates the tokens exactly. A word
// vocabulary uses "WhitespaceSplit" (or "Whitespace") with decoder null, and decode joins
// the words with single spaces, exactly as HF does.
//
// Exactness:
//  * decode returns exact bytes: where HF would turn an invalid UTF-8 sequence into U+FFFD
//    (ByteLevel, ByteFallback), the raw bytes are kept, so decoding a prefix of a sequence
//    may end in a partial UTF-8 character. For byte-level BPE, decode(encode(s)) == s for
//    every valid UTF-8 s (== NFC(s) when the file asks for NFC), except where the file
//    itself changes the text: ByteLevel add_prefix_space adds a leading space, and an
//    lstrip/rstrip added token swallows the whitespace beside it (both as in HF).
//  * encode accepts any bytes. HF needs valid UTF-8; here each maximal run of invalid bytes
//    is its own pre-token: byte-mapped and BPE-encoded when the pre-tokenizer is byte-level
//    (so the round trip holds for arbitrary bytes), otherwise each invalid byte is replaced
//    by U+FFFD.
//  * decode and token_bytes skip ids that have no token (HF skips them too), so the padded
//    rows of a model's embedding never crash decoding; id_to_token throws for them.
//
// Thread safety: every const member function may be called concurrently (the BPE cache is
// internally locked). Copies share the immutable tables and the cache; bos/eos overrides
// are per object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qstar::hf {

class Tokenizer {
 public:
  /// Loads a tokenizer.json. Throws IoError (file) or ParseError (contents), naming `path`.
  static Tokenizer from_file(const std::string& path);
  /// Parses tokenizer.json text; `source` names it in error messages.
  static Tokenizer from_json(std::string_view text, std::string_view source = "tokenizer.json");

  Tokenizer(const Tokenizer&) = default;
  Tokenizer(Tokenizer&&) noexcept = default;
  Tokenizer& operator=(const Tokenizer&) = default;
  Tokenizer& operator=(Tokenizer&&) noexcept = default;
  ~Tokenizer();

  /// Token ids of `text`. With add_special_tokens the post-processor's template is applied
  /// (e.g. Llama-3's BOS); without it (the default) only the text's own tokens come out.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  /// The text of `ids`, exact bytes (see above). Ids without a token are skipped.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const;
  /// The bytes one token contributes in the middle of a decoded sequence: the decoder's
  /// per-token steps (ByteLevel, ByteFallback, Replace, Metaspace's replacement) applied,
  /// position-dependent ones (Strip, Metaspace's first-token rule, a null decoder's space
  /// separator) not. For byte-level BPE this may be a partial UTF-8 sequence. "" for an
  /// id without a token.
  std::string token_bytes(std::int32_t id) const;

  /// Pre-tokens of `text` as the model sees them (normalized, pre-tokenized; byte-level
  /// mapped when the pre-tokenizer is byte-level, e.g. " world" -> "Ġworld"). Added tokens
  /// come out as their content. For tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  /// The id of a vocab string (added tokens first, then the model's vocab).
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  /// The vocab string of `id` (byte-level tokens in their mapped form, e.g. "Ġworld").
  /// Throws InvalidArgument for an id without a token.
  std::string id_to_token(std::int32_t id) const;
  /// Whether `id` has a token (in the model vocab or the added tokens).
  bool has_id(std::int32_t id) const noexcept;
  /// Max id + 1 over the vocab and the added tokens.
  std::size_t vocab_size() const noexcept;
  /// Whether `id` is an added token marked special.
  bool is_special(std::int32_t id) const noexcept;
  /// All special added tokens' ids, ascending.
  std::vector<std::int32_t> special_ids() const;

  /// BOS: the special token just before $A in the post-processor's single template (e.g.
  /// Llama-3's <|begin_of_text|>, BERT's [CLS]), else an added token or vocab entry named
  /// <|begin_of_text|>, <s>, <bos>, <|startoftext|> or <BOS>, else nullopt.
  std::optional<std::int32_t> bos_id() const noexcept;
  /// EOS: the special token just after $A in the single template, else the first of
  /// <|end_of_text|>, <|endoftext|>, </s>, <eos>, <|eos|>, <EOS> present, else nullopt.
  /// (Chat models often stop at another token, e.g. <|eot_id|> or <|im_end|>: the model's
  /// generation config knows; set it with set_eos_id.)
  std::optional<std::int32_t> eos_id() const noexcept;
  void set_bos_id(std::optional<std::int32_t> id);
  void set_eos_id(std::optional<std::int32_t> id);

  /// "bpe" or "wordlevel".
  std::string kind() const;
  /// Whether the pre-tokenizer maps bytes to the GPT-2 byte alphabet.
  bool byte_level() const noexcept;
  /// Number of pre-tokens currently in the BPE cache (for tests and tuning).
  std::size_t cache_size() const;
  /// The source name the tokenizer was loaded from (path or `source`).
  const std::string& source() const noexcept;

  struct Core;

 private:
  explicit Tokenizer(std::shared_ptr<const Core> core);
  std::shared_ptr<const Core> core_;
  std::optional<std::int32_t> bos_;
  std::optional<std::int32_t> eos_;
};

}  // namespace qstar::hf
