// Reading PyTorch checkpoints (`pytorch_model.bin`, torch.save's zip format) without
// LibTorch and without executing anything.
//
// torch.save (torch >= 1.6) writes an uncompressed zip archive (ZIP64 when large):
// `<archive>/data.pkl`, a pickle of the state dict whose tensors name their storages by
// persistent ids, and one entry `<archive>/data/<key>` per storage holding its raw
// little-endian bytes (plus `<archive>/version`, and `<archive>/byteorder` in newer
// versions). `<archive>` is the first entry's folder (torch uses the file's stem, or
// "archive").
//
// TorchBinFile::open memory-maps the file and reads data.pkl with a restricted unpickler
// (src/hf/pickle.hpp) that only accepts a dict / OrderedDict of tensors: the globals
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and
// torch.FloatStorage / HalfStorage / BFloat16Storage. Any other global (os.system,
// builtins.eval, ...) is a ParseError naming the file and the global, raised when it is read:
// nothing in the file is ever called. Tensors are TensorViews into the mapping, so a
// 30 GB checkpoint costs no copy; tensors sharing a storage (tied weights) point into the
// same bytes. A tensor must be a contiguous view of its storage (any storage offset; the
// strides of size-1 dimensions are free); a transposed or expanded view is a ParseError.
// The legacy pre-1.6 format (a bare pickle stream) and the older tar format are refused with
// a ParseError naming the file. Data is little-endian (a `byteorder` entry saying "big" is
// refused).
//
// No LibTorch here: this header is plain C++20.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qstar/hf/safetensors.hpp"

namespace qstar::hf {

/// Bounds on what TorchBinFile::open accepts. All must be positive.
struct TorchBinLimits {
  std::size_t max_pickle_bytes = 64u << 20;   ///< size of data.pkl (a 70B model's is < 1 MB)
  std::size_t max_zip_entries = 1'000'000;    ///< entries of the zip archive
  std::size_t max_tensors = 200'000;          ///< entries of the state dict
  std::size_t max_objects = 4'000'000;        ///< objects the pickle may build in total
  std::size_t max_stack = 1'000'000;          ///< pickle stack depth (marks included)
  std::size_t max_memo = 1'000'000;           ///< pickle memo entries
  std::size_t max_string_bytes = 1u << 20;    ///< one pickled string (tensor name, storage key)
  std::size_t max_ndim = 64;                  ///< dimensions of one tensor

  /// InvalidArgument naming the first field that is 0.
  void validate() const;
};

/// One torch.save zip checkpoint, memory-mapped read-only. Move-only; unmaps on destruction.
class TorchBinFile {
 public:
  /// An empty object (no file, no tensors); use open().
  TorchBinFile() = default;
  ~TorchBinFile();
  TorchBinFile(TorchBinFile&& other) noexcept;
  TorchBinFile& operator=(TorchBinFile&& other) noexcept;
  TorchBinFile(const TorchBinFile&) = delete;
  TorchBinFile& operator=(const TorchBinFile&) = delete;

  /// Maps `path` and reads its state dict. IoError when the file cannot be opened or
  /// mapped; ParseError naming the file (and the tensor, zip entry, or pickle byte offset
  /// and global) for anything malformed or not allowed.
  static TorchBinFile open(const std::string& path, const TorchBinLimits& limits = {});

  const std::string& path() const { return path_; }
  /// Every tensor, in the state dict's order. TensorView::offset is the tensor's byte
  /// offset inside its storage record.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// The tensor named `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// The storage key of each tensor (parallel to tensors()): equal keys share bytes.
  const std::vector<std::string>& storage_keys() const { return storage_keys_; }
  /// The archive folder inside the zip ("archive", or the stem torch.save used).
  const std::string& archive_name() const { return archive_; }
  /// Total file size in bytes.
  std::size_t file_size() const { return size_; }
  /// The whole mapped file (every TensorView::data points inside it).
  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(map_), size_}; }

 private:
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  std::size_t size_ = 0;
  std::string archive_;
  std::vector<TensorView> tensors_;
  std::vector<std::string> storage_keys_;
  std::map<std::string, std::size_t, std::less<>> index_;  // name -> position in tensors_
};

}  // namespace qstar::hf
