// libcurl transport for the HTTP plug-ins. A call's requests are run by up to
// max_in_flight workers (the calling thread and helper threads), each with an easy handle
// taken from a pool that outlives the call (keep-alive connections are reused).
#include "http/transport.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "qstar/error.hpp"

namespace qstar::http {

namespace {

using Clock = std::chrono::steady_clock;

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw Error("http: libcurl global initialization failed");
  });
}

std::size_t on_write(char* data, std::size_t size, std::size_t nmemb, void* user) {
  auto* out = static_cast<std::string*>(user);
  out->append(data, size * nmemb);
  return size * nmemb;
}

/// The "error" message of an OpenAI-style error body, or the body's start.
std::string server_message(const std::string& body) {
  try {
    const json::Value v = json::parse(body, "reply");
    if (v.is_object()) {
      if (const json::Value* e = v.find("error")) {
        if (e->is_string()) return e->as_string();
        if (e->is_object())
          if (const json::Value* m = e->find("message"); m && m->is_string()) return m->as_string();
      }
      if (const json::Value* m = v.find("message"); m && m->is_string()) return m->as_string();
      if (const json::Value* d = v.find("detail"); d && d->is_string()) return d->as_string();
    }
  } catch (const Error&) {
  }
  std::string s = body.substr(0, 200);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.empty() ? "(empty body)" : s;
}

bool is_loopback(const std::string& url) {
  const auto p = url.find("://");
  const std::string rest = p == std::string::npos ? url : url.substr(p + 3);
  return rest.rfind("127.", 0) == 0 || rest.rfind("localhost", 0) == 0 || rest.rfind("[::1]", 0) == 0;
}

}  // namespace

void ClientParams::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("ClientParams." + m); };
  if (base_urls.empty()) fail("base_urls: give at least one server URL");
  for (const auto& u : base_urls)
    if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
      fail(fmt::format("base_urls: '{}' does not start with http:// or https://", u));
  if (balance != "least-outstanding" && balance != "round-robin")
    fail(fmt::format("balance: '{}' is not one of least-outstanding, round-robin", balance));
  if (max_in_flight < 1) fail(fmt::format("max_in_flight: must be >= 1, got {}", max_in_flight));
  if (!(connect_timeout_s > 0) || !std::isfinite(connect_timeout_s))
    fail(fmt::format("connect_timeout_s: must be > 0, got {}", connect_timeout_s));
  if (!(request_timeout_s > 0) || !std::isfinite(request_timeout_s))
    fail(fmt::format("request_timeout_s: must be > 0, got {}", request_timeout_s));
  if (max_retries < 0) fail(fmt::format("max_retries: must be >= 0, got {}", max_retries));
  if (!(backoff_initial_s >= 0) || !std::isfinite(backoff_initial_s))
    fail(fmt::format("backoff_initial_s: must be >= 0, got {}", backoff_initial_s));
  if (!(backoff_max_s >= 0) || !std::isfinite(backoff_max_s))
    fail(fmt::format("backoff_max_s: must be >= 0, got {}", backoff_max_s));
  if (!(url_cooldown_s >= 0) || !std::isfinite(url_cooldown_s))
    fail(fmt::format("url_cooldown_s: must be >= 0, got {}", url_cooldown_s));
}

std::vector<std::string> split_urls(std::string_view list) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t c = list.find(',', pos);
    const std::string_view item = list.substr(pos, c == std::string_view::npos ? std::string_view::npos : c - pos);
    if (item.empty()) throw InvalidArgument(fmt::format("URL list '{}': empty item", list));
    out.emplace_back(item);
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  return out;
}

namespace detail {

std::string normalize_base_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() >= 3 && url.compare(url.size() - 3, 3, "/v1") == 0) url.resize(url.size() - 3);
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

struct Transport::Impl {
  ClientParams params;
  std::string who;
  std::string auth_header;  // "Authorization: Bearer ..." or empty; never printed
  std::vector<std::string> urls;

  std::mutex mu;  // guards everything below
  std::vector<CURL*> free_handles;
  std::vector<int> outstanding;
  std::vector<Clock::time_point> failed_at;
  std::vector<bool> ever_failed;
  std::size_t rr = 0;
  HttpStats st;

  ~Impl() {
    for (CURL* h : free_handles) curl_easy_cleanup(h);
  }

  CURL* take_handle() {
    {
      std::lock_guard lk(mu);
      if (!free_handles.empty()) {
        CURL* h = free_handles.back();
        free_handles.pop_back();
        return h;
      }
    }
    CURL* h = curl_easy_init();
    if (!h) throw PluginError(fmt::format("{}: libcurl could not create a handle", who));
    return h;
  }
  void give_handle(CURL* h) {
    std::lock_guard lk(mu);
    if (free_handles.size() < static_cast<std::size_t>(params.max_in_flight) * 2) {
      free_handles.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }

  /// Picks a URL (and counts it outstanding). `avoid`: the URL that just failed.
  std::size_t pick(std::optional<std::size_t> avoid) {
    std::lock_guard lk(mu);
    const auto now = Clock::now();
    const auto cool = std::chrono::duration<double>(params.url_cooldown_s);
    const std::size_t n = urls.size();
    auto healthy = [&](std::size_t i) {
      return !(ever_failed[i] && now - failed_at[i] < cool) && !(avoid && *avoid == i && n > 1);
    };
    std::optional<std::size_t> best;
    const std::size_t start = rr++;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (start + k) % n;
      if (!healthy(i)) continue;
      if (params.balance == "round-robin") {
        best = i;
        break;
      }
      if (!best || outstanding[i] < outstanding[*best]) best = i;
    }
    if (!best) {  // every URL failed recently: the one that failed longest ago (not `avoid`)
      for (std::size_t i = 0; i < n; ++i) {
        if (avoid && *avoid == i && n > 1) continue;
        if (!best || failed_at[i] < failed_at[*best]) best = i;
      }
    }
    ++outstanding[*best];
    return *best;
  }
  void done(std::size_t u, bool failed) {
    std::lock_guard lk(mu);
    --outstanding[u];
    if (failed) {
      failed_at[u] = Clock::now();
      ever_failed[u] = true;
    }
  }

  /// One request with retries: a POST of `body`, or, when body is null, one GET attempt at
  /// URL `get_url` that never throws (any failure is a failed Reply; status 0: no answer).
  /// A POST throws PluginError when it fails for good, unless `opt` makes that failure soft
  /// (then a failed Reply).
  Reply perform(CURL* h, std::string_view path, const std::string* body, const std::atomic<bool>& abort,
                const PostOptions& opt, bool count, std::size_t get_url = 0) {
    const bool get = body == nullptr;
    curl_slist* headers = nullptr;
    if (!get) headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!auth_header.empty()) headers = curl_slist_append(headers, auth_header.c_str());
    struct Free {
      curl_slist* h;
      ~Free() { curl_slist_free_all(h); }
    } free_headers{headers};

    std::optional<std::size_t> avoid;
    std::vector<std::string> errors;
    int http500 = 0;
    for (int attempt = 0;; ++attempt) {
      const std::size_t u = get ? get_url : pick(avoid);
      if (get) {
        std::lock_guard lk(mu);
        ++outstanding[u];
      }
      const std::string url = urls[u] + std::string(path);
      std::string reply;
      char errbuf[CURL_ERROR_SIZE] = {0};
      curl_easy_reset(h);
      curl_easy_setopt(h, CURLOPT_URL, url.c_str());
      if (get) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
      } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
      }
      curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
      curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
      curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(std::ceil(params.connect_timeout_s * 1000.0)));
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::ceil(params.request_timeout_s * 1000.0)));
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, params.verify_tls ? 1L : 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, params.verify_tls ? 2L : 0L);
      if (is_loopback(url)) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
      const CURLcode rc = curl_easy_perform(h);
      long code = 0;
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
      if (count) {
        std::lock_guard lk(mu);
        ++st.attempts;
        if (attempt > 0) ++st.retries;
        st.bytes_sent += static_cast<std::int64_t>(body ? body->size() : 0);
        st.bytes_received += static_cast<std::int64_t>(reply.size());
      }
      std::string err;
      bool retry = true;
      if (rc != CURLE_OK) {
        err = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
        if (get) {
          done(u, false);
          return Reply{json::Value(), urls[u], 0, err};
        }
      } else if (code >= 200 && code < 300) {
        try {
          json::Value v = json::parse(reply, url);
          if (!v.is_object() && !v.is_array()) throw ParseError("the reply is not a JSON object or array");
          done(u, false);
          std::lock_guard lk(mu);
          if (count) {
            ++st.requests;
            ++st.per_url[u];
          }
          return Reply{std::move(v), urls[u], static_cast<int>(code), {}};
        } catch (const Error& e) {
          err = fmt::format("malformed JSON reply: {}", e.what());
          if (get) {
            done(u, false);
            return Reply{json::Value(), urls[u], static_cast<int>(code), err};
          }
        }
      } else {
        err = fmt::format("HTTP {}: {}", code, server_message(reply));
        retry = code == 408 || code == 429 || code >= 500;
        const bool soft4 = code >= 400 && code < 500 && !retry && opt.soft_4xx;
        const bool soft5 = code == 500 && opt.soft_500 && (++http500 >= 2 || attempt >= params.max_retries);
        if (get || soft4 || soft5) {  // the server answered: not a failure of the URL
          done(u, false);
          return Reply{json::Value(), urls[u], static_cast<int>(code), err};
        }
      }
      done(u, true);
      errors.push_back(fmt::format("{}: {}", url, err));
      if (!retry || attempt >= params.max_retries || abort.load()) {
        if (count) {
          std::lock_guard lk(mu);
          ++st.failures;
        }
        if (!retry)
          throw PluginError(fmt::format("{}: {} {} was refused: {}", who, get ? "GET" : "POST", url, err));
        std::string tried;
        for (std::size_t i = 0; i + 1 < errors.size() && i < 4; ++i) tried += "; earlier: " + errors[i];
        throw PluginError(fmt::format("{}: {} {} failed after {} attempt{}: {}{}", who, get ? "GET" : "POST", url,
                                      attempt + 1, attempt == 0 ? "" : "s", err, tried));
      }
      avoid = u;
      const double wait = std::min(params.backoff_max_s, params.backoff_initial_s * std::ldexp(1.0, attempt));
      const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait));
      while (Clock::now() < until && !abort.load()) {
        const Clock::duration left = until - Clock::now();
        std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(20)));
      }
    }
  }
};

Transport::Transport(ClientParams params, std::string who) : impl_(new Impl) {
  params.validate();
  curl_init_once();
  impl_->params = std::move(params);
  impl_->who = std::move(who);
  for (const auto& u : impl_->params.base_urls) impl_->urls.push_back(normalize_base_url(u));
  const std::size_t n = impl_->urls.size();
  impl_->outstanding.assign(n, 0);
  impl_->failed_at.assign(n, Clock::time_point{});
  impl_->ever_failed.assign(n, false);
  impl_->st.per_url.assign(n, 0);
  if (!impl_->params.api_key_env.empty())
    if (const char* key = std::getenv(impl_->params.api_key_env.c_str()); key && *key)
      impl_->auth_header = std::string("Authorization: Bearer ") + key;
}

Transport::~Transport() { delete impl_; }

std::vector<Reply> Transport::post_all(std::string_view path, const std::vector<std::string>& bodies,
                                       const PostOptions& options) {
  std::vector<Reply> out(bodies.size());
  if (bodies.empty()) return out;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> abort{false};
  std::mutex emu;
  std::optional<PluginError> first_error;
  auto worker = [&] {
    CURL* h = nullptr;
    try {
      h = impl_->take_handle();
      for (;;) {
        if (abort.load()) break;
        const std::size_t i = next.fetch_add(1);
        if (i >= bodies.size()) break;
        out[i] = impl_->perform(h, path, &bodies[i], abort, options, /*count=*/true);
      }
    } catch (const PluginError& e) {
      std::lock_guard lk(emu);
      if (!first_error) first_error.emplace(e);
      abort = true;
    } catch (const std::exception& e) {
      std::lock_guard lk(emu);
      if (!first_error) first_error.emplace(fmt::format("{}: {}", impl_->who, e.what()));
      abort = true;
    }
    if (h) impl_->give_handle(h);
  };
  const std::size_t workers = std::min<std::size_t>(bodies.size(), static_cast<std::size_t>(impl_->params.max_in_flight));
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (std::size_t t = 1; t < workers; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first_error) throw *first_error;
  return out;
}

std::optional<Reply> Transport::get_any(std::string_view path) {
  CURL* h = impl_->take_handle();
  struct Give {
    Impl* impl;
    CURL* h;
    ~Give() { impl->give_handle(h); }
  } give{impl_, h};
  const std::atomic<bool> never{false};
  for (std::size_t u = 0; u < impl_->urls.size(); ++u) {
    Reply r = impl_->perform(h, path, nullptr, never, PostOptions{}, /*count=*/false, u);
    if (r.status != 0) return r;
  }
  return std::nullopt;
}

void Transport::count_generator(std::int64_t dropped, std::int64_t splits, std::int64_t failures) {
  std::lock_guard lk(impl_->mu);
  impl_->st.failures += failures;
  impl_->st.dropped += dropped;
  impl_->st.splits += splits;
}

HttpStats Transport::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

void Transport::count_call(double seconds) {
  std::lock_guard lk(impl_->mu);
  ++impl_->st.calls;
  impl_->st.seconds += seconds;
}

const std::string& Transport::who() const { return impl_->who; }
const std::vector<std::string>& Transport::urls() const { return impl_->urls; }

}  // namespace detail
}  // namespace qstar::http
