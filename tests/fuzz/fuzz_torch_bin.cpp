// libFuzzer target: the torch.save (.bin) reader: the stored-zip reader, the restricted
// unpickler and the tensor checks (include/qstar/hf/torch_bin.hpp, src/hf/torch_bin.cpp,
// src/hf/pickle.cpp, src/hf/zip.cpp), and WeightStore's .bin index. No LibTorch.
//
// TorchBinFile::open takes a path (it memory-maps the file), so each input is written to a
// private temporary folder (under /dev/shm when there is one). Input, by its first byte:
//  * 'P': the rest is a data.pkl, packed into a valid archive ("archive/data.pkl", storage
//    records "archive/data/0".."3" of 16, 8, 6 and 0 bytes, "archive/byteorder" = little),
//    so that mutations reach the unpickler without breaking the zip;
//  * 'I': the rest is a pytorch_model.bin.index.json, in a folder that also holds two valid
//    shards "pytorch_model-00001-of-00002.bin" (tensors "a", "b") and
//    "pytorch_model-00002-of-00002.bin" ("c"), a folder "dir.bin", and nothing else;
//  * anything else: the rest is a whole .bin file.
//
// Oracles (beyond "no crash, no sanitizer report, only qstar::Error escapes"):
//  * a file that opens: every tensor holds numel × dtype_size bytes inside the mapping, and
//    the mapping holds the input; find() finds each by its (unique) name; tensors with one
//    storage key have one dtype; tensor_to_float reads numel values; opening again gives the
//    same tensors; write_safetensors of the tensors opens to the same names, dtypes, shapes
//    and bytes;
//  * 'P' inputs: each tensor's bytes lie inside the record of its storage key, at its offset;
//  * an index that opens: every shard it opened is inside the model folder, and every name
//    resolves to a tensor of that name.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "../hf/torch_bin_builders.hpp"
#include "fuzz_common.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"
#include "qstar/hf/torch_bin.hpp"

namespace fs = std::filesystem;
namespace hf = qstar::hf;
namespace tb = qstar_test::torch_bin;
using qstar_fuzz::shown;
using qstar_fuzz::write_bytes;

namespace {

/// The storage records of 'P' inputs, and where each one's bytes start in the archive.
const std::vector<std::pair<std::string, std::string>>& records() {
  static const std::vector<std::pair<std::string, std::string>> r = {
      {"0", std::string("\x00\x00\xc0\x3f\x00\x00\x80\xbf\x00\x00\x00\x00\x00\x00\x80\x7f", 16)},
      {"1", std::string("\x80\x3f\x00\xc0\xc0\x7f\x01\x00", 8)},
      {"2", std::string("\x00\x3c\x00\x7c\x01\x80", 6)},
      {"3", std::string()}};
  return r;
}

/// tb::make_zip's layout: 30-byte local header, the name, the data.
std::map<std::string, std::size_t> record_offsets(std::size_t pickle_size) {
  std::map<std::string, std::size_t> out;
  std::size_t at = 30 + std::string("archive/data.pkl").size() + pickle_size;
  for (const auto& [key, bytes] : records()) {
    const std::string name = "archive/data/" + key;
    out[key] = at + 30 + name.size();
    at += 30 + name.size() + bytes.size();
  }
  return out;
}

struct Folders {
  std::string root, file, rewritten, model;

  Folders() {
    const char* base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/qstar_fuzz_tb_XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    root = tmpl;
    file = root + "/model.bin";
    rewritten = root + "/rewritten.safetensors";
    model = root + "/model";
    fs::create_directories(model + "/dir.bin");
    const std::string floats("\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40", 12);  // 1, 2, 3
    write_bytes(model + "/pytorch_model-00001-of-00002.bin",
                tb::archive(tb::state_dict({{"a", tb::tensor(tb::storage("FloatStorage", "0", 3), 0, {2}, {1})},
                                            {"b", tb::tensor(tb::storage("FloatStorage", "0", 3), 2, {}, {})}}),
                            {{"0", floats}}));
    write_bytes(model + "/pytorch_model-00002-of-00002.bin",
                tb::archive(tb::state_dict({{"c", tb::tensor(tb::storage("HalfStorage", "7", 1), 0, {1, 1}, {1, 1})}}),
                            {{"7", std::string("\x00\x3c", 2)}}));
  }
  ~Folders() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

Folders& folders() {
  static Folders f;
  return f;
}

void check_file(const hf::TorchBinFile& f, std::string_view input) {
  const auto all = f.bytes();
  FUZZ_CHECK(all.size() == input.size() && std::memcmp(all.data(), input.data(), input.size()) == 0,
             "the mapping does not hold the input");
  std::map<std::string, hf::DType> key_dtype;
  FUZZ_CHECK(f.storage_keys().size() == f.tensors().size(), "storage_keys size");
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const hf::TensorView& t = f.tensors()[i];
    std::uint64_t numel = 1;
    for (const std::int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "negative dimension in %s", shown(t.name).c_str());
      FUZZ_CHECK(!__builtin_mul_overflow(numel, static_cast<std::uint64_t>(d), &numel), "numel overflows");
    }
    FUZZ_CHECK(t.nbytes == numel * hf::dtype_size(t.dtype), "nbytes of %s", shown(t.name).c_str());
    FUZZ_CHECK(t.data >= all.data() && t.nbytes <= static_cast<std::size_t>(all.data() + all.size() - t.data),
               "tensor %s outside the mapping", shown(t.name).c_str());
    FUZZ_CHECK(f.find(t.name) == &t, "find(%s)", shown(t.name).c_str());
    const auto [it, fresh] = key_dtype.emplace(f.storage_keys()[i], t.dtype);
    FUZZ_CHECK(fresh || it->second == t.dtype, "storage %s read as two dtypes", shown(it->first).c_str());
    FUZZ_CHECK(hf::tensor_to_float(t).size() == numel, "tensor_to_float size");
  }
}

void check_records(const hf::TorchBinFile& f, std::size_t pickle_size) {
  const auto offsets = record_offsets(pickle_size);
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const hf::TensorView& t = f.tensors()[i];
    const auto key = offsets.find(f.storage_keys()[i]);
    FUZZ_CHECK(key != offsets.end(), "tensor %s: storage key %s has no record", shown(t.name).c_str(),
               shown(f.storage_keys()[i]).c_str());
    std::size_t size = 0;
    for (const auto& [k, bytes] : records())
      if (k == key->first) size = bytes.size();
    FUZZ_CHECK(t.data == f.bytes().data() + key->second + t.offset, "tensor %s is not at its record's offset",
               shown(t.name).c_str());
    FUZZ_CHECK(t.offset <= size && t.nbytes <= size - t.offset, "tensor %s overruns its record", shown(t.name).c_str());
  }
}

void check_again_and_rewrite(const hf::TorchBinFile& f) {
  hf::TorchBinFile g;
  try {
    g = hf::TorchBinFile::open(f.path());
  } catch (const qstar::Error& e) {
    FUZZ_CHECK(false, "reopen failed: %s", e.what());
  }
  FUZZ_CHECK(g.tensors().size() == f.tensors().size(), "reopen: tensor count");
  std::vector<hf::TensorToWrite> out;
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& x = f.tensors()[i];
    const auto& y = g.tensors()[i];
    FUZZ_CHECK(x.name == y.name && x.dtype == y.dtype && x.shape == y.shape && x.nbytes == y.nbytes &&
                   x.offset == y.offset,
               "reopen: tensor %zu differs", i);
    out.push_back({x.name, x.dtype, x.shape, x.bytes()});
  }
  try {
    hf::write_safetensors(folders().rewritten, out);
  } catch (const qstar::InvalidArgument& e) {  // names safetensors reserves or refuses
    FUZZ_CHECK(std::strstr(e.what(), "empty tensor name") || std::strstr(e.what(), "__metadata__"),
               "rewrite refused: %s", e.what());
    return;
  }
  hf::SafetensorsFile s;
  try {
    s = hf::SafetensorsFile::open(folders().rewritten);
  } catch (const qstar::Error& e) {
    FUZZ_CHECK(false, "the rewritten file does not open: %s", e.what());
  }
  FUZZ_CHECK(s.tensors().size() == f.tensors().size(), "rewrite: tensor count");
  for (const auto& x : f.tensors()) {
    const hf::TensorView* y = s.find(x.name);
    FUZZ_CHECK(y != nullptr && y->dtype == x.dtype && y->shape == x.shape && y->nbytes == x.nbytes,
               "rewrite: tensor %s differs", shown(x.name).c_str());
    FUZZ_CHECK(x.nbytes == 0 || std::memcmp(x.data, y->data, x.nbytes) == 0, "rewrite: bytes of %s differ",
               shown(x.name).c_str());
  }
}

void check_store(const hf::WeightStore& ws) {
  const fs::path model = fs::canonical(folders().model);
  for (const auto& f : ws.bin_files()) {
    const fs::path p = fs::weakly_canonical(f->path());
    const auto rel = p.lexically_relative(model);
    FUZZ_CHECK(!rel.empty() && *rel.begin() != "..", "opened %s outside the model folder", p.c_str());
  }
  for (const auto& name : ws.names())
    FUZZ_CHECK(ws.at(name).name == name, "store: %s resolves to another name", shown(name).c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (size > 65536) return -1;
  const std::string_view in = qstar_fuzz::as_view(data, size);
  Folders& dirs = folders();
  try {
    if (in[0] == 'I') {
      write_bytes(dirs.model + "/pytorch_model.bin.index.json", in.substr(1));
      check_store(hf::WeightStore::open_dir(dirs.model));
    } else if (in[0] == 'P') {
      const std::string pickle(in.substr(1));
      std::vector<std::pair<std::string, std::string>> entries = {{"archive/data.pkl", pickle}};
      for (const auto& [key, bytes] : records()) entries.emplace_back("archive/data/" + key, bytes);
      entries.emplace_back("archive/byteorder", "little");
      const std::string archive = tb::make_zip(entries);
      write_bytes(dirs.file, archive);
      const auto f = hf::TorchBinFile::open(dirs.file);
      check_file(f, archive);
      check_records(f, pickle.size());
      check_again_and_rewrite(f);
    } else {
      write_bytes(dirs.file, in.substr(1));
      const auto f = hf::TorchBinFile::open(dirs.file);
      check_file(f, in.substr(1));
      check_again_and_rewrite(f);
    }
  } catch (const qstar::Error&) {
  }
  return 0;
}
