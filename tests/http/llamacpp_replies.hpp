// Replies of llama.cpp's server (llama-server from node-llama-cpp 3.22.1's bundled llama.cpp,
// commit de3ff815ea7d), recorded by scripts/llama-server-interop.sh --record against the
// tiny random model of benchmarks/make_gguf.py. Used by tests/http/test_http_llamacpp.cpp.
#pragma once

namespace llamacpp_replies {

// PROVISIONAL
inline constexpr const char* kModels = R"({"object":"list","data":[{"id":"model.gguf","object":"model","created":1,"owned_by":"llamacpp","meta":{}}]})";
inline constexpr const char* kNTooLarge = R"({{"error":{{"code":400,"message":"Field 'n': Value must be between 1 <= value <= {}, but got {}","type":"invalid_request_error"}}}})";
inline constexpr const char* kWordStop = R"({"index":0,"content":"ab","tokens":[1,2,3],"tokens_predicted":3,"stop_type":"word","completion_probabilities":[{"id":1,"token":"a","bytes":[97],"logprob":-1.5,"top_logprobs":[{"id":1,"token":"a","bytes":[97],"logprob":-1.5}]},{"id":2,"token":"b","bytes":[98],"logprob":-2.0,"top_logprobs":[{"id":2,"token":"b","bytes":[98],"logprob":-2.0}]}]})";
inline constexpr const char* kEos = R"({"index":0,"content":"","tokens":[5],"tokens_predicted":1,"stop_type":"eos","completion_probabilities":[{"id":5,"token":"","bytes":[],"logprob":-6.0,"top_logprobs":[]}]})";
inline constexpr const char* kLength = R"({"index":0,"content":"abc","tokens":[1,2,3],"tokens_predicted":3,"stop_type":"limit","completion_probabilities":[{"id":1,"token":"a","bytes":[97],"logprob":-1.5,"top_logprobs":[{"id":1,"token":"a","bytes":[97],"logprob":-1.5},{"id":9,"token":"z","bytes":[122],"logprob":-2.5}]},{"id":2,"token":"b","bytes":[98],"logprob":-2.0,"top_logprobs":[{"id":2,"token":"b","bytes":[98],"logprob":-2.0},{"id":9,"token":"z","bytes":[122],"logprob":-2.5}]},{"id":3,"token":"c","bytes":[99],"logprob":-0.5,"top_logprobs":[{"id":3,"token":"c","bytes":[99],"logprob":-0.5},{"id":9,"token":"z","bytes":[122],"logprob":-2.5}]}]})";
inline constexpr const char* kInvalidUtf8 = R"({"error":{"code":500,"message":"[json.exception.type_error.316] invalid UTF-8 byte at index 1: 0x28","type":"server_error"}})";
inline constexpr const char* kOaiTwoChoices = R"({"choices":[{"text":"ab","index":0,"logprobs":{"content":[{"id":1,"token":"a","bytes":[97],"logprob":-1.5,"top_logprobs":[]},{"id":2,"token":"b","bytes":[98],"logprob":-2.0,"top_logprobs":[]}]},"finish_reason":"stop"},{"text":"","index":1,"logprobs":null,"finish_reason":"stop"}],"object":"text_completion"})";

}  // namespace llamacpp_replies
