// The HTTP transport shared by HttpGenerator and HttpVerifier: concurrent JSON POSTs over
// libcurl easy handles (a pool reused across calls, so connections are kept alive), URL
// balancing, retries with backoff. See include/qstar/http/client.hpp for the policy.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/http/client.hpp"

namespace qstar::http::detail {

/// One reply: the parsed body and the base URL that served it (for error messages). A request
/// that failed softly (see PostOptions) has `error` set, `status` its HTTP status and no body.
struct Reply {
  json::Value body;
  std::string url;
  int status = 200;
  std::string error;  ///< the server's message ("HTTP 500: ..."); empty when the reply is good
  bool ok() const { return error.empty(); }
};

/// Which failures post_all returns to the caller (Reply::ok() false) instead of throwing.
struct PostOptions {
  /// HTTP 500 (a server that answered, with an error): retried once with the same body at
  /// most (a server that fails deterministically on the request's output fails again), then
  /// returned failed. 502/503/504, transport errors and 408/429 keep the retry policy.
  bool soft_500 = false;
  /// Other 4xx (not 408/429): returned failed at once (the caller reads the message).
  bool soft_4xx = false;
};

class Transport {
 public:
  /// `who`: the plug-in name used in error messages. Reads the API key from the environment.
  Transport(ClientParams params, std::string who);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// POSTs each body (JSON text) to base_url + path, concurrently; the replies in order.
  /// PluginError (see the header comment of client.hpp) when any request fails for good; the
  /// other requests of the call are then not started (those in flight finish).
  /// With `options`, some failures come back as failed Replies (see PostOptions).
  std::vector<Reply> post_all(std::string_view path, const std::vector<std::string>& bodies,
                              const PostOptions& options = {});
  /// GET base URL + path, one attempt per base URL in order: the reply of the first that
  /// answers (any HTTP status; ok() for a 2xx JSON body), nullopt when none answers. Never
  /// throws; not counted in stats().
  std::optional<Reply> get_any(std::string_view path);
  /// Counts generator requests given up softly (a repeated HTTP 500), split (a limit on n) and
  /// failed for good after a soft failure (a refused request).
  void count_generator(std::int64_t dropped, std::int64_t splits, std::int64_t failures = 0);

  HttpStats stats() const;
  void count_call(double seconds);
  const std::string& who() const;
  const std::vector<std::string>& urls() const;

 private:
  struct Impl;
  Impl* impl_;
};

/// Base URL without a trailing "/" or "/v1".
std::string normalize_base_url(std::string url);

}  // namespace qstar::http::detail
