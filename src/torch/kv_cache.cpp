// The shared-prefix KV cache: a radix tree of KV segments with pinning and LRU eviction of
// leaves. See kv_cache.hpp for the semantics.
#include "torch/kv_cache.hpp"

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include "qstar/error.hpp"

namespace qstar::lm {

namespace {

// Local helpers instead of KVSegment's members so that this file does not depend on the
// model's translation unit.
std::int64_t seg_length(const KVSegment& s) {
  return s.k.empty() || !s.k.front().defined() ? 0 : s.k.front().size(1);
}

std::shared_ptr<const KVSegment> seg_slice(const KVSegment& s, std::int64_t start,
                                           std::int64_t len) {
  auto out = std::make_shared<KVSegment>();
  out->k.reserve(s.k.size());
  out->v.reserve(s.v.size());
  for (const auto& t : s.k) out->k.push_back(t.narrow(1, start, len));
  for (const auto& t : s.v) out->v.push_back(t.narrow(1, start, len));
  return out;
}

}  // namespace

// ---- tree ------------------------------------------------------------------------------------

struct PrefixCache::Node {
  std::vector<std::int32_t> key;          // the edge's token ids (non-empty except the root)
  std::shared_ptr<const KVSegment> seg;   // their KV (null for the root)
  std::int64_t bytes = 0;                 // segment_bytes(*seg)
  Node* parent = nullptr;
  std::map<std::int32_t, std::unique_ptr<Node>> children;  // by first token: ordered
  std::int64_t pins = 0;                  // live handles whose path passes through here
  std::uint64_t last_use = 0;             // recency tick (unique per touch)
  std::uint64_t id = 0;                   // creation serial (tie-break; never equal)
  bool in_lru = false;                    // listed in Impl::lru (an evictable leaf)
};

struct PrefixCache::Impl {
  explicit Impl(std::int64_t cap) : max_bytes(cap) {}

  mutable std::mutex mu;
  const std::int64_t max_bytes;
  Node root;
  std::int64_t bytes = 0;
  std::int64_t nodes = 0;
  std::int64_t tokens = 0;
  std::uint64_t clock = 0;
  std::uint64_t next_id = 1;
  std::size_t layers = 0;  // layer count of the stored segments (0 = none seen yet)
  // Evictable leaves (unpinned, childless, not the root) by (last_use, id): begin() is the
  // least recently used. Deterministic: ticks come from a counter.
  std::map<std::pair<std::uint64_t, std::uint64_t>, Node*> lru;
  Stats stats;

  struct Step {
    Node* node;
    std::int64_t used;  // tokens of node's edge on the path (== key size when whole)
  };

  // Longest cached prefix: the path's steps (all whole but maybe the last) and its length.
  std::int64_t walk(std::span<const std::int32_t> tokens, std::vector<Step>& path) {
    path.clear();
    Node* cur = &root;
    std::size_t pos = 0;
    while (pos < tokens.size()) {
      auto it = cur->children.find(tokens[pos]);
      if (it == cur->children.end()) break;
      Node* child = it->second.get();
      const std::size_t n = std::min(child->key.size(), tokens.size() - pos);
      std::size_t k = 1;  // the first token matched through the map key
      while (k < n && child->key[k] == tokens[pos + k]) ++k;
      path.push_back({child, static_cast<std::int64_t>(k)});
      pos += k;
      if (k < child->key.size()) break;
      cur = child;
    }
    return static_cast<std::int64_t>(pos);
  }

  bool evictable(const Node* n) const {
    return n != &root && n->children.empty() && n->pins == 0;
  }

  // Re-files `n` in the LRU index after a change of its pins, children or recency.
  void refresh(Node* n) {
    if (n->in_lru) {
      lru.erase({n->last_use, n->id});
      n->in_lru = false;
    }
    if (evictable(n)) {
      lru.emplace(std::make_pair(n->last_use, n->id), n);
      n->in_lru = true;
    }
  }

  void touch(const std::vector<Step>& path) {
    for (const Step& s : path) {
      if (s.node->in_lru) {
        lru.erase({s.node->last_use, s.node->id});
        s.node->in_lru = false;
      }
      s.node->last_use = ++clock;
      refresh(s.node);
    }
  }

  void pin(Node* deepest) {
    for (Node* p = deepest; p != &root; p = p->parent) {
      ++p->pins;
      refresh(p);
    }
  }

  void unpin(Node* deepest) {
    for (Node* p = deepest; p != &root; p = p->parent) {
      --p->pins;
      refresh(p);
    }
  }

  // Splits `node`'s edge after its first `at` tokens (0 < at < key size): a new node takes
  // the head (a view of the head of the segment) and becomes `node`'s parent; `node` keeps
  // the tail (and its identity, so handles pointing at it stay valid). Returns the new node.
  Node* split(Node* node, std::int64_t at) {
    Node* parent = node->parent;
    const std::int64_t len = static_cast<std::int64_t>(node->key.size());
    auto head = std::make_unique<Node>();
    head->key.assign(node->key.begin(), node->key.begin() + at);
    head->seg = seg_slice(*node->seg, 0, at);
    head->bytes = segment_bytes(*head->seg);
    head->parent = parent;
    head->pins = node->pins;  // every pin through `node` passes through its new parent
    head->last_use = node->last_use;
    head->id = next_id++;

    auto tail_seg = seg_slice(*node->seg, at, len - at);
    const std::int64_t tail_bytes = segment_bytes(*tail_seg);
    // Keep the total exact: the two slices' bytes sum to the original's.
    bytes += head->bytes + tail_bytes - node->bytes;
    node->seg = std::move(tail_seg);
    node->bytes = tail_bytes;
    node->key.erase(node->key.begin(), node->key.begin() + at);

    auto& slot = parent->children.at(head->key.front());
    std::unique_ptr<Node> owned = std::move(slot);  // == node
    node->parent = head.get();
    head->children.emplace(node->key.front(), std::move(owned));
    Node* raw = head.get();
    slot = std::move(head);
    ++nodes;
    refresh(raw);
    return raw;
  }

  // Drops one evictable leaf.
  void remove_leaf(Node* n) {
    if (n->in_lru) lru.erase({n->last_use, n->id});
    Node* parent = n->parent;
    bytes -= n->bytes;
    tokens -= static_cast<std::int64_t>(n->key.size());
    --nodes;
    parent->children.erase(n->key.front());  // destroys n
    refresh(parent);
  }

  void evict_to_cap() {
    if (max_bytes == 0) return;
    while (bytes > max_bytes && !lru.empty()) {
      Node* victim = lru.begin()->second;
      stats.evicted_tokens += static_cast<std::int64_t>(victim->key.size());
      ++stats.evictions;
      remove_leaf(victim);
    }
    if (bytes > max_bytes) ++stats.over_cap;
  }

  // Removes every unpinned node below `n` (a node with pins == 0 has no pinned descendant).
  void clear_below(Node* n) {
    for (auto it = n->children.begin(); it != n->children.end();) {
      Node* child = it->second.get();
      if (child->pins == 0) {
        forget_subtree(child);
        it = n->children.erase(it);
      } else {
        clear_below(child);
        ++it;
      }
    }
    refresh(n);
  }

  void forget_subtree(Node* n) {
    for (auto& [_, child] : n->children) forget_subtree(child.get());
    if (n->in_lru) lru.erase({n->last_use, n->id});
    n->in_lru = false;
    bytes -= n->bytes;
    tokens -= static_cast<std::int64_t>(n->key.size());
    --nodes;
  }

  // The segments of `path` covering exactly its tokens (a view for a partial last edge).
  static std::vector<std::shared_ptr<const KVSegment>> segments(const std::vector<Step>& path) {
    std::vector<std::shared_ptr<const KVSegment>> out;
    out.reserve(path.size());
    for (const Step& s : path) {
      if (s.used == static_cast<std::int64_t>(s.node->key.size()))
        out.push_back(s.node->seg);
      else
        out.push_back(seg_slice(*s.node->seg, 0, s.used));
    }
    return out;
  }
};

// ---- Handle ------------------------------------------------------------------------------------

PrefixCache::Handle::Handle(Handle&& other) noexcept
    : impl_(std::move(other.impl_)), node_(std::exchange(other.node_, nullptr)) {}

PrefixCache::Handle& PrefixCache::Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    release();
    impl_ = std::move(other.impl_);
    node_ = std::exchange(other.node_, nullptr);
  }
  return *this;
}

PrefixCache::Handle::~Handle() { release(); }

void PrefixCache::Handle::release() {
  if (node_ != nullptr && impl_) {
    {
      std::lock_guard lock(impl_->mu);
      c10::InferenceMode guard;  // eviction frees tensors; keep all KV work in the mode
      impl_->unpin(node_);
      impl_->evict_to_cap();
    }
  }
  node_ = nullptr;
  impl_.reset();
}

std::vector<const KVSegment*> PrefixCache::Match::past() const {
  std::vector<const KVSegment*> out;
  out.reserve(segments.size());
  for (const auto& s : segments) out.push_back(s.get());
  return out;
}

// ---- PrefixCache -------------------------------------------------------------------------------

PrefixCache::PrefixCache(std::int64_t max_bytes) {
  if (max_bytes < 0)
    throw InvalidArgument(
        fmt::format("max_bytes: must be >= 0 (0 = unlimited), got {}", max_bytes));
  impl_ = std::make_shared<Impl>(max_bytes);
}

// Live handles share the Impl, so the tree outlives this object while any of them does.
PrefixCache::~PrefixCache() = default;

std::int64_t PrefixCache::segment_bytes(const KVSegment& seg) {
  std::int64_t n = 0;
  for (const auto* side : {&seg.k, &seg.v})
    for (const auto& t : *side)
      if (t.defined()) n += t.numel() * static_cast<std::int64_t>(t.element_size());
  return n;
}

PrefixCache::Match PrefixCache::match(std::span<const std::int32_t> tokens) {
  c10::InferenceMode guard;
  Match m;
  std::lock_guard lock(impl_->mu);
  std::vector<Impl::Step> path;
  m.matched = impl_->walk(tokens, path);
  ++impl_->stats.lookups;
  impl_->stats.hit_tokens += m.matched;
  impl_->stats.miss_tokens += static_cast<std::int64_t>(tokens.size()) - m.matched;
  if (path.empty()) return m;
  m.segments = Impl::segments(path);
  impl_->touch(path);
  impl_->pin(path.back().node);
  m.lock = Handle(impl_, path.back().node);
  return m;
}

PrefixCache::Match PrefixCache::insert(std::span<const std::int32_t> tokens, std::int64_t from,
                                       KVSegment kv) {
  c10::InferenceMode guard;
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (from < 0 || from > n)
    throw InvalidArgument(fmt::format(
        "PrefixCache::insert: from = {} is outside [0, {}] (the token count)", from, n));
  const std::int64_t len = n - from;

  // Validate kv before touching the tree.
  const std::int64_t kv_len = seg_length(kv);
  if (kv_len != len)
    throw InvalidArgument(fmt::format(
        "PrefixCache::insert: kv holds {} tokens but tokens[{}, {}) has {}", kv_len, from, n,
        len));
  if (len > 0) {
    if (kv.k.size() != kv.v.size())
      throw InvalidArgument(fmt::format("PrefixCache::insert: kv has {} K layers but {} V layers",
                                        kv.k.size(), kv.v.size()));
    for (const auto* side : {&kv.k, &kv.v})
      for (std::size_t l = 0; l < side->size(); ++l) {
        const at::Tensor& t = (*side)[l];
        if (!t.defined() || t.dim() != 3 || t.size(1) != len)
          throw InvalidArgument(fmt::format(
              "PrefixCache::insert: kv.{}[{}] must be [heads, {}, head_dim], got {}",
              side == &kv.k ? "k" : "v", l, len,
              t.defined() ? fmt::format("{}-d with size(1) = {}", t.dim(),
                                        t.dim() >= 2 ? t.size(1) : -1)
                          : std::string("undefined")));
      }
  }

  Match m;
  std::lock_guard lock(impl_->mu);
  Impl& s = *impl_;
  if (len > 0 && s.layers != 0 && kv.k.size() != s.layers)
    throw InvalidArgument(
        fmt::format("PrefixCache::insert: kv has {} layers but the cached segments have {}",
                    kv.k.size(), s.layers));

  std::vector<Impl::Step> path;
  const std::int64_t pos = s.walk(tokens, path);
  if (pos < from)
    throw InvalidArgument(fmt::format(
        "PrefixCache::insert: tokens[0, {}) must be cached but only {} are (keep the match's "
        "lock until the insert)",
        from, pos));

  if (pos < n) {
    // tokens[pos, n) are new; kv[pos - from, len) is their KV, the head of kv duplicates
    // what is cached already.
    Node* parent = &s.root;
    if (!path.empty()) {
      Impl::Step& last = path.back();
      if (last.used < static_cast<std::int64_t>(last.node->key.size())) {
        // Diverges inside the edge: split it; the head is the new branch point.
        Node* head = s.split(last.node, last.used);
        last.node = head;
      }
      parent = last.node;
    }
    auto leaf = std::make_unique<Node>();
    leaf->key.assign(tokens.begin() + pos, tokens.end());
    if (pos == from)
      leaf->seg = std::make_shared<const KVSegment>(std::move(kv));
    else
      leaf->seg = seg_slice(kv, pos - from, n - pos);
    leaf->bytes = segment_bytes(*leaf->seg);
    leaf->parent = parent;
    leaf->id = s.next_id++;
    Node* raw = leaf.get();
    parent->children.emplace(leaf->key.front(), std::move(leaf));
    s.refresh(parent);  // no longer a leaf
    s.bytes += raw->bytes;
    s.tokens += n - pos;
    ++s.nodes;
    s.stats.inserted_tokens += n - pos;
    if (s.layers == 0) s.layers = raw->seg->k.size();
    path.push_back({raw, n - pos});
  }
  s.stats.peak_bytes = std::max(s.stats.peak_bytes, s.bytes);

  m.matched = n;
  if (!path.empty()) {
    m.segments = Impl::segments(path);
    s.touch(path);
    s.pin(path.back().node);
    m.lock = Handle(impl_, path.back().node);
  }
  s.evict_to_cap();  // the new path is pinned: it survives its own insert
  return m;
}

std::int64_t PrefixCache::bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->bytes;
}

std::int64_t PrefixCache::max_bytes() const { return impl_->max_bytes; }

std::int64_t PrefixCache::nodes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->nodes;
}

std::int64_t PrefixCache::tokens() const {
  std::lock_guard lock(impl_->mu);
  return impl_->tokens;
}

PrefixCache::Stats PrefixCache::stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

void PrefixCache::clear() {
  c10::InferenceMode guard;
  std::lock_guard lock(impl_->mu);
  impl_->clear_below(&impl_->root);
  if (impl_->nodes == 0) impl_->layers = 0;
}

}  // namespace qstar::lm
