// The tokenizer.json tokenizer: see include/qstar/hf/tokenizer.hpp for what is supported
// and internal.hpp for where each stage lives. Each step follows the Hugging Face
// `tokenizers` crate (its normalizer, pre-tokenizer, BPE merge loop, added-vocabulary
// matching, post-processor and decoders), so ids match HF's. This file: the encode
// pipeline, loading a whole tokenizer.json, and the public API.
#include "qstar/hf/tokenizer.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"
#include "sentencepiece.hpp"

namespace qstar::hf {

using namespace detail;

// ---- the encode pipeline ----------------------------------------------------------------

template <class OnText, class OnAdded>
void Tokenizer::Core::split_added(std::string_view s, bool at_start, const AddedMatcher& matcher,
                                  OnText&& on_text, OnAdded&& on_added) const {
  std::size_t start_offset = 0, pos = 0;
  std::size_t ms = 0, len = 0;
  std::int32_t index = -1;
  while (pos < s.size() && matcher.find(s, pos, ms, len, index)) {
    const AddedToken& tok = added[static_cast<std::size_t>(index)];
    std::size_t start = ms, stop = ms + len;
    pos = stop;
    if (start < start_offset) continue;  // inside a previous token's stripped whitespace
    if (tok.single_word) {
      bool before_word = false, after_word = false;
      if (start > 0) {
        std::size_t k = prev_cp_start(s, start);
        before_word = is_word_char(next_cp(s, k));
      }
      if (stop < s.size()) {
        std::size_t k = stop;
        after_word = is_word_char(next_cp(s, k));
      }
      if (before_word || after_word) continue;
    }
    if (tok.lstrip) {
      std::size_t b = start;
      while (b > 0) {
        const std::size_t p = prev_cp_start(s, b);
        std::size_t k = p;
        if (!is_white_space(next_cp(s, k))) break;
        b = p;
      }
      start = std::max(b, start_offset);
    }
    if (tok.rstrip) {
      while (stop < s.size()) {
        std::size_t k = stop;
        if (!is_white_space(next_cp(s, k))) break;
        stop = k;
      }
    }
    if (start_offset < start)
      on_text(s.substr(start_offset, start - start_offset), at_start && start_offset == 0);
    on_added(index);
    start_offset = stop;
    pos = std::max(pos, stop);
  }
  if (start_offset < s.size()) on_text(s.substr(start_offset), at_start && start_offset == 0);
}

void Tokenizer::Core::pre_tokenize_from(std::size_t k, std::string_view text, bool at_start,
                                        const PieceSink& sink) const {
  if (k == pre_tokenizers.size()) {
    if (!text.empty()) sink(text, at_start);
    return;
  }
  auto next = [&](std::string_view sub, bool st) { pre_tokenize_from(k + 1, sub, st, sink); };
  pre_tokenizers[k].each(text, at_start, PieceSink(next));
}

template <class OnPiece, class OnAdded>
void Tokenizer::Core::pipeline(std::string_view text, bool at_start, OnPiece&& on_piece,
                               OnAdded&& on_added) const {
  auto model_input = [&](std::string_view piece, bool) { on_piece(piece); };
  const PieceSink sink(model_input);
  auto pre_tokenize_piece = [&](std::string_view normalized, bool first) {
    pre_tokenize_from(0, normalized, first, sink);
  };
  auto text_piece = [&](std::string_view piece, bool first) {
    if (normalizers.empty()) {
      if (normalized_matcher.empty())
        pre_tokenize_piece(piece, first);
      else
        split_added(piece, first, normalized_matcher, pre_tokenize_piece, on_added);
      return;
    }
    std::string s(piece);
    normalize(s);
    if (s.empty()) return;
    if (normalized_matcher.empty())
      pre_tokenize_piece(s, first);
    else
      split_added(s, first, normalized_matcher, pre_tokenize_piece, on_added);
  };
  if (raw_matcher.empty()) {
    if (!text.empty()) text_piece(text, at_start);
  } else {
    split_added(text, at_start, raw_matcher, text_piece, on_added);
  }
}

template <class OnValid, class OnInvalid>
void Tokenizer::Core::utf8_runs(std::string_view text, OnValid&& on_valid, OnInvalid&& on_invalid) {
  const auto* base = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = base + text.size();
  std::size_t run = 0, i = 0;
  bool valid_run = true;
  while (i < text.size()) {
    const std::size_t n = base[i] < 0x80 ? 1 : json::detail::utf8_length(base + i, end);
    const bool ok = n != 0;
    if (ok != valid_run && i > run) {
      if (valid_run)
        on_valid(text.substr(run, i - run), run == 0);
      else
        on_invalid(text.substr(run, i - run));
      run = i;
    }
    valid_run = ok;
    i += ok ? n : 1;
  }
  if (i > run) {
    if (valid_run)
      on_valid(text.substr(run, i - run), run == 0);
    else
      on_invalid(text.substr(run, i - run));
  }
}

template <class OnPiece, class OnAdded>
void Tokenizer::Core::run(std::string_view text, OnPiece&& on_piece, OnAdded&& on_added) const {
  bool valid = true;
  {
    const auto* base = reinterpret_cast<const unsigned char*>(text.data());
    for (std::size_t i = 0; i < text.size();) {
      if (base[i] < 0x80) {
        ++i;
        continue;
      }
      const std::size_t n = json::detail::utf8_length(base + i, base + text.size());
      if (n == 0) {
        valid = false;
        break;
      }
      i += n;
    }
  }
  if (valid) {
    pipeline(text, true, on_piece, on_added);
  } else if (byte_level) {
    utf8_runs(
        text, [&](std::string_view run, bool first) { pipeline(run, first, on_piece, on_added); },
        [&](std::string_view bytes) { on_piece(std::string_view(byte_level_map(bytes))); });
  } else {
    std::string clean;
    utf8_runs(
        text, [&](std::string_view run, bool) { clean += run; },
        [&](std::string_view bytes) {
          for (std::size_t k = 0; k < bytes.size(); ++k) clean += "\xEF\xBF\xBD";
        });
    pipeline(clean, true, on_piece, on_added);
  }
}

// ---- loading ----------------------------------------------------------------------------

namespace {

std::optional<std::int32_t> named_id(const Tokenizer::Core& c,
                                     std::initializer_list<const char*> names) {
  for (const char* n : names) {
    for (const auto& t : c.added)
      if (t.content == n) return t.id;
    if (const auto it = c.vocab.find(std::string_view(n)); it != c.vocab.end()) return it->second;
  }
  return std::nullopt;
}

std::shared_ptr<Tokenizer::Core> load(std::string_view text, std::string_view source) {
  auto core = std::make_shared<Tokenizer::Core>();
  Tokenizer::Core& c = *core;
  c.source = std::string(source);
  const Reader r{c.source};
  const Value root = json::parse(text, source);
  r.object(root, "(top level)");

  // The normalizer first: normalized added tokens are matched in their normalized form.
  if (const Value* n = r.opt(root, "normalizer"))
    parse_normalizer(r, *n, "normalizer", c.normalizers);
  if (const Value* p = r.opt(root, "pre_tokenizer"))
    parse_pre_tokenizer(r, *p, "pre_tokenizer", c.pre_tokenizers, c.byte_level);

  const Value* model = r.opt(root, "model");
  if (model == nullptr) r.fail("model", "missing");
  r.object(*model, "model");
  std::string type;
  if (const Value* t = r.opt(*model, "type"))
    type = r.str(*t, "model.type");
  else
    type = model->contains("merges") ? "BPE" : "WordLevel";
  if (type == "BPE")
    load_bpe(r, *model, c);
  else if (type == "WordLevel")
    load_word_level(r, *model, c);
  else
    r.unsupported("model", type);

  load_added_tokens(r, root, c);

  if (const Value* d = r.opt(root, "decoder")) {
    c.has_decoder = true;
    parse_decoder(r, *d, "decoder", c.decoder);
    c.decoder_is_byte_level =
        c.decoder.size() == 1 && c.decoder[0].kind == DecodeStep::Kind::ByteLevel;
  }
  if (const Value* p = r.opt(root, "post_processor"))
    parse_post_processor(r, *p, "post_processor", c.templates);

  // BOS / EOS: around $A in the (first) template, else by name.
  for (const Template& t : c.templates) {
    std::size_t a = 0;
    while (a < t.size() && !t[a].sequence) ++a;
    if (a > 0 && t[a - 1].ids.size() == 1) c.bos = t[a - 1].ids[0];
    if (a + 1 < t.size() && t[a + 1].ids.size() == 1) c.eos = t[a + 1].ids[0];
    break;
  }
  if (!c.bos)
    c.bos = named_id(c, {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<BOS>"});
  if (!c.eos)
    c.eos = named_id(c, {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eos|>", "<EOS>"});
  return core;
}

}  // namespace

// ---- the public API ---------------------------------------------------------------------

Tokenizer::Tokenizer(std::shared_ptr<const Core> core) : core_(std::move(core)) {
  bos_ = core_->bos;
  eos_ = core_->eos;
}

Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_json(std::string_view text, std::string_view source) {
  return Tokenizer(load(text, source));
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw IoError(fmt::format("{}: cannot read: is a directory", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return from_json(ss.str(), path);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (spm_) return spm_->encode(text, add_special_tokens);
  const Core& c = *core_;
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  c.run(
      text, [&](std::string_view piece) { c.model_tokenize(piece, ids); },
      [&](std::int32_t index) { ids.push_back(c.added[static_cast<std::size_t>(index)].id); });
  if (add_special_tokens) {
    for (const Template& t : c.templates) {
      std::vector<std::int32_t> out;
      out.reserve(ids.size() + 4);
      for (const TemplateItem& item : t) {
        if (item.sequence)
          out.insert(out.end(), ids.begin(), ids.end());
        else
          out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
      ids = std::move(out);
    }
  }
  return ids;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  if (spm_) return spm_->pre_tokenize(text);
  const Core& c = *core_;
  std::vector<std::string> out;
  c.run(
      text, [&](std::string_view piece) { out.emplace_back(piece); },
      [&](std::int32_t index) { out.push_back(c.added[static_cast<std::size_t>(index)].content); });
  return out;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  if (spm_) return spm_->decode(ids, skip_special_tokens);
  const Core& c = *core_;
  auto keep = [&](std::int32_t id) {
    return c.known(id) && !(skip_special_tokens && c.special(id));
  };
  std::string out;
  if (c.decoder_is_byte_level) {
    for (const std::int32_t id : ids)
      if (keep(id)) byte_level_unmap(c.id_token[static_cast<std::size_t>(id)], out);
    return out;
  }
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (const std::int32_t id : ids)
    if (keep(id)) toks.push_back(c.id_token[static_cast<std::size_t>(id)]);
  if (!c.has_decoder) {
    for (std::size_t i = 0; i < toks.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += toks[i];
    }
    return out;
  }
  for (const DecodeStep& d : c.decoder) d.apply(toks, false);
  for (const auto& t : toks) out += t;
  return out;
}

std::string Tokenizer::token_bytes(std::int32_t id) const {
  if (spm_) return spm_->token_bytes(id);
  const Core& c = *core_;
  if (!c.known(id)) return {};
  const std::string& tok = c.id_token[static_cast<std::size_t>(id)];
  if (!c.has_decoder) return tok;
  std::vector<std::string> toks{tok};
  for (const DecodeStep& d : c.decoder) d.apply(toks, true);
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (spm_) return spm_->token_to_id(token);
  const Core& c = *core_;
  for (const AddedToken& t : c.added)
    if (t.content == token) return t.id;
  if (const auto it = c.vocab.find(token); it != c.vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (!has_id(id))
    throw InvalidArgument(fmt::format("id_to_token: id {} has no token in {} (vocab size {})", id,
                                      source(), vocab_size()));
  return spm_ ? spm_->id_token[static_cast<std::size_t>(id)]
              : core_->id_token[static_cast<std::size_t>(id)];
}

bool Tokenizer::has_id(std::int32_t id) const noexcept {
  return spm_ ? spm_->known(id) : core_->known(id);
}
std::size_t Tokenizer::vocab_size() const noexcept {
  return spm_ ? spm_->id_kind.size() : core_->id_known.size();
}
bool Tokenizer::is_special(std::int32_t id) const noexcept {
  return spm_ ? spm_->special(id) : core_->special(id);
}

std::vector<std::int32_t> Tokenizer::special_ids() const {
  const auto& flags = spm_ ? spm_->id_special : core_->id_special;
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < flags.size(); ++i)
    if (flags[i] != 0) out.push_back(static_cast<std::int32_t>(i));
  return out;
}

std::optional<std::int32_t> Tokenizer::bos_id() const noexcept { return bos_; }
std::optional<std::int32_t> Tokenizer::eos_id() const noexcept { return eos_; }
void Tokenizer::set_bos_id(std::optional<std::int32_t> id) { bos_ = id; }
void Tokenizer::set_eos_id(std::optional<std::int32_t> id) { eos_ = id; }

std::string Tokenizer::kind() const {
  if (spm_) return "sentencepiece-" + spm_->model_type;
  return core_->bpe ? "bpe" : "wordlevel";
}
bool Tokenizer::byte_level() const noexcept { return spm_ ? false : core_->byte_level; }

std::size_t Tokenizer::cache_size() const {
  if (spm_) return 0;
  std::shared_lock lock(core_->cache_mutex);
  return core_->cache.size();
}

const std::string& Tokenizer::source() const noexcept { return spm_ ? spm_->source : core_->source; }

}  // namespace qstar::hf
