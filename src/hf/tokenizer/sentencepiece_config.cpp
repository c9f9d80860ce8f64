// SentencePieceConfig (a model folder's tokenizer_config.json and special_tokens_map.json),
// the ModelProto wire-format reader, Python's whitespace, and the loaders that pick a
// folder's tokenizer (Tokenizer::from_dir / from_path). No libsentencepiece needed here.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "qstar/error.hpp"
#include "sentencepiece.hpp"

namespace qstar::hf {

namespace fs = std::filesystem;

// ---- Python's whitespace ----------------------------------------------------------------

namespace detail {

std::size_t py_space_at(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const std::size_t n = s.size() - i;
  const unsigned char c = b(i);
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) return 1;
  if (c == 0xC2 && n >= 2) return b(i + 1) == 0x85 || b(i + 1) == 0xA0 ? 2 : 0;
  if (n < 3) return 0;
  const unsigned char c1 = b(i + 1), c2 = b(i + 2);
  if (c == 0xE1) return c1 == 0x9A && c2 == 0x80 ? 3 : 0;  // U+1680
  if (c == 0xE3) return c1 == 0x80 && c2 == 0x80 ? 3 : 0;  // U+3000
  if (c != 0xE2) return 0;
  if (c1 == 0x80)  // U+2000..U+200A, U+2028, U+2029, U+202F
    return (c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF ? 3 : 0;
  return c1 == 0x81 && c2 == 0x9F ? 3 : 0;  // U+205F
}

std::string py_lstrip(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = py_space_at(s, i);
    if (n == 0) break;
    i += n;
  }
  return std::string(s.substr(i));
}

std::string py_rstrip(std::string_view s) {
  std::size_t e = s.size();
  for (bool more = true; more && e > 0;) {
    more = false;
    for (std::size_t len = 1; len <= 3 && len <= e; ++len)
      if (py_space_at(s.substr(0, e), e - len) == len) {
        e -= len;
        more = true;
        break;
      }
  }
  return std::string(s.substr(0, e));
}

// ---- the ModelProto wire format ---------------------------------------------------------

namespace {

/// A bounds-checked protobuf reader over one message's bytes.
struct Wire {
  std::string_view s;
  std::size_t i = 0;

  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= s.size()) return false;
      const auto c = static_cast<unsigned char>(s[i++]);
      v |= static_cast<std::uint64_t>(c & 0x7F) << shift;
      if ((c & 0x80) == 0) return true;
    }
    return false;
  }
  /// The next field: its number, wire type, varint value or length-delimited bytes, and
  /// where it started. False at the end or on malformed input (ok tells which).
  bool next(std::uint32_t& field, std::uint32_t& type, std::uint64_t& value, std::string_view& bytes,
            bool& ok) {
    ok = true;
    if (i >= s.size()) return false;
    std::uint64_t key = 0;
    if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) return ok = false;
    field = static_cast<std::uint32_t>(key >> 3);
    type = static_cast<std::uint32_t>(key & 7);
    switch (type) {
      case 0:
        return varint(value) || (ok = false);
      case 1:
      case 5: {
        const std::size_t n = type == 1 ? 8 : 4;
        if (s.size() - i < n) return ok = false;
        i += n;
        return true;
      }
      case 2: {
        if (!varint(value) || value > s.size() - i) return ok = false;
        bytes = s.substr(i, static_cast<std::size_t>(value));
        i += static_cast<std::size_t>(value);
        return true;
      }
      default:  // groups (3, 4) are not used by ModelProto
        return ok = false;
    }
  }
};

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

bool read_spm_proto(std::string_view proto, SpmProtoInfo& info) {
  Wire w{proto};
  std::uint32_t field = 0, type = 0;
  std::uint64_t value = 0;
  std::string_view bytes;
  bool ok = true;
  while (w.next(field, type, value, bytes, ok)) {
    if (type != 2 || (field != 2 && field != 3)) continue;
    // ModelProto.trainer_spec = 2 (model_type = 3), normalizer_spec = 3
    // (add_dummy_prefix = 3, remove_extra_whitespaces = 4).
    Wire sub{bytes};
    std::uint32_t f = 0, t = 0;
    std::uint64_t v = 0;
    std::string_view b;
    bool sub_ok = true;
    while (sub.next(f, t, v, b, sub_ok)) {
      if (t != 0) continue;
      if (field == 2 && f == 3) info.model_type = static_cast<int>(v);
      if (field == 3 && f == 3) info.add_dummy_prefix = v != 0;
      if (field == 3 && f == 4) info.remove_extra_whitespaces = v != 0;
    }
    if (!sub_ok) return false;
  }
  return ok;
}

std::string spm_proto_without_dummy_prefix(std::string_view proto) {
  static constexpr char kOff[] = {0x18, 0x00};  // field 3 (add_dummy_prefix), varint 0
  Wire w{proto};
  std::uint32_t field = 0, type = 0;
  std::uint64_t value = 0;
  std::string_view bytes;
  bool ok = true, seen = false;
  std::string out;
  out.reserve(proto.size() + 8);
  std::size_t start = 0;
  while (w.next(field, type, value, bytes, ok)) {
    if (field == 3 && type == 2) {
      out.push_back(0x1A);  // field 3, length-delimited
      put_varint(out, bytes.size() + 2);
      out.append(bytes);
      out.append(kOff, 2);
      seen = true;
    } else {
      out.append(proto.substr(start, w.i - start));
    }
    start = w.i;
  }
  if (!ok) return {};
  if (!seen) out.append("\x1A\x02\x18\x00", 4);
  return out;
}

}  // namespace detail

// ---- SentencePieceConfig ----------------------------------------------------------------

void SentencePieceConfig::validate() const {
  auto nonempty = [](const std::optional<std::string>& t, const char* field) {
    if (t && t->empty()) throw InvalidArgument(fmt::format("SentencePieceConfig.{}: empty string", field));
  };
  nonempty(bos_token, "bos_token");
  nonempty(eos_token, "eos_token");
  nonempty(unk_token, "unk_token");
  nonempty(pad_token, "pad_token");
  for (const auto& t : additional_special_tokens)
    if (t.empty()) throw InvalidArgument("SentencePieceConfig.additional_special_tokens: empty string");
  std::set<std::int32_t> ids;
  for (const auto& a : added_tokens) {
    if (a.id < 0 || a.id > detail::Reader::kMaxTokenId)
      throw InvalidArgument(fmt::format("SentencePieceConfig.added_tokens: id {} of '{}' is not in 0..{}",
                                        a.id, a.content, detail::Reader::kMaxTokenId));
    if (a.content.empty())
      throw InvalidArgument(fmt::format("SentencePieceConfig.added_tokens: id {} has empty content", a.id));
    if (!ids.insert(a.id).second)
      throw InvalidArgument(fmt::format("SentencePieceConfig.added_tokens: id {} given twice", a.id));
  }
  if (max_model_bytes == 0) throw InvalidArgument("SentencePieceConfig.max_model_bytes: must be > 0");
  if (max_config_bytes == 0) throw InvalidArgument("SentencePieceConfig.max_config_bytes: must be > 0");
}

namespace {

/// The bytes of `path`, at most `cap` of them (IoError naming the file and `what` beyond).
std::string read_capped(const std::string& path, std::size_t cap, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::string out;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > cap)
      throw IoError(fmt::format("{}: larger than the cap of {} bytes ({})", path, cap, what));
  }
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return out;
}

/// A token field: a string, {"content": "..."} (transformers' AddedToken), or null.
std::optional<std::string> token_field(const json::Value& v, const std::string& file, std::string_view key) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.as_string();
  if (v.is_object())
    if (const json::Value* c = v.find("content"); c && c->is_string()) return c->as_string();
  throw ParseError(fmt::format("{}: {}: expected a string, {{\"content\": ...}} or null", file, key));
}

bool bool_field(const json::Value& v, const std::string& file, std::string_view key) {
  if (!v.is_bool()) throw ParseError(fmt::format("{}: {}: expected true or false", file, key));
  return v.as_bool();
}

/// bos/eos/unk/pad_token and additional_special_tokens of one file's top-level object.
void read_special_tokens(const json::Value& root, const std::string& file, SentencePieceConfig& c) {
  const std::pair<const char*, std::optional<std::string>*> fields[] = {
      {"bos_token", &c.bos_token}, {"eos_token", &c.eos_token},
      {"unk_token", &c.unk_token}, {"pad_token", &c.pad_token}};
  for (const auto& [key, dst] : fields)
    if (const json::Value* v = root.find(key)) *dst = token_field(*v, file, key);
  if (const json::Value* v = root.find("additional_special_tokens"); v && !v->is_null()) {
    if (!v->is_array())
      throw ParseError(fmt::format("{}: additional_special_tokens: expected an array", file));
    c.additional_special_tokens.clear();
    for (const auto& e : v->as_array())
      if (auto t = token_field(e, file, "additional_special_tokens[]")) c.additional_special_tokens.push_back(*t);
  }
}

void read_added_tokens_decoder(const json::Value& v, const std::string& file, SentencePieceConfig& c) {
  if (!v.is_object()) throw ParseError(fmt::format("{}: added_tokens_decoder: expected an object", file));
  for (const auto& [key, e] : v.as_object()) {
    const std::string where = fmt::format("added_tokens_decoder.{}", key);
    SentencePieceAddedToken t;
    std::size_t used = 0;
    long long id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != key.size() || id < 0 || id > detail::Reader::kMaxTokenId)
      throw ParseError(fmt::format("{}: {}: the key must be a token id in 0..{}", file, where,
                                   detail::Reader::kMaxTokenId));
    t.id = static_cast<std::int32_t>(id);
    if (!e.is_object()) throw ParseError(fmt::format("{}: {}: expected an object", file, where));
    const json::Value* content = e.find("content");
    if (!content || !content->is_string() || content->as_string().empty())
      throw ParseError(fmt::format("{}: {}.content: expected a non-empty string", file, where));
    t.content = content->as_string();
    const std::pair<const char*, bool*> flags[] = {
        {"special", &t.special}, {"lstrip", &t.lstrip}, {"rstrip", &t.rstrip}, {"single_word", &t.single_word}};
    for (const auto& [name, dst] : flags)
      if (const json::Value* f = e.find(name)) *dst = bool_field(*f, file, where + "." + name);
    c.added_tokens.push_back(std::move(t));
  }
}

/// The file's top-level object, nullopt when the file does not exist.
std::optional<json::Value> read_json(const fs::path& p, std::size_t cap) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::nullopt;
  const std::string file = p.string();
  json::Value v = json::parse(read_capped(file, cap, "SentencePieceConfig.max_config_bytes"), file);
  if (!v.is_object()) throw ParseError(fmt::format("{}: expected a JSON object", file));
  return v;
}

}  // namespace

SentencePieceConfig SentencePieceConfig::from_dir(const std::string& dir) {
  SentencePieceConfig c;
  const fs::path d(dir);
  if (const auto cfg = read_json(d / "tokenizer_config.json", c.max_config_bytes)) {
    const std::string file = (d / "tokenizer_config.json").string();
    const std::pair<const char*, bool*> flags[] = {{"add_bos_token", &c.add_bos_token},
                                                   {"add_eos_token", &c.add_eos_token},
                                                   {"legacy", &c.legacy},
                                                   {"add_prefix_space", &c.add_prefix_space}};
    for (const auto& [key, dst] : flags)  // null: transformers' default
      if (const json::Value* v = cfg->find(key); v && !v->is_null()) *dst = bool_field(*v, file, key);
    read_special_tokens(*cfg, file, c);
    if (const json::Value* v = cfg->find("added_tokens_decoder")) read_added_tokens_decoder(*v, file, c);
  }
  // special_tokens_map.json overrides tokenizer_config.json, as in from_pretrained.
  if (const auto map = read_json(d / "special_tokens_map.json", c.max_config_bytes))
    read_special_tokens(*map, (d / "special_tokens_map.json").string(), c);
  c.validate();
  return c;
}

// ---- the loaders ------------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Spm> spm) : spm_(std::move(spm)) {
  bos_ = spm_->bos;
  eos_ = spm_->eos;
}

Tokenizer Tokenizer::from_sentencepiece(std::string_view model_bytes, const SentencePieceConfig& config,
                                        std::string_view source) {
  return Tokenizer(load_sentencepiece(model_bytes, config, source));
}

Tokenizer Tokenizer::from_sentencepiece_file(const std::string& path, const SentencePieceConfig& config) {
  config.validate();
  if (!sentencepiece_available()) return from_sentencepiece({}, config, path);  // throws, saying why
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw IoError(fmt::format("{}: cannot read: is a directory", path));
  return from_sentencepiece(read_capped(path, config.max_model_bytes, "SentencePieceConfig.max_model_bytes"),
                            config, path);
}

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec))
    throw IoError(fmt::format("{}: not a directory (a model folder with tokenizer.json or tokenizer.model)", dir));
  if (fs::exists(d / "tokenizer.json", ec)) return from_file((d / "tokenizer.json").string());
  const fs::path model = d / "tokenizer.model";
  if (fs::exists(model, ec)) {
    if (!sentencepiece_available())
      throw IoError(fmt::format("{}: holds tokenizer.model (SentencePiece) and no tokenizer.json, but {}",
                                dir, detail::spm_unavailable_reason()));
    return from_sentencepiece_file(model.string(), SentencePieceConfig::from_dir(dir));
  }
  throw IoError(fmt::format("{}: holds neither tokenizer.json nor tokenizer.model", dir));
}

Tokenizer Tokenizer::from_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return from_dir(path);
  if (path.ends_with(".model")) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    return from_sentencepiece_file(path, SentencePieceConfig::from_dir(dir.string()));
  }
  return from_file(path);
}

}  // namespace qstar::hf
