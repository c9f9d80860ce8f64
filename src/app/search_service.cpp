// `qstar serve --search`: cpp-httplib handlers parse and validate OpenAI-style requests into
// problems, queue them and wait; one dispatcher thread searches what arrives together in one
// search per distinct per-request settings. See src/app/search_service.hpp.
#include "app/search_service.hpp"

#include <httplib.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "http/httplib_listen.hpp"
#include "http/json_server.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/search/result_json.hpp"

namespace qstar::cli {

namespace {

using Clock = std::chrono::steady_clock;

using qstar::http::detail::HttpError;
using qstar::http::detail::error_body;

/// The endpoints: chat completions and (legacy) completions.
enum class Api { Chat, Completions };

/// One request: one problem, searched with `settings`.
struct Job {
  Problem problem;
  SearchSettings settings;
  // results
  std::optional<SearchResult> result;
  std::optional<HttpError> error;
  std::int64_t round = 0;           // the dispatcher round that searched it (1-based)
  std::int64_t round_problems = 0;  // problems in that round
  std::int64_t search_problems = 0; // problems in the search it was part of
  bool done = false;
};

const json::Value* field(const json::Value& o, std::string_view k) {
  const json::Value* v = o.find(k);
  return v && !v->is_null() ? v : nullptr;
}

std::int64_t get_int(const json::Value& o, std::string_view k, std::string_view where, std::int64_t def,
                     std::int64_t lo, std::int64_t hi) {
  const json::Value* v = field(o, k);
  if (!v) return def;
  if (!v->is_integer()) throw HttpError(400, fmt::format("'{}{}' must be an integer", where, k));
  const std::int64_t x = v->as_int();
  if (x < lo || x > hi) throw HttpError(400, fmt::format("'{}{}' must be in [{}, {}], got {}", where, k, lo, hi, x));
  return x;
}

/// Fields a client may send that a search has no use for: accepted and ignored.
constexpr std::string_view kIgnored[] = {"model", "temperature", "top_p", "user", "presence_penalty",
                                         "frequency_penalty"};

/// The top-level fields each endpoint reads.
bool known_field(Api api, std::string_view k) {
  for (auto f : {"seed", "n", "max_tokens", "stream", "qstar"})
    if (k == f) return true;
  for (auto f : kIgnored)
    if (k == f) return true;
  if (api == Api::Chat) return k == "messages" || k == "max_completion_tokens";
  return k == "prompt";
}

/// A chat message's content: a string, or an array of {"type": "text", "text": ...} parts
/// (concatenated).
std::string message_text(const json::Value& content, std::size_t i) {
  if (content.is_string()) return content.as_string();
  if (!content.is_array())
    throw HttpError(400, fmt::format("'messages[{}].content' must be a string or an array of text parts", i));
  std::string out;
  for (const auto& part : content.as_array()) {
    const json::Value* type = part.is_object() ? field(part, "type") : nullptr;
    const json::Value* text = part.is_object() ? field(part, "text") : nullptr;
    if (!type || !type->is_string() || type->as_string() != "text" || !text || !text->is_string())
      throw HttpError(400, fmt::format("'messages[{}].content': only text parts ({{\"type\": \"text\", \"text\": "
                                       "...}}) are supported",
                                       i));
    out += text->as_string();
  }
  return out;
}

/// The problem text of a chat request: the content of the last "user" message.
std::string chat_problem(const json::Value& b, std::size_t max_messages) {
  const json::Value* m = field(b, "messages");
  if (!m) throw HttpError(400, "'messages' is required");
  if (!m->is_array()) throw HttpError(400, "'messages' must be an array of messages");
  if (m->as_array().empty()) throw HttpError(400, "'messages' must not be empty");
  if (m->as_array().size() > max_messages)
    throw HttpError(400, fmt::format("'messages' has {} items, over the limit of {}", m->as_array().size(), max_messages));
  std::optional<std::string> text;
  for (std::size_t i = 0; i < m->as_array().size(); ++i) {
    const json::Value& msg = m->as_array()[i];
    if (!msg.is_object()) throw HttpError(400, fmt::format("'messages[{}]' must be an object", i));
    const json::Value* role = field(msg, "role");
    if (!role || !role->is_string()) throw HttpError(400, fmt::format("'messages[{}].role' must be a string", i));
    const json::Value* content = field(msg, "content");
    if (!content) throw HttpError(400, fmt::format("'messages[{}].content' is required", i));
    const std::string t = message_text(*content, i);
    if (role->as_string() == "user") text = t;
  }
  if (!text) throw HttpError(400, "'messages' holds no message with role \"user\" (its content is the problem)");
  return *text;
}

/// The problem text of a completions request: "prompt", a string or an array of one string.
std::string completions_problem(const json::Value& b) {
  const json::Value* p = field(b, "prompt");
  if (!p) throw HttpError(400, "'prompt' is required");
  if (p->is_string()) return p->as_string();
  if (p->is_array() && p->as_array().size() == 1 && p->as_array()[0].is_string()) return p->as_array()[0].as_string();
  if (p->is_array() && p->as_array().size() > 1)
    throw HttpError(400, "'prompt': one problem per request (send concurrent requests: they are searched together)");
  throw HttpError(400, "'prompt' must be a string (or an array of one string)");
}

/// OpenAI's finish_reason: "stop" when the search chose an answer or ended on its own,
/// "length" when a budget ended it without one.
const char* finish_reason(const SearchResult& r) {
  if (r.answer) return "stop";
  switch (r.stop) {
    case StopReason::GeneratedTokens:
    case StopReason::VerifierTokens:
    case StopReason::GeneratorCalls:
    case StopReason::Nodes:
    case StopReason::WallTime: return "length";
    default: return "stop";
  }
}

std::string join_steps(const std::vector<std::string>& steps) {
  std::string out;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i) out += '\n';
    out += steps[i];
  }
  return out;
}

}  // namespace

void SearchServiceParams::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("SearchServiceParams." + m); };
  if (host.empty()) fail("host: must not be empty");
  if (port < 0 || port > 65535) fail(fmt::format("port: must be in [0, 65535], got {}", port));
  if (algo.empty()) fail("algo: must not be empty");
  if (defaults.n < 1) fail(fmt::format("defaults.n: must be >= 1, got {}", defaults.n));
  if (max_n < defaults.n) fail(fmt::format("max_n: must be >= the default n ({}), got {}", defaults.n, max_n));
  if (defaults.max_tokens < 0) fail("defaults.max_tokens: must be >= 0");
  if (max_tokens < 1) fail("max_tokens: must be >= 1");
  if (max_prompt_bytes < 1) fail("max_prompt_bytes: must be >= 1");
  if (max_body_bytes < 1) fail("max_body_bytes: must be >= 1");
  if (max_messages < 1) fail("max_messages: must be >= 1");
  if (!std::isfinite(batch_window_ms) || batch_window_ms < 0 || batch_window_ms > 10000)
    fail(fmt::format("batch_window_ms: must be in [0, 10000], got {}", batch_window_ms));
  if (max_batch < 1) fail("max_batch: must be >= 1");
  if (max_queue < 1) fail("max_queue: must be >= 1");
  if (threads < 1 || threads > 4096) fail(fmt::format("threads: must be in [1, 4096], got {}", threads));
}

struct SearchService::Impl {
  SearchServiceParams params;
  ProblemParser parse;
  SearchRunner search;
  std::string api_key;  // never printed

  httplib::Server http;
  std::thread listener, dispatcher;
  int bound_port = 0;

  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  std::atomic<bool> stopped{false};
  SearchServiceStats st;
  std::atomic<std::int64_t> ids{0};

  // ---- dispatcher ------------------------------------------------------------------------

  /// One search over `jobs` (equal settings); when it fails, each job alone so one bad
  /// problem cannot fail the others.
  void run_group(const std::vector<std::shared_ptr<Job>>& jobs) {
    auto err_of = [](const std::exception& e) {
      if (dynamic_cast<const InvalidArgument*>(&e)) return HttpError(400, e.what());
      return HttpError(500, e.what());
    };
    auto run = [&](const std::vector<std::shared_ptr<Job>>& js) {
      std::vector<Problem> problems;
      for (const auto& j : js) problems.push_back(j->problem);
      auto results = search(problems, js[0]->settings);
      if (results.size() != js.size()) throw Error("the search returned a result count that does not match");
      for (std::size_t i = 0; i < js.size(); ++i) {
        js[i]->result.emplace(std::move(results[i]));
        js[i]->search_problems = static_cast<std::int64_t>(js.size());
      }
      std::lock_guard lk(mu);
      ++st.searches;
      st.problems += static_cast<std::int64_t>(js.size());
      st.max_batch_seen = std::max<std::int64_t>(st.max_batch_seen, static_cast<std::int64_t>(js.size()));
    };
    try {
      run(jobs);
      return;
    } catch (const std::exception& e) {
      if (jobs.size() == 1) {
        jobs[0]->error.emplace(err_of(e));
        return;
      }
    }
    for (const auto& j : jobs) {
      try {
        run({j});
      } catch (const std::exception& e) {
        j->error.emplace(err_of(e));
      }
    }
  }

  void dispatch() {
    for (;;) {
      std::vector<std::shared_ptr<Job>> round;
      std::int64_t round_no = 0;
      {
        std::unique_lock lk(mu);
        cv_work.wait(lk, [&] { return stopping || !queue.empty(); });
        if (queue.empty() && stopping) return;
        const auto until = Clock::now() + std::chrono::duration<double, std::milli>(params.batch_window_ms);
        cv_work.wait_until(lk, until, [&] { return stopping || queue.size() >= params.max_batch; });
        while (!queue.empty() && round.size() < params.max_batch) {
          round.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        round_no = ++st.rounds;
      }
      // Group by settings, in arrival order.
      std::vector<std::vector<std::shared_ptr<Job>>> groups;
      for (auto& j : round) {
        auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x[0]->settings == j->settings; });
        if (g == groups.end()) groups.push_back({j});
        else g->push_back(j);
      }
      for (const auto& g : groups) run_group(g);
      std::lock_guard lk(mu);
      for (const auto& j : round) {
        j->round = round_no;
        j->round_problems = static_cast<std::int64_t>(round.size());
        j->done = true;
      }
      cv_done.notify_all();
    }
  }

  void submit_and_wait(const std::shared_ptr<Job>& job) {
    std::unique_lock lk(mu);
    if (stopping) throw HttpError(503, "the server is shutting down");
    if (queue.size() >= params.max_queue)
      throw HttpError(503, fmt::format("the search queue is full ({} requests waiting); retry later", queue.size()));
    queue.push_back(job);
    cv_work.notify_one();
    cv_done.wait(lk, [&] { return job->done; });
    if (job->error) throw *job->error;
  }

  // ---- handlers --------------------------------------------------------------------------

  json::Value parse_body(const httplib::Request& req) {
    try {
      json::Value v = json::parse(req.body, "request body");
      if (!v.is_object()) throw HttpError(400, "the request body must be a JSON object");
      return v;
    } catch (const ParseError& e) {
      throw HttpError(400, e.what());
    }
  }

  /// The request's settings: top-level seed and max_tokens (max_completion_tokens), and the
  /// "qstar" extension object {"n": budget, "tree": bool}.
  SearchSettings settings_of(const json::Value& b, Api api) {
    SearchSettings s = params.defaults;
    if (const json::Value* v = field(b, "stream"); v && !(v->is_bool() && !v->as_bool()))
      throw HttpError(400, "'stream' is not supported by qstar serve --search (a search answers when it ends)");
    if (const json::Value* v = field(b, "n"); v && !(v->is_integer() && v->as_int() == 1))
      throw HttpError(400, "'n' must be 1: a search returns one answer (its budget is \"qstar\": {\"n\": N})");
    if (const json::Value* v = field(b, "seed")) {
      if (!v->is_integer()) throw HttpError(400, "'seed' must be a 64-bit integer");
      s.seed = std::bit_cast<std::uint64_t>(v->as_int());
    }
    std::string_view tok_field = "max_tokens";
    if (api == Api::Chat && field(b, "max_completion_tokens")) {
      if (field(b, "max_tokens")) throw HttpError(400, "give 'max_tokens' or 'max_completion_tokens', not both");
      tok_field = "max_completion_tokens";
    }
    s.max_tokens = get_int(b, tok_field, "", s.max_tokens, 1, params.max_tokens);
    if (const json::Value* q = field(b, "qstar")) {
      if (!q->is_object()) throw HttpError(400, "'qstar' must be an object");
      for (const auto& [k, v] : q->as_object())
        if (k != "n" && k != "tree") throw HttpError(400, fmt::format("'qstar.{}' is not supported (n, tree)", k));
      s.n = static_cast<int>(get_int(*q, "n", "qstar.", s.n, 1, params.max_n));
      if (const json::Value* t = field(*q, "tree")) {
        if (!t->is_bool()) throw HttpError(400, "'qstar.tree' must be a boolean");
        s.keep_tree = t->as_bool();
      }
    }
    return s;
  }

  json::Value extension(const Job& j) {
    const SearchResult& r = *j.result;
    json::Value q = json::Value::object();
    q.set("algo", params.algo);
    q.set("n", static_cast<std::int64_t>(j.settings.n));
    q.set("seed", static_cast<std::int64_t>(std::bit_cast<std::int64_t>(j.settings.seed)));
    json::Value p = json::Value::object();
    p.set("id", r.problem.id);
    p.set("text", r.problem.text);
    q.set("problem", std::move(p));
    q.set("answer", r.answer ? json::Value(*r.answer) : json::Value());
    q.set("correct", r.correct ? json::Value(*r.correct) : json::Value());
    json::Value steps = json::Value::array();
    for (const auto& s : r.steps()) steps.push_back(s);
    q.set("steps", std::move(steps));
    q.set("score", r.chosen >= 0 ? result_detail::finite(r.candidates[static_cast<std::size_t>(r.chosen)].score)
                                 : json::Value());
    q.set("candidates", static_cast<std::int64_t>(r.candidates.size()));
    q.set("stop_reason", to_string(r.stop));
    q.set("stats", stats_to_json(r.stats));
    json::Value batch = json::Value::object();
    batch.set("round", j.round);
    batch.set("round_problems", j.round_problems);
    batch.set("search_problems", j.search_problems);
    q.set("batch", std::move(batch));
    if (j.settings.keep_tree && r.tree) q.set("tree", tree_to_nested_json(*r.tree));
    return q;
  }

  std::string complete(const httplib::Request& req, Api api) {
    const json::Value b = parse_body(req);
    for (const auto& [k, v] : b.as_object())
      if (!known_field(api, k))
        throw HttpError(400, fmt::format("'{}' is not supported by qstar serve --search", k));
    if (const json::Value* m = field(b, "model"); m && !m->is_string()) throw HttpError(400, "'model' must be a string");
    const std::string text = api == Api::Chat ? chat_problem(b, params.max_messages) : completions_problem(b);
    const char* what = api == Api::Chat ? "messages" : "prompt";
    if (text.size() > params.max_prompt_bytes)
      throw HttpError(400, fmt::format("'{}': the problem is {} bytes, over the limit of {}", what, text.size(),
                                       params.max_prompt_bytes));
    auto job = std::make_shared<Job>();
    job->settings = settings_of(b, api);
    try {
      job->problem = parse(text);
    } catch (const Error& e) {
      throw HttpError(400, fmt::format("'{}': {}", what, e.what()));
    }
    submit_and_wait(job);

    const SearchResult& r = *job->result;
    json::Value choice = json::Value::object();
    choice.set("index", std::int64_t{0});
    const std::string content = join_steps(r.steps());
    if (api == Api::Chat) {
      json::Value msg = json::Value::object();
      msg.set("role", "assistant");
      msg.set("content", content);
      choice.set("message", std::move(msg));
    } else {
      choice.set("text", content);
    }
    choice.set("logprobs", json::Value());
    choice.set("finish_reason", finish_reason(r));
    json::Value choices = json::Value::array();
    choices.push_back(std::move(choice));
    json::Value o = json::Value::object();
    o.set("id", fmt::format("{}-{}", api == Api::Chat ? "chatcmpl" : "cmpl", ids++));
    o.set("object", api == Api::Chat ? "chat.completion" : "text_completion");
    o.set("created", static_cast<std::int64_t>(std::time(nullptr)));
    o.set("model", params.served_model_name);
    o.set("choices", std::move(choices));
    json::Value usage = json::Value::object();
    usage.set("prompt_tokens", std::int64_t{0});  // not counted: docs/serving.md
    usage.set("completion_tokens", r.stats.generated_tokens);
    usage.set("total_tokens", r.stats.generated_tokens);
    o.set("usage", std::move(usage));
    o.set("qstar", extension(*job));
    return json::dump(o);
  }

  void count(int status) {
    std::lock_guard lk(mu);
    ++st.http_requests;
    if (status >= 400 && status < 500) ++st.bad_requests;
  }

  template <class F>
  httplib::Server::Handler wrap(F fn) {
    return http::detail::json_route(api_key, std::move(fn), [this](int status) { count(status); });
  }

  std::string models() {
    json::Value meta = json::Value::object();
    meta.set("search", params.algo);
    meta.set("n", static_cast<std::int64_t>(params.defaults.n));
    meta.set("max_n", static_cast<std::int64_t>(params.max_n));
    return http::detail::models_body(params.served_model_name, std::move(meta));
  }

  void setup_routes() {
    http::detail::configure(http, params.max_body_bytes, params.threads);  // as qstar serve
    http.Post("/v1/chat/completions", wrap([this](const httplib::Request& r) { return complete(r, Api::Chat); }));
    http.Post("/v1/completions", wrap([this](const httplib::Request& r) { return complete(r, Api::Completions); }));
    const auto post_only = wrap([](const httplib::Request& r) -> std::string {
      throw HttpError(405, fmt::format("{} takes POST, not {}", r.path, r.method));
    });
    http.Get("/v1/chat/completions", post_only);
    http.Get("/v1/completions", post_only);
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
    http.Get("/v1/models", wrap([this](const httplib::Request&) { return models(); }));
    http::detail::set_json_error_handler(
        http, fmt::format("the request body is over the size limit of {} bytes", params.max_body_bytes),
        [this](int status) { count(status); });
  }
};

SearchService::SearchService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<SearchService> SearchService::start(SearchServiceParams params, ProblemParser parse,
                                                    SearchRunner search) {
  params.validate();
  if (!parse || !search) throw InvalidArgument("SearchService: the problem parser and the search must be set");
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.params = std::move(params);
  s.parse = std::move(parse);
  s.search = std::move(search);
  const SearchServiceParams& p = s.params;
  if (!p.api_key_env.empty()) {
    const char* key = std::getenv(p.api_key_env.c_str());
    if (!key || !*key)
      throw InvalidArgument(
          fmt::format("SearchServiceParams.api_key_env: the environment variable {} is not set", p.api_key_env));
    s.api_key = key;
  }
  s.setup_routes();
  const http::detail::Bound b = http::detail::bind(s.http, p.host, p.port);  // src/http/httplib_listen.hpp
  if (b.port <= 0) {
    if (p.port == 0) throw Error(fmt::format("qstar serve: cannot bind {}:(any port)", p.host));
    throw Error(fmt::format("qstar serve: cannot bind {}:{} (in use, or not a local address?)", p.host, p.port));
  }
  s.bound_port = b.port;
  if (!b.wide_backlog)
    throw Error(fmt::format("qstar serve: cannot widen the listen backlog on {}:{}", p.host, s.bound_port));
  s.dispatcher = std::thread([&s] { s.dispatch(); });
  s.listener = http::detail::listen_in_background(s.http);
  return std::unique_ptr<SearchService>(new SearchService(std::move(impl)));
}

SearchService::~SearchService() { stop(); }

int SearchService::port() const { return impl_->bound_port; }

void SearchService::stop() {
  Impl& s = *impl_;
  if (s.stopped.exchange(true)) return;
  // Stop accepting first; handlers already running wait for their searches, which the
  // dispatcher still runs (it drains the queue before it returns).
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
  {
    std::lock_guard lk(s.mu);
    s.stopping = true;
    s.cv_work.notify_all();
  }
  if (s.dispatcher.joinable()) s.dispatcher.join();
}

SearchServiceStats SearchService::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

}  // namespace qstar::cli
