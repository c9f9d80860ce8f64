// torch.save zip checkpoints (include/qstar/hf/torch_bin.hpp): the mapping, the archive
// layout, and the tensors the restricted unpickler (src/hf/pickle.cpp) describes, checked
// against their storage records.
#include "qstar/hf/torch_bin.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "hf/pickle.hpp"
#include "hf/zip.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"

namespace qstar::hf {

void TorchBinLimits::validate() const {
  auto positive = [](std::size_t v, const char* field) {
    if (v == 0) throw InvalidArgument(fmt::format("TorchBinLimits.{}: must be positive", field));
  };
  positive(max_pickle_bytes, "max_pickle_bytes");
  positive(max_zip_entries, "max_zip_entries");
  positive(max_tensors, "max_tensors");
  positive(max_objects, "max_objects");
  positive(max_stack, "max_stack");
  positive(max_memo, "max_memo");
  positive(max_string_bytes, "max_string_bytes");
  positive(max_ndim, "max_ndim");
}

namespace {

std::string qjson(std::string_view s) {
  std::string out;
  json::dump_string(out, s);
  return out;
}

std::string dims_str(const std::vector<std::int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

/// Why a file that is not a zip archive is refused.
std::string not_zip_reason(const unsigned char* d, std::size_t n) {
  if (n >= 2 && d[0] == 0x80 && d[1] <= 5)
    return "this is the legacy torch.save format (torch < 1.6, a bare pickle stream), which is not "
           "supported: re-save it with torch >= 1.6 (torch.save(torch.load(f), f)) or convert it to safetensors";
  if (n >= 262 && std::memcmp(d + 257, "ustar", 5) == 0)
    return "this is the tar torch.save format (torch < 0.4), which is not supported: re-save it with "
           "torch >= 1.6 or convert it to safetensors";
  return "not a zip archive (torch.save's format since torch 1.6)";
}

/// A view of a contiguous tensor inside its storage record, or a ParseError.
TensorView make_view(const std::string& path, detail::PickledTensor& t, const unsigned char* storage,
                     std::uint64_t storage_bytes) {
  auto fail = [&](std::string_view what) {
    return ParseError(fmt::format("{}: tensor {}: {}", path, qjson(t.name), what));
  };
  TensorView v;
  v.name = t.name;
  v.dtype = t.dtype;
  v.shape = t.size;
  const std::uint64_t es = dtype_size(t.dtype);
  std::uint64_t numel = 1;
  for (const std::int64_t d : t.size)
    if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel))
      throw fail(fmt::format("size {}: element count overflows", dims_str(t.size)));
  if (numel > 0) {
    // Row-major contiguity: each dimension longer than 1 strides over everything after it.
    std::uint64_t expect = 1;
    for (std::size_t k = t.size.size(); k-- > 0;) {
      if (t.size[k] == 1) continue;
      if (static_cast<std::uint64_t>(t.stride[k]) != expect)
        throw fail(fmt::format("size {} with stride {} is not a contiguous view of its storage (a transposed "
                               "or expanded tensor); save it with .contiguous()",
                               dims_str(t.size), dims_str(t.stride)));
      expect *= static_cast<std::uint64_t>(t.size[k]);
    }
  }
  const auto offset = static_cast<std::uint64_t>(t.storage_offset);
  std::uint64_t end = 0, begin_bytes = 0, nbytes = 0;
  if (__builtin_add_overflow(offset, numel, &end) || __builtin_mul_overflow(offset, es, &begin_bytes) ||
      __builtin_mul_overflow(numel, es, &nbytes) || end > t.storage_numel)
    throw fail(fmt::format("storage offset {} + {} elements is outside its storage {} ({} elements)", offset, numel,
                           qjson(t.storage_key), t.storage_numel));
  (void)storage_bytes;  // == storage_numel × es, checked by the caller
  v.offset = static_cast<std::size_t>(begin_bytes);
  v.nbytes = static_cast<std::size_t>(nbytes);
  v.data = reinterpret_cast<const std::byte*>(storage + begin_bytes);
  return v;
}

}  // namespace

TorchBinFile::~TorchBinFile() { release(); }

void TorchBinFile::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
  archive_.clear();
  tensors_.clear();
  storage_keys_.clear();
  index_.clear();
}

TorchBinFile::TorchBinFile(TorchBinFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      archive_(std::move(other.archive_)),
      tensors_(std::move(other.tensors_)),
      storage_keys_(std::move(other.storage_keys_)),
      index_(std::move(other.index_)) {
  other.release();
}

TorchBinFile& TorchBinFile::operator=(TorchBinFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    archive_ = std::move(other.archive_);
    tensors_ = std::move(other.tensors_);
    storage_keys_ = std::move(other.storage_keys_);
    index_ = std::move(other.index_);
    other.release();
  }
  return *this;
}

const TensorView* TorchBinFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

/// Maps `path` read-only into `map` / `size` (IoError on failure; a file under 4 bytes is a
/// ParseError).
void map_file(const std::string& path, void*& map, std::size_t& size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
  }
  struct stat st {};
  std::string error;
  if (::fstat(fd, &st) != 0) {
    error = fmt::format("{}: cannot stat: {}", path, std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    error = fmt::format("{}: not a regular file", path);
  } else if (static_cast<std::uint64_t>(st.st_size) > std::numeric_limits<std::size_t>::max()) {
    error = fmt::format("{}: file too large to map", path);
  } else if (st.st_size < 4) {
    ::close(fd);
    throw ParseError(fmt::format("{}: file is {} bytes, too short for a torch.save archive", path, st.st_size));
  } else {
    void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      error = fmt::format("{}: cannot mmap: {}", path, std::strerror(errno));
    } else {
      map = m;
      size = static_cast<std::size_t>(st.st_size);
    }
  }
  ::close(fd);
  if (!error.empty()) throw IoError(error);
}

}  // namespace

TorchBinFile TorchBinFile::open(const std::string& path, const TorchBinLimits& limits) {
  limits.validate();
  auto fail = [&](std::string_view what) { return ParseError(fmt::format("{}: {}", path, what)); };
  TorchBinFile f;
  f.path_ = path;
  map_file(path, f.map_, f.size_);
  const auto* base = static_cast<const unsigned char*>(f.map_);
  if (!detail::looks_like_zip(base, f.size_)) throw fail(not_zip_reason(base, f.size_));
  const detail::ZipIndex zip = detail::read_zip_index(base, f.size_, path, limits.max_zip_entries);

  // The archive folder: the first entry's, as torch's reader takes it.
  if (zip.entries.empty()) throw fail("the zip archive is empty (no data.pkl)");
  const std::string& first = zip.entries.front().name;
  const std::size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0)
    throw fail(fmt::format("zip entry '{}' is not inside an archive folder (torch.save writes <archive>/data.pkl)",
                           detail::printable(first)));
  f.archive_ = first.substr(0, slash);
  const std::string where_pkl = f.archive_ + "/data.pkl";
  const detail::ZipEntry* pkl = zip.find(where_pkl);
  if (pkl == nullptr) throw fail(fmt::format("no '{}' in the zip archive", detail::printable(where_pkl)));
  auto stored = [&](const detail::ZipEntry& e) {
    if (!e.stored)
      throw fail(fmt::format("zip entry '{}' is compressed; torch.save stores entries uncompressed",
                             detail::printable(e.name)));
  };
  stored(*pkl);
  if (pkl->size > limits.max_pickle_bytes)
    throw fail(fmt::format("'{}' is {} bytes (limit {})", detail::printable(where_pkl), pkl->size,
                           limits.max_pickle_bytes));
  if (const detail::ZipEntry* bo = zip.find(f.archive_ + "/byteorder")) {
    stored(*bo);
    const std::string_view order(reinterpret_cast<const char*>(base + bo->data_offset),
                                 static_cast<std::size_t>(bo->size));
    if (order != "little")
      throw fail(fmt::format("byteorder is '{}'; only little-endian checkpoints are supported",
                             detail::printable(order)));
  }

  detail::PickleLimits pl;
  pl.max_stack = limits.max_stack;
  pl.max_memo = limits.max_memo;
  pl.max_objects = limits.max_objects;
  pl.max_string_bytes = limits.max_string_bytes;
  pl.max_tensors = limits.max_tensors;
  pl.max_ndim = limits.max_ndim;
  const std::string_view pickle(reinterpret_cast<const char*>(base + pkl->data_offset),
                                static_cast<std::size_t>(pkl->size));
  std::vector<detail::PickledTensor> pts =
      detail::read_state_dict_pickle(pickle, fmt::format("{}: {}", path, detail::printable(where_pkl)), pl);

  struct StorageInfo {
    DType dtype;
    std::uint64_t numel;
  };
  std::map<std::string, StorageInfo, std::less<>> storages;
  f.tensors_.reserve(pts.size());
  for (detail::PickledTensor& t : pts) {
    auto fail_t = [&](std::string_view what) {
      return ParseError(fmt::format("{}: tensor {}: {}", path, qjson(t.name), what));
    };
    const auto [it, fresh] = storages.emplace(t.storage_key, StorageInfo{t.dtype, t.storage_numel});
    if (!fresh && (it->second.dtype != t.dtype || it->second.numel != t.storage_numel))
      throw fail_t(fmt::format("storage {} is {} of {} elements here but {} of {} elements for an earlier tensor",
                               qjson(t.storage_key), dtype_name(t.dtype), t.storage_numel,
                               dtype_name(it->second.dtype), it->second.numel));
    const std::string entry_name = f.archive_ + "/data/" + t.storage_key;
    const detail::ZipEntry* e = zip.find(entry_name);
    if (e == nullptr)
      throw fail_t(
          fmt::format("its storage record '{}' is not in the zip archive", detail::printable(entry_name)));
    stored(*e);
    std::uint64_t need = 0;
    const bool overflow =
        __builtin_mul_overflow(t.storage_numel, static_cast<std::uint64_t>(dtype_size(t.dtype)), &need);
    if (overflow || need != e->size)
      throw fail_t(fmt::format("storage record '{}' holds {} bytes, but {} elements of {} need {}",
                               detail::printable(entry_name), e->size, t.storage_numel, dtype_name(t.dtype),
                               overflow ? std::string("more than 2^64") : std::to_string(need)));
    f.tensors_.push_back(make_view(path, t, base + e->data_offset, e->size));
    f.storage_keys_.push_back(t.storage_key);
    f.index_.emplace(t.name, f.tensors_.size() - 1);  // names are unique (the unpickler checks)
  }
  return f;
}

}  // namespace qstar::hf
