// The SentencePiece backend: loading a tokenizer.model through libsentencepiece (SpmModel),
// and encode / decode with transformers' LlamaTokenizer rules around it (sentencepiece.hpp).
// Without libsentencepiece, SpmModel::load throws IoError saying so.
#include "sentencepiece.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "qstar/error.hpp"

namespace qstar::hf {

using namespace detail;

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

/// `s` with every byte of invalid UTF-8 replaced by U+FFFD (Python strings are valid).
std::string valid_utf8(std::string_view s) {
  const auto* base = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = base + s.size();
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = base[i] < 0x80 ? 1 : json::detail::utf8_length(base + i, end);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

/// "<0x0A>" -> 0x0A; -1 when `piece` is not of that form.
int byte_piece_value(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int v = 0;
  for (std::size_t k = 3; k < 5; ++k) {
    const char c = piece[k];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

Tokenizer::Spm::Spm() = default;
Tokenizer::Spm::~Spm() = default;

// ---- encoding ---------------------------------------------------------------------------

std::vector<std::pair<std::string, bool>> Tokenizer::Spm::split(std::string_view text) const {
  // Trie.split: the text between the leftmost-longest matches, and the matches.
  std::vector<std::string> toks;
  std::size_t last = 0, pos = 0, ms = 0, len = 0;
  std::int32_t index = -1;
  while (pos < text.size() && matcher.find(text, pos, ms, len, index)) {
    if (ms > last) toks.emplace_back(text.substr(last, ms - last));
    toks.emplace_back(text.substr(ms, len));
    last = pos = ms + len;
  }
  if (last < text.size()) toks.emplace_back(text.substr(last));
  // PreTrainedTokenizer.tokenize's loop: an added token's lstrip/rstrip strip its
  // neighbours; single_word glues it back to text it touches.
  for (std::size_t i = 0; i < toks.size(); ++i) {
    const auto it = added_index.find(toks[i]);
    if (it == added_index.end()) continue;
    const AddedToken& a = added[it->second];
    const std::string token = toks[i];
    const std::string left = i > 0 ? toks[i - 1] : std::string();
    const std::string right = i + 1 < toks.size() ? toks[i + 1] : std::string();
    if (a.rstrip && !right.empty()) toks[i + 1] = py_lstrip(right);
    if (a.lstrip && !left.empty()) toks[i - 1] = py_rstrip(left);
    if (a.single_word && !left.empty() && left.back() != ' ') {
      toks[i - 1] += token;
      toks[i].clear();
    } else if (a.single_word && !right.empty() && right.front() != ' ') {
      toks[i] += right;
      toks[i + 1].clear();
    }
  }
  std::vector<std::pair<std::string, bool>> out;
  out.reserve(toks.size());
  for (auto& t : toks) {
    if (t.empty()) continue;
    const bool is_added = added_index.find(t) != added_index.end();
    out.emplace_back(std::move(t), is_added);
  }
  return out;
}

std::vector<std::pair<std::string, bool>> Tokenizer::Spm::prepare_and_split(
    std::string_view text) const {
  std::string t = valid_utf8(text);
  if (!legacy && !t.empty()) {  // LlamaTokenizer.tokenize with legacy=False
    replace_all(t, kSpace, " ");
    if (add_prefix_space) t.insert(0, kSpace);
  }
  return split(t);
}

void Tokenizer::Spm::model_encode(const std::string& piece, std::vector<std::int32_t>& out) const {
  std::vector<std::int32_t> ids;
  std::size_t skip = 0;
  if (legacy) {
    sp->encode(piece, ids);
  } else if (!unk_token.empty() && (piece.starts_with(kSpace) || piece.front() == ' ')) {
    // LlamaTokenizer._tokenize: encode "<unk>" + text without the dummy prefix, then drop
    // the pieces of "<unk>", so a leading "▁" is kept as SentencePiece would not.
    sp_plain->encode(unk_token + piece, ids);
    if (ids.size() >= unk_token_length) skip = unk_token_length;
  } else {
    sp_plain->encode(piece, ids);
  }
  for (std::size_t k = skip; k < ids.size(); ++k) {
    const std::int32_t id = ids[k];
    const auto r = remap.find(id);
    out.push_back(r == remap.end() ? id : r->second);
  }
}

std::vector<std::int32_t> Tokenizer::Spm::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::size_t first_text_piece = std::string::npos;
  for (const auto& [s, is_added] : prepare_and_split(text)) {
    if (is_added) {
      ids.push_back(added_ids.find(s)->second);
    } else {
      if (ids.empty()) first_text_piece = 0;
      model_encode(s, ids);
    }
  }
  // legacy=False: a lone "▁" before a special token is dropped ("▁" + "<s>..." otherwise
  // starts with it).
  if (!legacy && first_text_piece == 0 && ids.size() > 1 && ids[0] == space_piece) {
    const std::string& next = id_token[static_cast<std::size_t>(ids[1])];
    if (std::find(map_specials.begin(), map_specials.end(), next) != map_specials.end() &&
        added_ids.find(next) != added_ids.end())
      ids.erase(ids.begin());
  }
  if (add_special_tokens) {
    if (add_bos && bos) ids.insert(ids.begin(), *bos);
    if (add_eos && eos) ids.push_back(*eos);
  }
  return ids;
}

std::vector<std::string> Tokenizer::Spm::pre_tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (auto& [s, is_added] : prepare_and_split(text)) out.push_back(std::move(s));
  return out;
}

// ---- decoding ---------------------------------------------------------------------------

void Tokenizer::Spm::append_surface(std::int32_t id, std::string& out) const {
  const auto k = static_cast<std::size_t>(id);
  if (id_kind[k] == Kind::Byte) {
    out.push_back(static_cast<char>(id_byte[k]));
    return;
  }
  const std::string& tok = id_token[k];
  for (std::size_t p = 0; p < tok.size();) {
    if (tok.compare(p, kSpace.size(), kSpace) == 0) {
      out.push_back(' ');
      p += kSpace.size();
    } else {
      out.push_back(tok[p++]);
    }
  }
}

std::string Tokenizer::Spm::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (const std::int32_t id : ids) {
    if (!known(id) || (skip_special_tokens && special(id))) continue;
    append_surface(id, out);
  }
  if (strip_leading_space && !out.empty() && out.front() == ' ') out.erase(0, 1);
  return out;
}

std::string Tokenizer::Spm::token_bytes(std::int32_t id) const {
  std::string out;
  if (known(id)) append_surface(id, out);
  return out;
}

std::optional<std::int32_t> Tokenizer::Spm::token_to_id(std::string_view token) const {
  if (const auto it = added_ids.find(token); it != added_ids.end()) return it->second;
  if (const auto it = pieces.find(token); it != pieces.end()) return it->second;
  return std::nullopt;
}

// ---- loading ----------------------------------------------------------------------------

namespace {

using Spm = Tokenizer::Spm;

void grow(Spm& m, std::size_t n) {
  if (m.id_kind.size() >= n) return;
  m.id_token.resize(n);
  m.id_kind.resize(n, Spm::Kind::None);
  m.id_byte.resize(n, 0);
  m.id_special.resize(n, 0);
}

/// An added token (from the config): its id gets `content` unless the model's piece there
/// already is that string; matched in the input before the model runs.
void add_token(Spm& m, const AddedToken& t) {
  const auto k = static_cast<std::size_t>(t.id);
  grow(m, k + 1);
  const bool same_piece = t.id < m.n_pieces && m.id_token[k] == t.content;
  if (!same_piece) {
    m.id_token[k] = t.content;
    m.id_kind[k] = Spm::Kind::Added;
  }
  if (t.special) m.id_special[k] = 1;
  if (const auto it = m.added_index.find(t.content); it != m.added_index.end()) {
    m.added[it->second] = t;  // a later entry for the same text wins, as in a dict
  } else {
    m.added_index.emplace(t.content, m.added.size());
    m.matcher.add(t.content, static_cast<std::int32_t>(m.added.size()));
    m.added.push_back(t);
  }
  m.added_ids[t.content] = t.id;
}

void load_pieces(Spm& m, const SpmModel& sp) {
  m.n_pieces = sp.size();
  if (m.n_pieces <= 0) throw ParseError(fmt::format("{}: the SentencePiece model has no pieces", m.source));
  grow(m, static_cast<std::size_t>(m.n_pieces));
  for (std::int32_t id = 0; id < m.n_pieces; ++id) {
    const auto k = static_cast<std::size_t>(id);
    m.id_token[k] = std::string(sp.piece(id));
    Spm::Kind kind = Spm::Kind::Normal;
    const SpmModel::Type type = sp.type(id);
    if (type == SpmModel::Type::Control) {
      kind = Spm::Kind::Control;
      m.id_special[k] = 1;
    } else if (type == SpmModel::Type::Unknown) {
      kind = Spm::Kind::Unknown;
    } else if (type == SpmModel::Type::Byte) {
      const int b = byte_piece_value(m.id_token[k]);
      if (b >= 0) {
        kind = Spm::Kind::Byte;
        m.id_byte[k] = static_cast<std::uint8_t>(b);
      }
    } else if (type == SpmModel::Type::Unused) {
      kind = Spm::Kind::Unused;
    }
    m.id_kind[k] = kind;
    m.pieces.emplace(m.id_token[k], id);  // the first id of a repeated piece wins
  }
  if (const auto it = m.pieces.find(kSpace); it != m.pieces.end()) m.space_piece = it->second;
}

/// The config's added tokens, then its special tokens (each an added token: its added or
/// model id, or the next free id as transformers' add_tokens gives it).
void load_added(Spm& m, const SentencePieceConfig& cfg) {
  for (const SentencePieceAddedToken& a : cfg.added_tokens) {
    AddedToken t;
    t.content = a.content;
    t.id = a.id;
    t.special = a.special;
    t.lstrip = a.lstrip;
    t.rstrip = a.rstrip;
    t.single_word = a.single_word;
    add_token(m, t);
  }
  std::vector<std::string> specials;
  for (const auto* t : {&cfg.bos_token, &cfg.eos_token, &cfg.unk_token, &cfg.pad_token})
    if (*t) specials.push_back(**t);
  for (const auto& t : cfg.additional_special_tokens) specials.push_back(t);
  for (const std::string& s : specials) {
    m.map_specials.push_back(s);
    if (const auto it = m.added_ids.find(s); it != m.added_ids.end()) {
      m.id_special[static_cast<std::size_t>(it->second)] = 1;
      continue;
    }
    AddedToken t;
    t.content = s;
    t.special = true;
    const auto p = m.pieces.find(s);
    t.id = p != m.pieces.end() ? p->second : static_cast<std::int32_t>(m.id_kind.size());
    if (t.id > Reader::kMaxTokenId)
      throw InvalidArgument(fmt::format("{}: special token '{}' would get id {}, over {}", m.source, s,
                                        t.id, Reader::kMaxTokenId));
    add_token(m, t);
  }
  // A model piece whose string is an added token's text gets the added token's id (the
  // slow tokenizer converts pieces to ids through its added vocabulary first).
  for (const AddedToken& t : m.added)
    if (const auto p = m.pieces.find(t.content); p != m.pieces.end() && p->second != t.id)
      m.remap[p->second] = t.id;
}

const char* model_type_name(int t) {
  switch (t) {
    case 2: return "bpe";
    case 3: return "word";
    case 4: return "char";
    default: return "unigram";
  }
}

}  // namespace

std::shared_ptr<const Tokenizer::Spm> load_sentencepiece(std::string_view bytes,
                                                         const SentencePieceConfig& cfg,
                                                         std::string_view source) {
  cfg.validate();
  auto m = std::make_shared<Spm>();
  m->source = std::string(source);
  if (bytes.size() > cfg.max_model_bytes)
    throw ParseError(fmt::format("{}: {} bytes, over the SentencePiece model cap of {} bytes "
                                 "(SentencePieceConfig.max_model_bytes)",
                                 m->source, bytes.size(), cfg.max_model_bytes));
  if (!spm_module_available()) (void)SpmModel::load(bytes, source);  // throws, saying why
  if (bytes.empty()) throw ParseError(fmt::format("{}: not a SentencePiece model: empty", m->source));
  const auto sp = SpmModel::load(bytes, source);
  if (!read_spm_proto(bytes, m->info))
    throw ParseError(fmt::format("{}: not a SentencePiece model: malformed protobuf", m->source));
  m->model_type = model_type_name(m->info.model_type);
  load_pieces(*m, *sp);
  load_added(*m, cfg);
  m->sp = sp;
  m->legacy = cfg.legacy;
  m->add_prefix_space = cfg.add_prefix_space;
  m->add_bos = cfg.add_bos_token;
  m->add_eos = cfg.add_eos_token;
  if (cfg.bos_token) m->bos = m->token_to_id(*cfg.bos_token);
  if (cfg.eos_token) m->eos = m->token_to_id(*cfg.eos_token);
  m->strip_leading_space = cfg.legacy ? m->info.add_dummy_prefix : cfg.add_prefix_space;
  if (!cfg.legacy) {
    // LlamaTokenizer(legacy=False) loads the model with add_dummy_prefix off.
    const std::string plain = spm_proto_without_dummy_prefix(bytes);
    if (plain.empty())
      throw ParseError(fmt::format("{}: cannot turn off add_dummy_prefix for legacy=false", m->source));
    m->sp_plain = SpmModel::load(plain, source);
    if (cfg.unk_token) {
      m->unk_token = *cfg.unk_token;
      std::vector<std::int32_t> ids;
      m->sp_plain->encode(m->unk_token, ids);
      m->unk_token_length = ids.size();
    }
  }
  return m;
}

bool Tokenizer::sentencepiece_available() noexcept { return spm_module_available(); }

}  // namespace qstar::hf
