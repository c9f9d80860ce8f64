// `qstar serve --search ALGO`: the search service of src/app/search_service.hpp behind the
// search commands' flags (the algorithm's, the task's and the plug-ins', as `qstar solve`
// takes them). Runs until SIGINT or SIGTERM, then answers the requests it has received,
// stops and prints its counters.
#include <csignal>
#include <pthread.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "app/app.hpp"
#include "app/search_service.hpp"

namespace qstar::cli {

namespace {

constexpr const char* kServeSearchUsage = R"(usage: qstar serve --search ALGO [search flags] [options]

Serves searches on POST /v1/chat/completions and /v1/completions (OpenAI-compatible): each
request is one problem of the task (the last user message, or the prompt), searched with ALGO;
the reply's completion is the selected solution, and its "qstar" field holds the answer and
the search's statistics. Requests that arrive together are searched together. See
docs/serving.md, "Search as a service". Stops on SIGINT/SIGTERM.

  --search ALGO          best-of-n | beam | dvts | best-first | mcts
  --n N                  the budget knob per request (default 16; a request may ask for
                         another with "qstar": {"n": N}, up to --max-n)
  --seed S               the default seed (a request's "seed" overrides it)
  --task, --generator, --verifier, the algorithm's flags and budgets: as `qstar solve`
                         (qstar help); --max-tokens is the search's generated-token budget
  --host H               interface to bind (default 127.0.0.1)
  --port P               port (default 8000; 0 = any free port, printed at start)
  --name NAME            the model name reported (default qstar-search)
  --max-n N              the largest budget a request may ask for (default max(256, --n))
  --max-prompt-bytes B   bytes of problem text per request at most (default 65536)
  --batch-window-ms W    wait this long after a request for others to join (default 20)
  --max-batch R          problems per search round at most (default 64)
  --max-queue Q          requests waiting at most; more are answered 503 (default 1024)
  --http-threads T       HTTP handler threads = connections served at once (default 64)
  --threads N            compute threads of the LibTorch models (default: the cores)
  --api-key-env VAR      require "Authorization: Bearer $VAR" on every request (http:URL
                         plug-ins then send their default variable, OPENAI_API_KEY)
)";

/// The service's params from the serve flags.
SearchServiceParams service_params(const Args& a, const std::string& algo, int n) {
  SearchServiceParams p;
  p.algo = algo;
  p.defaults.n = n;
  p.defaults.seed = get_seed(a);
  p.max_n = std::max(256, n);
  if (auto v = a.get("host")) p.host = *v;
  if (auto v = a.get("port")) p.port = parse_int<int>("port", *v, 0, 65535);
  if (auto v = a.get("name")) p.served_model_name = *v;
  if (auto v = a.get("max-n")) p.max_n = parse_int<int>("max-n", *v, 1, 1 << 20);
  if (auto v = a.get("max-prompt-bytes"))
    p.max_prompt_bytes = parse_int<std::size_t>("max-prompt-bytes", *v, 1, std::size_t{1} << 30);
  if (auto v = a.get("batch-window-ms")) p.batch_window_ms = parse_double("batch-window-ms", *v);
  if (auto v = a.get("max-batch")) p.max_batch = parse_int<std::size_t>("max-batch", *v, 1, 1 << 20);
  if (auto v = a.get("max-queue")) p.max_queue = parse_int<std::size_t>("max-queue", *v, 1, 1 << 24);
  if (auto v = a.get("http-threads")) p.threads = parse_int<int>("http-threads", *v, 1, 4096);
  if (auto v = a.get("api-key-env")) p.api_key_env = *v;
  validate_usage(p, "serve");
  return p;
}

/// The command line without --api-key-env (the service's own key; the http:URL plug-ins,
/// which read the flag in `solve`, keep their default variable OPENAI_API_KEY here).
std::vector<std::string> without_service_flags(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--api-key-env") {
      ++i;
      continue;
    }
    if (args[i].rfind("--api-key-env=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

}  // namespace

bool is_search_serve(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(),
                     [](const std::string& s) { return s == "--search" || s.rfind("--search=", 0) == 0; });
}

int cmd_serve_search(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (std::size_t i = 1; i < args.size(); ++i)
    if (args[i] == "--help" || args[i] == "-h") {
      out << kServeSearchUsage;
      return 0;
    }
  const Args served(args, 1, "serve search");  // the flag table's "serve-search" rows
  const Args a(without_service_flags(args), 1, "serve search");  // the search's and plug-ins' flags
  if (!a.positional().empty())
    throw UsageError(fmt::format("serve: unexpected argument '{}' (flags only; see qstar serve --search x --help)",
                                 a.positional()[0]));
  if (a.has("algo")) throw UsageError("serve: name the algorithm with --search ALGO (not --algo)");
  const std::string name = a.get("search").value_or("");
  if (!find_algorithm(name))
    throw UsageError(fmt::format("--search: '{}' is not one of {}", name, fmt::join(algorithm_names(), ", ")));
  const std::string algo = canonical_algorithm(name);
  a.check_algorithms({algo});
  const TaskEntry& entry = task_of(a);
  int n = 16;
  if (auto v = a.get("n")) n = parse_int<int>("n", *v, 1, 1 << 20);
  const SearchServiceParams sp = service_params(served, algo, n);
  const SearchParams base = make_params(algo, n, a);  // usage errors before anything loads
  const std::int64_t base_tokens = common(base).budget.max_generated_tokens;
  apply_threads(a);  // before the models load
  const AnyTask task = make_task(a, entry, &err);
  Plugins pl = make_plugins(a, entry, &err);
  check_plugins(base, pl);

  // The dispatcher is the only caller of the runner: the plug-ins see one search at a time.
  std::map<int, SearchParams> by_n{{n, base}};
  SearchRunner runner = [&](std::span<const Problem> problems, const SearchSettings& s) {
    auto it = by_n.find(s.n);
    if (it == by_n.end()) it = by_n.emplace(s.n, make_params(algo, s.n, a)).first;
    SearchParams p = it->second;
    common(p).keep_tree = s.keep_tree;
    if (s.max_tokens > 0)
      common(p).budget.max_generated_tokens = base_tokens > 0 ? std::min(base_tokens, s.max_tokens) : s.max_tokens;
    auto results = run_search(problems, task, pl, p, s.seed);
    // A task that grades against a gold answer (math) cannot check a request's problem,
    // which has none: "correct" is unknown, not false.
    if (entry.check_answer)
      for (auto& r : results)
        if (!r.problem.gold) r.correct.reset();
    return results;
  };
  ProblemParser parse = [&entry](const std::string& text) { return entry.parse_problem(text); };

  // Block SIGINT/SIGTERM here (the service's threads inherit the mask) and wait for them.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  std::signal(SIGPIPE, SIG_IGN);
  struct Restore {
    sigset_t* old;
    ~Restore() { pthread_sigmask(SIG_SETMASK, old, nullptr); }
  } restore{&old};
  auto service = SearchService::start(sp, parse, runner);
  out << fmt::format("qstar serve: listening on http://{}:{} (search {}, n {}, task {}, generator {}, verifier {})\n",
                     sp.host, service->port(), algo, n, entry.name, pl.gen_label, pl.ver_label)
      << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  service->stop();
  const auto s = service->stats();
  out << fmt::format("qstar serve: stopped ({}); {} HTTP requests ({} bad), {} problems in {} searches over {} "
                     "rounds (largest search {})\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", s.http_requests, s.bad_requests, s.problems, s.searches,
                     s.rounds, s.max_batch_seen)
      << std::flush;
  return 0;
}

}  // namespace qstar::cli
