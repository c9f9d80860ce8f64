// A Hugging Face `tokenizers`-compatible tokenizer, loaded from a tokenizer.json, or a
// SentencePiece tokenizer.model read the way transformers' LlamaTokenizer reads it (see
// "SentencePiece" below). Tokenizer::from_dir picks the one a model folder has.
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
// SentencePiece (tokenizer.model; needs a build with libsentencepiece, QSTAR_WITH_SENTENCEPIECE,
// see sentencepiece_available()): the model is run by libsentencepiece itself; around it, the
// slow transformers LlamaTokenizer's rules (the tokenizer a folder with only tokenizer.model
// gets), configured by SentencePieceConfig, which from_dir fills from the folder's
// tokenizer_config.json and special_tokens_map.json:
//  * encode: the text is split on the added tokens (added_tokens_decoder, plus the bos, eos,
//    unk, pad and additional special tokens: leftmost-longest, with each token's lstrip /
//    rstrip / single_word applied to its neighbours as PreTrainedTokenizer.tokenize does),
//    and every other piece is encoded by SentencePiece. legacy true (transformers' default
//    when the file does not say): each piece gets SentencePiece's dummy prefix "▁" (as
//    Llama-2/Mistral's fast tokenizer.json does too); legacy false: only the text's start
//    does (add_prefix_space), as LlamaTokenizer(legacy=False). A piece whose string is an
//    added token's content gets the added token's id. With add_special_tokens: BOS first
//    when add_bos_token (default true), EOS last when add_eos_token (default false).
//  * decode: as the fast tokenizer.json of the same model (Replace "▁" -> " ", ByteFallback,
//    Fuse, Strip one leading space): each id's piece with "▁" as a space, byte pieces
//    (<0x0A>) as their byte (consecutive ones joined; invalid UTF-8 kept as raw bytes, as
//    above), control, unknown and added tokens as their text ("<s>", "<unk>"); then one
//    leading space is removed when the model adds a dummy prefix. skip_special_tokens skips
//    the special tokens (the config's, the added ones marked special, and control pieces).
//    decode(encode(s)) == s for Llama/Mistral-style models (identity normalization, no
//    whitespace folding) and any valid UTF-8 s without "▁" or an added token's text.
//  * token_bytes: the piece with "▁" as a space, a byte piece's byte, an added token's text.
//  * pre_tokenize: the pieces handed to SentencePiece and the added tokens, in order.
//  * kind(): "sentencepiece-bpe", "sentencepiece-unigram", "sentencepiece-word" or
//    "sentencepiece-char"; byte_level() false; cache_size() 0.
// A malformed model is a ParseError naming the file with SentencePiece's status message; a
// file over SentencePieceConfig::max_model_bytes is refused before it is read.
// libsentencepiece is not linked into qstar::hf: it carries its own protobuf, which clashes
// with LibTorch's, so it runs inside the module libqstar_sentencepiece.so (built and
// installed with qstar::hf), loaded on first use in its own symbol scope from
// $QSTAR_SENTENCEPIECE_MODULE, the build tree or the install prefix's lib/.
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

/// One added token of a SentencePiece tokenizer (tokenizer_config.json's
/// added_tokens_decoder entries, in transformers' AddedToken terms).
struct SentencePieceAddedToken {
  std::int32_t id = 0;       // its id (an id past the model's pieces extends the vocabulary)
  std::string content;       // its text, matched in the input before SentencePiece runs
  bool special = false;      // skipped by decode(skip_special_tokens); is_special()
  bool lstrip = false;       // swallows the whitespace on its left
  bool rstrip = false;       // swallows the whitespace on its right
  bool single_word = false;  // only matched when not glued to text on its left/right
};

/// How a SentencePiece tokenizer.model is wrapped: transformers' LlamaTokenizer defaults.
/// SentencePieceConfig::from_dir reads a model folder's tokenizer_config.json and
/// special_tokens_map.json into it (absent files and fields keep the defaults).
struct SentencePieceConfig {
  bool add_bos_token = true;   // encode(add_special_tokens) puts BOS first
  bool add_eos_token = false;  // encode(add_special_tokens) puts EOS last
  bool legacy = true;          // every piece between added tokens gets the dummy prefix
  bool add_prefix_space = true;  // legacy false: "▁" before the text (and stripped on decode)
  std::optional<std::string> bos_token = "<s>";    // nullopt: no BOS
  std::optional<std::string> eos_token = "</s>";   // nullopt: no EOS
  std::optional<std::string> unk_token = "<unk>";  // also the prefix trick of legacy false
  std::optional<std::string> pad_token;            // a special token when set
  std::vector<std::string> additional_special_tokens;  // special, never split
  std::vector<SentencePieceAddedToken> added_tokens;   // added_tokens_decoder
  std::size_t max_model_bytes = std::size_t{64} << 20;   // tokenizer.model size cap (bytes)
  std::size_t max_config_bytes = std::size_t{16} << 20;  // each JSON file's size cap (bytes)

  /// InvalidArgument naming the field: empty token strings, negative or duplicate ids,
  /// zero caps.
  void validate() const;
  /// The defaults overridden by `dir`/tokenizer_config.json and `dir`/special_tokens_map.json
  /// (the fields above; a token given as a string or as {"content": ...}). IoError /
  /// ParseError naming the file.
  static SentencePieceConfig from_dir(const std::string& dir);
};

class Tokenizer {
 public:
  /// Loads a tokenizer.json. Throws IoError (file) or ParseError (contents), naming `path`.
  static Tokenizer from_file(const std::string& path);
  /// Parses tokenizer.json text; `source` names it in error messages.
  static Tokenizer from_json(std::string_view text, std::string_view source = "tokenizer.json");
  /// A model folder's tokenizer: `dir`/tokenizer.json when present, else `dir`/tokenizer.model
  /// with SentencePieceConfig::from_dir(dir). IoError naming the folder when it holds
  /// neither, or when it holds only tokenizer.model and this build lacks libsentencepiece.
  static Tokenizer from_dir(const std::string& dir);
  /// A folder (from_dir), a *.model file (from_sentencepiece_file with the file's folder's
  /// config) or a tokenizer.json file (from_file).
  static Tokenizer from_path(const std::string& path);
  /// Loads a SentencePiece tokenizer.model (size-capped by config.max_model_bytes).
  static Tokenizer from_sentencepiece_file(const std::string& path,
                                           const SentencePieceConfig& config = {});
  /// A serialized SentencePiece ModelProto (the bytes of a tokenizer.model); `source`
  /// names it in error messages. ParseError with SentencePiece's message when malformed.
  static Tokenizer from_sentencepiece(std::string_view model_bytes,
                                      const SentencePieceConfig& config = {},
                                      std::string_view source = "tokenizer.model");
  /// Whether this build reads tokenizer.model files (was built with libsentencepiece).
  static bool sentencepiece_available() noexcept;

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

  /// "bpe" or "wordlevel" (tokenizer.json); "sentencepiece-" + the model type.
  std::string kind() const;
  /// Whether the pre-tokenizer maps bytes to the GPT-2 byte alphabet.
  bool byte_level() const noexcept;
  /// Number of pre-tokens currently in the BPE cache (for tests and tuning).
  std::size_t cache_size() const;
  /// The source name the tokenizer was loaded from (path or `source`).
  const std::string& source() const noexcept;

  struct Core;
  struct Spm;  // the SentencePiece backend (src/hf/tokenizer/sentencepiece.hpp)

 private:
  explicit Tokenizer(std::shared_ptr<const Core> core);
  explicit Tokenizer(std::shared_ptr<const Spm> spm);
  std::shared_ptr<const Core> core_;  // exactly one of core_ and spm_ is set
  std::shared_ptr<const Spm> spm_;
  std::optional<std::int32_t> bos_;
  std::optional<std::int32_t> eos_;
};

}  // namespace qstar::hf
