// A loopback cpp-httplib server for the HTTP plug-in tests: handlers are lambdas, the port
// is picked by the OS, and the destructor releases any stalled handler before stopping.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fake {

class Server {
 public:
  Server() {
    // As `qstar serve` does (src/http/server.cpp): cpp-httplib's backlog of 5 drops the SYNs
    // of a burst of connects, which then wait 1 s for a resend (a connect timeout in a test).
    int fd = -1;
    http_.set_socket_options([&fd](socket_t sock) {
      httplib::default_socket_options(sock);
      fd = sock;
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0 || ::listen(fd, SOMAXCONN) != 0) throw std::runtime_error("fake::Server: cannot listen");
    http_.new_task_queue = [] { return new httplib::ThreadPool(16); };
  }
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void post(const std::string& path, httplib::Server::Handler h) { http_.Post(path, std::move(h)); }
  /// Returns once the accept loop runs: cpp-httplib's stop() is a no-op before that.
  void start() {
    thread_ = std::thread([this] {
      http_.listen_after_bind();
      done_ = true;
    });
    while (!http_.is_running() && !done_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void stop() {
    release();
    if (thread_.joinable()) {
      http_.stop();
      thread_.join();
    }
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Blocks a handler until release() (or `limit`).
  void stall(std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, limit, [&] { return released_; });
  }
  void release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

/// A port with nothing listening (bound, never listened on, closed): connections are refused.
inline int dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Opens `n` TCP connections to 127.0.0.1:`port` at once (non-blocking connects issued back
/// to back) and returns how many completed within `wait`. A listen backlog smaller than `n`
/// makes the kernel drop the extra SYNs, and those connects do not complete for ~1 s.
inline int connect_burst(int port, int n, std::chrono::milliseconds wait) {
  std::vector<pollfd> fds;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  for (int i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) break;
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS
    fds.push_back(pollfd{fd, POLLOUT, 0});
  }
  int done = 0, finished = 0;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::vector<bool> counted(fds.size(), false);
  while (finished < static_cast<int>(fds.size())) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left.count())) <= 0) break;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (counted[i] || !(fds[i].revents & (POLLOUT | POLLERR | POLLHUP))) continue;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) ++done;
      ++finished;
      counted[i] = true;
      fds[i].events = 0;  // stop polling it
      fds[i].fd = -fds[i].fd - 1;
    }
  }
  for (auto& p : fds) ::close(p.fd < 0 ? -p.fd - 1 : p.fd);
  return done;
}

}  // namespace fake
