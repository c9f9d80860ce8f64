// Reading and writing Hugging Face safetensors files, and model folders of them.
//
// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian u64 N, then
// N bytes of UTF-8 JSON header, then the byte buffer. The header maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the
// start of the byte buffer), plus an optional "__metadata__" string→string map. The byte
// buffer must be covered exactly by the tensors: no gaps, no overlaps, no trailing bytes.
//
// SafetensorsFile::open memory-maps the file read-only and validates all of that; every
// error is a qstar::ParseError (content) or qstar::IoError (file system) whose message
// names the file and, where relevant, the tensor. Only F32, F16 and BF16 are supported.
//
// TensorView::data points into the mapping and may be unaligned for its dtype: read it with
// std::memcpy (or tensor_to_float). Tensor data is little-endian, as on every host we build.
//
// No LibTorch here: this header is plain C++20.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qstar::hf {

/// Element types the reader supports (safetensors names "F32", "F16", "BF16").
enum class DType { F32, F16, BF16 };

/// The safetensors name of `d`: "F32", "F16" or "BF16".
const char* dtype_name(DType d);
/// Bytes per element: 4, 2 or 2.
std::size_t dtype_size(DType d);

/// One tensor of a mapped file. `data` points into the mapping (valid while the owning
/// SafetensorsFile / WeightStore lives) and holds exactly `nbytes` = numel × dtype_size.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;  ///< [] is a scalar (numel 1)
  const std::byte* data = nullptr;  ///< points into the mmapped file
  std::size_t nbytes = 0;
  std::size_t offset = 0;  ///< begin of data_offsets, relative to the byte buffer

  /// Product of the shape (1 for a scalar, 0 when a dimension is 0).
  std::int64_t numel() const;
  /// The raw bytes.
  std::span<const std::byte> bytes() const { return {data, nbytes}; }
};

/// One .safetensors file, memory-mapped read-only. Move-only; unmaps on destruction.
class SafetensorsFile {
 public:
  /// An empty object (no file, no tensors); use open().
  SafetensorsFile() = default;
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  /// Maps `path` read-only and validates it fully. IoError when the file cannot be opened
  /// or mapped; ParseError naming the file (and tensor) for any malformed content.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  /// Every tensor, ordered by data offset (the order of the byte buffer).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// The tensor named `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// Total file size in bytes, and the byte offset of the byte buffer (8 + N).
  std::size_t file_size() const { return size_; }
  std::size_t data_start() const { return data_start_; }

 private:
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::size_t data_start_ = 0;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

class TorchBinFile;  // qstar/hf/torch_bin.hpp

/// The weights of a Hugging Face model folder, from the first of these that exists:
///  1. `model.safetensors`;
///  2. the shards listed in `model.safetensors.index.json`
///     ({"metadata": {...}, "weight_map": {"tensor": "model-00001-of-00002.safetensors", ...}});
///  3. `pytorch_model.bin` (torch.save's zip format, read without executing anything:
///     qstar/hf/torch_bin.hpp);
///  4. the `.bin` shards listed in `pytorch_model.bin.index.json` (same layout as 2).
/// With an index, the weight_map is authoritative: its tensors are the store's names, each
/// read from its mapped shard (tensors a shard holds but the map does not list are ignored).
/// Movable; views stay valid while the store lives.
class WeightStore {
 public:
  WeightStore() = default;

  /// Opens the folder. IoError naming the directory when it is not one, or holds none of
  /// the four; IoError naming the index and shard when a shard cannot be opened; ParseError
  /// naming the index file, tensor and shard for a malformed index or a tensor missing from
  /// its shard; ParseError from the shards (SafetensorsFile::open, TorchBinFile::open).
  static WeightStore open_dir(const std::string& dir);

  /// The tensor named `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// The tensor named `name`; ParseError naming the directory and the tensor if missing.
  const TensorView& at(std::string_view name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  /// Path of the file holding `name` (for error messages); empty when there is none.
  std::string file_of(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

  const std::string& dir() const { return dir_; }
  /// The opened safetensors files (one, or each distinct shard once); empty for .bin weights.
  const std::vector<SafetensorsFile>& files() const { return files_; }
  /// The opened torch.save files (one, or each distinct shard once); empty for safetensors.
  const std::vector<std::shared_ptr<const TorchBinFile>>& bin_files() const { return bin_files_; }
  /// The single file's "__metadata__", or the index's "metadata" (non-string values, such
  /// as "total_size", as their compact JSON text); empty for a single pytorch_model.bin.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  /// "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin" or
  /// "pytorch_model.bin.index.json": where the names come from.
  const std::string& source() const { return source_; }

 private:
  struct Location {
    bool bin = false;       // in bin_files_ rather than files_
    std::size_t file = 0;   // index in files_ / bin_files_
    std::size_t tensor = 0; // index in that file's tensors()
  };
  const std::vector<TensorView>& tensors_of(const Location& loc) const;
  const std::string& path_of(const Location& loc) const;
  void read_index(const std::string& index_path, bool bin);

  std::string dir_;
  std::string source_;
  std::vector<SafetensorsFile> files_;
  std::vector<std::shared_ptr<const TorchBinFile>> bin_files_;
  std::map<std::string, Location, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

/// One tensor for write_safetensors. `data` must hold numel × dtype_size bytes
/// (little-endian elements).
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  std::span<const std::byte> data;
};

/// Writes a safetensors file: tensors laid out back to back in the given order, the JSON
/// header padded with spaces to a multiple of 8 bytes (like HF's writer), "__metadata__"
/// first when `metadata` is not empty. InvalidArgument naming the tensor for an empty or
/// duplicate name, "__metadata__" as a name, a negative dimension, or a data size that does
/// not match the shape; IoError naming the file when it cannot be written.
void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {});

// ---- conversions -----------------------------------------------------------------------

/// bfloat16 bits → float (exact).
float bf16_to_float(std::uint16_t bits);
/// IEEE binary16 bits → float (exact, subnormals, inf and NaN included).
float f16_to_float(std::uint16_t bits);
/// float → bfloat16 bits, round-to-nearest-even; NaN → 0x7FC0 (as c10::BFloat16 does).
std::uint16_t float_to_bf16(float f);
/// float → IEEE binary16 bits, round-to-nearest-even; overflow → ±inf, NaN → quiet NaN
/// with the sign kept (0x7E00 / 0xFE00, as c10::Half does).
std::uint16_t float_to_f16(float f);

/// The elements of `t` converted to float, in row-major order (handles unaligned data).
std::vector<float> tensor_to_float(const TensorView& t);

}  // namespace qstar::hf
