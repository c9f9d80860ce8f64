// Safetensors reader/writer and model-folder weight store (no LibTorch needed).
#include "qstar/hf/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/torch_bin.hpp"

namespace qstar::hf {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts are not supported");

namespace {

/// Largest header the reader accepts (the reference implementation's limit).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

std::string qjson(std::string_view s) {
  std::string out;
  json::dump_string(out, s);
  return out;
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

bool parse_dtype(std::string_view s, DType& out) {
  if (s == "F32")
    out = DType::F32;
  else if (s == "F16")
    out = DType::F16;
  else if (s == "BF16")
    out = DType::BF16;
  else
    return false;
  return true;
}

/// A non-negative JSON integer as uint64 (ints only; doubles are rejected).
bool as_u64(const json::Value& v, std::uint64_t& out) {
  if (!v.is_integer()) return false;
  const std::int64_t i = v.as_int();
  if (i < 0) return false;
  out = static_cast<std::uint64_t>(i);
  return true;
}

std::string errno_text(int err) { return std::strerror(err); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
  }
  return 0;
}

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

// ---- SafetensorsFile ---------------------------------------------------------------------

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  size_ = 0;
  data_start_ = 0;
  tensors_.clear();
  index_.clear();
  metadata_.clear();
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      data_start_(std::exchange(other.data_start_, 0)),
      tensors_(std::move(other.tensors_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)) {
  other.tensors_.clear();
  other.index_.clear();
  other.metadata_.clear();
}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    size_ = std::exchange(other.size_, 0);
    data_start_ = std::exchange(other.data_start_, 0);
    tensors_ = std::move(other.tensors_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
    other.tensors_.clear();
    other.index_.clear();
    other.metadata_.clear();
  }
  return *this;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto fail = [&](std::string_view what) -> ParseError {
    return ParseError(fmt::format("{}: {}", path, what));
  };
  auto fail_tensor = [&](std::string_view name, std::string_view what) -> ParseError {
    return ParseError(fmt::format("{}: tensor {}: {}", path, qjson(name), what));
  };

  SafetensorsFile f;
  f.path_ = path;

  // ---- map the file ----
  const int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_fd < 0) {
    const int err = errno;
    throw IoError(fmt::format("{}: cannot open: {}", path, errno_text(err)));
  }
  Fd fd(raw_fd);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    throw IoError(fmt::format("{}: cannot stat: {}", path, errno_text(err)));
  }
  if (!S_ISREG(st.st_mode)) throw IoError(fmt::format("{}: not a regular file", path));
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < 8)
    throw fail(fmt::format("file is {} bytes, shorter than the 8-byte header length", file_size));
  if (file_size > std::numeric_limits<std::size_t>::max())
    throw IoError(fmt::format("{}: file too large to map", path));
  void* m = ::mmap(nullptr, static_cast<std::size_t>(file_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (m == MAP_FAILED) {
    const int err = errno;
    throw IoError(fmt::format("{}: cannot mmap: {}", path, errno_text(err)));
  }
  f.map_ = m;
  f.size_ = static_cast<std::size_t>(file_size);
  const auto* base = static_cast<const std::byte*>(m);

  // ---- header length ----
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(base[i]);
  if (n > file_size - 8)
    throw fail(fmt::format("header length {} is larger than the file ({} bytes, {} after the length)", n,
                           file_size, file_size - 8));
  if (n > kMaxHeaderBytes)
    throw fail(fmt::format("header length {} is too large (limit {} bytes)", n, kMaxHeaderBytes));
  f.data_start_ = 8 + static_cast<std::size_t>(n);
  const std::uint64_t data_size = file_size - f.data_start_;
  const auto* data = base + f.data_start_;

  // ---- header JSON ----
  const std::string_view text(reinterpret_cast<const char*>(base + 8), static_cast<std::size_t>(n));
  const json::Value header = json::parse(text, fmt::format("{}: header", path));
  if (!header.is_object())
    throw fail(fmt::format("header must be a JSON object, got {}", json::type_name(header.type())));

  struct Entry {
    std::uint64_t begin, end;
    std::size_t pos;  // position in header order (stable tie-break)
  };
  std::vector<TensorView> views;
  std::vector<Entry> entries;
  views.reserve(header.size());
  entries.reserve(header.size());

  for (const auto& [name, info] : header.as_object()) {
    if (name == "__metadata__") {
      if (info.is_null()) continue;
      if (!info.is_object())
        throw fail(fmt::format("\"__metadata__\" must be an object of strings, got {}",
                               json::type_name(info.type())));
      for (const auto& [k, v] : info.as_object()) {
        if (!v.is_string())
          throw fail(fmt::format("\"__metadata__\" key {} must hold a string, got {}", qjson(k),
                                 json::type_name(v.type())));
        f.metadata_.emplace(k, v.as_string());
      }
      continue;
    }
    if (!info.is_object())
      throw fail_tensor(name, fmt::format("entry must be an object, got {}", json::type_name(info.type())));

    TensorView t;
    t.name = name;

    // dtype
    const json::Value* dt = info.find("dtype");
    if (dt == nullptr) throw fail_tensor(name, "missing \"dtype\"");
    if (!dt->is_string())
      throw fail_tensor(name, fmt::format("\"dtype\" must be a string, got {}", json::type_name(dt->type())));
    if (!parse_dtype(dt->as_string(), t.dtype))
      throw fail_tensor(name, fmt::format("dtype {} is not supported (F32, F16, BF16)", dt->as_string()));

    // shape
    const json::Value* sh = info.find("shape");
    if (sh == nullptr) throw fail_tensor(name, "missing \"shape\"");
    if (!sh->is_array())
      throw fail_tensor(name, fmt::format("\"shape\" must be an array, got {}", json::type_name(sh->type())));
    std::int64_t numel = 1;
    for (const json::Value& d : sh->as_array()) {
      if (!d.is_integer())
        throw fail_tensor(name,
                          fmt::format("\"shape\" must hold integers, got {}", json::type_name(d.type())));
      const std::int64_t dim = d.as_int();
      if (dim < 0) throw fail_tensor(name, fmt::format("negative dimension {} in \"shape\"", dim));
      t.shape.push_back(dim);
      if (__builtin_mul_overflow(numel, dim, &numel))
        throw fail_tensor(name, fmt::format("shape {}: element count overflows", shape_str(t.shape)));
    }
    std::uint64_t need = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel),
                               static_cast<std::uint64_t>(dtype_size(t.dtype)), &need))
      throw fail_tensor(name, fmt::format("shape {}: byte size overflows", shape_str(t.shape)));

    // data_offsets
    const json::Value* off = info.find("data_offsets");
    if (off == nullptr) throw fail_tensor(name, "missing \"data_offsets\"");
    std::uint64_t begin = 0, end = 0;
    if (!off->is_array() || off->size() != 2 || !as_u64(off->as_array()[0], begin) ||
        !as_u64(off->as_array()[1], end))
      throw fail_tensor(name,
                        fmt::format("\"data_offsets\" must be an array of 2 non-negative integers, got {}",
                                    json::dump(*off)));
    if (begin > end) throw fail_tensor(name, fmt::format("data offsets [{}, {}) are reversed", begin, end));
    if (end > data_size)
      throw fail_tensor(
          name, fmt::format("data offsets [{}, {}) are out of range of the data section ({} bytes)", begin,
                            end, data_size));
    if (end - begin != need)
      throw fail_tensor(
          name, fmt::format("shape {} with dtype {} needs {} bytes, but data offsets [{}, {}) hold {}",
                            shape_str(t.shape), dtype_name(t.dtype), need, begin, end, end - begin));
    t.offset = static_cast<std::size_t>(begin);
    t.nbytes = static_cast<std::size_t>(need);
    t.data = data + begin;
    entries.push_back({begin, end, views.size()});
    views.push_back(std::move(t));
  }

  // ---- coverage: sorted by offset, the tensors must tile the data section exactly ----
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t prev_end = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    const std::string& name = views[e.pos].name;
    if (e.begin < prev_end)
      throw fail_tensor(
          name, fmt::format("data offsets [{}, {}) overlap the previous tensor {} [{}, {})", e.begin, e.end,
                            qjson(views[prev->pos].name), prev->begin, prev->end));
    if (e.begin > prev_end) {
      if (prev == nullptr)
        throw fail_tensor(name, fmt::format("data offsets [{}, {}) leave a gap of {} bytes at the start of "
                                            "the data section",
                                            e.begin, e.end, e.begin));
      throw fail_tensor(name, fmt::format("data offsets [{}, {}) leave a gap of {} bytes after the previous "
                                          "tensor {} [{}, {})",
                                          e.begin, e.end, e.begin - prev_end, qjson(views[prev->pos].name),
                                          prev->begin, prev->end));
    }
    prev_end = e.end;
    prev = &e;
  }
  if (prev_end != data_size) {
    if (prev == nullptr)
      throw fail(fmt::format("the data section holds {} bytes but the header lists no tensors", data_size));
    throw fail(
        fmt::format("the data section holds {} bytes but the tensors cover only {} ({} trailing bytes "
                    "after tensor {})",
                    data_size, prev_end, data_size - prev_end, qjson(views[prev->pos].name)));
  }

  f.tensors_.reserve(views.size());
  for (const Entry& e : entries) {
    const std::string& name = views[e.pos].name;
    if (!f.index_.emplace(name, f.tensors_.size()).second) throw fail_tensor(name, "duplicate tensor name");
    f.tensors_.push_back(std::move(views[e.pos]));
  }
  return f;
}

// ---- WeightStore -------------------------------------------------------------------------

namespace {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open: {}", path, errno_text(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("{}: read failed", path));
  return std::move(ss).str();
}

/// A shard name must stay inside the model folder. A NUL byte is rejected too: the OS would
/// open the name cut at the NUL, a different file than the one named.
bool safe_relative(const std::string& name) {
  if (name.empty() || name.find('\0') != std::string::npos) return false;
  const std::filesystem::path p(name);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

}  // namespace

WeightStore WeightStore::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(fmt::format("{}: not a directory", dir));
  auto in_dir = [&](const char* name) { return (fs::path(dir) / name).string(); };

  WeightStore ws;
  ws.dir_ = dir;

  if (const std::string single = in_dir("model.safetensors"); fs::exists(single, ec)) {
    ws.source_ = "model.safetensors";
    ws.files_.push_back(SafetensorsFile::open(single));
    const SafetensorsFile& f = ws.files_.back();
    for (std::size_t i = 0; i < f.tensors().size(); ++i) ws.index_.emplace(f.tensors()[i].name, Location{false, 0, i});
    ws.metadata_ = f.metadata();
    return ws;
  }
  if (const std::string index = in_dir("model.safetensors.index.json"); fs::exists(index, ec)) {
    ws.source_ = "model.safetensors.index.json";
    ws.read_index(index, false);
    return ws;
  }
  if (const std::string single = in_dir("pytorch_model.bin"); fs::exists(single, ec)) {
    ws.source_ = "pytorch_model.bin";
    ws.bin_files_.push_back(std::make_shared<const TorchBinFile>(TorchBinFile::open(single)));
    const TorchBinFile& f = *ws.bin_files_.back();
    for (std::size_t i = 0; i < f.tensors().size(); ++i) ws.index_.emplace(f.tensors()[i].name, Location{true, 0, i});
    return ws;
  }
  if (const std::string index = in_dir("pytorch_model.bin.index.json"); fs::exists(index, ec)) {
    ws.source_ = "pytorch_model.bin.index.json";
    ws.read_index(index, true);
    return ws;
  }
  throw IoError(fmt::format("{}: no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                            "pytorch_model.bin.index.json in the directory",
                            dir));
}

void WeightStore::read_index(const std::string& index_path, bool bin) {
  namespace fs = std::filesystem;
  const std::string text = read_text_file(index_path);
  const json::Value idx = json::parse(text, index_path);
  auto fail = [&](std::string_view what) { return ParseError(fmt::format("{}: {}", index_path, what)); };
  if (!idx.is_object()) throw fail(fmt::format("must be a JSON object, got {}", json::type_name(idx.type())));
  if (const json::Value* md = idx.find("metadata"); md != nullptr && !md->is_null()) {
    if (!md->is_object())
      throw fail(fmt::format("\"metadata\" must be an object, got {}", json::type_name(md->type())));
    for (const auto& [k, v] : md->as_object()) metadata_.emplace(k, v.is_string() ? v.as_string() : json::dump(v));
  }
  const json::Value* wm = idx.find("weight_map");
  if (wm == nullptr) throw fail("missing \"weight_map\"");
  if (!wm->is_object())
    throw fail(fmt::format("\"weight_map\" must be an object, got {}", json::type_name(wm->type())));

  std::map<std::string, std::size_t> shard_ids;  // shard file name -> index in files_ / bin_files_
  for (const auto& [name, shard_v] : wm->as_object()) {
    if (!shard_v.is_string())
      throw fail(fmt::format("weight_map: tensor {} must map to a shard file name, got {}", qjson(name),
                             json::type_name(shard_v.type())));
    const std::string& shard = shard_v.as_string();
    if (!safe_relative(shard))
      throw fail(fmt::format("weight_map: tensor {}: shard {} is not a file name inside the model folder",
                             qjson(name), qjson(shard)));
    auto it = shard_ids.find(shard);
    if (it == shard_ids.end()) {
      const std::string shard_path = (fs::path(dir_) / shard).string();
      try {
        if (bin)
          bin_files_.push_back(std::make_shared<const TorchBinFile>(TorchBinFile::open(shard_path)));
        else
          files_.push_back(SafetensorsFile::open(shard_path));
      } catch (const IoError& e) {
        throw IoError(
            fmt::format("{}: tensor {}: shard {}: {}", index_path, qjson(name), qjson(shard), e.what()));
      }
      it = shard_ids.emplace(shard, bin ? bin_files_.size() - 1 : files_.size() - 1).first;
    }
    const TensorView* t = bin ? bin_files_[it->second]->find(name) : files_[it->second].find(name);
    if (t == nullptr)
      throw fail(fmt::format("tensor {} is mapped to shard {}, which does not contain it", qjson(name),
                             qjson(shard)));
    Location loc{bin, it->second, 0};
    loc.tensor = static_cast<std::size_t>(t - tensors_of(loc).data());
    if (!index_.emplace(name, loc).second) throw fail(fmt::format("weight_map: duplicate tensor {}", qjson(name)));
  }
}

const std::vector<TensorView>& WeightStore::tensors_of(const Location& loc) const {
  return loc.bin ? bin_files_[loc.file]->tensors() : files_[loc.file].tensors();
}

const std::string& WeightStore::path_of(const Location& loc) const {
  return loc.bin ? bin_files_[loc.file]->path() : files_[loc.file].path();
}

const TensorView* WeightStore::find(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  return &tensors_of(it->second)[it->second.tensor];
}

const TensorView& WeightStore::at(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  throw ParseError(fmt::format("{}: tensor {} is missing (not in {})", dir_, qjson(name),
                               source_.empty() ? "the weight store" : source_));
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, loc] : index_) out.push_back(name);  // std::map: already sorted
  return out;
}

std::string WeightStore::file_of(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? std::string() : path_of(it->second);
}

// ---- writing -----------------------------------------------------------------------------

void write_safetensors(const std::string& path, std::span<const TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata) {
  json::Value header = json::Value::object();
  if (!metadata.empty()) {
    json::Value md = json::Value::object();
    for (const auto& [k, v] : metadata) md.append(k, v);
    header.append("__metadata__", std::move(md));
  }
  std::set<std::string_view> seen;
  std::uint64_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::string q = qjson(t.name);
    if (t.name.empty()) throw InvalidArgument(fmt::format("write_safetensors: {}: empty tensor name", path));
    if (t.name == "__metadata__")
      throw InvalidArgument(
          fmt::format("write_safetensors: {}: tensor name \"__metadata__\" is reserved", path));
    if (!seen.insert(t.name).second)
      throw InvalidArgument(fmt::format("write_safetensors: {}: tensor {}: duplicate name", path, q));
    std::int64_t numel = 1;
    json::Value shape = json::Value::array();
    for (std::int64_t d : t.shape) {
      if (d < 0)
        throw InvalidArgument(
            fmt::format("write_safetensors: {}: tensor {}: negative dimension {}", path, q, d));
      if (__builtin_mul_overflow(numel, d, &numel))
        throw InvalidArgument(
            fmt::format("write_safetensors: {}: tensor {}: element count overflows", path, q));
      shape.push_back(d);
    }
    std::uint64_t need = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(numel),
                               static_cast<std::uint64_t>(dtype_size(t.dtype)), &need) ||
        need != t.data.size())
      throw InvalidArgument(
          fmt::format("write_safetensors: {}: tensor {}: shape {} with dtype {} needs {} bytes, data has {}",
                      path, q, shape_str(t.shape), dtype_name(t.dtype), need, t.data.size()));
    json::Value info = json::Value::object();
    info.append("dtype", dtype_name(t.dtype));
    info.append("shape", std::move(shape));
    json::Value offs = json::Value::array();
    offs.push_back(offset);
    offs.push_back(offset + need);
    info.append("data_offsets", std::move(offs));
    header.append(t.name, std::move(info));
    offset += need;
  }
  std::string text = json::dump(header);
  text.append((8 - text.size() % 8) % 8, ' ');

  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) throw IoError(fmt::format("{}: cannot open for writing: {}", path, errno_text(errno)));
  bool ok = true;
  unsigned char len[8];
  std::uint64_t n = text.size();
  for (unsigned char& b : len) {
    b = static_cast<unsigned char>(n & 0xFF);
    n >>= 8;
  }
  ok = ok && std::fwrite(len, 1, 8, out) == 8;
  ok = ok && std::fwrite(text.data(), 1, text.size(), out) == text.size();
  for (const TensorToWrite& t : tensors)
    if (ok && !t.data.empty()) ok = std::fwrite(t.data.data(), 1, t.data.size(), out) == t.data.size();
  const int err = ok ? 0 : errno;
  if (std::fclose(out) != 0 && ok) ok = false;
  if (!ok) throw IoError(fmt::format("{}: write failed: {}", path, errno_text(err != 0 ? err : errno)));
}

// ---- conversions -------------------------------------------------------------------------

float bf16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    const float mag = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal, exact
    return sign != 0 ? -mag : mag;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

std::uint16_t float_to_bf16(float f) {
  if (std::isnan(f)) return 0x7FC0;
  const auto u = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t bias = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + bias) >> 16);
}

std::uint16_t float_to_f16(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7FFFFFFFu;
  if (u > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (u >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to inf (inf included)
  if (u >= 0x38800000u) {                       // normal half (>= 2^-14)
    const std::uint32_t odd = (u >> 13) & 1u;
    u = u - (112u << 23) + 0xFFFu + odd;
    return static_cast<std::uint16_t>(sign | (u >> 13));
  }
  const std::uint32_t exp = u >> 23;
  if (exp < 102) return sign;  // below 2^-25: rounds to zero
  // Subnormal half: value / 2^-24 = mant * 2^(exp - 126), rounded to nearest even.
  const std::uint32_t mant = (u & 0x7FFFFFu) | 0x800000u;
  const std::uint32_t shift = 126 - exp;  // 14..24
  std::uint32_t r = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1u))) ++r;
  return static_cast<std::uint16_t>(sign | r);
}

std::vector<float> tensor_to_float(const TensorView& t) {
  const std::size_t size = dtype_size(t.dtype);
  const std::size_t n = size == 0 ? 0 : t.nbytes / size;
  std::vector<float> out(n);
  if (n == 0) return out;
  if (t.dtype == DType::F32) {
    std::memcpy(out.data(), t.data, n * sizeof(float));
    return out;
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::uint16_t h = 0;
    std::memcpy(&h, t.data + 2 * i, 2);
    out[i] = t.dtype == DType::BF16 ? bf16_to_float(h) : f16_to_float(h);
  }
  return out;
}

}  // namespace qstar::hf
