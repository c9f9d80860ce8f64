// The SentencePiece backend of hf::Tokenizer (tokenizer.model): libsentencepiece runs the
// model; this wraps it in transformers' slow LlamaTokenizer rules (added tokens, dummy
// prefix, BOS/EOS) and the fast tokenizer's decoding. See include/qstar/hf/tokenizer.hpp,
// "SentencePiece". Files:
//   sentencepiece.cpp         loading a model, encode, decode
//   sentencepiece_model.cpp   SpmModel: libsentencepiece through libqstar_sentencepiece
//   sentencepiece_module.cpp  that module (the only file that includes libsentencepiece)
//   sentencepiece_config.cpp  SentencePieceConfig (tokenizer_config.json,
//                             special_tokens_map.json), the ModelProto wire-format reader,
//                             Tokenizer::from_dir / from_path
// Nothing here is installed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "internal.hpp"
#include "qstar/hf/tokenizer.hpp"

namespace qstar::hf {

namespace detail {

/// What a ModelProto says beyond what SentencePieceProcessor exposes (protobuf defaults for
/// absent fields). Read from the wire format by read_spm_proto (sentencepiece_config.cpp).
struct SpmProtoInfo {
  int model_type = 1;                     // TrainerSpec.model_type: 1 unigram, 2 bpe, 3 word, 4 char
  bool add_dummy_prefix = true;           // NormalizerSpec.add_dummy_prefix
  bool remove_extra_whitespaces = true;   // NormalizerSpec.remove_extra_whitespaces
};

/// Reads the fields of SpmProtoInfo from serialized ModelProto bytes; false when the bytes
/// are not well-formed protobuf (nothing is trusted: every length is bounds-checked).
bool read_spm_proto(std::string_view proto, SpmProtoInfo& info);
/// The same ModelProto with NormalizerSpec.add_dummy_prefix set to false (a field appended
/// to the normalizer_spec message; protobuf keeps the last value). Empty when malformed.
std::string spm_proto_without_dummy_prefix(std::string_view proto);

/// A loaded SentencePiece model (sentencepiece_model.cpp). Immutable; thread-safe.
class SpmModel {
 public:
  enum class Type { Normal = 1, Control, Unknown, Byte, Unused };
  /// ParseError naming `source` with SentencePiece's message; IoError when this build or
  /// this installation cannot run SentencePiece.
  static std::shared_ptr<const SpmModel> load(std::string_view bytes, std::string_view source);
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;
  ~SpmModel();
  int size() const;
  std::string_view piece(int id) const;
  Type type(int id) const;
  /// The ids of `text` appended to `out`.
  void encode(std::string_view text, std::vector<std::int32_t>& out) const;

 private:
  SpmModel() = default;
  void* handle_ = nullptr;
  std::string source_;
};

/// Whether libsentencepiece can be used here (built with it, and its module loads).
bool spm_module_available() noexcept;
/// Why not, when it cannot (for error messages).
std::string spm_unavailable_reason();

/// Python's str.isspace() for the code point starting at s[i] (valid UTF-8): its byte
/// length, 0 when it is not whitespace.
std::size_t py_space_at(std::string_view s, std::size_t i) noexcept;
/// Python's str.lstrip() / str.rstrip() on valid UTF-8.
std::string py_lstrip(std::string_view s);
std::string py_rstrip(std::string_view s);

}  // namespace detail

struct Tokenizer::Spm {
  /// What an id stands for.
  enum class Kind : std::uint8_t { None, Normal, Control, Unknown, Byte, Unused, Added };

  std::string source;
  std::string model_type;  // "bpe", "unigram", "word", "char"
  detail::SpmProtoInfo info;
  // The model as given, and (legacy false) without the dummy prefix.
  std::shared_ptr<const detail::SpmModel> sp, sp_plain;
  std::int32_t n_pieces = 0;

  std::vector<std::string> id_token;  // by id: the piece, or an added token's content
  std::vector<Kind> id_kind;
  std::vector<std::uint8_t> id_byte;     // Kind::Byte: the byte
  std::vector<std::uint8_t> id_special;  // 1: special (skip_special_tokens)
  detail::Vocab pieces;                  // piece -> id (the model's)
  detail::Vocab added_ids;               // added token content -> id
  // Added tokens (the config's added_tokens and special tokens), matched before the model.
  std::vector<detail::AddedToken> added;
  detail::AddedMatcher matcher;
  std::unordered_map<std::string, std::size_t, detail::SvHash, std::equal_to<>> added_index;
  std::unordered_map<std::int32_t, std::int32_t> remap;  // model id -> added id, same string
  std::vector<std::string> map_specials;  // bos/eos/unk/pad/additional: all_special_tokens

  std::optional<std::int32_t> bos, eos;
  bool add_bos = true, add_eos = false, legacy = true, add_prefix_space = true;
  bool strip_leading_space = true;  // decode drops one leading space
  std::string unk_token;            // legacy false: the "<unk>" + text trick
  std::size_t unk_token_length = 0;
  std::int32_t space_piece = -1;    // the id of "▁", -1 when none

  Spm();
  ~Spm();

  bool known(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < id_kind.size() &&
           id_kind[static_cast<std::size_t>(id)] != Kind::None;
  }
  bool special(std::int32_t id) const noexcept {
    return known(id) && id_special[static_cast<std::size_t>(id)] != 0;
  }

  /// The text split on the added tokens, with lstrip/rstrip/single_word applied as
  /// PreTrainedTokenizer.tokenize does: (string, whether it is an added token) in order.
  std::vector<std::pair<std::string, bool>> split(std::string_view text) const;
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const;
  std::vector<std::string> pre_tokenize(std::string_view text) const;
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const;
  std::string token_bytes(std::int32_t id) const;
  std::optional<std::int32_t> token_to_id(std::string_view token) const;

 private:
  /// The prepared text (invalid UTF-8 as U+FFFD; legacy false: "▁" prefix) and its pieces.
  std::vector<std::pair<std::string, bool>> prepare_and_split(std::string_view text) const;
  /// One text piece through SentencePiece (LlamaTokenizer._tokenize), ids appended.
  void model_encode(const std::string& piece, std::vector<std::int32_t>& out) const;
  void append_surface(std::int32_t id, std::string& out) const;
};

/// Loads serialized ModelProto bytes (sentencepiece.cpp).
std::shared_ptr<const Tokenizer::Spm> load_sentencepiece(std::string_view model_bytes,
                                                         const SentencePieceConfig& config,
                                                         std::string_view source);

}  // namespace qstar::hf
