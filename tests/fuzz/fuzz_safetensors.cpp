// libFuzzer target: the safetensors reader and the model-folder index parser
// (include/qstar/hf/safetensors.hpp, src/hf/safetensors.cpp). No LibTorch.
//
// SafetensorsFile::open and WeightStore::open_dir take paths (the reader memory-maps the
// file), so the input is written to a private temporary folder (under /dev/shm when there
// is one) and opened from there. Input, by its first byte:
//  * 'I': the rest is a model.safetensors.index.json, in a folder that also holds two valid
//    shards, "model-00001-of-00002.safetensors" (tensors "a", "b") and
//    "model-00002-of-00002.safetensors" ("c"), and "sub/extra.safetensors" ("d"), a folder
//    "dir.safetensors", and nothing else;
//  * anything else: the rest is a whole .safetensors file.
//
// Oracles (beyond "no crash, no sanitizer report, only qstar::Error escapes"):
//  * a file that opens: the tensors tile the data section exactly in offset order, each
//    holds numel × dtype_size bytes inside the mapping, find() finds each by name,
//    tensor_to_float reads numel values; and write_safetensors of its tensors and metadata
//    gives a file that opens to the same names, dtypes, shapes, bytes and metadata;
//  * an index that opens: every file it opened is inside the model folder (no NUL bytes,
//    no "..", no absolute names), and every tensor resolves to the right bytes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"

namespace fs = std::filesystem;
namespace hf = qstar::hf;
using qstar_fuzz::shown;
using qstar_fuzz::write_bytes;

namespace {

std::vector<std::byte> floats(std::initializer_list<float> v) {
  std::vector<std::byte> out(v.size() * sizeof(float));
  std::memcpy(out.data(), std::data(v), out.size());
  return out;
}

struct Folders {
  std::string root;       // private to this process
  std::string file;       // the .safetensors input
  std::string rewritten;  // write_safetensors output
  std::string model;      // the model folder of the index input

  Folders() {
    const char* base = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/qstar_fuzz_st_XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    root = tmpl;
    file = root + "/input.safetensors";
    rewritten = root + "/rewritten.safetensors";
    model = root + "/model";
    fs::create_directories(model + "/sub");
    fs::create_directories(model + "/dir.safetensors");
    const auto a = floats({1, 2, 3, 4}), b = floats({5}), c = floats({6, 7}), d = floats({8});
    const std::vector<hf::TensorToWrite> s1 = {{"a", hf::DType::F32, {2, 2}, a}, {"b", hf::DType::F32, {}, b}};
    const std::vector<hf::TensorToWrite> s2 = {{"c", hf::DType::F32, {2}, c}};
    const std::vector<hf::TensorToWrite> s3 = {{"d", hf::DType::F32, {1}, d}};
    hf::write_safetensors(model + "/model-00001-of-00002.safetensors", s1);
    hf::write_safetensors(model + "/model-00002-of-00002.safetensors", s2);
    hf::write_safetensors(model + "/sub/extra.safetensors", s3);
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

void check_file(const hf::SafetensorsFile& f) {
  const auto& ts = f.tensors();
  std::size_t at = 0;
  for (const auto& t : ts) {
    FUZZ_CHECK(t.offset == at, "tensor %s at %zu, expected %zu", shown(t.name).c_str(), t.offset, at);
    const std::int64_t numel = t.numel();
    FUZZ_CHECK(numel >= 0, "negative numel");
    FUZZ_CHECK(t.nbytes == static_cast<std::size_t>(numel) * hf::dtype_size(t.dtype), "nbytes");
    FUZZ_CHECK(t.nbytes <= f.file_size() - f.data_start() - t.offset, "tensor past the end of the file");
    FUZZ_CHECK(f.find(t.name) == &t, "find(%s)", shown(t.name).c_str());
    const auto values = hf::tensor_to_float(t);
    FUZZ_CHECK(values.size() == static_cast<std::size_t>(numel), "tensor_to_float size");
    at += t.nbytes;
  }
  FUZZ_CHECK(f.data_start() + at == f.file_size(), "tensors do not cover the data section");
}

void check_rewrite(const hf::SafetensorsFile& f) {
  std::vector<hf::TensorToWrite> out;
  for (const auto& t : f.tensors()) out.push_back({t.name, t.dtype, t.shape, t.bytes()});
  try {
    hf::write_safetensors(folders().rewritten, out, f.metadata());
  } catch (const qstar::InvalidArgument& e) {
    // Names the writer refuses but the reader accepts: only "" (the reader allows it).
    FUZZ_CHECK(std::string(e.what()).find("empty tensor name") != std::string::npos, "rewrite refused: %s",
               e.what());
    return;
  }
  hf::SafetensorsFile g;
  try {
    g = hf::SafetensorsFile::open(folders().rewritten);
  } catch (const qstar::Error& e) {
    FUZZ_CHECK(false, "the rewritten file does not open: %s", e.what());
  }
  FUZZ_CHECK(g.tensors().size() == f.tensors().size(), "rewrite: tensor count");
  FUZZ_CHECK(g.metadata() == f.metadata(), "rewrite: metadata");
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& x = f.tensors()[i];
    const auto& y = g.tensors()[i];
    FUZZ_CHECK(x.name == y.name && x.dtype == y.dtype && x.shape == y.shape && x.nbytes == y.nbytes,
               "rewrite: tensor %zu differs", i);
    FUZZ_CHECK(x.nbytes == 0 || std::memcmp(x.data, y.data, x.nbytes) == 0, "rewrite: bytes of %s differ",
               shown(x.name).c_str());
  }
}

void check_store(const hf::WeightStore& ws) {
  const fs::path model = fs::canonical(folders().model);
  for (const auto& f : ws.files()) {
    FUZZ_CHECK(f.path().find('\0') == std::string::npos, "opened a shard whose name has a NUL byte: %s",
               shown(f.path()).c_str());
    const fs::path p = fs::weakly_canonical(f.path());
    const auto rel = p.lexically_relative(model);
    FUZZ_CHECK(!rel.empty() && *rel.begin() != "..", "opened %s outside the model folder", p.c_str());
    check_file(f);
  }
  for (const auto& name : ws.names()) {
    const hf::TensorView& t = ws.at(name);
    FUZZ_CHECK(t.name == name, "store: %s resolves to %s", shown(name).c_str(), shown(t.name).c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  if (size > 65536) return -1;
  const std::string_view in = qstar_fuzz::as_view(data, size);
  Folders& dirs = folders();
  try {
    if (in[0] == 'I') {
      write_bytes(dirs.model + "/model.safetensors.index.json", in.substr(1));
      check_store(hf::WeightStore::open_dir(dirs.model));
    } else {
      write_bytes(dirs.file, in.substr(1));
      const auto f = hf::SafetensorsFile::open(dirs.file);
      check_file(f);
      check_rewrite(f);
    }
  } catch (const qstar::Error&) {
  }
  return 0;
}
