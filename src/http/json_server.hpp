// What `qstar serve` (src/http/server.cpp) and `qstar serve --search`
// (src/app/search_service.cpp) share as JSON servers on cpp-httplib: the error type and
// OpenAI's error body, the handler wrapper (API key, errors to status codes), the error
// handler for cpp-httplib's own errors, the connection settings, and the /v1/models reply.
#pragma once

#include <httplib.h>
#include <fmt/format.h>

#include <cstddef>
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

/// A route whose body `fn(request) -> std::string` is JSON: checks the bearer key (when
/// `api_key` is set; it must outlive the server), answers HttpError with its status,
/// InvalidArgument with 400 and anything else with 500, each with error_body; then calls
/// `count(status)`.
template <class F, class Count>
httplib::Server::Handler json_route(const std::string& api_key, F fn, Count count) {
  return [&api_key, fn, count](const httplib::Request& req, httplib::Response& res) {
    int status = 200;
    try {
      if (!api_key.empty() && req.get_header_value("Authorization") != "Bearer " + api_key)
        throw HttpError(401, "missing or wrong API key (send Authorization: Bearer <key>)");
      res.set_content(fn(req), "application/json");
    } catch (const HttpError& e) {
      status = e.status;
      res.set_content(error_body(e.status, e.what()), "application/json");
    } catch (const InvalidArgument& e) {
      status = 400;
      res.set_content(error_body(400, e.what()), "application/json");
    } catch (const std::exception& e) {
      status = 500;
      res.set_content(error_body(500, e.what()), "application/json");
    }
    res.status = status;
    count(status);
  };
}

/// The connection settings both servers use. Replies are written in pieces (headers, body):
/// without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK stall each reply by
/// ~40 ms. cpp-httplib serves a connection per thread, and an idle keep-alive connection holds
/// its thread until a timeout (whole seconds); clients pool connections (an HttpGenerator
/// keeps up to 2 x max_in_flight), so keep-alive starved the pool and stalled requests for
/// seconds (measured: benchmarks/README.md). One request per connection instead: a loopback
/// or LAN reconnect costs far less. `threads` handler threads serve connections at once.
inline void configure(httplib::Server& http, std::size_t max_body_bytes, int threads) {
  http.set_payload_max_length(max_body_bytes);
  http.set_tcp_nodelay(true);
  http.set_keep_alive_max_count(1);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
}

/// Errors raised by cpp-httplib itself (no route, body too large, unreadable request) get an
/// error_body (413: `too_large`); the handlers' own errors already have a body. Then
/// `count(status)`.
template <class Count>
void set_json_error_handler(httplib::Server& http, std::string too_large, Count count) {
  http.set_error_handler([too_large = std::move(too_large), count](const httplib::Request& req,
                                                                   httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413)
      res.set_content(error_body(413, too_large), "application/json");
    else if (res.status == 404)
      res.set_content(error_body(404, fmt::format("no such endpoint: {} {}", req.method, req.path)),
                      "application/json");
    else
      res.set_content(error_body(res.status, fmt::format("HTTP {}", res.status)), "application/json");
    count(res.status);
  });
}

/// The /v1/models reply: one model `name` owned by qstar, with `meta` as its "qstar" field.
inline std::string models_body(const std::string& name, json::Value meta) {
  json::Value m = json::Value::object();
  m.set("id", name);
  m.set("object", "model");
  m.set("owned_by", "qstar");
  m.set("qstar", std::move(meta));
  json::Value data = json::Value::array();
  data.push_back(std::move(m));
  json::Value o = json::Value::object();
  o.set("object", "list");
  o.set("data", std::move(data));
  return json::dump(o);
}

}  // namespace qstar::http::detail
