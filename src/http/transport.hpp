// The HTTP transport shared by HttpGenerator and HttpVerifier: concurrent JSON POSTs over
// libcurl easy handles (a pool reused across calls, so connections are kept alive), URL
// balancing, retries with backoff. See include/qstar/http/client.hpp for the policy.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/http/client.hpp"

namespace qstar::http::detail {

/// One reply: the parsed body and the base URL that served it (for error messages).
struct Reply {
  json::Value body;
  std::string url;
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
  std::vector<Reply> post_all(std::string_view path, const std::vector<std::string>& bodies);

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
