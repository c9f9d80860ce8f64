// `qstar serve --search ALGO`: search as an OpenAI-compatible service. Every request to
// POST /v1/chat/completions or /v1/completions is one problem of the task; a dispatcher
// thread collects the requests that arrive together and runs ONE search over all of them
// (the search engine batches the plug-in calls of all problems), then answers each with
// the selected answer as the completion and the search's statistics in a "qstar" field.
// The protocol, limits and errors are documented in docs/serving.md ("Search as a
// service"); the command line is src/app/serve_search.cpp. No cpp-httplib include here
// (PImpl, src/app/search_service.cpp).
//
// Batching and determinism. A search's random streams derive from (seed, problem id,
// problem text), never from the other problems searched with it (the core's batch
// invariance), so with batch-invariant plug-ins (the programmatic proposer, the oracle) a
// request's answer and counters equal a solo search of its problem with the same seed
// (`qstar solve --json` with the same flags) whatever else was batched with it; LibTorch
// models can differ in float rounding with batch composition. Requests with different per-request settings (seed, budget n, max_tokens, tree) are
// searched in separate searches of the same dispatcher round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qstar/core/types.hpp"
#include "qstar/search/result.hpp"

namespace qstar::cli {

/// The per-request settings a search runs with (requests with equal settings share a search).
struct SearchSettings {
  int n = 16;                      ///< the algorithm's budget knob N
  std::uint64_t seed = 0;          ///< the search's seed
  std::int64_t max_tokens = 0;     ///< generated-token budget per problem (0: the server's)
  bool keep_tree = false;          ///< return the tree ("qstar": {"tree": true})
  bool operator==(const SearchSettings&) const = default;
};

/// Service settings. validate() throws InvalidArgument naming the field.
struct SearchServiceParams {
  /// Interface to bind; loopback by default.
  std::string host = "127.0.0.1";
  /// Port (0: any free port; SearchService::port() tells which).
  int port = 8000;
  /// The model name reported in replies and GET /v1/models.
  std::string served_model_name = "qstar-search";
  /// The algorithm's name, reported in every reply's "qstar" field.
  std::string algo;
  /// Defaults of the per-request settings (the command line's --n and --seed).
  SearchSettings defaults;
  /// Largest budget n a request may ask for ("qstar": {"n": N}), >= defaults.n.
  int max_n = 256;
  /// Largest "max_tokens" a request may give (>= 1).
  std::int64_t max_tokens = std::int64_t{1} << 40;
  /// Bytes of problem text (prompt or message content) per request at most (400 above).
  std::size_t max_prompt_bytes = std::size_t{1} << 16;
  /// Request body bytes at most (413 above).
  std::size_t max_body_bytes = std::size_t{1} << 20;
  /// Messages in a chat request at most (400 above).
  std::size_t max_messages = 256;
  /// How long the dispatcher waits after a request arrives for others to join (ms, >= 0).
  double batch_window_ms = 20.0;
  /// Problems per dispatcher round at most (>= 1).
  std::size_t max_batch = 64;
  /// Requests waiting at most (>= 1); a request beyond them is answered 503.
  std::size_t max_queue = 1024;
  /// HTTP handler threads (>= 1): connections served at once.
  int threads = 64;
  /// When set: an environment variable holding the API key every request except GET /health
  /// must send as "Authorization: Bearer <key>" (else 401). Read at start; must be set.
  std::string api_key_env;

  void validate() const;
};

/// Counters since start.
struct SearchServiceStats {
  std::int64_t http_requests = 0;  ///< requests answered (any status)
  std::int64_t bad_requests = 0;   ///< 4xx answers
  std::int64_t problems = 0;       ///< problems searched
  std::int64_t rounds = 0;         ///< dispatcher rounds
  std::int64_t searches = 0;       ///< searches run (one per distinct settings per round)
  std::int64_t max_batch_seen = 0; ///< most problems in one search
};

/// Turns a request's text into a problem; throws (ParseError, InvalidArgument) when malformed.
using ProblemParser = std::function<Problem(const std::string& text)>;
/// Runs one search over `problems` with `settings`; the results are in the problems' order.
using SearchRunner =
    std::function<std::vector<SearchResult>(std::span<const Problem> problems, const SearchSettings& settings)>;

class SearchService {
 public:
  /// Validates, binds and starts the listener and the dispatcher. InvalidArgument naming the
  /// field; Error when the address cannot be bound.
  static std::unique_ptr<SearchService> start(SearchServiceParams params, ProblemParser parse,
                                              SearchRunner search);
  ~SearchService();
  SearchService(const SearchService&) = delete;
  SearchService& operator=(const SearchService&) = delete;

  int port() const;
  /// Stops accepting, answers the requests already received (their searches finish), then
  /// returns. Idempotent.
  void stop();
  SearchServiceStats stats() const;

  struct Impl;

 private:
  explicit SearchService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qstar::cli
