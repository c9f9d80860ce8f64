// Added tokens: the leftmost-longest byte-trie matcher and loading tokenizer.json's
// added_tokens (matching itself, with lstrip / rstrip / single_word, is in tokenizer.cpp).
#include <fmt/format.h>

#include "internal.hpp"
#include "qstar/error.hpp"

namespace qstar::hf::detail {

void AddedMatcher::add(std::string_view s, std::int32_t index) {
  if (s.empty()) return;
  if (terminal_.empty()) terminal_.push_back(-1);
  std::int32_t node = 0;
  for (const char c : s) {
    const std::uint64_t key =
        (static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(c);
    auto it = next_.find(key);
    if (it == next_.end()) {
      terminal_.push_back(-1);
      it = next_.emplace(key, static_cast<std::int32_t>(terminal_.size() - 1)).first;
    }
    node = it->second;
  }
  first_[static_cast<unsigned char>(s[0])] = true;
  if (terminal_[static_cast<std::size_t>(node)] < 0)
    terminal_[static_cast<std::size_t>(node)] = index;
}

bool AddedMatcher::find(std::string_view s, std::size_t from, std::size_t& start, std::size_t& len,
                        std::int32_t& index) const {
  if (empty()) return false;
  for (std::size_t i = from; i < s.size(); ++i) {
    if (!first_[static_cast<unsigned char>(s[i])]) continue;
    std::int32_t node = 0;
    std::size_t best = 0;
    std::int32_t best_index = -1;
    for (std::size_t j = i; j < s.size(); ++j) {
      const std::uint64_t key =
          (static_cast<std::uint64_t>(node) << 8) | static_cast<unsigned char>(s[j]);
      const auto it = next_.find(key);
      if (it == next_.end()) break;
      node = it->second;
      if (terminal_[static_cast<std::size_t>(node)] >= 0) {
        best = j + 1 - i;
        best_index = terminal_[static_cast<std::size_t>(node)];
      }
    }
    if (best_index >= 0) {
      start = i;
      len = best;
      index = best_index;
      return true;
    }
  }
  return false;
}

void load_added_tokens(const Reader& r, const Value& root, Tokenizer::Core& c) {
  const Value* at = r.opt(root, "added_tokens");
  if (at == nullptr) return;
  const auto& items = r.array(*at, "added_tokens");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string p = index_path("added_tokens", i);
    const Value& it = r.object(items[i], p);
    AddedToken t;
    t.content = r.str(r.req(it, "content", p), join_path(p, "content"));
    if (t.content.empty()) r.fail(join_path(p, "content"), "empty added token");
    t.special = r.opt_bool(it, "special", p, false);
    t.lstrip = r.opt_bool(it, "lstrip", p, false);
    t.rstrip = r.opt_bool(it, "rstrip", p, false);
    t.single_word = r.opt_bool(it, "single_word", p, false);
    t.normalized = r.opt_bool(it, "normalized", p, !t.special);
    if (const auto vit = c.vocab.find(t.content); vit != c.vocab.end()) {
      t.id = vit->second;
    } else {
      t.id = r.token_id(r.req(it, "id", p), join_path(p, "id"));
      if (c.known(t.id) && c.id_token[static_cast<std::size_t>(t.id)] != t.content)
        r.fail(join_path(p, "id"),
               fmt::format("id {} of {} is already the token {}", t.id, json_quote(t.content),
                           json_quote(c.id_token[static_cast<std::size_t>(t.id)])));
    }
    set_id(c, t.id, t.content, true);
    if (t.special) c.id_special[static_cast<std::size_t>(t.id)] = 1;
    const auto index = static_cast<std::int32_t>(c.added.size());
    if (t.normalized) {
      std::string norm = t.content;
      c.normalize(norm);
      c.normalized_matcher.add(norm, index);
    } else {
      c.raw_matcher.add(t.content, index);
    }
    c.added.push_back(std::move(t));
  }
}

}  // namespace qstar::hf::detail
