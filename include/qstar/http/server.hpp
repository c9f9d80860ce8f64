// `qstar serve`: an HTTP server that puts a LibTorch model folder (and optionally a PRM)
// behind the subset of the OpenAI-compatible protocol that HttpGenerator / HttpVerifier
// speak. No HTTP-library or LibTorch includes here (PImpl, src/http/server.cpp).
//
// Endpoints:
//  POST /v1/completions  {prompt: string | [string], n, max_tokens, temperature, top_p,
//                         top_k, seed, stop: string | [string] (exactly one, required),
//                         logprobs, model}
//       Each prompt becomes one ExpandRequest of an LMGenerator with the request's stop as
//       step_delimiter, prompt_template "{prompt}", no answer marker (the client decides),
//       num_candidates = n, max_new_tokens = max_tokens, greedy when temperature == 0 and
//       seed = the request's seed reinterpreted as uint64 (two's complement; absent: 0).
//       So a step is sampled exactly as the in-process LMGenerator samples it for the same
//       context and seed. Choices: text (before the stop string), finish_reason "stop" with
//       stop_reason = the stop string (delimiter) or null (EOS), or "length"; index =
//       prompt_index * n + j. With logprobs (any value >= 0): "logprobs": {"tokens": [...]}
//       (each generated token's decoded text; EOS excluded), "token_logprobs": [...] (each
//       token's log-probability at temperature 1, as float32) and, a qstar extension,
//       "token_entropies": [...] (the entropy of each position's temperature-1 distribution)
//       when the generator's token_stats is on (no "top_logprobs": alternatives are not
//       sent); and, as qstar extension fields of the choice, "cumulative_logprob" (the
//       unrounded sum of the tokens' log-probabilities) and "num_tokens".
//  POST /pooling   {input: string | [string]}: for a PRM, every input is split at the PRM's
//       step tag (each occurrence ends a step); the reply is vLLM's format with STEP pooling,
//       {data: [{index, object: "pooling", data: [[1 - s, s] per step]}]}, s the PRM's
//       score of that step. The text before the first step is not separated from the
//       first step (the PRM is loaded with prompt_template "{prompt}" and no separator:
//       clients put those in the text).
//  POST /classify  {input: string | [string]}: the score of the LAST step of each input,
//       {data: [{index, label, probs: [1 - s, s], num_classes: 2}]}.
//  GET  /v1/models, GET /health.
// Errors: 400 (malformed JSON, a bad field: the message names it), 401 (missing or wrong
// API key, when api_key_env is set), 404 (unknown path or no
// model of that kind loaded), 413 (body over max_body_bytes), 500 (a backend failure):
// body {"error": {"message", "type", "code"}}.
//
// Batching: handler threads queue their requests; one worker collects what arrives within
// batch_window_ms of the first (at most max_batch_requests) and runs all completions with
// the same sampling settings as ONE LMGenerator::expand call, and all pooling/classify
// inputs as ONE PrmVerifier::score_steps call. Each distinct (stop, temperature, top_p,
// top_k) keeps its own LMGenerator (sharing the loaded weights) whose shared-prefix KV
// cache persists across requests; at most max_sampling_configs are kept (least recently
// used dropped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "qstar/torch/lm_generator.hpp"
#include "qstar/torch/prm.hpp"

namespace qstar::http {

/// Server settings. validate() throws InvalidArgument naming the field.
struct ServeParams {
  /// A Llama/Qwen2/Qwen3/Mistral folder served on /v1/completions (empty: none).
  std::string model_dir;
  /// A PRM (folder or TorchScript file) served on /pooling and /classify (empty: none).
  std::string prm_path;
  /// LibTorch settings of the generator (step_delimiter, answer_marker, prompt_template,
  /// temperature, top_p and top_k are per request and ignored here).
  lm::LMGeneratorParams lm;
  /// PRM settings (prompt_template and step_separator are forced to "{prompt}" and "").
  lm::PrmParams prm;
  /// Interface to bind; loopback by default.
  std::string host = "127.0.0.1";
  /// Port (0: any free port; Server::port() tells which).
  int port = 8000;
  /// The model name reported (empty: the folder's basename).
  std::string served_model_name;
  /// Limits on a request (answered with 400 above them): n, max_tokens, prompt bytes,
  /// prompts/inputs per request; request body bytes (413 above).
  int max_n = 64;
  int max_tokens = 1024;
  std::size_t max_prompt_bytes = std::size_t{1} << 20;
  std::size_t max_inputs = 256;
  std::size_t max_body_bytes = std::size_t{16} << 20;
  /// How long the worker waits after a request arrives for others to join its batch (ms, >= 0).
  double batch_window_ms = 2.0;
  /// Requests per batch at most (>= 1).
  std::size_t max_batch_requests = 256;
  /// HTTP handler threads (>= 1): connections served at once (cpp-httplib gives each open
  /// connection a thread; each connection serves one request). Keep it above the clients'
  /// total max_in_flight.
  int threads = 256;
  /// Distinct sampling settings with their own generator and KV cache (>= 1).
  std::size_t max_sampling_configs = 8;
  /// When set: the name of an environment variable holding an API key that every request
  /// (except GET /health) must send as "Authorization: Bearer <key>" (else 401). Read at
  /// start; the variable must be set and non-empty. Empty: no authentication.
  std::string api_key_env;

  void validate() const;
};

/// Counters since start.
struct ServeStats {
  std::int64_t http_requests = 0;    ///< requests answered (any status)
  std::int64_t bad_requests = 0;     ///< 4xx answers
  std::int64_t completions = 0;      ///< prompts expanded
  std::int64_t scored_inputs = 0;    ///< pooling / classify inputs scored
  std::int64_t batches = 0;          ///< worker rounds
  std::int64_t expand_calls = 0;     ///< LMGenerator::expand calls
  std::int64_t prm_calls = 0;        ///< PrmVerifier::score_steps calls
  std::int64_t max_batch_seen = 0;   ///< most requests in one worker round
};

class Server {
 public:
  /// Loads the models, binds and starts serving on background threads. IoError /
  /// ParseError from the model folders, InvalidArgument for bad params, Error when the
  /// address cannot be bound.
  static std::unique_ptr<Server> start(ServeParams params);
  ~Server();  ///< stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound port.
  int port() const;
  /// Stops accepting, finishes the queued work and joins the threads (idempotent).
  void stop();
  ServeStats stats() const;

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qstar::http
