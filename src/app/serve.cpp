// `qstar serve`: the HTTP server of src/http/server.cpp behind command-line flags. Runs until
// SIGINT or SIGTERM, then stops cleanly and prints its counters.
#include <csignal>
#include <pthread.h>

#include <charconv>
#include <cmath>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "app/app.hpp"
#include "qstar/error.hpp"
#include "qstar/http/server.hpp"

namespace qstar::cli {

namespace {

constexpr const char* kServeUsage = R"(usage: qstar serve --model DIR [--prm PATH] [options]

Serves a Llama/Qwen2/Qwen3/Mistral folder on POST /v1/completions and a PRM on POST /pooling and
/classify (an OpenAI-compatible subset; see docs/serving.md). Stops on SIGINT/SIGTERM.
(qstar serve --search ALGO ... serves whole searches instead: qstar serve --search beam --help.)

  --model DIR            the generator model folder (optional when --prm is given)
  --prm PATH             a PRM folder or TorchScript file
  --prm-kind KIND        token-logit | chat-logit | token-class | process-reward | value-head |
                         torchscript (default: inferred; docs/models.md)
  --step-tag TEXT        the PRM's step tag (default: the kind's; "\n" escapes work)
  --host H               interface to bind (default 127.0.0.1)
  --port P               port (default 8000; 0 = any free port, printed at start)
  --name NAME            the model name reported (default: the folder name)
  --device cpu|cuda|cuda:N --dtype float32|bfloat16|float16|int8 --kv-cache-mb M
                         (--dtype: the weights' dtype; on CPU bfloat16/float16 halve
                         their memory, int8 (CPU only) quarters the linear layers',
                         computing in float32)
  --max-n N --max-tokens T --max-prompt-bytes B --max-inputs K   request limits
  --batch-window-ms W    wait this long for requests to batch together (default 2)
  --max-batch R          requests per batch at most (default 256)
  --threads N            compute threads of the models (ATen and BLAS together; default: the
                         cores, or fewer when OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say so)
  --http-threads T       HTTP handler threads = connections served at once (default 256)
  --api-key-env VAR      require "Authorization: Bearer $VAR" on every request
)";

}  // namespace

int cmd_serve(const std::vector<std::string>& args, std::ostream& out) {
  for (std::size_t i = 1; i < args.size(); ++i)
    if (args[i] == "--help" || args[i] == "-h") {
      out << kServeUsage;
      return 0;
    }
  const Args a(args, 1, "serve");  // the flag table's "serve" rows
  if (!a.positional().empty())
    throw UsageError(
        fmt::format("serve: unexpected argument '{}' (flags only; see qstar serve --help)", a.positional()[0]));
  auto get = [&](const char* k) { return a.get(k); };
  http::ServeParams p;
  if (auto v = get("model")) p.model_dir = *v;
  if (auto v = get("prm")) p.prm_path = *v;
  if (p.model_dir.empty() && p.prm_path.empty()) throw InvalidArgument("serve: give --model DIR and/or --prm PATH");
  if (auto v = get("prm-kind")) p.prm.kind = *v;
  if (auto v = get("step-tag")) p.prm.step_tag = unescape(*v);
  if (auto v = get("host")) p.host = *v;
  if (auto v = get("port")) p.port = parse_int<int>("port", *v, 0, 65535);
  if (auto v = get("name")) p.served_model_name = *v;
  if (auto v = get("device")) p.lm.device = p.prm.device = *v;
  if (auto v = get("dtype")) p.lm.dtype = p.prm.dtype = *v;
  if (auto v = get("kv-cache-mb"))
    p.lm.kv_cache_bytes = p.prm.kv_cache_bytes = parse_int<std::int64_t>("kv-cache-mb", *v, 0, 1 << 30) << 20;
  if (auto v = get("max-n")) p.max_n = parse_int<int>("max-n", *v, 1, 1 << 16);
  if (auto v = get("max-tokens")) p.max_tokens = parse_int<int>("max-tokens", *v, 1, 1 << 24);
  if (auto v = get("max-prompt-bytes")) p.max_prompt_bytes = parse_int<std::size_t>("max-prompt-bytes", *v, 1, std::size_t{1} << 32);
  if (auto v = get("max-inputs")) p.max_inputs = parse_int<std::size_t>("max-inputs", *v, 1, 1 << 20);
  if (auto v = get("batch-window-ms")) p.batch_window_ms = parse_double("batch-window-ms", *v);
  if (auto v = get("max-batch")) p.max_batch_requests = parse_int<std::size_t>("max-batch", *v, 1, 1 << 20);
  if (auto v = get("http-threads")) p.threads = parse_int<int>("http-threads", *v, 1, 4096);
  apply_threads(a);
  if (auto v = get("api-key-env")) p.api_key_env = *v;
  p.validate();

  // Block SIGINT/SIGTERM here (the server's threads inherit the mask) and wait for them.
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
  auto server = http::Server::start(p);
  out << fmt::format("qstar serve: listening on http://{}:{} (model {}, prm {})\n", p.host, server->port(),
                     p.model_dir.empty() ? "-" : p.model_dir, p.prm_path.empty() ? "-" : p.prm_path)
      << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  server->stop();
  const auto s = server->stats();
  out << fmt::format("qstar serve: stopped ({}); {} HTTP requests ({} bad), {} completions in {} expand calls, "
                     "{} scored inputs in {} PRM calls, {} batches (largest {})\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM", s.http_requests, s.bad_requests, s.completions,
                     s.expand_calls, s.scored_inputs, s.prm_calls, s.batches, s.max_batch_seen)
      << std::flush;
  return 0;
}

}  // namespace qstar::cli
