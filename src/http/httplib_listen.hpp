// Binding and starting a cpp-httplib server, shared by `qstar serve` (server.cpp) and the
// tests' fake server (tests/http/fake_server.hpp). Two cpp-httplib behaviours are worked
// around here:
//  * it listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's
//    libcpp-httplib, so a -D cannot change it). A burst of more simultaneous connects (an
//    HttpGenerator opens up to max_in_flight, default 32) overflows the accept queue; Linux
//    drops the extra SYNs and the clients resend them only after 1 s, or hit their connect
//    timeout. bind() listens again on the bound socket with the system's maximum.
//  * its stop() does nothing until the listener thread has entered its accept loop
//    (is_running()); a stop() before that left the thread blocked in accept() and its join
//    waiting forever. listen_in_background() returns only once the loop runs.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace qstar::http::detail {

struct Bound {
  int port = -1;              // the bound port; -1: the bind failed
  bool wide_backlog = false;  // the second listen() with SOMAXCONN succeeded
};

/// Binds `server` to host:port (port 0: any free port) and widens its listen backlog.
inline Bound bind(httplib::Server& server, const std::string& host, int port) {
  int fd = -1;
  server.set_socket_options([&fd](socket_t sock) {
    httplib::default_socket_options(sock);
    fd = static_cast<int>(sock);
  });
  Bound b;
  if (port == 0) {
    b.port = server.bind_to_any_port(host);
    if (b.port <= 0) b.port = -1;
  } else if (server.bind_to_port(host, port)) {
    b.port = port;
  }
  server.set_socket_options(httplib::default_socket_options);  // drop the hook: `fd` dies here
  // Linux takes a second listen() on a listening socket as a new backlog (capped by
  // net.core.somaxconn).
  b.wide_backlog = b.port > 0 && fd >= 0 && ::listen(fd, SOMAXCONN) == 0;
  return b;
}

/// Runs `server.listen_after_bind()` on a new thread; returns it once the accept loop runs
/// (or listening has already ended). `server` must outlive the thread.
inline std::thread listen_in_background(httplib::Server& server) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread t([&server, done] {
    server.listen_after_bind();
    *done = true;
  });
  while (!server.is_running() && !*done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return t;
}

}  // namespace qstar::http::detail
