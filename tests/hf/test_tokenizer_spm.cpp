// SentencePiece tokenizer.model (include/qstar/hf/tokenizer.hpp, "SentencePiece";
// src/hf/tokenizer/sentencepiece*.cpp) and the folder loader Tokenizer::from_dir.
//
// Models are trained here, in the test, by libsentencepiece's own trainer (Llama-style:
// identity normalization, no whitespace folding, byte_fallback, split digits), BPE and
// unigram. Oracles: SentencePieceProcessor's ids for the same text (the model itself), the
// round trip decode(encode(s)) == s that the header promises, and the LlamaTokenizer rules
// written out per case (e.g. "a<s>b" is the pieces of "a", BOS, the pieces of "b").
// tests/python/test_tokenizer_spm_parity.py compares against Python's sentencepiece and a
// real Llama-2 tokenizer.model. Without libsentencepiece only the error paths are tested.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/hf/model_io.hpp"
#include "qstar/hf/tokenizer.hpp"

#ifdef QSTAR_HAS_SENTENCEPIECE
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#endif

namespace fs = std::filesystem;
using qstar::hf::SentencePieceAddedToken;
using qstar::hf::SentencePieceConfig;
using qstar::hf::Tokenizer;
using Ids = std::vector<std::int32_t>;

namespace {

struct Dir {
  fs::path path;
  explicit Dir(const std::string& tag) {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("qstar_spm_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path / name, std::ios::binary) << bytes;
  }
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const qstar::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("sentencepiece: from_dir wants tokenizer.json or tokenizer.model, naming the folder") {
  Dir d("dir");
  const std::string none = error_of([&] { (void)Tokenizer::from_dir(d.str()); });
  CHECK(none.find(d.str()) != std::string::npos);
  CHECK(none.find("neither tokenizer.json nor tokenizer.model") != std::string::npos);
  const std::string not_dir = error_of([&] { (void)Tokenizer::from_dir((d.path / "nope").string()); });
  CHECK(not_dir.find("not a directory") != std::string::npos);
  // tokenizer.json wins when both are there.
  d.write("tokenizer.model", "not a model");
  d.write("tokenizer.json", qstar::hf::char_tokenizer_json("ab"));
  CHECK(Tokenizer::from_dir(d.str()).kind() == "wordlevel");
  CHECK(Tokenizer::from_path(d.str()).kind() == "wordlevel");
  CHECK(Tokenizer::from_path((d.path / "tokenizer.json").string()).kind() == "wordlevel");
  fs::remove(d.path / "tokenizer.json");
  const std::string bad = error_of([&] { (void)Tokenizer::from_dir(d.str()); });
  if (Tokenizer::sentencepiece_available()) {
    CHECK(bad.find((d.path / "tokenizer.model").string()) != std::string::npos);
    CHECK(bad.find("not a SentencePiece model") != std::string::npos);
  } else {
    CHECK(bad.find(d.str()) != std::string::npos);
    CHECK(bad.find("built without libsentencepiece") != std::string::npos);
  }
}

TEST_CASE("sentencepiece: SentencePieceConfig.validate names the field") {
  SentencePieceConfig c;
  c.bos_token = "";
  CHECK(error_of([&] { c.validate(); }).find("SentencePieceConfig.bos_token") != std::string::npos);
  c = {};
  c.added_tokens = {{5, "<a>"}, {5, "<b>"}};
  CHECK(error_of([&] { c.validate(); }).find("id 5 given twice") != std::string::npos);
  c = {};
  c.added_tokens = {{-1, "<a>"}};
  CHECK(error_of([&] { c.validate(); }).find("SentencePieceConfig.added_tokens") != std::string::npos);
  c = {};
  c.max_model_bytes = 0;
  CHECK(error_of([&] { c.validate(); }).find("max_model_bytes") != std::string::npos);
}

TEST_CASE("sentencepiece: tokenizer_config.json and special_tokens_map.json") {
  Dir d("cfg");
  d.write("tokenizer_config.json", R"({
    "add_bos_token": false, "add_eos_token": true, "legacy": null,
    "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
    "eos_token": "</s>", "pad_token": null, "unk_token": "<unk>",
    "added_tokens_decoder": {
      "32000": {"content": "<step>", "lstrip": true, "rstrip": true, "single_word": false,
                "normalized": false, "special": false}},
    "additional_special_tokens": ["<x>"]})");
  d.write("special_tokens_map.json", R"({"eos_token": {"content": "<eos>"}, "additional_special_tokens": []})");
  const SentencePieceConfig c = SentencePieceConfig::from_dir(d.str());
  CHECK_FALSE(c.add_bos_token);
  CHECK(c.add_eos_token);
  CHECK(c.legacy);  // null: transformers' default
  CHECK(c.bos_token == "<s>");
  CHECK(c.eos_token == "<eos>");  // special_tokens_map.json wins
  CHECK_FALSE(c.pad_token.has_value());
  CHECK(c.additional_special_tokens.empty());
  REQUIRE(c.added_tokens.size() == 1);
  CHECK(c.added_tokens[0].id == 32000);
  CHECK(c.added_tokens[0].content == "<step>");
  CHECK(c.added_tokens[0].lstrip);
  CHECK(c.added_tokens[0].rstrip);
  CHECK_FALSE(c.added_tokens[0].special);
  // Malformed fields: ParseError naming the file and the field.
  d.write("tokenizer_config.json", R"({"added_tokens_decoder": {"x1": {"content": "a"}}})");
  auto e = error_of([&] { (void)SentencePieceConfig::from_dir(d.str()); });
  CHECK(e.find("tokenizer_config.json") != std::string::npos);
  CHECK(e.find("added_tokens_decoder.x1") != std::string::npos);
  d.write("tokenizer_config.json", R"({"add_bos_token": "yes"})");
  CHECK(error_of([&] { (void)SentencePieceConfig::from_dir(d.str()); }).find("add_bos_token") != std::string::npos);
  d.write("tokenizer_config.json", R"({"bos_token": 3})");
  CHECK(error_of([&] { (void)SentencePieceConfig::from_dir(d.str()); }).find("bos_token") != std::string::npos);
  d.write("tokenizer_config.json", "[1]");
  CHECK(error_of([&] { (void)SentencePieceConfig::from_dir(d.str()); }).find("expected a JSON object") !=
        std::string::npos);
  fs::remove(d.path / "tokenizer_config.json");
  fs::remove(d.path / "special_tokens_map.json");
  const SentencePieceConfig dflt = SentencePieceConfig::from_dir(d.str());  // no files: defaults
  CHECK(dflt.add_bos_token);
  CHECK_FALSE(dflt.add_eos_token);
  CHECK(dflt.eos_token == "</s>");
}

#ifdef QSTAR_HAS_SENTENCEPIECE

namespace {

Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// Texts over ASCII words, digits, punctuation, accents, CJK, emoji, newlines, tabs and runs
/// of spaces (leading and trailing too).
std::vector<std::string> texts(unsigned seed, std::size_t n) {
  static const std::vector<std::string> atoms = {
      "the", "cat", "sat", "on", "mat", "hello", "world", "step", "answer", "24", "3.14", "1000",
      "+", "-", "*", "/", "=", "(", ")", ",", ".", "?", "!", "é", "ü", "naïve", "日本", "語",
      "😀", "🧮", "\n", "\n\n", "\t", " ", "  ", "ß", "Ω", "x", "y", "z", "'s", "42", "0"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string s;
    const int len = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < len; ++k) {
      s += atoms[rng() % atoms.size()];
      if (rng() % 3 != 0) s += ' ';
    }
    if (rng() % 4 == 0) s.insert(0, " ");
    out.push_back(s);
  }
  return out;
}

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

/// A tiny Llama-style model (bos 1, eos 2, unk 0), serialized.
std::string train(const std::string& type) {
  std::vector<std::string> corpus;
  for (const std::string& t : texts(7, 3000)) {  // one sentence per line, as spm_train reads
    std::size_t a = 0;
    for (std::size_t b = 0; b <= t.size(); ++b)
      if (b == t.size() || t[b] == '\n') {
        if (b > a) corpus.push_back(t.substr(a, b - a));
        a = b + 1;
      }
  }
  std::string model;
  const std::string args =
      "--model_type=" + type +
      " --vocab_size=400 --byte_fallback=true --split_digits=true --normalization_rule_name=identity"
      " --remove_extra_whitespaces=false --add_dummy_prefix=true --character_coverage=0.99"
      " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --hard_vocab_limit=false --minloglevel=2"
      " --allow_whitespace_only_pieces=true --num_threads=1";
  VecIterator it(corpus);
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  return model;
}

const std::string& model_of(const std::string& type) {
  static const std::string bpe = train("bpe"), unigram = train("unigram");
  return type == "bpe" ? bpe : unigram;
}

Ids sp_ids(const sentencepiece::SentencePieceProcessor& sp, const std::string& s) {
  std::vector<int> v;
  REQUIRE(sp.Encode(s, &v).ok());
  return Ids(v.begin(), v.end());
}

}  // namespace

TEST_CASE("sentencepiece: encode is the model's own ids; decode round-trips bytes and spaces") {
  for (const std::string type : {"bpe", "unigram"}) {
    CAPTURE(type);
    const std::string& bytes = model_of(type);
    sentencepiece::SentencePieceProcessor sp;
    REQUIRE(sp.LoadFromSerializedProto(bytes).ok());
    const Tokenizer tok = Tokenizer::from_sentencepiece(bytes);
    CHECK(tok.kind() == "sentencepiece-" + type);
    CHECK_FALSE(tok.byte_level());
    CHECK(tok.vocab_size() == static_cast<std::size_t>(sp.GetPieceSize()));
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    CHECK(tok.special_ids() == Ids{0, 1, 2});
    std::size_t byte_tokens = 0;
    for (const std::string& s : texts(11, 300)) {
      CAPTURE(s);
      const Ids ids = tok.encode(s);
      REQUIRE(ids == sp_ids(sp, s));
      CHECK(tok.decode(ids) == s);
      CHECK(tok.decode(ids) == sp.DecodeIds(std::vector<int>(ids.begin(), ids.end())));
      std::string joined;
      for (const auto id : ids) {
        joined += tok.token_bytes(id);
        if (sp.IsByte(id)) ++byte_tokens;
      }
      CHECK(joined == (s.empty() ? "" : " " + s));  // the dummy prefix, then the text
      CHECK(tok.encode(s, true) == cat({{1}, ids}));  // add_bos_token, no add_eos_token
    }
    CHECK(byte_tokens > 0);
    // "\n" is never in a training sentence: it is the byte piece <0x0A>.
    const auto nl = tok.token_to_id("<0x0A>");
    REQUIRE(nl.has_value());
    CHECK(tok.token_bytes(*nl) == "\n");
    CHECK(tok.id_to_token(*nl) == "<0x0A>");
    const Ids ab = tok.encode("a\nb");
    CHECK(std::find(ab.begin(), ab.end(), *nl) != ab.end());
    CHECK(tok.decode(ab) == "a\nb");
    // Emoji outside the vocabulary: its four UTF-8 bytes, decoded back exactly.
    CHECK(tok.decode(tok.encode("🦜 x")) == "🦜 x");
    // Invalid UTF-8 is read as U+FFFD, as a Python str would hold it.
    CHECK(tok.encode("a\xff") == tok.encode("a\xEF\xBF\xBD"));
    CHECK(tok.encode("").empty());
    CHECK(tok.decode(Ids{}).empty());
    CHECK_FALSE(tok.has_id(-1));
    CHECK_FALSE(tok.has_id(static_cast<std::int32_t>(tok.vocab_size())));
    CHECK(tok.decode(Ids{-5, 1 << 20}).empty());
    CHECK(error_of([&] { (void)tok.id_to_token(1 << 20); }).find("has no token") != std::string::npos);
  }
}

TEST_CASE("sentencepiece: special tokens, BOS/EOS and added tokens as LlamaTokenizer") {
  const std::string& bytes = model_of("bpe");
  sentencepiece::SentencePieceProcessor sp;
  REQUIRE(sp.LoadFromSerializedProto(bytes).ok());
  const Tokenizer tok = Tokenizer::from_sentencepiece(bytes);
  // Special tokens in the text are matched; each piece around them gets the dummy prefix.
  CHECK(tok.encode("a<s>b") == cat({sp_ids(sp, "a"), {1}, sp_ids(sp, "b")}));
  CHECK(tok.encode("x </s> y<unk>") == cat({sp_ids(sp, "x "), {2}, sp_ids(sp, " y"), {0}}));
  CHECK(tok.pre_tokenize("x </s> y") == std::vector<std::string>{"x ", "</s>", " y"});
  const Ids with = tok.encode("hi</s>", true);
  CHECK(with == cat({{1}, sp_ids(sp, "hi"), {2}}));
  CHECK(tok.decode(with) == "<s> hi</s>");  // as the fast tokenizer decodes it
  CHECK(tok.decode(with, true) == "hi");
  CHECK(tok.is_special(1));
  CHECK_FALSE(tok.is_special(5));

  SentencePieceConfig c;
  c.add_bos_token = false;
  c.add_eos_token = true;
  const auto n = static_cast<std::int32_t>(sp.GetPieceSize());
  c.added_tokens = {{n + 1, "<step>", false, true, true, false}, {n, "<pad>", true}};
  c.pad_token = "<pad>";
  const Tokenizer t2 = Tokenizer::from_sentencepiece(bytes, c, "mine.model");
  CHECK(t2.source() == "mine.model");
  CHECK(t2.vocab_size() == static_cast<std::size_t>(n) + 2);
  CHECK(t2.encode("hi", true) == cat({sp_ids(sp, "hi"), {2}}));
  // <step> strips the whitespace on both sides (lstrip/rstrip), and is not special.
  CHECK(t2.encode("x  \t<step> \n y") == cat({sp_ids(sp, "x"), {n + 1}, sp_ids(sp, "y")}));
  CHECK(t2.decode(Ids{n + 1}) == "<step>");
  CHECK_FALSE(t2.is_special(n + 1));
  CHECK(t2.is_special(n));
  CHECK(t2.token_to_id("<pad>") == n);
  CHECK(t2.id_to_token(n + 1) == "<step>");
  CHECK(t2.decode(Ids{n, 1, n + 1}, true) == "<step>");
  // A special token the model and the config lack gets the next id, as add_tokens does.
  SentencePieceConfig c3;
  c3.additional_special_tokens = {"<|im_end|>"};
  const Tokenizer t3 = Tokenizer::from_sentencepiece(bytes, c3);
  CHECK(t3.token_to_id("<|im_end|>") == n);
  CHECK(t3.encode("a<|im_end|>") == cat({sp_ids(sp, "a"), {n}}));
  // No BOS.
  SentencePieceConfig c4;
  c4.bos_token.reset();
  CHECK(Tokenizer::from_sentencepiece(bytes, c4).encode("hi", true) == sp_ids(sp, "hi"));
  // single_word: not matched inside a word (glued back to the text).
  SentencePieceConfig c5;
  c5.added_tokens = {{n, "<w>", false, false, false, true}};
  const Tokenizer t5 = Tokenizer::from_sentencepiece(bytes, c5);
  CHECK(t5.encode("the <w> sat") == cat({sp_ids(sp, "the "), {n}, sp_ids(sp, " sat")}));
  CHECK(t5.encode("the<w> sat") == cat({sp_ids(sp, "the<w>"), sp_ids(sp, " sat")}));
  CHECK(t5.encode("the <w>sat") == cat({sp_ids(sp, "the "), sp_ids(sp, "<w>sat")}));
  // A model piece with an added token's text gets the added id (the slow tokenizer maps
  // pieces to ids through its added vocabulary first): "cat" inside "thecat".
  const int cat_piece = sp.PieceToId("cat");
  REQUIRE(sp.IdToPiece(cat_piece) == "cat");
  c5.added_tokens = {{n, "cat", false, false, false, true}};
  Ids want = cat({sp_ids(sp, "thecat"), sp_ids(sp, " sat")});
  REQUIRE(std::find(want.begin(), want.end(), cat_piece) != want.end());
  std::replace(want.begin(), want.end(), static_cast<std::int32_t>(cat_piece), n);
  CHECK(Tokenizer::from_sentencepiece(bytes, c5).encode("thecat sat") == want);
}

TEST_CASE("sentencepiece: legacy false gives only the text's start the dummy prefix") {
  const std::string& bytes = model_of("bpe");
  sentencepiece::SentencePieceProcessor sp;
  REQUIRE(sp.LoadFromSerializedProto(bytes).ok());
  SentencePieceConfig c;
  c.legacy = false;
  const Tokenizer t = Tokenizer::from_sentencepiece(bytes, c);
  const Tokenizer legacy = Tokenizer::from_sentencepiece(bytes);
  for (const std::string& s : texts(5, 100)) {
    CAPTURE(s);
    CHECK(t.encode(s) == legacy.encode(s));  // no added token: the same pieces
    CHECK(t.decode(t.encode(s)) == s);
  }
  // After a special token, " b" is "▁b" (legacy: the dummy prefix too, "▁▁b").
  CHECK(t.encode("a</s> b") == cat({sp_ids(sp, "a"), {2}, sp_ids(sp, "b")}));
  CHECK(legacy.encode("a</s> b") == cat({sp_ids(sp, "a"), {2}, sp_ids(sp, " b")}));
  // ... and "b" right after it has no "▁" at all.
  const Ids glued = t.encode("a</s>bb");
  const auto eos_at = std::find(glued.begin(), glued.end(), 2);
  REQUIRE(eos_at + 1 < glued.end());
  for (auto it = eos_at + 1; it != glued.end(); ++it) CHECK(t.id_to_token(*it).find("\xE2\x96\x81") == std::string::npos);
  CHECK(t.decode(glued) == "a</s>bb");
  // A text that starts with a special token keeps no lone "▁" before it.
  CHECK(t.encode("</s>a").front() == 2);
}

TEST_CASE("sentencepiece: malformed and oversized models are ParseErrors naming the file") {
  Dir d("bad");
  d.write("tokenizer.model", std::string("\x0a\x05garbage-after", 15));
  auto e = error_of([&] { (void)Tokenizer::from_dir(d.str()); });
  CHECK(e.find((d.path / "tokenizer.model").string()) != std::string::npos);
  CHECK(e.find("not a SentencePiece model") != std::string::npos);
  const std::string& good = model_of("unigram");
  d.write("tokenizer.model", good.substr(0, good.size() / 2));  // truncated
  CHECK(error_of([&] { (void)Tokenizer::from_dir(d.str()); }).find("not a SentencePiece model") !=
        std::string::npos);
  d.write("tokenizer.model", "");
  CHECK(error_of([&] { (void)Tokenizer::from_dir(d.str()); }).find("empty") != std::string::npos);
  d.write("tokenizer.model", good);
  SentencePieceConfig small;
  small.max_model_bytes = 100;
  e = error_of([&] { (void)Tokenizer::from_sentencepiece_file((d.path / "tokenizer.model").string(), small); });
  CHECK(e.find("larger than the cap of 100 bytes") != std::string::npos);
  CHECK(error_of([&] { (void)Tokenizer::from_sentencepiece(good, small); }).find("max_model_bytes") !=
        std::string::npos);
  CHECK(error_of([&] { (void)Tokenizer::from_sentencepiece_file((d.path / "none.model").string()); })
            .find("cannot open") != std::string::npos);
  // The folder's config is read: add_eos_token from tokenizer_config.json.
  d.write("tokenizer_config.json", R"({"add_eos_token": true})");
  const Tokenizer t = Tokenizer::from_dir(d.str());
  CHECK(t.kind() == "sentencepiece-unigram");
  CHECK(t.encode("x", true).back() == 2);
  CHECK(Tokenizer::from_path((d.path / "tokenizer.model").string()).encode("x", true).back() == 2);
}

#endif  // QSTAR_HAS_SENTENCEPIECE
