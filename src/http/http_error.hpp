// The JSON error replies shared by `qstar serve` (src/http/server.cpp) and
// `qstar serve --search` (src/app/search_service.cpp): an exception carrying the HTTP status,
// and OpenAI's error body {"error": {"message", "type", "code"}}.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"

namespace qstar::http::detail {

/// A request error answered with `status` and a JSON error body.
struct HttpError : Error {
  int status;
  HttpError(int s, const std::string& m) : Error(m), status(s) {}
};

/// {"error": {"message", "type": invalid_request_error | server_error, "code": status}}.
inline std::string error_body(int status, const std::string& message) {
  json::Value e = json::Value::object();
  e.set("message", message);
  e.set("type", status >= 500 ? "server_error" : "invalid_request_error");
  e.set("code", static_cast<std::int64_t>(status));
  json::Value o = json::Value::object();
  o.set("error", std::move(e));
  return json::dump(o);
}

}  // namespace qstar::http::detail
