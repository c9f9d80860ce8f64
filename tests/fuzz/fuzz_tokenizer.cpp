// libFuzzer target: the tokenizer.json loader and the encoder/decoder
// (include/qstar/hf/tokenizer.hpp, src/hf/tokenizer/*.cpp). No LibTorch.
//
// Input, two shapes:
//  * starts with '{' or JSON whitespace: "<tokenizer.json>" or "<tokenizer.json>\0<text>".
//    The JSON is loaded with Tokenizer::from_json; when it loads, the text (and a few fixed
//    texts) are encoded with and without special tokens, pre-tokenized and decoded, and
//    every id is looked up. Oracles: only qstar::Error escapes; the ids of
//    encode(text) without special tokens all have a token.
//  * any other first byte b: the rest is a text for built-in tokenizer b % 5:
//      0 GPT-2 (ByteLevel pre-tokenizer with its regex, ByteLevel decoder, added tokens)
//      1 Llama-3 (Split with its regex + ByteLevel, ignore_merges, BOS template)
//      2 Qwen2 (Split with its regex + ByteLevel) with an NFC normalizer
//      3 a character-level WordLevel vocabulary (Split [\s\S] Isolated, Fuse decoder)
//      4 a Llama-2 style BPE (Prepend/Replace "▁", byte_fallback, Strip decoder)
//    Oracles, as the header promises: byte-level BPE round-trips any bytes,
//    decode(encode(s)) == s, and the tokens' token_bytes concatenate to s (2: NFC(s), for
//    valid UTF-8 without '<'); the character vocabulary round-trips text made of its
//    characters; the Llama-2 style BPE round-trips valid UTF-8 without "▁" (U+2581, which
//    stands for a space in that scheme).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <utf8proc.h>

#include "fuzz_common.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/tokenizer.hpp"

namespace json = qstar::json;
using json::Value;
using qstar::hf::Tokenizer;
using qstar_fuzz::shown;
using Ids = std::vector<std::int32_t>;

namespace {

// ---- the built-in tokenizers ------------------------------------------------------------

/// The GPT-2 byte alphabet, written out from its definition.
std::string byte_char(unsigned b) {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    unsigned n = 0;
    for (unsigned c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
      json::detail::append_utf8(t[c], printable ? c : 256 + n++);
    }
    return t;
  }();
  return table[b & 0xFF];
}
std::string bl(std::string_view raw) {
  std::string out;
  for (const char c : raw) out += byte_char(static_cast<unsigned char>(c));
  return out;
}

const std::vector<std::pair<std::string, std::string>> kMerges = {
    {" ", "t"},   {"h", "e"},    {" t", "he"},  {"i", "n"},          {"e", "r"},        {" ", "a"},
    {"o", "n"},   {"r", "e"},    {" ", "s"},    {"e", "d"},          {"in", "g"},       {" ", " "},
    {"  ", "  "}, {"\n", "\n"},  {"1", "2"},    {"12", "3"},         {"'", "s"},        {"\xC3", "\xA9"},
    {"\xE4", "\xBD"}, {"\xE4\xBD", "\xA0"}, {"\xF0", "\x9F"}, {" a", "n"}, {" an", "d"}, {" the", " "}};

Value byte_bpe_model(bool ignore_merges) {
  Value vocab = Value::object();
  for (unsigned b = 0; b < 256; ++b) vocab.set(byte_char(b), static_cast<int>(b));
  Value merges = Value::array();
  int next = 256;
  for (const auto& [a, b] : kMerges) {
    if (!vocab.contains(bl(a + b))) vocab.set(bl(a + b), next++);
    merges.push_back(bl(a) + " " + bl(b));
  }
  Value m = Value::object();
  m.set("type", "BPE");
  m.set("ignore_merges", ignore_merges);
  m.set("vocab", std::move(vocab));
  m.set("merges", std::move(merges));
  return m;
}

Value added(int id, std::string content, bool special, bool single_word = false) {
  Value t = Value::object();
  t.set("id", id);
  t.set("content", std::move(content));
  t.set("single_word", single_word);
  t.set("lstrip", false);
  t.set("rstrip", false);
  t.set("normalized", false);
  t.set("special", special);
  return t;
}

Value parse(std::string_view s) { return json::parse(s, "builtin"); }

const char* const kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

Value byte_level(bool use_regex) {
  Value p = Value::object();
  p.set("type", "ByteLevel");
  p.set("add_prefix_space", false);
  p.set("trim_offsets", true);
  p.set("use_regex", use_regex);
  return p;
}

Value split_byte_level(const char* pattern) {
  Value split = Value::object();
  split.set("type", "Split");
  Value pat = Value::object();
  pat.set("Regex", pattern);
  split.set("pattern", std::move(pat));
  split.set("behavior", "Isolated");
  split.set("invert", false);
  Value seq = Value::array();
  seq.push_back(std::move(split));
  seq.push_back(byte_level(false));
  Value p = Value::object();
  p.set("type", "Sequence");
  p.set("pretokenizers", std::move(seq));
  return p;
}

Value byte_level_tokenizer(Value pre, bool ignore_merges) {
  Value root = Value::object();
  Value at = Value::array();
  at.push_back(added(400, "<|endoftext|>", true));
  at.push_back(added(401, "<|im_start|>", true));
  at.push_back(added(402, "<|im", false));
  at.push_back(added(403, "<W>", false, true));
  root.set("added_tokens", std::move(at));
  root.set("pre_tokenizer", std::move(pre));
  root.set("decoder", byte_level(true));
  root.set("model", byte_bpe_model(ignore_merges));
  return root;
}

std::vector<Tokenizer> make_builtins() {
  std::vector<Tokenizer> out;
  out.push_back(Tokenizer::from_json(json::dump(byte_level_tokenizer(byte_level(true), false)), "gpt2"));
  Value llama = byte_level_tokenizer(split_byte_level(kLlama3), true);
  llama.set("post_processor",
            parse(R"({"type":"TemplateProcessing","single":["<|endoftext|>","$A"],
                      "special_tokens":{"<|endoftext|>":{"id":"<|endoftext|>","ids":[400],"tokens":["<|endoftext|>"]}}})"));
  out.push_back(Tokenizer::from_json(json::dump(llama), "llama3"));
  Value qwen = byte_level_tokenizer(split_byte_level(kQwen2), false);
  qwen.set("normalizer", parse(R"({"type":"NFC"})"));
  out.push_back(Tokenizer::from_json(json::dump(qwen), "qwen2"));

  // Characters: printable ASCII, "\t", "\n", "é", "你".
  Value vocab = Value::object();
  vocab.set("<unk>", 0);
  int id = 1;
  for (char c = ' '; c <= '~'; ++c) vocab.set(std::string(1, c), id++);
  for (const char* s : {"\t", "\n", "\xC3\xA9", "\xE4\xBD\xA0"}) vocab.set(s, id++);
  Value chars = parse(R"({"pre_tokenizer":{"type":"Split","pattern":{"Regex":"[\\s\\S]"},"behavior":"Isolated","invert":false},
                          "decoder":{"type":"Fuse"}})");
  Value m = Value::object();
  m.set("type", "WordLevel");
  m.set("vocab", std::move(vocab));
  m.set("unk_token", "<unk>");
  chars.set("model", std::move(m));
  out.push_back(Tokenizer::from_json(json::dump(chars), "chars"));

  // Llama-2 style: "▁" for spaces, prepended; byte fallback for everything else.
  Value sp = parse(R"({
    "normalizer": {"type":"Sequence","normalizers":[
        {"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
    "pre_tokenizer": null,
    "decoder": {"type":"Sequence","decoders":[
        {"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},
        {"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}})");
  Value spv = Value::object();
  spv.set("<unk>", 0);
  for (int b = 0; b < 256; ++b) spv.set(fmt::format("<0x{:02X}>", b), 1 + b);
  id = 257;
  for (const char* s : {"▁", "a", "b", "h", "i", "▁h", "▁hi", "é", "▁a", "ab"}) spv.set(s, id++);
  Value spm = Value::object();
  spm.set("type", "BPE");
  spm.set("byte_fallback", true);
  spm.set("fuse_unk", true);
  spm.set("unk_token", "<unk>");
  spm.set("vocab", std::move(spv));
  spm.set("merges", parse(R"(["▁ h","▁h i","▁ a","a b"])"));
  sp.set("model", std::move(spm));
  out.push_back(Tokenizer::from_json(json::dump(sp), "llama2"));
  return out;
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const std::size_t n = json::detail::utf8_length(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

std::string nfc(std::string_view s) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                              static_cast<utf8proc_ssize_t>(s.size()), &out,
                              static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  FUZZ_CHECK(n >= 0, "utf8proc_map failed on valid UTF-8");
  std::string r(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n));
  std::free(out);
  return r;
}

void round_trip(const Tokenizer& t, std::string_view text, const std::string& want) {
  const Ids ids = t.encode(text);
  const std::string back = t.decode(ids);
  FUZZ_CHECK(back == want, "%s: decode(encode(s)) != expected\n  s:    %s\n  got:  %s\n  want: %s",
             t.source().c_str(), shown(text).c_str(), shown(back).c_str(), shown(want).c_str());
}

void builtin(std::size_t which, std::string_view text) {
  static const std::vector<Tokenizer> tokenizers = make_builtins();
  const Tokenizer& t = tokenizers[which];
  const Ids ids = t.encode(text);
  for (const auto id : ids) FUZZ_CHECK(t.has_id(id), "%s: encode gave id %d without a token", t.source().c_str(), id);
  (void)t.encode(text, true);
  (void)t.pre_tokenize(text);
  const std::string back = t.decode(ids);
  (void)t.decode(ids, true);
  switch (which) {
    case 0:
    case 1: {
      FUZZ_CHECK(back == text, "%s: decode(encode(s)) != s\n  s:   %s\n  got: %s", t.source().c_str(),
                 shown(text).c_str(), shown(back).c_str());
      std::string joined;
      for (const auto id : ids) joined += t.token_bytes(id);
      FUZZ_CHECK(joined == text, "%s: token_bytes do not concatenate to s: %s", t.source().c_str(),
                 shown(text).c_str());
      break;
    }
    case 2:
      if (valid_utf8(text) && text.find('<') == std::string_view::npos) round_trip(t, text, nfc(text));
      break;
    case 3: {
      bool known = true;
      for (const char c : text) known = known && ((c >= ' ' && c <= '~') || c == '\t' || c == '\n');
      if (known) round_trip(t, text, std::string(text));
      break;
    }
    case 4:  // (a "▁" in the text decodes to a space: the Llama-2 scheme, as in HF)
      if (valid_utf8(text) && text.find("\xE2\x96\x81") == std::string_view::npos)
        round_trip(t, text, std::string(text));
      break;
  }
}

void from_json(std::string_view json_text, std::string_view text) {
  const Tokenizer t = Tokenizer::from_json(json_text, "fuzz.json");  // the caller catches
  const std::string_view fixed[] = {text, "Hello world", " a  b\n\n\t c", "\xC3\xA9\xE4\xBD\xA0 12345 <s></s>",
                                    std::string_view("\xFF\x00z", 3)};
  for (const std::string_view s : fixed) {
    Ids ids;
    try {
      ids = t.encode(s);
    } catch (const qstar::InvalidArgument&) {
      continue;  // a WordLevel model without a usable unk token (as in HF)
    }
    for (const auto id : ids) {
      FUZZ_CHECK(t.has_id(id), "encode gave id %d without a token", id);
      try {
        (void)t.id_to_token(id);
      } catch (const qstar::Error& e) {
        FUZZ_CHECK(false, "id_to_token(%d) threw although has_id: %s", id, e.what());
      }
      (void)t.token_bytes(id);
      (void)t.is_special(id);
    }
    (void)t.decode(ids);
    (void)t.decode(ids, true);
    try {
      (void)t.encode(s, true);
    } catch (const qstar::InvalidArgument&) {
    }
    (void)t.pre_tokenize(s);
  }
  // Arbitrary ids (from the text's bytes), the out-of-range ones included.
  Ids any;
  for (const char c : text.substr(0, 64)) any.push_back(static_cast<signed char>(c) * 3);
  any.push_back(static_cast<std::int32_t>(t.vocab_size()));
  any.push_back(-1);
  (void)t.decode(any);
  (void)t.decode(any, true);
  for (const auto id : any) (void)t.token_bytes(id);
  (void)t.special_ids();
  (void)t.bos_id();
  (void)t.eos_id();
  (void)t.token_to_id(text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (size > 16384) return -1;
  const std::string_view in = qstar_fuzz::as_view(data, size);
  const char first = in[0];
  if (first == '{' || first == ' ' || first == '\n' || first == '\t' || first == '\r') {
    const auto nul = in.find('\0');
    const std::string_view json_text = in.substr(0, nul);
    const std::string_view text = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    try {
      from_json(json_text, text);
    } catch (const qstar::Error&) {
    }
    return 0;
  }
  builtin(static_cast<unsigned char>(first) % 5, in.substr(1));
  return 0;
}
