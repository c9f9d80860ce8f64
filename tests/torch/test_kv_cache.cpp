// The shared-prefix KV cache (src/torch/kv_cache.*): matches, edge splits, duplicates,
// pinning, LRU eviction under a byte cap, and a random stress test against a brute-force
// reference. The KV tensors are fake: every value encodes the whole token prefix up to its
// position (a hash), the layer, the head, the dim and K/V, so any KV served from the wrong
// branch, position or layer shows up as a mismatch.
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <span>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "qstar/error.hpp"
#include "torch/kv_cache.hpp"
#include "torch/prefill.hpp"

// doctest goes AFTER the torch headers (glog's CHECK; see test_model.cpp).
#include <doctest/doctest.h>
#undef CHECK
#define CHECK(...) DOCTEST_CHECK(__VA_ARGS__)

using qstar::lm::KVSegment;
using qstar::lm::PrefixCache;
using Tokens = std::vector<std::int32_t>;

namespace {

constexpr int kLayers = 2;
constexpr int kHeads = 2;
constexpr int kDim = 3;
// Bytes per token: K and V, every layer, heads x dim doubles.
constexpr std::int64_t kTokBytes = 2LL * kLayers * kHeads * kDim * 8;

// Hash of tokens[0, p] (inclusive): the "context" of position p.
std::uint64_t prefix_hash(std::span<const std::int32_t> tokens, std::size_t p) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::size_t i = 0; i <= p; ++i) h = (h ^ static_cast<std::uint64_t>(tokens[i] + 7)) * 1099511628211ULL;
  return h;
}

// The fake KV of tokens[from, to): value(layer, kv, head, pos, dim) is exact in double.
KVSegment fake_kv(std::span<const std::int32_t> tokens, std::int64_t from, std::int64_t to) {
  KVSegment seg;
  const std::int64_t t = to - from;
  for (int side = 0; side < 2; ++side)
    for (int l = 0; l < kLayers; ++l) {
      at::Tensor x = at::empty({kHeads, t, kDim}, at::kDouble);
      double* d = x.data_ptr<double>();
      for (int h = 0; h < kHeads; ++h)
        for (std::int64_t i = 0; i < t; ++i) {
          const auto ctx = static_cast<double>(prefix_hash(tokens, static_cast<std::size_t>(from + i)) % (1u << 24));
          for (int c = 0; c < kDim; ++c)
            d[(h * t + i) * kDim + c] = ctx * 128.0 + l * 32 + h * 8 + c * 2 + side;
        }
      (side == 0 ? seg.k : seg.v).push_back(x);
    }
  return seg;
}

// The match's segments, concatenated along the token dim, equal the fake KV of the matched
// prefix exactly, and their lengths sum to `matched`.
bool segs_ok(const std::vector<std::shared_ptr<const KVSegment>>& segs,
             std::span<const std::int32_t> tokens, std::int64_t matched) {
  if (matched == 0) return segs.empty();
  std::int64_t total = 0;
  for (const auto& s : segs) {
    if (!s || s->k.size() != kLayers || s->v.size() != kLayers) return false;
    if (s->k[0].size(1) == 0) return false;  // no empty segments
    total += s->k[0].size(1);
  }
  if (total != matched) return false;
  const KVSegment want = fake_kv(tokens, 0, matched);
  for (int side = 0; side < 2; ++side)
    for (int l = 0; l < kLayers; ++l) {
      std::vector<at::Tensor> parts;
      for (const auto& s : segs) parts.push_back(side == 0 ? s->k[l] : s->v[l]);
      const at::Tensor& w = side == 0 ? want.k[l] : want.v[l];
      if (!at::equal(at::cat(parts, 1), w)) return false;
    }
  return true;
}

bool kv_ok(const PrefixCache::Match& m, std::span<const std::int32_t> tokens) {
  if (m.lock.active() != (m.matched > 0)) return false;
  return segs_ok(m.segments, tokens, m.matched);
}

PrefixCache::Match put(PrefixCache& cache, const Tokens& t, std::int64_t from) {
  return cache.insert(t, from, fake_kv(t, from, static_cast<std::int64_t>(t.size())));
}

// Match + insert of the remainder, the way the generator uses the cache.
PrefixCache::Match add(PrefixCache& cache, const Tokens& t) {
  auto hit = cache.match(t);
  return put(cache, t, hit.matched);
}

}  // namespace

TEST_CASE("PrefixCache: empty cache misses") {
  c10::InferenceMode guard;
  PrefixCache cache;
  const Tokens t{1, 2, 3};
  auto m = cache.match(t);
  CHECK(m.matched == 0);
  CHECK(m.segments.empty());
  CHECK_FALSE(m.lock.active());
  CHECK(cache.bytes() == 0);
  CHECK(cache.nodes() == 0);
  auto e = cache.match(Tokens{});
  CHECK(e.matched == 0);
  CHECK(cache.stats().lookups == 2);
  CHECK(cache.stats().miss_tokens == 3);
  CHECK_THROWS_AS(PrefixCache(-1), qstar::InvalidArgument);
}

TEST_CASE("PrefixCache: insert, then exact and partial matches") {
  c10::InferenceMode guard;
  PrefixCache cache;
  const Tokens t{5, 6, 7, 8, 9};
  {
    auto ins = put(cache, t, 0);
    CHECK(ins.matched == 5);
    CHECK(kv_ok(ins, t));
  }
  CHECK(cache.bytes() == 5 * kTokBytes);
  CHECK(cache.nodes() == 1);
  CHECK(cache.tokens() == 5);

  auto exact = cache.match(t);
  CHECK(exact.matched == 5);
  CHECK(exact.segments.size() == 1);
  CHECK(kv_ok(exact, t));

  // Longer query: the whole cached prefix.
  const Tokens longer{5, 6, 7, 8, 9, 1, 2};
  auto lm = cache.match(longer);
  CHECK(lm.matched == 5);
  CHECK(kv_ok(lm, longer));

  // Ends inside the edge: a narrowed view of the first 3 tokens.
  const Tokens part{5, 6, 7};
  auto pm = cache.match(part);
  CHECK(pm.matched == 3);
  REQUIRE(pm.segments.size() == 1);
  CHECK(pm.segments[0]->k[0].size(1) == 3);
  CHECK(kv_ok(pm, part));
  // A view, not a copy: it shares the stored segment's memory.
  CHECK(pm.segments[0]->k[0].data_ptr() == exact.segments[0]->k[0].data_ptr());

  // Diverging inside the edge (no split on a match).
  const Tokens div{5, 6, 1};
  auto dm = cache.match(div);
  CHECK(dm.matched == 2);
  CHECK(kv_ok(dm, div));
  CHECK(cache.nodes() == 1);

  // Different first token: miss.
  CHECK(cache.match(Tokens{6, 5}).matched == 0);

  // Extending the sequence adds a child edge.
  const Tokens ext{5, 6, 7, 8, 9, 10, 11};
  {
    auto hit = cache.match(ext);
    CHECK(hit.matched == 5);
    auto ins = put(cache, ext, hit.matched);
    CHECK(ins.matched == 7);
    CHECK(ins.segments.size() == 2);
    CHECK(kv_ok(ins, ext));
  }
  CHECK(cache.nodes() == 2);
  CHECK(cache.bytes() == 7 * kTokBytes);
  auto em = cache.match(ext);
  CHECK(kv_ok(em, ext));
  // The past() list mirrors the segments.
  auto past = em.past();
  REQUIRE(past.size() == 2);
  CHECK(past[1] == em.segments[1].get());
}

TEST_CASE("PrefixCache: divergence splits an edge, both branches keep the right KV") {
  c10::InferenceMode guard;
  PrefixCache cache;
  const Tokens a{1, 2, 3, 4, 5, 6};
  const Tokens b{1, 2, 3, 9, 9};
  put(cache, a, 0);
  {
    auto hit = cache.match(b);
    CHECK(hit.matched == 3);
    CHECK(kv_ok(hit, b));
    auto ins = put(cache, b, hit.matched);
    CHECK(ins.matched == 5);
    CHECK(ins.segments.size() == 2);
    CHECK(kv_ok(ins, b));
  }
  CHECK(cache.nodes() == 3);  // [1,2,3] -> {[4,5,6], [9,9]}
  CHECK(cache.tokens() == 8);
  CHECK(cache.bytes() == 8 * kTokBytes);
  auto ma = cache.match(a);
  CHECK(ma.matched == 6);
  CHECK(ma.segments.size() == 2);
  CHECK(kv_ok(ma, a));
  auto mb = cache.match(b);
  CHECK(mb.matched == 5);
  CHECK(kv_ok(mb, b));
  // The shared head is one segment object for both branches.
  CHECK(ma.segments[0] == mb.segments[0]);
  // Split at a point where the new sequence also ends inside the old edge's tail.
  const Tokens c{1, 2, 3, 4, 7};
  auto mc = add(cache, c);
  CHECK(kv_ok(mc, c));
  CHECK(cache.nodes() == 5);  // [1,2,3] -> {[4] -> {[5,6], [7]}, [9,9]}
  CHECK(cache.bytes() == 9 * kTokBytes);
  CHECK(kv_ok(cache.match(a), a));
  CHECK(kv_ok(cache.match(b), b));
  CHECK(kv_ok(cache.match(c), c));
  // Insert at the root level with a fresh first token, and a prefix of an edge (no change).
  const Tokens d{1, 2};
  auto md = add(cache, d);
  CHECK(md.matched == 2);
  CHECK(kv_ok(md, d));
  CHECK(cache.nodes() == 5);
  CHECK(cache.bytes() == 9 * kTokBytes);
}

TEST_CASE("PrefixCache: re-inserting does not duplicate bytes") {
  c10::InferenceMode guard;
  PrefixCache cache;
  const Tokens t{3, 1, 4, 1, 5, 9, 2, 6};
  put(cache, t, 0);
  const auto bytes = cache.bytes();
  // The full KV again from 0 (a concurrent computation of the same sequence).
  {
    auto again = put(cache, t, 0);
    CHECK(again.matched == 8);
    CHECK(kv_ok(again, t));
  }
  CHECK(cache.bytes() == bytes);
  CHECK(cache.nodes() == 1);
  // Partly new: tokens[0, 3) cached by the caller's view, tokens[3, 10) given, [3, 8) dup.
  Tokens u = t;
  u.push_back(5);
  u.push_back(3);
  {
    auto ins = put(cache, u, 3);
    CHECK(ins.matched == 10);
    CHECK(kv_ok(ins, u));
  }
  CHECK(cache.bytes() == bytes + 2 * kTokBytes);
  CHECK(cache.nodes() == 2);
  CHECK(cache.stats().inserted_tokens == 10);
  // Re-inserting a prefix that ends inside an edge: nothing stored.
  const Tokens p{3, 1, 4};
  auto mp = put(cache, p, 0);
  CHECK(mp.matched == 3);
  CHECK(kv_ok(mp, p));
  CHECK(cache.bytes() == bytes + 2 * kTokBytes);
  CHECK(cache.nodes() == 2);
  CHECK(kv_ok(cache.match(u), u));
}

TEST_CASE("PrefixCache: malformed inserts are rejected and leave the cache unchanged") {
  c10::InferenceMode guard;
  PrefixCache cache;
  const Tokens t{1, 2, 3, 4};
  CHECK_THROWS_AS(cache.insert(t, 5, KVSegment{}), qstar::InvalidArgument);
  CHECK_THROWS_AS(cache.insert(t, -1, KVSegment{}), qstar::InvalidArgument);
  // Wrong length.
  CHECK_THROWS_AS(cache.insert(t, 0, fake_kv(t, 0, 3)), qstar::InvalidArgument);
  // Prefix not cached.
  CHECK_THROWS_AS(cache.insert(t, 2, fake_kv(t, 2, 4)), qstar::InvalidArgument);
  // K/V layer mismatch.
  KVSegment bad = fake_kv(t, 0, 4);
  bad.v.pop_back();
  CHECK_THROWS_AS(cache.insert(t, 0, bad), qstar::InvalidArgument);
  // A 2-d tensor.
  KVSegment flat = fake_kv(t, 0, 4);
  flat.k[1] = flat.k[1].reshape({-1, kDim});
  CHECK_THROWS_AS(cache.insert(t, 0, flat), qstar::InvalidArgument);
  CHECK(cache.bytes() == 0);
  CHECK(cache.nodes() == 0);
  put(cache, t, 0);
  // A different layer count than what is stored.
  const Tokens u{7, 7};
  KVSegment one = fake_kv(u, 0, 2);
  one.k.pop_back();
  one.v.pop_back();
  CHECK_THROWS_AS(cache.insert(u, 0, one), qstar::InvalidArgument);
  CHECK(cache.nodes() == 1);
  CHECK(cache.bytes() == 4 * kTokBytes);
  // An empty insert of a cached sequence is fine.
  auto m = cache.insert(t, 4, KVSegment{});
  CHECK(kv_ok(m, t));
}

TEST_CASE("PrefixCache: LRU eviction order under a byte cap") {
  c10::InferenceMode guard;
  PrefixCache cache(8 * kTokBytes);
  CHECK(cache.max_bytes() == 8 * kTokBytes);
  const Tokens x{1, 1, 1, 1};
  const Tokens y{1, 1, 1, 1, 2, 2};
  const Tokens z{3, 3};
  const Tokens w{4, 4};
  const Tokens big{5, 5, 5, 5};
  add(cache, x);
  add(cache, y);  // X -> Y
  add(cache, z);
  CHECK(cache.bytes() == 8 * kTokBytes);
  CHECK(cache.stats().evictions == 0);
  // Touch X (not a leaf): Y is now the least recently used leaf.
  cache.match(x);
  add(cache, w);  // 10 tokens: evicts Y only
  CHECK(cache.bytes() == 8 * kTokBytes);
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.match(y).matched == 4);  // touches X again
  CHECK(cache.match(z).matched == 2);  // Z now more recent than X
  CHECK(cache.match(w).matched == 2);
  // Leaves by recency: X (oldest, now a leaf), Z, W. Inserting 4 tokens (12 > 8) evicts X.
  add(cache, big);
  CHECK(cache.stats().evictions == 2);
  CHECK(cache.match(x).matched == 0);
  CHECK(cache.match(z).matched == 2);
  CHECK(cache.match(w).matched == 2);
  CHECK(cache.match(big).matched == 4);
  CHECK(cache.bytes() <= cache.max_bytes());
}

TEST_CASE("PrefixCache: parents are evicted after their children") {
  c10::InferenceMode guard;
  PrefixCache cache(8 * kTokBytes);
  const Tokens x{1, 1, 1, 1};
  const Tokens y{1, 1, 1, 1, 2, 2};
  const Tokens z{3, 3};
  const Tokens w{4, 4};
  const Tokens v{5, 5, 5, 5};
  add(cache, x);
  add(cache, y);
  add(cache, z);
  cache.match(x);  // X newer than Y and Z, but X is not a leaf
  add(cache, w);   // evicts Y (the oldest leaf); X becomes a leaf
  CHECK(cache.match(y).matched == 4);
  CHECK(cache.nodes() == 3);
  // Leaf recency now: Z < W < X (just touched). A 4-token insert evicts Z then W.
  add(cache, v);
  CHECK(cache.match(z).matched == 0);
  CHECK(cache.match(w).matched == 0);
  CHECK(cache.match(x).matched == 4);
  CHECK(cache.match(v).matched == 4);
  CHECK(cache.stats().evictions == 3);
  CHECK(cache.stats().evicted_tokens == 2 + 2 + 2);
  CHECK(cache.bytes() == 8 * kTokBytes);
  // A deep chain goes leaf first, one edge at a time.
  PrefixCache chain(6 * kTokBytes);
  const Tokens c1{9, 9};
  const Tokens c2{9, 9, 8, 8};
  const Tokens c3{9, 9, 8, 8, 7, 7};
  add(chain, c1);
  add(chain, c2);
  add(chain, c3);
  CHECK(chain.nodes() == 3);
  add(chain, Tokens{6, 6});  // evicts [7,7] only
  CHECK(chain.nodes() == 3);
  CHECK(chain.tokens() == 6);
  // Needs 4 tokens gone: the leaf [8,8], then its parent [9,9] (now the oldest leaf, older
  // than [6,6]).
  add(chain, Tokens{5, 5, 5, 5});
  CHECK(chain.nodes() == 2);
  CHECK(chain.bytes() == 6 * kTokBytes);
  CHECK(chain.match(c3).matched == 0);
  CHECK(chain.match(Tokens{6, 6}).matched == 2);
  CHECK(chain.stats().evicted_tokens == 6);
}

TEST_CASE("PrefixCache: pinned nodes are never evicted") {
  c10::InferenceMode guard;
  PrefixCache cache(4 * kTokBytes);
  const Tokens a{1, 2, 3, 4};
  const Tokens b{5, 6, 7, 8};
  const Tokens c{9, 9};
  auto held = add(cache, a);  // pinned
  CHECK(kv_ok(held, a));
  {
    auto mb = add(cache, b);  // over the cap: both pinned, nothing evictable
    CHECK(cache.bytes() == 8 * kTokBytes);
    CHECK(cache.stats().over_cap >= 1);
    CHECK(cache.stats().evictions == 0);
    CHECK(kv_ok(mb, b));
  }
  // b's lock is gone: its release evicted it (a is still pinned).
  CHECK(cache.bytes() == 4 * kTokBytes);
  CHECK(cache.match(b).matched == 0);
  CHECK(kv_ok(cache.match(a), a));
  // Another insert past the cap while `a` is held: `a` survives, c goes when released.
  add(cache, c);
  CHECK(kv_ok(cache.match(a), a));
  CHECK(cache.bytes() == 4 * kTokBytes);
  // clear() keeps the pinned path.
  auto hc = add(cache, c);  // over the cap while both are held
  CHECK(cache.bytes() == 6 * kTokBytes);
  hc.lock.release();
  CHECK_FALSE(hc.lock.active());
  CHECK(cache.bytes() == 4 * kTokBytes);  // c evicted at release
  // Pinned partial edge: a match inside an edge pins the whole edge.
  auto part = cache.match(Tokens{1, 2});
  const auto kept = held.segments;
  held = PrefixCache::Match{};  // releases a's first pin
  CHECK_FALSE(held.lock.active());
  add(cache, b);
  CHECK(kv_ok(cache.match(a), a));
  CHECK(cache.match(b).matched == 0);
  cache.clear();
  CHECK(cache.nodes() == 1);
  CHECK(kv_ok(cache.match(a), a));
  part = PrefixCache::Match{};
  cache.clear();
  CHECK(cache.nodes() == 0);
  CHECK(cache.bytes() == 0);
  // Segments the caller holds stay valid after their nodes are gone.
  CHECK(segs_ok(kept, a, 4));
}

TEST_CASE("PrefixCache: a handle may outlive the cache") {
  c10::InferenceMode guard;
  PrefixCache::Match m;
  const Tokens t{1, 2, 3};
  {
    PrefixCache cache(kTokBytes);
    m = add(cache, t);
  }
  CHECK(kv_ok(m, t));
  m.lock.release();
  CHECK(m.segments.size() == 1);
}

TEST_CASE("PrefixCache: stats counters") {
  c10::InferenceMode guard;
  PrefixCache cache(6 * kTokBytes);
  const Tokens a{1, 2, 3, 4};
  const Tokens b{1, 2, 7};
  const Tokens c{8, 8, 8};
  add(cache, a);  // lookup: miss 4; insert 4
  add(cache, b);  // lookup: hit 2, miss 1; insert 1 (split)
  auto s = cache.stats();
  CHECK(s.lookups == 2);
  CHECK(s.hit_tokens == 2);
  CHECK(s.miss_tokens == 5);
  CHECK(s.inserted_tokens == 5);
  CHECK(s.evictions == 0);
  CHECK(s.peak_bytes == 5 * kTokBytes);
  add(cache, c);  // miss 3, insert 3: 8 tokens > 6: evict [3,4] (oldest leaf)
  s = cache.stats();
  CHECK(s.lookups == 3);
  CHECK(s.miss_tokens == 8);
  CHECK(s.inserted_tokens == 8);
  CHECK(s.evictions == 1);
  CHECK(s.evicted_tokens == 2);
  CHECK(s.over_cap == 0);
  CHECK(s.peak_bytes == 8 * kTokBytes);
  CHECK(cache.bytes() == 6 * kTokBytes);
  cache.clear();
  CHECK(cache.stats().evictions == 1);  // clear() is not eviction
  CHECK(cache.bytes() == 0);
}

TEST_CASE("PrefixCache: random stress against a brute-force reference") {
  c10::InferenceMode guard;
  std::mt19937 rng(12345);
  const std::int64_t cap = 40 * kTokBytes;
  PrefixCache cache(cap);
  // Reference: every token prefix ever inserted. A match may be shorter than the longest
  // inserted prefix (eviction) but never longer, and its KV must be exact.
  std::set<Tokens> inserted_prefixes;
  std::deque<std::pair<Tokens, PrefixCache::Match>> held;
  auto random_seq = [&](std::size_t max_len) {
    std::uniform_int_distribution<std::size_t> len_d(1, max_len);
    std::uniform_int_distribution<int> tok_d(0, 3);  // small alphabet: lots of sharing
    Tokens t(len_d(rng));
    for (auto& x : t) x = tok_d(rng);
    return t;
  };
  auto longest_ref = [&](const Tokens& t) {
    std::int64_t best = 0;
    for (std::size_t n = 1; n <= t.size(); ++n)
      if (inserted_prefixes.count(Tokens(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n))))
        best = static_cast<std::int64_t>(n);
    return best;
  };
  std::int64_t checks = 0, failures = 0, matched_total = 0, over_cap_unpinned = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    const int op = std::uniform_int_distribution<int>(0, 9)(rng);
    if (op < 5) {
      // match, then insert the rest (the generator's pattern), sometimes holding the result.
      Tokens t = random_seq(12);
      auto hit = cache.match(t);
      ++checks;
      if (!kv_ok(hit, t) || hit.matched > longest_ref(t)) ++failures;
      auto ins = cache.insert(t, hit.matched, fake_kv(t, hit.matched, static_cast<std::int64_t>(t.size())));
      for (std::size_t n = 1; n <= t.size(); ++n)
        inserted_prefixes.insert(Tokens(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n)));
      ++checks;
      if (ins.matched != static_cast<std::int64_t>(t.size()) || !kv_ok(ins, t)) ++failures;
      if (std::uniform_int_distribution<int>(0, 5)(rng) == 0 && held.size() < 3)
        held.emplace_back(t, std::move(ins));
    } else if (op < 8) {
      Tokens t = random_seq(14);
      auto m = cache.match(t);
      ++checks;
      matched_total += m.matched;
      if (!kv_ok(m, t) || m.matched > longest_ref(t)) ++failures;
    } else if (op == 8) {
      // Insert the full KV from 0 (duplicates must be dropped).
      Tokens t = random_seq(10);
      auto ins = put(cache, t, 0);
      for (std::size_t n = 1; n <= t.size(); ++n)
        inserted_prefixes.insert(Tokens(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n)));
      ++checks;
      if (!kv_ok(ins, t)) ++failures;
    } else if (!held.empty()) {
      held.pop_front();
    }
    // Held (pinned) sequences stay fully cached.
    for (const auto& [t, m] : held) {
      auto again = cache.match(t);
      ++checks;
      if (again.matched != static_cast<std::int64_t>(t.size()) || !kv_ok(again, t) || !kv_ok(m, t))
        ++failures;
    }
    // Accounting: bytes == distinct stored tokens * bytes per token; cap when unpinned.
    if (cache.bytes() != cache.tokens() * kTokBytes) ++failures;
    if (held.empty() && cache.bytes() > cap) ++over_cap_unpinned;
    if (iter % 1000 == 999) {
      held.clear();
      CHECK(cache.bytes() <= cap);
    }
  }
  held.clear();
  CHECK(failures == 0);
  CHECK(over_cap_unpinned == 0);
  CHECK(cache.bytes() <= cap);
  const auto s = cache.stats();
  MESSAGE("stress: checks=" << checks << " matched_tokens=" << matched_total
                            << " nodes=" << cache.nodes() << " bytes=" << cache.bytes()
                            << " evictions=" << s.evictions << " over_cap=" << s.over_cap);
  CHECK(s.evictions > 0);
  CHECK(matched_total > 0);
  cache.clear();
  CHECK(cache.nodes() == 0);
  CHECK(cache.bytes() == 0);
}

TEST_CASE("PrefixCache: random, unlimited: a match is exactly the longest inserted prefix") {
  c10::InferenceMode guard;
  std::mt19937 rng(777);
  PrefixCache cache;  // no cap: nothing is ever evicted
  std::set<Tokens> prefixes;
  std::int64_t failures = 0, distinct = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    Tokens t(std::uniform_int_distribution<std::size_t>(1, 10)(rng));
    for (auto& x : t) x = std::uniform_int_distribution<int>(0, 2)(rng);
    std::int64_t want = 0;
    for (std::size_t n = 1; n <= t.size(); ++n)
      if (prefixes.count(Tokens(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n))))
        want = static_cast<std::int64_t>(n);
    auto hit = cache.match(t);
    if (hit.matched != want || !kv_ok(hit, t)) ++failures;
    if (iter % 2 == 0) {
      auto ins = put(cache, t, hit.matched);
      if (!kv_ok(ins, t)) ++failures;
      for (std::size_t n = 1; n <= t.size(); ++n)
        distinct += prefixes.insert(Tokens(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(n))).second;
    }
    // The tree stores every distinct prefix's last token exactly once.
    if (cache.tokens() != distinct || cache.bytes() != distinct * kTokBytes) ++failures;
  }
  CHECK(failures == 0);
  CHECK(cache.stats().evictions == 0);
  CHECK(cache.stats().inserted_tokens == distinct);
}

TEST_CASE("plan_shared_prefixes: the generator's and the PRM's sharing rules") {
  using qstar::lm::PrefixSharing;
  c10::InferenceMode guard;
  PrefixCache cache;
  // Three contexts: a 20-token preamble, then 1 / 2 / 2 3 ... tokens of their own.
  Tokens pre(20);
  for (int i = 0; i < 20; ++i) pre[static_cast<std::size_t>(i)] = 100 + i;
  auto with = [&](Tokens tail) {
    Tokens t = pre;
    t.insert(t.end(), tail.begin(), tail.end());
    return t;
  };
  const Tokens a = with({1}), b = with({2, 5}), c = with({2, 6});
  const std::vector<const Tokens*> seqs{&a, &b, &c};  // lexicographic order
  const PrefixSharing gen{16, true, PrefixSharing::Rule::EachPrefix};
  auto plan = qstar::lm::plan_shared_prefixes(seqs, {}, cache, gen);
  // Minimal shared prefixes only: the preamble (a/b), not preamble + 2 (b/c, a longer one).
  REQUIRE(plan.size() == 1);
  CHECK(plan[0] == pre);
  // Cached, the preamble no longer counts: preamble + 2 saves 1 token < 16.
  cache.insert(pre, 0, fake_kv(pre, 0, 20));
  CHECK(qstar::lm::plan_shared_prefixes(seqs, {}, cache, gen).empty());
  // keep_last_token: two identical 17-token contexts share only 16 tokens.
  PrefixCache empty;
  const Tokens d(pre.begin(), pre.begin() + 17);
  const std::vector<const Tokens*> twins{&d, &d};
  plan = qstar::lm::plan_shared_prefixes(twins, {}, empty, gen);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].size() == 16);
  CHECK(qstar::lm::plan_shared_prefixes(twins, {}, empty,
                                        PrefixSharing{17, true, PrefixSharing::Rule::EachPrefix})
            .empty());
  // TotalSaving (the PRM): every sequence's longest shared prefix, when the total saving
  // (computed by each, minus once) reaches min_tokens.
  const std::vector<std::int64_t> none{0, 0, 0};
  const PrefixSharing prm{32, false, PrefixSharing::Rule::TotalSaving};
  CHECK(qstar::lm::plan_shared_prefixes(seqs, none, empty, prm).empty());  // saves 20 + 1
  plan = qstar::lm::plan_shared_prefixes(seqs, none, empty,
                                         PrefixSharing{21, false, PrefixSharing::Rule::TotalSaving});
  REQUIRE(plan.size() == 2);  // a's (the preamble) and b's = c's (preamble + 2), sorted
  CHECK(plan[0] == pre);
  CHECK(plan[1] == with({2}));
  // With the preamble cached for everyone nothing is saved any more.
  const std::vector<std::int64_t> cached{20, 20, 20};
  CHECK(qstar::lm::plan_shared_prefixes(seqs, cached, empty,
                                        PrefixSharing{0, false, PrefixSharing::Rule::TotalSaving})
            .size() == 1);  // b/c still share one uncached token
  CHECK(qstar::lm::plan_shared_prefixes(seqs, cached, empty,
                                        PrefixSharing{-1, false, PrefixSharing::Rule::TotalSaving})
            .empty());
}
