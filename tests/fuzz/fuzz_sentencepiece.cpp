// libFuzzer target: the SentencePiece tokenizer.model backend (include/qstar/hf/tokenizer.hpp,
// "SentencePiece"; src/hf/tokenizer/sentencepiece*.cpp) over libsentencepiece. No LibTorch.
//
// Input, by its first byte b:
//  * b % 4 == 0: the rest is "<model bytes>" or "<model bytes>\0\0<text>": a serialized
//    ModelProto loaded with Tokenizer::from_sentencepiece (legacy false when b & 4, else
//    true), then the text and a few fixed ones encoded with and
//    without special tokens, decoded (with and without skipping special tokens),
//    pre-tokenized, and every id looked up. Oracles: only qstar::Error escapes; the ids of
//    encode all have a token.
//  * otherwise: the rest is a text for a Llama-style BPE model trained at start-up
//    (identity normalization, byte_fallback, added tokens <step> (lstrip, rstrip) and
//    <w> (single_word)), legacy true (b % 4 == 1), legacy false (2), or legacy true with
//    add_eos_token (3). Oracles: decode(encode(s)) == s for valid UTF-8 without "▁" and
//    without an added or special token's text; token_bytes concatenate to " " + s; every
//    id has a token; BOS/EOS with add_special_tokens.
// The seed corpus holds one such trained model (model_bpe) and texts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sentencepiece_trainer.h>

#include "fuzz_common.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/tokenizer.hpp"

using qstar::hf::SentencePieceConfig;
using qstar::hf::Tokenizer;
using qstar_fuzz::shown;
using Ids = std::vector<std::int32_t>;

namespace {

class VecIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VecIterator(const std::vector<std::string>& v) : v_(v) {}
  bool done() const override { return i_ >= v_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return v_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& v_;
  std::size_t i_ = 0;
};

std::string train_model() {
  std::vector<std::string> corpus;
  const char* words[] = {"the", "cat", "sat", "on", "mat", "24", "+", "=", "naïve", "日本", "step"};
  for (int i = 0; i < 400; ++i) {
    std::string s;
    for (int k = 0; k < 1 + i % 7; ++k) {
      s += words[(i * 7 + k * 3) % 11];
      s += k % 3 ? " " : "  ";
    }
    corpus.push_back(s);
  }
  VecIterator it(corpus);
  std::string model;
  const auto st = sentencepiece::SentencePieceTrainer::Train(
      "--model_type=bpe --vocab_size=320 --byte_fallback=true --normalization_rule_name=identity "
      "--remove_extra_whitespaces=false --split_digits=true --hard_vocab_limit=false "
      "--allow_whitespace_only_pieces=true --minloglevel=2 --num_threads=1",
      &it, &model);
  FUZZ_CHECK(st.ok(), "training failed: %s", st.ToString().c_str());
  return model;
}

struct Builtin {
  std::vector<Tokenizer> toks;
  Builtin() {
    const std::string model = train_model();
    for (int mode = 1; mode <= 3; ++mode) {
      SentencePieceConfig c;
      c.legacy = mode != 2;
      c.add_eos_token = mode == 3;
      c.added_tokens = {{400, "<step>", false, true, true, false}, {401, "<w>", false, false, false, true}};
      toks.push_back(Tokenizer::from_sentencepiece(model, c, "builtin.model"));
    }
  }
};

const Builtin& builtin() {
  static const Builtin b;
  return b;
}

void exercise(const Tokenizer& t, std::string_view text) {
  for (const bool special : {false, true}) {
    const Ids ids = t.encode(text, special);
    for (const auto id : ids) {
      FUZZ_CHECK(t.has_id(id), "encode gave id %d without a token for '%s'", id, shown(text).c_str());
      (void)t.id_to_token(id);
      (void)t.token_bytes(id);
    }
    (void)t.decode(ids, false);
    (void)t.decode(ids, true);
  }
  (void)t.pre_tokenize(text);
  (void)t.token_to_id(text);
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = p[i] < 0x80 ? 1 : qstar::json::detail::utf8_length(p + i, p + s.size());
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void run_builtin(int mode, std::string_view text) {
  const Tokenizer& t = builtin().toks[static_cast<std::size_t>(mode - 1)];
  exercise(t, text);
  const Ids ids = t.encode(text);
  const Ids with = t.encode(text, true);
  FUZZ_CHECK(!with.empty() && with.front() == 1, "no BOS first");
  if (mode == 3) FUZZ_CHECK(with.back() == 2, "no EOS last");
  for (const char* tok : {"\xE2\x96\x81", "<step>", "<w>", "<s>", "</s>", "<unk>"})
    if (text.find(tok) != std::string_view::npos) return;
  if (!valid_utf8(text)) return;
  FUZZ_CHECK(t.decode(ids) == text, "round trip of '%s' gave '%s'", shown(text).c_str(),
             shown(t.decode(ids)).c_str());
  std::string joined;
  for (const auto id : ids) joined += t.token_bytes(id);
  FUZZ_CHECK(joined == (text.empty() ? std::string() : " " + std::string(text)),
             "token_bytes of '%s' join to '%s'", shown(text).c_str(), shown(joined).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (size > 16384) return -1;
  const std::string_view in = qstar_fuzz::as_view(data, size);
  const auto b = static_cast<unsigned char>(in[0]);
  if (b % 4 != 0) {
    run_builtin(b % 4, in.substr(1));
    return 0;
  }
  const std::string_view rest = in.substr(1);
  const auto sep = rest.find(std::string_view("\0\0", 2));
  const std::string_view model = rest.substr(0, sep);
  const std::string_view text = sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 2);
  SentencePieceConfig c;
  c.legacy = (b & 4) == 0;
  c.max_model_bytes = 1 << 16;
  try {
    const Tokenizer t = Tokenizer::from_sentencepiece(model, c, "fuzz.model");
    exercise(t, text);
    for (const char* s : {"Hello world", " a\n\tb  ", "<s>x</s><unk>", "日本語 😀", "\xff\xfe"}) exercise(t, s);
  } catch (const qstar::Error&) {
  }
  return 0;
}
