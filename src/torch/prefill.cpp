// Prefix-sharing prefill planning. See prefill.hpp.
#include "torch/prefill.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace qstar::lm {

std::int64_t common_prefix(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return static_cast<std::int64_t>(i);
}

namespace {

using Seq = std::vector<std::int32_t>;

std::vector<Seq> each_prefix(std::span<const Seq* const> seqs, PrefixCache& cache,
                             const PrefixSharing& sharing) {
  const std::int64_t min = sharing.min_tokens;
  std::vector<Seq> shared;  // candidates
  if (min < 0) return shared;
  for (std::size_t i = 0; i + 1 < seqs.size(); ++i) {
    const Seq& a = *seqs[i];
    const Seq& b = *seqs[i + 1];
    std::size_t lim = std::min(a.size(), b.size());
    if (sharing.keep_last_token) lim = lim > 0 ? lim - 1 : 0;
    const auto l = static_cast<std::size_t>(
        common_prefix(std::span<const std::int32_t>(a.data(), lim), std::span(b)));
    if (static_cast<std::int64_t>(l) < min) continue;
    const std::int64_t m = cache.match(std::span<const std::int32_t>(a.data(), l)).matched;
    if (static_cast<std::int64_t>(l) - m >= min)
      shared.emplace_back(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(l));
  }
  std::sort(shared.begin(), shared.end());
  shared.erase(std::unique(shared.begin(), shared.end()), shared.end());
  std::vector<Seq> out;  // the minimal ones
  for (std::size_t i = 0; i < shared.size(); ++i) {
    bool minimal = true;
    for (std::size_t k = 0; k < shared.size() && minimal; ++k)
      minimal = !(k != i && shared[k].size() < shared[i].size() &&
                  std::equal(shared[k].begin(), shared[k].end(), shared[i].begin()));
    if (minimal) out.push_back(shared[i]);
  }
  return out;
}

std::vector<Seq> total_saving(std::span<const Seq* const> seqs, std::span<const std::int64_t> cached,
                              const PrefixSharing& sharing) {
  const std::size_t J = seqs.size();
  if (sharing.min_tokens < 0 || J < 2) return {};
  std::vector<std::size_t> order(J);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return *seqs[a] < *seqs[b]; });
  std::vector<std::int64_t> shared(J, 0);
  for (std::size_t k = 1; k < J; ++k) {
    const std::size_t a = order[k - 1], b = order[k];
    std::int64_t l = common_prefix(*seqs[a], *seqs[b]);
    if (sharing.keep_last_token)
      l = std::min<std::int64_t>(
          l, static_cast<std::int64_t>(std::min(seqs[a]->size(), seqs[b]->size())) - 1);
    shared[a] = std::max(shared[a], l);
    shared[b] = std::max(shared[b], l);
  }
  // Prefix -> its uncached length. Saving = the shared tokens the sequences would compute
  // each, minus those computed once.
  std::map<Seq, std::int64_t> prefixes;
  std::int64_t each = 0;
  for (std::size_t j = 0; j < J; ++j)
    if (shared[j] > cached[j]) {
      each += shared[j] - cached[j];
      prefixes.emplace(Seq(seqs[j]->begin(), seqs[j]->begin() + shared[j]), shared[j] - cached[j]);
    }
  std::int64_t once = 0;
  for (const auto& [pfx, n] : prefixes) once += n;
  std::vector<Seq> out;
  if (!prefixes.empty() && each - once > 0 && each - once >= sharing.min_tokens)
    for (const auto& kv : prefixes) out.push_back(kv.first);
  return out;
}

}  // namespace

std::vector<std::vector<std::int32_t>> plan_shared_prefixes(
    std::span<const std::vector<std::int32_t>* const> seqs, std::span<const std::int64_t> cached,
    PrefixCache& cache, const PrefixSharing& sharing) {
  if (sharing.rule == PrefixSharing::Rule::EachPrefix) return each_prefix(seqs, cache, sharing);
  return total_saving(seqs, cached, sharing);
}

}  // namespace qstar::lm
