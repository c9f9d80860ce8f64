// Models: BPE (HF's merge loop over a priority queue, byte_fallback, unk fusing, a per
// pre-token cache) and WordLevel, and loading model.vocab / model.merges.
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf {

using namespace detail;

void Tokenizer::Core::missing_unk(std::string_view piece) const {
  if (unk_token)
    throw InvalidArgument(
        fmt::format("{}: model.unk_token {} is not in model.vocab (needed for {})", source,
                    json_quote(*unk_token), json_quote(piece)));
  throw InvalidArgument(fmt::format("{}: {} is not in model.vocab and model.unk_token is not set",
                                    source, json_quote(piece)));
}

void Tokenizer::Core::word_level(std::string_view piece, std::vector<std::int32_t>& out) const {
  if (const auto it = vocab.find(piece); it != vocab.end()) {
    out.push_back(it->second);
    return;
  }
  if (!unk_id) missing_unk(piece);
  out.push_back(*unk_id);
}

void Tokenizer::Core::merge_word(std::string_view w, std::vector<std::int32_t>& out) const {
  struct Sym {
    std::int32_t id, prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(w.size());
  auto add = [&](std::int32_t id) {
    const auto n = static_cast<std::int32_t>(syms.size());
    if (n > 0) syms.back().next = n;
    syms.push_back({id, n - 1, -1, true});
  };
  bool unk_pending = false;
  std::string key;
  for (std::size_t i = 0; i < w.size();) {
    const std::size_t len = cp_len(static_cast<unsigned char>(w[i]));
    const bool first = i == 0, last = i + len >= w.size();
    std::string_view s = w.substr(i, len);
    if ((!first && !prefix.empty()) || (last && !suffix.empty())) {
      key.clear();
      if (!first) key += prefix;
      key += s;
      if (last) key += suffix;
      s = key;
    }
    i += len;
    if (const auto it = vocab.find(s); it != vocab.end()) {
      if (unk_pending) {
        add(*unk_id);
        unk_pending = false;
      }
      add(it->second);
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (const char c : s) all = all && fallback_ids[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        if (unk_pending) {
          add(*unk_id);
          unk_pending = false;
        }
        for (const char c : s) add(fallback_ids[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_token) {
      if (!unk_id) missing_unk(s);
      if (unk_pending && !fuse_unk) add(*unk_id);
      unk_pending = true;
    }
    // else: dropped, as HF does
  }
  if (unk_pending) add(*unk_id);

  if (syms.size() > 1 && !merges.empty()) {
    struct Cand {
      std::int32_t rank, pos, new_id;
    };
    // std heap keeps the "largest" on top: the lowest rank, then the leftmost position.
    auto lower = [](const Cand& a, const Cand& b) {
      return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    std::vector<Cand> heap;
    heap.reserve(syms.size() * 2);
    for (std::size_t k = 0; k + 1 < syms.size(); ++k) {
      const auto m = merges.find(pair_key(syms[k].id, syms[k + 1].id));
      if (m != merges.end())
        heap.push_back({m->second.rank, static_cast<std::int32_t>(k), m->second.new_id});
    }
    std::make_heap(heap.begin(), heap.end(), lower);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), lower);
      const Cand top = heap.back();
      heap.pop_back();
      Sym& cur = syms[static_cast<std::size_t>(top.pos)];
      if (!cur.alive || cur.next < 0) continue;
      const Sym right = syms[static_cast<std::size_t>(cur.next)];
      const auto m = merges.find(pair_key(cur.id, right.id));
      if (m == merges.end() || m->second.new_id != top.new_id) continue;  // stale
      syms[static_cast<std::size_t>(cur.next)].alive = false;
      cur.id = top.new_id;
      cur.next = right.next;
      if (right.next >= 0) syms[static_cast<std::size_t>(right.next)].prev = top.pos;
      if (cur.prev >= 0) {
        const auto pm =
            merges.find(pair_key(syms[static_cast<std::size_t>(cur.prev)].id, cur.id));
        if (pm != merges.end()) {
          heap.push_back({pm->second.rank, cur.prev, pm->second.new_id});
          std::push_heap(heap.begin(), heap.end(), lower);
        }
      }
      if (cur.next >= 0) {
        const auto nm =
            merges.find(pair_key(cur.id, syms[static_cast<std::size_t>(cur.next)].id));
        if (nm != merges.end()) {
          heap.push_back({nm->second.rank, top.pos, nm->second.new_id});
          std::push_heap(heap.begin(), heap.end(), lower);
        }
      }
    }
  }
  for (const Sym& s : syms)
    if (s.alive) out.push_back(s.id);
}

void Tokenizer::Core::bpe_tokenize(std::string_view w, std::vector<std::int32_t>& out) const {
  if (w.empty()) return;
  if (ignore_merges) {
    if (const auto it = vocab.find(w); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = w.size() <= kCacheMaxLength;
  if (cacheable) {
    std::shared_lock lock(cache_mutex);
    if (const auto it = cache.find(w); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t base = out.size();
  merge_word(w, out);
  if (cacheable) {
    std::vector<std::int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(base), out.end());
    std::unique_lock lock(cache_mutex);
    if (cache.size() >= kCacheCapacity) cache.clear();
    cache.emplace(std::string(w), std::move(ids));
  }
}

}  // namespace qstar::hf

namespace qstar::hf::detail {

void set_id(Tokenizer::Core& c, std::int32_t id, const std::string& token, bool overwrite) {
  const auto i = static_cast<std::size_t>(id);
  if (i >= c.id_token.size()) {
    c.id_token.resize(i + 1);
    c.id_known.resize(i + 1, 0);
    c.id_special.resize(i + 1, 0);
  }
  if (c.id_known[i] == 0 || overwrite) c.id_token[i] = token;
  c.id_known[i] = 1;
}

void load_vocab(const Reader& r, const Value& model, Tokenizer::Core& c) {
  const Value& v = r.req(model, "vocab", "model");
  r.object(v, "model.vocab");
  c.vocab.reserve(v.size());
  std::int32_t max_id = -1;
  for (const auto& [tok, idv] : v.as_object()) {
    const std::int32_t id = r.token_id(idv, join_path("model.vocab", json_quote(tok)));
    c.vocab.emplace(tok, id);
    max_id = std::max(max_id, id);
  }
  c.id_token.resize(static_cast<std::size_t>(max_id + 1));
  c.id_known.assign(static_cast<std::size_t>(max_id + 1), 0);
  c.id_special.assign(static_cast<std::size_t>(max_id + 1), 0);
  for (const auto& [tok, idv] : v.as_object())
    set_id(c, static_cast<std::int32_t>(idv.as_int()), tok, false);
}

void load_bpe(const Reader& r, const Value& m, Tokenizer::Core& c) {
  c.bpe = true;
  load_vocab(r, m, c);
  if (const Value* d = r.opt(m, "dropout")) {
    if (!d->is_number()) r.wrong_type("model.dropout", "a number", *d);
    if (d->as_double() != 0.0) r.fail("model.dropout", "BPE dropout is not supported");
  }
  if (const Value* u = r.opt(m, "unk_token")) {
    c.unk_token = r.str(*u, "model.unk_token");
    if (const auto it = c.vocab.find(*c.unk_token); it != c.vocab.end()) c.unk_id = it->second;
  }
  c.fuse_unk = r.opt_bool(m, "fuse_unk", "model", false);
  c.byte_fallback = r.opt_bool(m, "byte_fallback", "model", false);
  c.ignore_merges = r.opt_bool(m, "ignore_merges", "model", false);
  c.prefix = r.opt_str(m, "continuing_subword_prefix", "model", "");
  c.suffix = r.opt_str(m, "end_of_word_suffix", "model", "");
  c.fallback_ids.fill(-1);
  if (c.byte_fallback)
    for (int b = 0; b < 256; ++b)
      if (const auto it = c.vocab.find(fmt::format("<0x{:02X}>", b)); it != c.vocab.end())
        c.fallback_ids[static_cast<std::size_t>(b)] = it->second;

  const auto& merges = r.array(r.req(m, "merges", "model"), "model.merges");
  c.merges.reserve(merges.size());
  std::int32_t rank = 0;
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const std::string path = index_path("model.merges", i);
    std::string a, b;
    if (merges[i].is_string()) {
      const std::string& line = merges[i].as_string();
      if (line.rfind("#version", 0) == 0) continue;
      const auto sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos)
        r.fail(path, fmt::format("expected \"a b\" (two tokens and one space), got {}",
                                 json_quote(line)));
      a = line.substr(0, sp);
      b = line.substr(sp + 1);
    } else if (merges[i].is_array()) {
      const auto& pr = merges[i].as_array();
      if (pr.size() != 2)
        r.fail(path, fmt::format("expected a pair of tokens, got {} elements", pr.size()));
      a = r.str(pr[0], index_path(path, 0));
      b = r.str(pr[1], index_path(path, 1));
    } else {
      r.wrong_type(path, "a string or a pair of strings", merges[i]);
    }
    auto id_of = [&](const std::string& tok) {
      const auto it = c.vocab.find(tok);
      if (it == c.vocab.end())
        r.fail(path, fmt::format("token {} is not in model.vocab", json_quote(tok)));
      return it->second;
    };
    const std::int32_t ia = id_of(a), ib = id_of(b);
    std::string merged = a;
    merged += (!c.prefix.empty() && b.rfind(c.prefix, 0) == 0) ? b.substr(c.prefix.size()) : b;
    const std::int32_t im = id_of(merged);
    c.merges.insert_or_assign(pair_key(ia, ib),
                              MergeVal{rank, im});  // a repeat: the last wins, as in HF
    ++rank;
  }
}

void load_word_level(const Reader& r, const Value& m, Tokenizer::Core& c) {
  c.bpe = false;
  load_vocab(r, m, c);
  c.unk_token = r.opt_str(m, "unk_token", "model", "<unk>");
  if (const auto it = c.vocab.find(*c.unk_token); it != c.vocab.end()) c.unk_id = it->second;
}

}  // namespace qstar::hf::detail
