// Internal, torch-typed: the shared-prefix KV cache of the LibTorch backend. Not a public
// header: include it only from src/torch/*.cpp and tests (it pulls in ATen).
//
// A radix tree keyed by token-id sequences, in the manner of SGLang's RadixAttention (and
// llama.cpp's forkable KV sequences, seq_cp/seq_rm): every edge holds the token ids of a run
// of consecutive tokens and a SEGMENT, the KV of exactly those tokens for every layer
// (KVSegment, defined with the decoder interface in torch/decoder.hpp: k[l], v[l] are
// [n_kv_heads, seg_len, head_dim]). The KV of a sequence is the ordered list of segments on
// the path from the root, which is what Decoder::forward takes as a sequence's `past`;
// the forward's new tokens' KV comes back as one new segment, which insert() stores. Siblings
// share their parent's segments: a prefix is computed once and reused by every continuation.
//
// Usage (under a c10::InferenceMode guard, like all KV work):
//   auto hit = cache.match(tokens);                      // pins the matched path
//   SequenceInput in{hit.past(), {tokens.begin() + hit.matched, tokens.end()}};
//   auto out = model.forward({&in, 1});                  // the new tokens' KV
//   auto full = cache.insert(tokens, hit.matched, std::move(out[0].kv));  // pins it all
//   hit = {};                                            // drop the first pin
// Keep the match's lock until insert() returns: insert() requires tokens[0, from) to still
// be cached and throws InvalidArgument otherwise (an unpinned prefix may have been evicted).
//
// Semantics:
//  * match(): the longest cached prefix. When it ends inside an edge, the last segment is a
//    narrowed view (no copy) of that edge's segment covering only the matched tokens.
//  * insert(tokens, from, kv): kv holds the KV of tokens[from, size). An edge is split
//    (two views of the same storage) where the new sequence diverges inside it. Tokens that
//    are already cached (another insert got there first, or a re-insert) keep their existing
//    KV and the duplicate part of `kv` is dropped, so bytes never double count.
//  * Pinning: a Match pins every node on its path (never evicted, never cleared) until its
//    `lock` handle is released or destroyed. Handles may outlive the PrefixCache object.
//  * Eviction: after every insert() and every lock release, least-recently-used unpinned
//    LEAF nodes are evicted until bytes() <= max_bytes(); a parent becomes a leaf, and so
//    evictable, once its children are gone. Recency is a monotonically increasing counter
//    touched by match() and insert() on every node of the path (root to leaf, so a parent is
//    never more recent than the child it was touched through); ties cannot happen and the
//    choice never depends on pointer values or hash order: eviction is deterministic. When
//    everything left is pinned the cache stays over the cap (it never throws and never
//    evicts a pinned node), counts it in Stats::over_cap, and tries again on the next insert
//    or release. So bytes() <= max_bytes() holds whenever no Match is alive.
//  * Byte accounting: every node counts its own token slice, numel * element size summed
//    over its K and V tensors of all layers, even when the segment is a view of a larger
//    storage (after a split, or when insert dropped a duplicate head of `kv`). The storage
//    behind such views is freed only when the last view of it goes, so real memory can
//    briefly exceed bytes() until the sibling views are evicted too; segments that callers
//    still hold (Match::segments are shared_ptrs) also stay alive after an eviction.
//
// Thread safety: one mutex guards every public method and every lock release; the object
// may be shared between threads. Segments handed out are immutable (shared_ptr<const>).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <ATen/ATen.h>

#include "torch/decoder.hpp"  // KVSegment

namespace qstar::lm {

class PrefixCache {
  struct Impl;
  struct Node;

 public:
  /// RAII pin on a path of the tree (see Match). Move-only; default-constructed = pins
  /// nothing. Releasing may evict (the cache re-checks its cap).
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept;
    Handle& operator=(Handle&& other) noexcept;
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle();

    /// Unpins now (idempotent).
    void release();
    /// True while it pins something.
    bool active() const { return node_ != nullptr; }
    explicit operator bool() const { return active(); }

   private:
    friend class PrefixCache;
    Handle(std::shared_ptr<Impl> impl, Node* node) : impl_(std::move(impl)), node_(node) {}
    std::shared_ptr<Impl> impl_;
    Node* node_ = nullptr;
  };

  /// A cached prefix: `segments` in token order; their lengths sum to `matched`.
  struct Match {
    std::vector<std::shared_ptr<const KVSegment>> segments;
    /// Tokens covered (a prefix of the query).
    std::int64_t matched = 0;
    /// Pins every node on the path while active (inactive when matched == 0).
    Handle lock;

    /// The segments as the non-owning list SequenceInput::past takes (valid while this
    /// Match, or another owner of the segments, lives).
    std::vector<const KVSegment*> past() const;
  };

  struct Stats {
    std::int64_t lookups = 0;          ///< match() calls
    std::int64_t hit_tokens = 0;       ///< sum of Match::matched over match() calls
    std::int64_t miss_tokens = 0;      ///< sum of (query length - matched) over match() calls
    std::int64_t inserted_tokens = 0;  ///< tokens newly stored by insert() (duplicates excluded)
    std::int64_t evicted_tokens = 0;   ///< tokens dropped by eviction (not by clear())
    std::int64_t evictions = 0;        ///< nodes dropped by eviction
    std::int64_t over_cap = 0;  ///< eviction passes that ended above the cap (all pinned)
    std::int64_t peak_bytes = 0;  ///< largest bytes() seen (right after an insert)
  };

  /// `max_bytes` caps bytes(); 0 means unlimited. InvalidArgument when negative.
  explicit PrefixCache(std::int64_t max_bytes = 0);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  /// Longest cached prefix of `tokens`, pinned (see Match). Touches the path's recency.
  Match match(std::span<const std::int32_t> tokens);

  /// Stores the KV of tokens[from, tokens.size()) given that tokens[0, from) are cached
  /// (`from` is typically a previous match's `matched`, whose lock is still held), then
  /// evicts down to the cap, and returns the pinned Match of the whole sequence.
  /// InvalidArgument (the cache unchanged) when `from` is out of [0, size], when tokens[0,
  /// from) are not all cached, or when `kv` is malformed: its length must be size - from,
  /// with K and V of equally many layers (the same count as the segments already stored),
  /// every tensor 3-d [heads, length, head_dim]. When size == from `kv` may be empty.
  Match insert(std::span<const std::int32_t> tokens, std::int64_t from, KVSegment kv);

  /// Bytes accounted to the stored segments (see the byte accounting note above).
  std::int64_t bytes() const;
  std::int64_t max_bytes() const;
  /// Stored nodes (edges), the root excluded.
  std::int64_t nodes() const;
  /// Distinct tokens stored (the sum of the edges' lengths).
  std::int64_t tokens() const;
  Stats stats() const;
  /// Drops every unpinned node (pinned paths stay). Not counted as evictions.
  void clear();

  /// numel * element size over all of `seg`'s K and V tensors (views count their own
  /// extent, not their storage's): the accounting rule of bytes().
  static std::int64_t segment_bytes(const KVSegment& seg);

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace qstar::lm
