// `qstar serve`: cpp-httplib handlers parse and validate requests, queue them, and wait; one
// worker thread batches what arrives together into single LMGenerator::expand /
// PrmVerifier::score_steps calls. See include/qstar/http/server.hpp.
#include "qstar/http/server.hpp"

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
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "qstar/core/json.hpp"
#include "qstar/core/tree.hpp"
#include "qstar/error.hpp"
#include "http/httplib_listen.hpp"
#include "http/json_server.hpp"

namespace qstar::http {

namespace {

using Clock = std::chrono::steady_clock;

using detail::HttpError;
using detail::error_body;

std::string basename_of(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::string b = std::filesystem::path(p).filename().string();
  return b.empty() ? p : b;
}

/// Sampling settings that need their own LMGenerator.
struct GenConfig {
  std::string stop;
  double temperature = 1.0, top_p = 1.0;
  int top_k = 0;
  std::string key() const { return fmt::format("{}\x1f{}\x1f{}\x1f{}", stop, temperature, top_p, top_k); }
};

struct Job {
  bool score = false;
  // completions
  GenConfig cfg;
  std::vector<std::string> prompts;
  int n = 1, max_tokens = 16;
  bool greedy = false;
  std::uint64_t seed = 0;
  // pooling / classify: the steps of every input
  std::vector<std::vector<std::string>> inputs;
  // results
  std::vector<std::vector<Step>> steps;        // per prompt
  std::vector<std::int64_t> prompt_tokens;     // per prompt
  std::vector<std::vector<double>> scores;     // per input
  std::optional<HttpError> error;
  bool done = false;
};

const json::Value* field(const json::Value& o, std::string_view k) {
  const json::Value* v = o.find(k);
  return v && !v->is_null() ? v : nullptr;
}

double get_number(const json::Value& o, std::string_view k, double def) {
  const json::Value* v = field(o, k);
  if (!v) return def;
  if (!v->is_number() || !std::isfinite(v->as_double()))
    throw HttpError(400, fmt::format("'{}' must be a finite number", k));
  return v->as_double();
}

std::int64_t get_int(const json::Value& o, std::string_view k, std::int64_t def, std::int64_t lo, std::int64_t hi) {
  const json::Value* v = field(o, k);
  if (!v) return def;
  if (!v->is_integer()) throw HttpError(400, fmt::format("'{}' must be an integer", k));
  const std::int64_t x = v->as_int();
  if (x < lo || x > hi) throw HttpError(400, fmt::format("'{}' must be in [{}, {}], got {}", k, lo, hi, x));
  return x;
}

/// "prompt" / "input": a string or a non-empty array of strings.
std::vector<std::string> get_texts(const json::Value& o, std::string_view k, std::size_t max_items,
                                   std::size_t max_bytes) {
  const json::Value* v = field(o, k);
  if (!v) throw HttpError(400, fmt::format("'{}' is required", k));
  std::vector<std::string> out;
  auto add = [&](const json::Value& s) {
    if (!s.is_string())
      throw HttpError(400, fmt::format("'{}' must be a string or an array of strings (token-id input is not "
                                       "supported by qstar serve)", k));
    if (s.as_string().size() > max_bytes)
      throw HttpError(400, fmt::format("'{}' is {} bytes, over the limit of {}", k, s.as_string().size(), max_bytes));
    out.push_back(s.as_string());
  };
  if (v->is_array()) {
    if (v->as_array().empty()) throw HttpError(400, fmt::format("'{}' must not be an empty array", k));
    if (v->as_array().size() > max_items)
      throw HttpError(400, fmt::format("'{}' has {} items, over the limit of {}", k, v->as_array().size(), max_items));
    for (const auto& s : v->as_array()) add(s);
  } else {
    add(*v);
  }
  return out;
}

}  // namespace

void ServeParams::validate() const {
  auto fail = [](const std::string& m) { throw InvalidArgument("ServeParams." + m); };
  if (model_dir.empty() && prm_path.empty()) fail("model_dir: give a model (--model) and/or a PRM (--prm)");
  if (host.empty()) fail("host: must not be empty");
  if (port < 0 || port > 65535) fail(fmt::format("port: must be in [0, 65535], got {}", port));
  if (max_n < 1) fail(fmt::format("max_n: must be >= 1, got {}", max_n));
  if (max_tokens < 1) fail(fmt::format("max_tokens: must be >= 1, got {}", max_tokens));
  if (max_prompt_bytes < 1) fail("max_prompt_bytes: must be >= 1");
  if (max_inputs < 1) fail("max_inputs: must be >= 1");
  if (max_body_bytes < 1) fail("max_body_bytes: must be >= 1");
  if (!std::isfinite(batch_window_ms) || batch_window_ms < 0 || batch_window_ms > 10000)
    fail(fmt::format("batch_window_ms: must be in [0, 10000], got {}", batch_window_ms));
  if (max_batch_requests < 1) fail("max_batch_requests: must be >= 1");
  if (threads < 1 || threads > 4096) fail(fmt::format("threads: must be in [1, 4096], got {}", threads));
  if (max_sampling_configs < 1) fail("max_sampling_configs: must be >= 1");
  if (!model_dir.empty()) lm.validate();
  if (!prm_path.empty()) prm.validate();
}

struct Server::Impl {
  ServeParams params;
  std::string name;
  std::string api_key;  // never printed
  std::optional<lm::LMGenerator> base;  // loaded once; its weights are shared
  std::optional<lm::PrmVerifier> prm;
  std::string step_tag;
  // Generators by sampling config, most recently used first.
  std::list<std::pair<std::string, lm::LMGenerator>> gens;

  httplib::Server http;
  std::thread listener, worker;
  int bound_port = 0;

  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false;
  std::atomic<bool> stopped{false};
  ServeStats st;
  std::atomic<std::int64_t> ids{0};

  lm::LMGenerator& generator(const GenConfig& c) {
    const std::string key = c.key();
    for (auto it = gens.begin(); it != gens.end(); ++it)
      if (it->first == key) {
        gens.splice(gens.begin(), gens, it);
        return gens.front().second;
      }
    lm::LMGeneratorParams p = params.lm;
    p.step_delimiter = c.stop;
    p.answer_marker.clear();
    p.prompt_template = "{prompt}";
    p.temperature = c.temperature;
    p.top_p = c.top_p;
    p.top_k = c.top_k;
    p.validate();
    lm::LMGenerator g(base->model(), base->tokenizer(), p);
    // generation_config.json's extra EOS ids are only applied by load(): reload then.
    if (g.eos_ids() != base->eos_ids()) g = lm::LMGenerator::load(params.model_dir, p);
    gens.emplace_front(key, std::move(g));
    while (gens.size() > params.max_sampling_configs) gens.pop_back();
    return gens.front().second;
  }

  // ---- worker ----------------------------------------------------------------------------

  void finish(const std::vector<std::shared_ptr<Job>>& jobs) {
    std::lock_guard lk(mu);
    for (const auto& j : jobs) j->done = true;
    cv_done.notify_all();
  }

  void run_completions(const std::vector<std::shared_ptr<Job>>& jobs) {
    Tree tree;  // root only: contexts are in the prompts
    const TrajectoryView empty(tree, Tree::root());
    const Problem problem{"serve", "", std::nullopt};
    std::vector<ExpandRequest> reqs;
    for (const auto& j : jobs)
      for (const auto& p : j->prompts) {
        ExpandRequest r;
        r.problem = &problem;
        r.prompt = p;
        r.prefix = empty;
        r.num_candidates = j->n;
        r.seed = j->seed;
        r.max_new_tokens = j->max_tokens;
        r.greedy = j->greedy;
        reqs.push_back(r);
      }
    lm::LMGenerator& g = generator(jobs[0]->cfg);
    auto res = g.expand(reqs);
    {
      std::lock_guard lk(mu);
      ++st.expand_calls;
      st.completions += static_cast<std::int64_t>(reqs.size());
    }
    std::size_t k = 0;
    for (const auto& j : jobs) {
      j->steps.clear();
      j->prompt_tokens.clear();
      for (std::size_t i = 0; i < j->prompts.size(); ++i, ++k) {
        j->prompt_tokens.push_back(static_cast<std::int64_t>(g.context_tokens(reqs[k]).size()));
        j->steps.push_back(std::move(res[k]));
      }
    }
  }

  void run_scores(const std::vector<std::shared_ptr<Job>>& jobs) {
    std::vector<Tree> trees;
    std::size_t count = 0;
    for (const auto& j : jobs) count += j->inputs.size();
    trees.reserve(count);
    std::vector<StepScoreRequest> reqs;
    const Problem problem{"serve", "", std::nullopt};
    for (const auto& j : jobs)
      for (const auto& steps : j->inputs) {
        trees.emplace_back();
        Tree& t = trees.back();
        NodeId cur = Tree::root();
        for (const auto& s : steps) {
          Step st;
          st.text = s;
          cur = t.add_child(cur, st);
        }
        StepScoreRequest r;
        r.problem = &problem;
        r.prompt = "";
        r.trajectory = TrajectoryView(t, cur);
        r.first_new = 0;
        reqs.push_back(r);
      }
    auto res = prm->score_steps(reqs);
    {
      std::lock_guard lk(mu);
      ++st.prm_calls;
      st.scored_inputs += static_cast<std::int64_t>(reqs.size());
    }
    std::size_t k = 0;
    for (const auto& j : jobs) {
      j->scores.clear();
      for (std::size_t i = 0; i < j->inputs.size(); ++i) j->scores.push_back(std::move(res[k++]));
    }
  }

  /// Runs `fn` on the group; when it fails, each job alone so one bad request cannot fail
  /// the others.
  template <class F>
  void run_group(const std::vector<std::shared_ptr<Job>>& jobs, F fn) {
    auto err_of = [](const std::exception& e) {
      if (dynamic_cast<const InvalidArgument*>(&e)) return HttpError(400, e.what());
      return HttpError(500, e.what());
    };
    try {
      fn(jobs);
      return;
    } catch (const std::exception& e) {
      if (jobs.size() == 1) {
        jobs[0]->error.emplace(err_of(e));
        return;
      }
    }
    for (const auto& j : jobs) {
      try {
        fn(std::vector<std::shared_ptr<Job>>{j});
      } catch (const std::exception& e) {
        j->error.emplace(err_of(e));
      }
    }
  }

  void work() {
    for (;;) {
      std::vector<std::shared_ptr<Job>> batch;
      {
        std::unique_lock lk(mu);
        cv_work.wait(lk, [&] { return stopping || !queue.empty(); });
        if (queue.empty() && stopping) return;
        const auto until = Clock::now() + std::chrono::duration<double, std::milli>(params.batch_window_ms);
        cv_work.wait_until(lk, until, [&] { return stopping || queue.size() >= params.max_batch_requests; });
        while (!queue.empty() && batch.size() < params.max_batch_requests) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        ++st.batches;
        st.max_batch_seen = std::max<std::int64_t>(st.max_batch_seen, static_cast<std::int64_t>(batch.size()));
      }
      std::map<std::string, std::vector<std::shared_ptr<Job>>> groups;
      std::vector<std::shared_ptr<Job>> scores;
      for (auto& j : batch) {
        if (j->score) scores.push_back(j);
        else groups[j->cfg.key()].push_back(j);
      }
      for (auto& [key, jobs] : groups)
        run_group(jobs, [&](const std::vector<std::shared_ptr<Job>>& js) { run_completions(js); });
      if (!scores.empty())
        run_group(scores, [&](const std::vector<std::shared_ptr<Job>>& js) { run_scores(js); });
      finish(batch);
    }
  }

  void submit_and_wait(const std::shared_ptr<Job>& job) {
    std::unique_lock lk(mu);
    if (stopping) throw HttpError(503, "the server is shutting down");
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

  std::string completions(const httplib::Request& req) {
    if (!base) throw HttpError(404, "no generator model is loaded (start qstar serve with --model)");
    const json::Value b = parse_body(req);
    if (const json::Value* s = field(b, "stream"); s && !(s->is_bool() && !s->as_bool()))
      throw HttpError(400, "'stream' is not supported by qstar serve");
    if (const json::Value* s = field(b, "echo"); s && !(s->is_bool() && !s->as_bool()))
      throw HttpError(400, "'echo' is not supported by qstar serve");
    if (const json::Value* s = field(b, "best_of"); s && !(s->is_integer() && s->as_int() <= 1))
      throw HttpError(400, "'best_of' > 1 is not supported by qstar serve");
    auto job = std::make_shared<Job>();
    job->prompts = get_texts(b, "prompt", params.max_inputs, params.max_prompt_bytes);
    job->n = static_cast<int>(get_int(b, "n", 1, 1, params.max_n));
    job->max_tokens = static_cast<int>(get_int(b, "max_tokens", 16, 1, params.max_tokens));
    job->cfg.temperature = get_number(b, "temperature", 1.0);
    if (job->cfg.temperature < 0) throw HttpError(400, "'temperature' must be >= 0");
    job->cfg.top_p = get_number(b, "top_p", 1.0);
    if (!(job->cfg.top_p > 0 && job->cfg.top_p <= 1)) throw HttpError(400, "'top_p' must be in (0, 1]");
    const std::int64_t top_k = get_int(b, "top_k", 0, -1, 1 << 24);
    job->cfg.top_k = top_k < 0 ? 0 : static_cast<int>(top_k);
    job->greedy = job->cfg.temperature == 0.0;
    if (job->greedy) job->cfg.temperature = 0.0;
    const json::Value* seed = field(b, "seed");
    if (seed && !seed->is_integer()) throw HttpError(400, "'seed' must be a 64-bit integer");
    job->seed = seed ? std::bit_cast<std::uint64_t>(seed->as_int()) : 0;
    get_int(b, "logprobs", 0, 0, 20);
    const json::Value* stop = field(b, "stop");
    if (!stop) throw HttpError(400, "'stop' is required: qstar serve generates one step per request, ending at it");
    if (stop->is_string()) {
      job->cfg.stop = stop->as_string();
    } else if (stop->is_array() && stop->as_array().size() == 1 && stop->as_array()[0].is_string()) {
      job->cfg.stop = stop->as_array()[0].as_string();
    } else {
      throw HttpError(400, "'stop' must be one string (or an array of exactly one)");
    }
    if (job->cfg.stop.empty()) throw HttpError(400, "'stop' must not be empty");
    const bool want_lp = field(b, "logprobs") != nullptr;
    submit_and_wait(job);

    json::Value choices = json::Value::array();
    std::int64_t completion_tokens = 0, prompt_tokens = 0;
    const hf::Tokenizer& tok = base->tokenizer();
    for (std::size_t i = 0; i < job->steps.size(); ++i) {
      prompt_tokens += job->prompt_tokens[i];
      for (std::size_t j = 0; j < job->steps[i].size(); ++j) {
        const Step& s = job->steps[i][j];
        json::Value c = json::Value::object();
        c.set("index", static_cast<std::int64_t>(i * static_cast<std::size_t>(job->n) + j));
        c.set("text", s.text);
        if (want_lp) {
          json::Value lp = json::Value::object();
          json::Value toks = json::Value::array();
          for (const TokenId t : s.tokens) {
            const std::int32_t one[1] = {t};
            toks.push_back(tok.decode(one));
          }
          lp.set("tokens", std::move(toks));
          if (!s.token_logprobs.empty())
            lp.set("token_logprobs", json::float_array(s.token_logprobs.data(), s.token_logprobs.size()));
          if (!s.token_entropies.empty())  // a qstar extension field: the exact entropies
            lp.set("token_entropies", json::float_array(s.token_entropies.data(), s.token_entropies.size()));
          c.set("logprobs", std::move(lp));
        } else {
          c.set("logprobs", json::Value());
        }
        if (s.finish == FinishReason::Length) {
          c.set("finish_reason", "length");
          c.set("stop_reason", json::Value());
        } else {
          c.set("finish_reason", "stop");
          c.set("stop_reason", s.finish == FinishReason::Eos ? json::Value() : json::Value(job->cfg.stop));
        }
        c.set("cumulative_logprob", s.logprob);
        c.set("num_tokens", static_cast<std::int64_t>(s.num_tokens));
        completion_tokens += s.num_tokens;
        choices.push_back(std::move(c));
      }
    }
    json::Value o = json::Value::object();
    o.set("id", fmt::format("cmpl-{}", ids++));
    o.set("object", "text_completion");
    o.set("created", static_cast<std::int64_t>(std::time(nullptr)));
    o.set("model", name);
    o.set("choices", std::move(choices));
    json::Value usage = json::Value::object();
    usage.set("prompt_tokens", prompt_tokens);
    usage.set("completion_tokens", completion_tokens);
    usage.set("total_tokens", prompt_tokens + completion_tokens);
    o.set("usage", std::move(usage));
    return json::dump(o);
  }

  std::string scoring(const httplib::Request& req, bool classify) {
    if (!prm) throw HttpError(404, "no PRM is loaded (start qstar serve with --prm)");
    const json::Value b = parse_body(req);
    const auto texts = get_texts(b, "input", params.max_inputs, params.max_prompt_bytes);
    auto job = std::make_shared<Job>();
    job->score = true;
    for (std::size_t k = 0; k < texts.size(); ++k) {
      std::vector<std::string> steps;
      std::size_t pos = 0;
      for (;;) {
        const std::size_t at = texts[k].find(step_tag, pos);
        if (at == std::string::npos) break;
        steps.push_back(texts[k].substr(pos, at - pos));
        pos = at + step_tag.size();
      }
      if (classify && steps.empty())
        throw HttpError(400, fmt::format("input {} holds no step tag {}", k, json::dump(json::Value(step_tag))));
      job->inputs.push_back(std::move(steps));
    }
    submit_and_wait(job);
    json::Value data = json::Value::array();
    for (std::size_t k = 0; k < job->scores.size(); ++k) {
      json::Value item = json::Value::object();
      item.set("index", static_cast<std::int64_t>(k));
      auto row = [](double s) {
        json::Value r = json::Value::array();
        r.push_back(1.0 - s);
        r.push_back(s);
        return r;
      };
      if (classify) {
        const double s = job->scores[k].back();
        item.set("label", s >= 0.5 ? "good" : "bad");
        item.set("probs", row(s));
        item.set("num_classes", static_cast<std::int64_t>(2));
      } else {
        item.set("object", "pooling");
        json::Value rows = json::Value::array();
        for (double s : job->scores[k]) rows.push_back(row(s));
        item.set("data", std::move(rows));
      }
      data.push_back(std::move(item));
    }
    json::Value o = json::Value::object();
    o.set("id", fmt::format("{}-{}", classify ? "classify" : "pool", ids++));
    o.set("object", "list");
    o.set("created", static_cast<std::int64_t>(std::time(nullptr)));
    o.set("model", name);
    o.set("data", std::move(data));
    return json::dump(o);
  }

  void count(int status) {
    std::lock_guard lk(mu);
    ++st.http_requests;
    if (status >= 400 && status < 500) ++st.bad_requests;
  }

  template <class F>
  httplib::Server::Handler wrap(F fn) {
    return detail::json_route(api_key, std::move(fn), [this](int status) { count(status); });
  }

  void setup_routes() {
    detail::configure(http, params.max_body_bytes, params.threads);
    http.Post("/v1/completions", wrap([this](const httplib::Request& r) { return completions(r); }));
    http.Post("/pooling", wrap([this](const httplib::Request& r) { return scoring(r, false); }));
    http.Post("/classify", wrap([this](const httplib::Request& r) { return scoring(r, true); }));
    http.Post("/v1/classify", wrap([this](const httplib::Request& r) { return scoring(r, true); }));
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content("{}", "application/json"); });
    http.Get("/v1/models", wrap([this](const httplib::Request&) {
      json::Value meta = json::Value::object();
      meta.set("completions", base.has_value());
      meta.set("pooling", prm.has_value());
      if (prm) meta.set("step_tag", step_tag);
      return detail::models_body(name, std::move(meta));
    }));
    detail::set_json_error_handler(http, "the request body is over the size limit",
                                   [this](int status) { count(status); });
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Server> Server::start(ServeParams params) {
  params.validate();
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.params = std::move(params);
  const ServeParams& p = s.params;
  s.name = !p.served_model_name.empty() ? p.served_model_name
           : !p.model_dir.empty()       ? basename_of(p.model_dir)
                                        : basename_of(p.prm_path);
  if (!p.api_key_env.empty()) {
    const char* key = std::getenv(p.api_key_env.c_str());
    if (!key || !*key)
      throw InvalidArgument(fmt::format("ServeParams.api_key_env: the environment variable {} is not set",
                                        p.api_key_env));
    s.api_key = key;
  }
  if (!p.model_dir.empty()) s.base.emplace(lm::LMGenerator::load(p.model_dir, p.lm));
  if (!p.prm_path.empty()) {
    lm::PrmParams pp = p.prm;
    pp.prompt_template = "{prompt}";
    pp.step_separator.clear();
    s.prm.emplace(lm::PrmVerifier::load(p.prm_path, pp));
    s.step_tag = s.prm->params().step_tag;
  }
  s.setup_routes();
  // A wide listen backlog, and a listener that stop() can stop: src/http/httplib_listen.hpp.
  const detail::Bound b = detail::bind(s.http, p.host, p.port);
  if (b.port <= 0) {
    if (p.port == 0) throw Error(fmt::format("qstar serve: cannot bind {}:(any port)", p.host));
    throw Error(fmt::format("qstar serve: cannot bind {}:{} (in use, or not a local address?)", p.host, p.port));
  }
  s.bound_port = b.port;
  if (!b.wide_backlog)
    throw Error(fmt::format("qstar serve: cannot widen the listen backlog on {}:{}", p.host, s.bound_port));
  s.worker = std::thread([&s] { s.work(); });
  s.listener = detail::listen_in_background(s.http);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() { stop(); }

int Server::port() const { return impl_->bound_port; }

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopped.exchange(true)) return;
  {
    std::lock_guard lk(s.mu);
    s.stopping = true;
    s.cv_work.notify_all();
  }
  s.http.stop();
  if (s.listener.joinable()) s.listener.join();
  if (s.worker.joinable()) s.worker.join();
}

ServeStats Server::stats() const {
  std::lock_guard lk(impl_->mu);
  return impl_->st;
}

}  // namespace qstar::http
