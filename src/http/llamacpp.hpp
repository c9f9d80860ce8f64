// HttpGenerator's llama.cpp-server protocol (HttpGeneratorParams::server == "llama.cpp"):
// the native POST /completions endpoint, which, unlike its /v1/completions, reports per
// choice the generated token ids, the token count and why generation stopped. See
// include/qstar/http/client.hpp for the mapping and docs/serving.md for what was observed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/core/types.hpp"
#include "qstar/http/client.hpp"

namespace qstar::http::detail {

using Bad = std::function<void(const std::string&)>;

/// The endpoint path of the native protocol.
inline constexpr std::string_view kLlamaCppPath = "/completions";

/// The request's 64-bit seed mapped into [0, 2^31): llama.cpp's server reads 32 bits, takes
/// 0xFFFFFFFF as "random", and seeds choice k of a request with seed + k; below 2^31, seed +
/// k never wraps nor reaches 0xFFFFFFFF. A fixed mixing function (splitmix64's finalizer),
/// so distinct seeds stay distinct with probability ~1 - 2^-31 per pair.
std::uint32_t llamacpp_seed(std::uint64_t seed);

/// The request body: every sampling field explicitly (the server's own defaults, top_k 40
/// and min_p 0.05 among them, would otherwise apply), n choices seeded seed, seed+1, ...
json::Value llamacpp_body(const HttpGeneratorParams& p, const std::string& prompt, int n, int max_tokens,
                          bool greedy, std::uint32_t seed);

/// The n results of a reply (one object for n == 1, an array otherwise), by "index".
std::vector<const json::Value*> llamacpp_results(const json::Value& body, int n, const Bad& bad);

/// One result as a Step (text, token count, logprobs, finish), before answer_marker.
/// `at_delimiter` is set when the step ended at the step delimiter.
Step llamacpp_step(const json::Value& result, const HttpGeneratorParams& p, bool& at_delimiter, const Bad& bad);

/// The limit on n in a 400 message of the server ("Field 'n': Value must be between 1 <=
/// value <= 4, but got 8" -> 4), or nullopt when the message is about something else.
std::optional<int> n_limit_of(std::string_view message);

/// True when a GET /v1/models reply comes from llama.cpp's server (a model owned by
/// "llamacpp").
bool is_llamacpp_models_reply(const json::Value& models);

}  // namespace qstar::http::detail
