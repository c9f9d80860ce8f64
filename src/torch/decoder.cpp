// The decoder interface's shared parts: dtypes, devices, KV segments, the uncached
// convenience forwards and the family registry. See decoder.hpp.
#include "torch/decoder.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <mutex>

#include "qstar/error.hpp"
#include "torch/models/llama.hpp"

namespace qstar::lm {

namespace {

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

struct Registry {
  std::mutex mu;
  std::deque<DecoderFamily> families;  // stable addresses for find_decoder_family
  Registry() {
    families.push_back(llama_family());
    families.push_back(qwen2_family());
    families.push_back(qwen3_family());
    families.push_back(mistral_family());
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

at::ScalarType to_scalar_type(hf::DType d) {
  switch (d) {
    case hf::DType::F32:
      return at::kFloat;
    case hf::DType::F16:
      return at::kHalf;
    case hf::DType::BF16:
      return at::kBFloat16;
  }
  return at::kFloat;
}

hf::DType parse_dtype(std::string_view name, std::string_view field, bool* int8) {
  if (int8) *int8 = false;
  for (auto n : {"int8", "i8"})
    if (int8 && ieq(name, n)) {
      *int8 = true;
      return hf::DType::F32;
    }
  for (auto n : {"float32", "fp32", "f32", "float"})
    if (ieq(name, n)) return hf::DType::F32;
  for (auto n : {"bfloat16", "bf16"})
    if (ieq(name, n)) return hf::DType::BF16;
  for (auto n : {"float16", "fp16", "f16", "half"})
    if (ieq(name, n)) return hf::DType::F16;
  throw InvalidArgument(
      fmt::format("{}: unknown dtype '{}' (expected float32, bfloat16{})", field, name,
                  int8 ? ", float16 or int8" : " or float16"));
}

std::pair<at::Device, at::ScalarType> resolve_device(const LoadOptions& options) {
  at::Device device(at::kCPU);
  try {
    device = at::Device(options.device);
  } catch (const c10::Error&) {
    throw InvalidArgument(
        fmt::format("device: '{}' is not a device (expected cpu, cuda or cuda:N)", options.device));
  }
  if (!device.is_cpu() && !device.is_cuda()) {
    throw InvalidArgument(fmt::format(
        "device: '{}' is not supported (expected cpu, cuda or cuda:N)", options.device));
  }
  if (options.int8 && !device.is_cpu()) {
    throw InvalidArgument(fmt::format(
        "dtype: int8 weight storage is supported on the CPU only, not on '{}'", options.device));
  }
  if (device.is_cuda() && !at::hasCUDA()) {
    throw Error(fmt::format("device: '{}' requested but CUDA is not available", options.device));
  }
  return {device, device.is_cpu() ? at::kFloat : to_scalar_type(options.dtype)};
}

// ---- KVSegment ---------------------------------------------------------------------------

std::int64_t KVSegment::length() const {
  return k.empty() || !k.front().defined() ? 0 : k.front().size(1);
}

std::size_t KVSegment::nbytes() const {
  std::size_t n = 0;
  for (const auto* side : {&k, &v})
    for (const auto& t : *side)
      if (t.defined()) n += static_cast<std::size_t>(t.numel()) * t.element_size();
  return n;
}

KVSegment KVSegment::slice(std::int64_t start, std::int64_t len) const {
  const std::int64_t n = length();
  if (start < 0 || len < 0 || start + len > n) {
    throw InvalidArgument(fmt::format(
        "KVSegment::slice: range [{}, {}) out of a segment of {} tokens", start, start + len, n));
  }
  KVSegment out;
  out.k.reserve(k.size());
  out.v.reserve(v.size());
  for (const auto& t : k) out.k.push_back(t.narrow(1, start, len));
  for (const auto& t : v) out.v.push_back(t.narrow(1, start, len));
  return out;
}

KVSegment KVSegment::concat(std::span<const KVSegment* const> parts) {
  c10::InferenceMode guard;
  KVSegment out;
  std::size_t layers = 0;
  for (const KVSegment* p : parts)
    if (p != nullptr && p->length() > 0) {
      if (layers == 0) layers = p->k.size();
      if (p->k.size() != layers || p->v.size() != layers)
        throw InvalidArgument("KVSegment::concat: segments have different layer counts");
    }
  for (std::size_t l = 0; l < layers; ++l) {
    std::vector<at::Tensor> ks, vs;
    for (const KVSegment* p : parts)
      if (p != nullptr && p->length() > 0) {
        ks.push_back(p->k[l]);
        vs.push_back(p->v[l]);
      }
    out.k.push_back(at::cat(ks, 1));
    out.v.push_back(at::cat(vs, 1));
  }
  return out;
}

// ---- Decoder -------------------------------------------------------------------------------

Decoder::Decoder(hf::ModelConfig config, std::string dir, std::string family, at::Device device,
                 at::ScalarType dtype)
    : config_(std::move(config)),
      dir_(std::move(dir)),
      family_(std::move(family)),
      device_(device),
      dtype_(dtype),
      weight_dtype_(dtype) {}

std::size_t Decoder::kv_bytes_per_token() const {
  return static_cast<std::size_t>(2) * static_cast<std::size_t>(config_.num_hidden_layers) *
         static_cast<std::size_t>(config_.num_key_value_heads) *
         static_cast<std::size_t>(config_.head_dim) * c10::elementSize(dtype_);
}

at::Tensor Decoder::forward_tokens(std::span<const std::int64_t> tokens) const {
  c10::InferenceMode guard;
  SequenceInput in;
  in.tokens.assign(tokens.begin(), tokens.end());
  auto res =
      forward(std::span<const SequenceInput>(&in, 1), ForwardOptions{LogitsMode::All, false});
  return res.front().logits;
}

at::Tensor Decoder::hidden_states(std::span<const std::int64_t> tokens) const {
  c10::InferenceMode guard;
  SequenceInput in;
  in.tokens.assign(tokens.begin(), tokens.end());
  auto res =
      forward(std::span<const SequenceInput>(&in, 1), ForwardOptions{LogitsMode::None, true});
  return res.front().hidden;
}

// ---- the family registry ---------------------------------------------------------------------

void register_decoder_family(DecoderFamily family) {
  if (family.name.empty()) throw InvalidArgument("DecoderFamily.name: must not be empty");
  if (family.model_types.empty())
    throw InvalidArgument(
        fmt::format("DecoderFamily.model_types: family '{}' lists no model_type", family.name));
  if (!family.load)
    throw InvalidArgument(
        fmt::format("DecoderFamily.load: family '{}' has no load function", family.name));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (auto& f : r.families)
    if (f.name == family.name) {
      f = std::move(family);
      return;
    }
  r.families.push_back(std::move(family));
}

const DecoderFamily* find_decoder_family(const hf::ModelConfig& config) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  for (const auto& f : r.families)
    if (contains(f.model_types, config.model_type) && contains(f.architectures, config.architecture))
      return &f;
  return nullptr;
}

std::vector<std::string> decoder_families() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> out;
  for (const auto& f : r.families) out.push_back(f.name);
  return out;
}

std::shared_ptr<Decoder> load_decoder(const std::string& dir, const LoadOptions& options) {
  c10::InferenceMode guard;
  const std::string config_path = dir + "/config.json";
  hf::ModelConfig cfg = hf::ModelConfig::from_file(config_path);
  cfg.validate();
  const DecoderFamily* family = find_decoder_family(cfg);
  if (family == nullptr) {
    std::string supported;
    {
      Registry& r = registry();
      std::lock_guard lock(r.mu);
      for (const auto& f : r.families)
        for (const auto& a : f.architectures) supported += (supported.empty() ? "" : ", ") + a;
    }
    throw ParseError(fmt::format(
        "{}: architectures: unsupported architecture '{}' with model_type '{}' (supported: {})",
        config_path, cfg.architecture, cfg.model_type, supported));
  }
  auto load = family->load;  // a copy: the registry may change while the family loads
  return load(cfg, dir, options);
}

}  // namespace qstar::lm
