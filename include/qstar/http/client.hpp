// HTTP plug-ins that drive OpenAI-compatible serving engines (vLLM, SGLang, llama.cpp's
// server, or `qstar serve`): HttpGenerator (a qstar::Generator over POST /v1/completions)
// and HttpVerifier (a qstar::StepVerifier and OutcomeVerifier over vLLM's /pooling or a
// /classify-style endpoint). No libcurl here: the transport is a PImpl (src/http/).
//
// Transport (both plug-ins, ClientParams). One plug-in call (one search iteration) becomes
// one HTTP request per search request; they go out concurrently, at most max_in_flight at a
// time, each to one of the base URLs: the one with the fewest requests outstanding (from
// every call and thread using this plug-in), round-robin among equals. A request that fails
// at the transport level (connection refused or reset, timeout, a reply that is not JSON)
// or gets HTTP 408, 429 or 5xx is retried up to max_retries times with exponential backoff,
// preferring a URL that has not just failed; after a failure a URL is avoided for
// url_cooldown_s while others remain. Any other 4xx, or a request that stays failed, ends
// the whole call with a qstar::PluginError naming the plug-in, the URL and the server's
// message: results of a call are all or nothing, never silently partial. One exception, for
// the generator: HTTP 500 (the server answered, with an internal error) is retried once
// with the same request at most; a second 500 means the server cannot produce that output
// (llama.cpp's server answers 500 when a completion is invalid UTF-8, every time for the
// same seed), and the request's candidates are dropped: an empty proposal, which the search
// skips (Stats::empty_proposals; HttpStats::dropped). On the llama.cpp protocol a request of
// n > 1 that fails so is retried as n requests of one candidate (choice k keeps its seed), so
// only the failing candidates are dropped. A call whose every request is dropped so is a
// PluginError (the server is failing, not one output).
//
// Base URLs are server roots ("http://host:8000"); a trailing "/v1" or "/" is dropped, so an
// OpenAI-style base ("http://host:8000/v1") works too. https:// works where libcurl has TLS.
// The API key is read once, at construction, from the environment variable named by
// api_key_env and sent as "Authorization: Bearer <key>"; it is never printed or stored in
// messages. Loopback hosts never go through a proxy.
//
// HttpGenerator: request mapping (one request per ExpandRequest):
//   prompt      = prompt_template with "{prompt}" replaced by request.prompt, followed by
//                 text + step_delimiter for every step of request.prefix
//   n           = request.num_candidates (1 when greedy: the step is repeated, as the
//                 LibTorch backend does)
//   max_tokens  = min(max_step_tokens, request.max_new_tokens when > 0)
//   temperature = 0 when request.greedy, else `temperature`; top_p; top_k (-1 when 0: off);
//                 min_p: always sent, so that no server default truncates the sampling
//   seed        = request.seed as a signed 64-bit integer (two's complement of the uint64)
//   stop        = [step_delimiter]; logprobs = `logprobs`; model when set
// A request of more than max_n candidates (or than a limit the server named in a 400) is
// sent as several requests; a piece starting at candidate k > 0 gets a seed derived from
// (seed, k).
// Reply mapping (each choice, by its index): text cut at the first step_delimiter (when a
// server keeps the stop string); per-token log-probabilities from "logprobs" in either
// shape: the completions one, {"token_logprobs": [lp...], "top_logprobs": [{token: lp}...]}
// (vLLM, SGLang, OpenAI legacy), or the chat one, {"content": [{"token", "logprob",
// "top_logprobs": [{"token", "logprob"}...]}...]} (llama.cpp's server, OpenAI chat), or
// null although logprobs were asked for (llama.cpp's /v1/completions when nothing is
// listed): no token, num_tokens 0, logprob 0;
// Step::token_logprobs = them (float), num_tokens = their number, logprob = their sum, or
// the choice's "cumulative_logprob" when given (qstar's extension: the unrounded sum; a
// reply without per-token logprobs must give it and "num_tokens"; with neither it is a
// PluginError); Step::token_entropies = qstar's "token_entropies" when given (exact), else,
// when every position lists top_logprobs, -sum p log p over the listed alternatives: a
// TRUNCATED estimate (a lower bound of the entropy that tightens as `logprobs` grows; with
// the default logprobs = 1 it sees one or two tokens per position), else empty;
// finish: "length" -> Length; "stop" with vLLM's stop_reason (or SGLang's matched_stop)
// a string -> StepEnd, null -> Eos, a token id -> Eos; "stop" without either field ->
// StepEnd; then, when answer_marker is set (it is empty by default: the Task decides which
// steps end a solution), a StepEnd or Eos step whose text contains it -> FinalAnswer.
// Step::tokens: empty, unless the generator has a tokenizer (tokenizer or tokenizer_path):
// then tokenizer.encode(text + step_delimiter) for a step that ended at the delimiter
// (StepEnd, or FinalAnswer from StepEnd), tokenizer.encode(text) otherwise (Eos, Length),
// as the LibTorch backend counts them (delimiter tokens in, EOS out). num_tokens and logprob
// stay the server's (what it generated and max_new_tokens caps), so num_tokens can differ
// from tokens.size() where the server's sampled tokenization is not the tokenizer's own.
//
// llama.cpp protocol (server "llama.cpp", or "auto" finding a model owned_by "llamacpp" in
// GET /v1/models): POST /completions (llama-server's native endpoint) with prompt, n,
// n_predict, temperature, top_k (0: off), top_p, min_p, the other samplers of its chain at
// their neutral values (typical_p 1, top_n_sigma -1, xtc_probability 0, dynatemp_range 0,
// repeat/presence/frequency penalties 1/0/0, dry_multiplier 0, mirostat 0), seed =
// llamacpp_seed(request.seed) + k for a piece starting at candidate k (a 31-bit mix of the
// 64-bit seed: the server reads 32 bits, takes 0xFFFFFFFF as "random" and seeds choice j
// with seed + j, so candidate k always gets the same seed however the request is split),
// stop, n_probs = max(1, logprobs), return_tokens, and response_fields. Each result (one
// object for n = 1, else an array, by "index"): text = "content"; finish from "stop_type":
// eos -> Eos, word -> StepEnd, limit -> Length; Step::tokens = the generated ids
// ("tokens") without the EOS token, num_tokens = their number (exact: the server's
// /v1/completions counts neither the token holding the stop string nor tokens that end
// inside a UTF-8 character); logprob = the sum of the listed "completion_probabilities",
// token_logprobs / token_entropies (from their top_logprobs) only when every token is
// listed. The server leaves out the token holding the stop string and tokens ending inside
// a UTF-8 character: then logprob lacks their terms (a step that ended at the delimiter
// misses its last token's logprob) and token_logprobs is empty. n above the server's
// --parallel slots is a 400 naming the limit: the request is split (see above).
//
// HttpVerifier: the scored text of a trajectory with prompt P and steps s_0..s_{n-1} is
//   prompt_template(P) + s_0 + step_tag + step_separator + s_1 + step_tag + ...
// (the server tokenizes it; configure its PRM to pool at step_tag).
//  * api "pooling" (vLLM's POST /pooling with a reward model whose pooler is STEP with
//    step_tag_id set): one request per StepScoreRequest with "input": the whole text; the
//    reply's data[0].data must hold one row per step tag (one per step); a step's score is
//    row[score_index] (a one-element row: row[0]).
//  * api "classify" (POST /classify, vLLM and SGLang's format): one request per
//    StepScoreRequest with "input": a list of the texts up to and including each new step's
//    tag; data[k].probs[score_index] is step first_new + k's score.
// A score that is not a finite number in [0, 1], or a row count that does not match the
// steps (e.g. a step text containing the tag) is a PluginError naming the URL.
// score_outcomes scores every step and aggregates with outcome_aggregation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qstar/core/aggregate.hpp"
#include "qstar/core/concepts.hpp"
#include "qstar/hf/tokenizer.hpp"

namespace qstar::http {

/// Where and how to send requests. validate() throws InvalidArgument naming the field.
struct ClientParams {
  /// Server roots, e.g. {"http://127.0.0.1:8000", "http://gpu2:8000"}; at least one; each
  /// must start with http:// or https://.
  std::vector<std::string> base_urls;
  /// "least-outstanding" (default) or "round-robin": how a request picks its URL.
  std::string balance = "least-outstanding";
  /// Requests of one call in flight at once, >= 1.
  int max_in_flight = 32;
  /// Seconds to establish a connection, > 0.
  double connect_timeout_s = 5.0;
  /// Seconds for a whole request (connect + reply), > 0.
  double request_timeout_s = 120.0;
  /// Retries after a failed attempt (>= 0): a request makes at most max_retries + 1 attempts.
  int max_retries = 3;
  /// Backoff before retry k (1-based): min(backoff_max_s, backoff_initial_s * 2^(k-1)); >= 0.
  double backoff_initial_s = 0.05;
  double backoff_max_s = 2.0;
  /// Seconds a URL is avoided after it failed (while another URL is available); >= 0.
  double url_cooldown_s = 1.0;
  /// Name of the environment variable holding the API key (empty or unset: no key sent).
  std::string api_key_env = "OPENAI_API_KEY";
  /// The "model" field of every request (empty: not sent; vLLM then uses its only model).
  std::string model;
  /// Verify TLS certificates (https only).
  bool verify_tls = true;

  void validate() const;
};

/// Counters of one plug-in since construction (shared by its copies).
struct HttpStats {
  std::int64_t calls = 0;     ///< plug-in calls (expand / score_steps / score_outcomes)
  std::int64_t requests = 0;  ///< HTTP requests that succeeded
  std::int64_t attempts = 0;  ///< HTTP attempts (requests + failed attempts)
  std::int64_t retries = 0;   ///< attempts that were retries
  std::int64_t failures = 0;  ///< requests that failed for good (each ended a call)
  /// Generator requests given up without ending the call: HTTP 500 twice for the same request
  /// (a server that cannot produce or encode that output, e.g. llama.cpp's server on invalid
  /// UTF-8). Each became an empty proposal (no child) or lost candidates; see the header.
  std::int64_t dropped = 0;
  /// Generator requests split because the server limits n (see HttpGeneratorParams::max_n).
  std::int64_t splits = 0;
  std::int64_t bytes_sent = 0, bytes_received = 0;
  double seconds = 0.0;  ///< wall time inside calls
  std::vector<std::int64_t> per_url;  ///< successful requests per base URL
};

namespace detail {
class Transport;
}

/// Sampling and step format of an HttpGenerator. validate() names the field.
struct HttpGeneratorParams {
  ClientParams client;
  /// The completions path under each base URL.
  std::string path = "/v1/completions";
  /// Sent as the stop string; it separates the steps of the prompt. Not empty.
  std::string step_delimiter = "\n";
  /// A step whose text contains it ends as FinalAnswer. Empty (the default): never; the
  /// Task decides terminality and extracts the answer.
  std::string answer_marker;
  /// Tokens per step at most (>= 1), capped further by ExpandRequest::max_new_tokens.
  int max_step_tokens = 64;
  /// >= 0 (0: greedy).
  double temperature = 1.0;
  /// In (0, 1].
  double top_p = 1.0;
  /// >= 0; 0: no top-k cut. Always sent (as -1 for 0 on the OpenAI protocol, the value vLLM,
  /// SGLang and llama.cpp all read as "off"): a server's own default (llama.cpp: 40) would
  /// otherwise truncate the sampling silently.
  int top_k = 0;
  /// In [0, 1); 0: no min-p cut. Always sent (llama.cpp's default is 0.05).
  double min_p = 0.0;
  /// The "logprobs" field: top alternatives per token (>= 0; the sampled token's logprob
  /// always comes back; llama.cpp's server is sent at least 1).
  int logprobs = 1;
  /// The protocol: "openai" (POST `path`, /v1/completions: vLLM, SGLang, `qstar serve`),
  /// "llama.cpp" (POST /completions, llama.cpp server's native endpoint: exact per-choice
  /// token ids, counts and stop types, 31-bit seeds; see the header comment) or "auto": a
  /// GET /v1/models on the first base URL before the first request; a model "owned_by"
  /// "llamacpp" selects "llama.cpp", anything else "openai".
  std::string server = "auto";
  /// Choices per HTTP request at most (0: no limit). A request for more is split into
  /// requests of at most max_n choices; a server that refuses n with a 400 naming its limit
  /// (llama.cpp: n above its --parallel slots) lowers the limit for this generator's life.
  int max_n = 0;
  /// Must contain "{prompt}"; applied to ExpandRequest::prompt.
  std::string prompt_template = "{prompt}";
  /// max_batch_size() reported to the search core (0: unlimited).
  std::size_t max_batch = 0;
  /// The served model's tokenizer, to fill Step::tokens (see the header comment): a
  /// tokenizer.json, or a model folder holding one; loaded once, at construction (IoError /
  /// ParseError naming the file). Empty: none (unless `tokenizer` is set).
  std::string tokenizer_path;
  /// The same, already loaded. At most one of tokenizer and tokenizer_path may be set.
  std::optional<hf::Tokenizer> tokenizer;

  void validate() const;
};

class HttpGenerator {
 public:
  /// Validates the params (InvalidArgument naming the field). Does not contact the servers.
  explicit HttpGenerator(HttpGeneratorParams params);
  HttpGenerator(const HttpGenerator&) = default;
  HttpGenerator(HttpGenerator&&) noexcept = default;
  HttpGenerator& operator=(const HttpGenerator&) = default;
  HttpGenerator& operator=(HttpGenerator&&) noexcept = default;
  ~HttpGenerator();

  /// Generator: one concurrent request per ExpandRequest (see the header comment).
  /// PluginError naming the URL when a server stays down or replies malformed.
  std::vector<std::vector<Step>> expand(std::span<const ExpandRequest> batch);
  /// "http:<first base URL>" (+ "+N" with more URLs).
  std::string name() const;
  std::size_t max_batch_size() const;
  const HttpGeneratorParams& params() const;
  HttpStats stats() const;
  /// The exact prompt text sent for `request`.
  std::string prompt_text(const ExpandRequest& request) const;
  /// The tokenizer that fills Step::tokens (nullptr without one).
  const hf::Tokenizer* tokenizer() const;
  /// "openai" or "llama.cpp": params().server, or what "auto" found (probing the server on
  /// the first call of this or of expand()).
  std::string protocol() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// How an HttpVerifier calls a reward model. validate() names the field.
struct HttpVerifierParams {
  ClientParams client;
  /// "pooling" (vLLM's /pooling, per-step rows) or "classify" (/classify, one input per step).
  std::string api = "pooling";
  /// The endpoint path; empty: "/pooling" or "/classify" by api.
  std::string path;
  /// Appended after every step; the server's PRM must read its scores there. Not empty.
  std::string step_tag = "\n";
  /// Inserted between a step's tag and the next step's text.
  std::string step_separator;
  /// Must contain "{prompt}".
  std::string prompt_template = "{prompt}";
  /// Which column of a score row (pooling) or probs vector (classify) is P(good); >= 0.
  int score_index = 1;
  /// score_outcomes: how a trajectory's step scores are combined (not Custom).
  Aggregation outcome_aggregation = Aggregation::Last;
  std::size_t max_batch = 0;

  void validate() const;
};

class HttpVerifier {
 public:
  explicit HttpVerifier(HttpVerifierParams params);
  HttpVerifier(const HttpVerifier&) = default;
  HttpVerifier(HttpVerifier&&) noexcept = default;
  HttpVerifier& operator=(const HttpVerifier&) = default;
  HttpVerifier& operator=(HttpVerifier&&) noexcept = default;
  ~HttpVerifier();

  std::vector<std::vector<double>> score_steps(std::span<const StepScoreRequest> batch);
  std::vector<double> score_outcomes(std::span<const OutcomeRequest> batch);
  /// "http-prm:<first base URL>" (+ "+N").
  std::string name() const;
  std::size_t max_batch_size() const;
  const HttpVerifierParams& params() const;
  HttpStats stats() const;
  /// The scored text of `prompt` + `trajectory` (all steps).
  std::string text(std::string_view prompt, const TrajectoryView& trajectory,
                   std::size_t num_steps) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

static_assert(Generator<HttpGenerator>);
static_assert(StepVerifier<HttpVerifier>);
static_assert(OutcomeVerifier<HttpVerifier>);

/// "http://a:1,http://b:2" -> {"http://a:1", "http://b:2"} (empty items are an error).
std::vector<std::string> split_urls(std::string_view list);

}  // namespace qstar::http
