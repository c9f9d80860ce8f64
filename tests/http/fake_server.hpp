// A loopback cpp-httplib server for the HTTP plug-in tests: handlers are lambdas, the port
// is picked by the OS, and the destructor releases any stalled handler before stopping.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace fake {

class Server {
 public:
  Server() {
    port_ = http_.bind_to_any_port("127.0.0.1");
    http_.new_task_queue = [] { return new httplib::ThreadPool(16); };
  }
  ~Server() { stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void post(const std::string& path, httplib::Server::Handler h) { http_.Post(path, std::move(h)); }
  void start() {
    thread_ = std::thread([this] { http_.listen_after_bind(); });
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

}  // namespace fake
