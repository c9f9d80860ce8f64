// Internal, torch-typed: the decoder interface of the LibTorch backend. Not a public
// header: include it only from src/torch/*.cpp, src/train and tests (it pulls in ATen).
//
// A Decoder is a loaded decoder-only transformer with a batched, ragged, cached forward
// built for a shared-prefix KV cache (torch/kv_cache.hpp). LMGenerator, PrmVerifier, the
// KV cache and LanguageModel see only this interface; each model family (src/torch/models/,
// one file per family) implements it and registers a DecoderFamily keyed by config.json's
// model_type and architectures, and load_decoder() picks the family of a folder.
//
// Conventions every family keeps: KV segments hold keys after the positional encoding, at
// the tokens' absolute positions, [n_kv_heads, length, head_dim] per layer in the compute
// dtype on the model's device; logits are float32; on CPU everything runs in float32, while
// the weight matrices may be stored in bfloat16 / float16 (LoadOptions::dtype) and upcast to
// float32 just before each matmul (models/layers.hpp: linear, embedding).
//
// Threading: forward() is const and keeps no mutable state: several threads may call it
// at once. Every entry point opens its own c10::InferenceMode guard; tensors it returns
// (KV segments, logits) are inference tensors, so keep later in-place work on them inside
// an InferenceMode guard too.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qstar/hf/config.hpp"
#include "qstar/hf/safetensors.hpp"

namespace qstar::lm {


/// Where and how to run a model.
struct LoadOptions {
  /// "cpu", "cuda" or "cuda:N".
  std::string device = "cpu";
  /// The weights' dtype. On CUDA it is the storage and the compute dtype. On CPU it is the
  /// storage dtype of the weight matrices (embedding, projections, lm_head / score): with
  /// bfloat16 or float16 they stay in that dtype (as read from the file, or rounded from
  /// float32 at load) and each matmul upcasts its weight to float32 just-in-time, in chunks
  /// of rows (models/layers.hpp); activations, KV cache, norms and biases are float32, so
  /// the CPU always computes in float32. bfloat16 halves the weights' memory (a 7B model:
  /// about 13.5 GB instead of 27 GB) at some speed cost (benchmarks/README.md). Weights
  /// stored as bfloat16 / float16 on CPU are for inference only (no autograd).
  hf::DType dtype = hf::DType::F32;
  /// CPU: make glibc's malloc keep freed memory across forwards (lm::keep_freed_memory(),
  /// include/qstar/torch/threads.hpp: process-wide, applied once by the first CPU model
  /// loaded; prefill was bound by page faults on fresh activation buffers without it).
  /// false: leave malloc as it is.
  bool keep_freed_memory = true;
  /// "int8" (CPU only; `dtype` is then F32): weight-only int8 storage. The linear matrices
  /// of attention, MLP and lm_head are quantised at load, per output row (symmetric,
  /// scale = max|row| / 127, kernels::quantize_rows_int8); embeddings, norms, biases and a
  /// score head stay float32; activations are float32. A quarter of float32's bytes for
  /// those matrices, at an accuracy cost stated in benchmarks/README.md ("Decode kernels").
  bool int8 = false;
};

/// "float32"/"fp32"/"f32", "bfloat16"/"bf16", "float16"/"fp16"/"f16"/"half", and with
/// `int8` non-null "int8"/"i8" (sets *int8, returns F32; else *int8 = false) (case
/// insensitive) → DType. InvalidArgument naming `field` and the accepted values otherwise.
hf::DType parse_dtype(std::string_view name, std::string_view field = "dtype", bool* int8 = nullptr);

/// The KV of a run of consecutive tokens of one sequence, for every layer: k[l] and v[l]
/// are [n_kv_heads, length, head_dim] tensors in the model's compute dtype on its device
/// (keys after RoPE, at the tokens' absolute positions). A default-constructed segment is
/// empty (no layers, length 0).
struct KVSegment {
  std::vector<at::Tensor> k, v;

  /// Number of tokens (0 when empty).
  std::int64_t length() const;
  /// Bytes held by the K and V tensors (their own elements; views count their extent).
  std::size_t nbytes() const;
  /// Tokens [start, start+len) of this segment as views (no copy). InvalidArgument when
  /// the range is out of bounds.
  KVSegment slice(std::int64_t start, std::int64_t len) const;
  /// Concatenation of segments, in order, as one new contiguous segment (copies).
  static KVSegment concat(std::span<const KVSegment* const> parts);
};

/// One sequence of a batched forward.
struct SequenceInput {
  /// Past KV of the sequence as consecutive segments, in token order (non-owning: they
  /// must outlive the call). Empty segments are skipped. Every non-empty one must have the
  /// model's layer count and [n_kv_heads, len, head_dim] shapes on the model's device.
  std::vector<const KVSegment*> past;
  /// New token ids (at least one).
  std::vector<std::int64_t> tokens;
  /// Absolute position of tokens[0]; -1 means the total past length (the usual case).
  std::int64_t position = -1;
};

/// Which logits a forward returns.
enum class LogitsMode {
  None,  ///< no logits (e.g. a token-classification model, or prefill only)
  Last,  ///< the last new token's logits: [1, vocab]
  All,   ///< every new token's logits: [T_new, vocab]
};

/// How the batch's past KV is laid out for attention (the results are identical).
enum class PastAssembly {
  Auto,    ///< Copy on CPU; Gather on CUDA when there are more than two past segments
  Copy,    ///< one copy per (sequence, segment, layer): least memory traffic
  Gather,  ///< per layer, one cat of the distinct segments and one index_select: O(1)
           ///< kernel launches however many segments (and shared segments are read once)
};

struct ForwardOptions {
  LogitsMode logits = LogitsMode::Last;
  /// Also return the final (normed) hidden states [T_new, hidden] in the compute dtype.
  bool hidden = false;
  /// true: each sequence's new KV is its own contiguous tensor (one clone per sequence and
  /// layer). false: views into the batch's per-layer K/V tensors (no copies, but a view
  /// keeps the whole batch's new-token KV alive): for decode loops that consolidate the
  /// tokens of a step themselves (KVSegment::concat) before storing them.
  bool copy_kv = true;
  PastAssembly past = PastAssembly::Auto;
};

/// One sequence's results.
struct SequenceOutput {
  /// The new tokens' KV: per layer [n_kv_heads, T_new, head_dim]. With
  /// ForwardOptions::copy_kv (the default) contiguous and owning its memory (not a view
  /// into the batch), ready to be stored as a new segment.
  KVSegment kv;
  /// float32 on the model device: [T_new, vocab] (All) or [1, vocab] (Last); undefined
  /// for LogitsMode::None.
  at::Tensor logits;
  /// [T_new, hidden] after the final RMSNorm (compute dtype, model device) when
  /// ForwardOptions::hidden, else undefined. `score(hidden)` gives the token-class scores.
  at::Tensor hidden;
};

/// A loaded decoder (one family's weights and forward). Copies are not needed: share it
/// through std::shared_ptr. Thread-safe for concurrent const calls.
class Decoder {
 public:
  virtual ~Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const hf::ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }
  /// The DecoderFamily name that loaded it ("llama", "qwen2", ...).
  const std::string& family() const { return family_; }
  /// The device holding the weights (with its index: "cuda" loads as cuda:<current>).
  at::Device device() const { return device_; }
  /// The compute dtype (float32 on CPU).
  at::ScalarType dtype() const { return dtype_; }
  /// The storage dtype of the weight matrices: LoadOptions::dtype (on CUDA equal to
  /// dtype(); on CPU float32, bfloat16, float16 or int8 (kChar, LoadOptions::int8) while
  /// dtype() is float32).
  at::ScalarType weight_dtype() const { return weight_dtype_; }
  int num_layers() const { return config_.num_hidden_layers; }
  int num_kv_heads() const { return config_.num_key_value_heads; }
  int head_dim() const { return config_.head_dim; }
  /// Bytes of KV one token takes (all layers, K and V).
  std::size_t kv_bytes_per_token() const;

  /// True for *ForCausalLM (a language-model head, or the tied embedding).
  virtual bool has_lm_head() const = 0;
  /// True for *ForTokenClassification (a `score` head [num_labels, hidden]).
  virtual bool has_score_head() const = 0;
  /// Bytes held by the weights.
  virtual std::size_t weight_bytes() const = 0;

  /// The batched, ragged, cached forward. Sequences are padded to the batch's longest
  /// past and longest new run and attend under an explicit additive mask (causal among
  /// the new tokens, full over the real past, -inf over padding). InvalidArgument naming
  /// the sequence for an empty token list, an out-of-range token id, a negative position,
  /// a malformed segment, or logits asked of a model without an lm_head.
  virtual std::vector<SequenceOutput> forward(std::span<const SequenceInput> batch,
                                              const ForwardOptions& options = {}) const = 0;
  /// The token-classification head: score(hidden) as float32 [..., num_labels].
  /// InvalidArgument without a score head.
  virtual at::Tensor score(const at::Tensor& hidden) const = 0;
  /// The language-model head: float32 [..., vocab]. InvalidArgument without an lm_head.
  virtual at::Tensor lm_logits(const at::Tensor& hidden) const = 0;

  /// Every position's logits of one uncached sequence: float32 [T, vocab] on the device.
  at::Tensor forward_tokens(std::span<const std::int64_t> tokens) const;
  /// Final hidden states [T, hidden] of one uncached sequence (compute dtype, device).
  at::Tensor hidden_states(std::span<const std::int64_t> tokens) const;

 protected:
  Decoder(hf::ModelConfig config, std::string dir, std::string family, at::Device device,
          at::ScalarType dtype);
  /// After loading: the device the weights really landed on ("cuda" -> "cuda:N").
  void set_device(at::Device device) { device_ = device; }
  /// The storage dtype of the weight matrices when it differs from the compute dtype.
  void set_weight_dtype(at::ScalarType dtype) { weight_dtype_ = dtype; }

 private:
  hf::ModelConfig config_;
  std::string dir_;
  std::string family_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
  at::ScalarType weight_dtype_ = at::kFloat;
};

/// The device and compute dtype `options` ask for, checked: InvalidArgument for a bad
/// device, Error when CUDA is requested but not available. CPU always computes in float32
/// (the weights' storage dtype is to_scalar_type(options.dtype) on every device).
std::pair<at::Device, at::ScalarType> resolve_device(const LoadOptions& options);
/// hf::DType -> at::ScalarType.
at::ScalarType to_scalar_type(hf::DType d);

/// A model family: which config.json folders it loads, and how.
struct DecoderFamily {
  /// Its name ("llama").
  std::string name;
  /// config.json "model_type" values it loads ("llama").
  std::vector<std::string> model_types;
  /// config.json "architectures"[0] values it loads ("LlamaForCausalLM", ...).
  std::vector<std::string> architectures;
  /// Loads the folder `dir` whose (validated) config is `config`.
  std::function<std::shared_ptr<Decoder>(const hf::ModelConfig& config, const std::string& dir,
                                         const LoadOptions& options)>
      load;
};

/// Adds (or, for an existing name, replaces) a family. InvalidArgument naming the field for
/// an empty name, no model_types, or no load function. The built-in families (llama,
/// qwen2, qwen3, mistral) are always registered.
void register_decoder_family(DecoderFamily family);
/// The family whose model_types holds config.model_type and whose architectures holds
/// config.architecture; nullptr when none does. The pointer stays valid (a later
/// registration under the same name replaces the entry in place).
const DecoderFamily* find_decoder_family(const hf::ModelConfig& config);
/// The names of the registered families.
std::vector<std::string> decoder_families();

/// Loads `dir`/config.json and the safetensors weights (model.safetensors or shards) with
/// the registered family of its model_type / architecture. ParseError naming config.json
/// for an architecture no family supports; otherwise the family's errors (ParseError
/// naming the file and tensor for a missing or mis-shaped tensor, InvalidArgument for a bad
/// device, Error when CUDA is requested but not available).
std::shared_ptr<Decoder> load_decoder(const std::string& dir, const LoadOptions& options = {});

}  // namespace qstar::lm
