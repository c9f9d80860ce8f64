// Tests of the torch.save (.bin) reader: TorchBinFile and WeightStore's .bin folders (no
// LibTorch). The checkpoints come from Debian's python3-torch at test time
// (tests/hf/make_torch_bin.py, which also records what torch itself reads back); hostile and
// malformed archives are hand-written (tests/hf/torch_bin_builders.hpp).
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/tiny_model.hpp"
#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"
#include "qstar/hf/torch_bin.hpp"

#ifndef QSTAR_PYTHON
#define QSTAR_PYTHON "/usr/bin/python3"
#endif

namespace fs = std::filesystem;
namespace json = qstar::json;
using namespace qstar::hf;

namespace {

using tiny::TempDir;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong type: ") + e.what() + ">";
  }
  return "<no error>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string hex(const TensorView& t) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < t.nbytes; ++i) {
    const auto b = std::to_integer<unsigned>(t.data[i]);
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

/// The folder make_torch_bin.py wrote (once per process), or "" when no python3 has torch.
const std::string& python_files() {
  static TempDir dir;
  static const std::string result = [] {
    const std::string script = std::string(QSTAR_TEST_HF_DIR) + "/make_torch_bin.py";
    for (const std::string& py : {std::string(QSTAR_PYTHON), std::string("/usr/bin/python3")}) {
      if (py.empty() || !fs::exists(py)) continue;
      if (std::system(("\"" + py + "\" -c \"import torch\" > /dev/null 2>&1").c_str()) != 0) continue;
      const std::string cmd = "\"" + py + "\" \"" + script + "\" \"" + dir.str() + "\" 2> \"" + dir.file("stderr.txt") + "\"";
      if (std::system(cmd.c_str()) != 0) FAIL("make_torch_bin.py failed with " << py << ":\n" << read_text(dir.file("stderr.txt")));
      return dir.str();
    }
    return std::string();
  }();
  return result;
}

#define NEED_PYTHON_FILES(dir)                                                                  \
  const std::string dir = python_files();                                                       \
  if (dir.empty()) {                                                                            \
    MESSAGE("skipping: no python3 with torch (tried " QSTAR_PYTHON " and /usr/bin/python3)"); \
    return;                                                                                     \
  }

/// Checks every tensor of `expected.json` in `folder` against the store, bit for bit.
void check_folder(const std::string& folder) {
  CAPTURE(folder);
  const json::Value exp = json::parse(read_text(folder + "/expected.json"), "expected.json");
  const WeightStore ws = WeightStore::open_dir(folder);
  CHECK(ws.source() == exp.at("source").as_string());
  std::vector<std::string> names;
  for (const json::Value& t : exp.get_array("tensors")) {
    const std::string& name = t.at("name").as_string();
    CAPTURE(name);
    names.push_back(name);
    const TensorView& v = ws.at(name);
    CHECK(v.name == name);
    CHECK(std::string(dtype_name(v.dtype)) == t.at("dtype").as_string());
    std::vector<std::int64_t> shape;
    for (const json::Value& d : t.get_array("shape")) shape.push_back(d.as_int());
    CHECK(v.shape == shape);
    CHECK(v.nbytes == static_cast<std::size_t>(v.numel()) * dtype_size(v.dtype));
    CHECK(hex(v) == t.at("hex").as_string());
    CHECK(tensor_to_float(v).size() == static_cast<std::size_t>(v.numel()));
  }
  std::sort(names.begin(), names.end());
  CHECK(ws.names() == names);
}

}  // namespace

// ---- checkpoints written by torch --------------------------------------------------------

TEST_CASE("torch_bin: checkpoints written by python3-torch read bit-exactly") {
  NEED_PYTHON_FILES(dir);
  // single file, sharded + index, pickle protocol 4, ZIP64 with unaligned data, a plain dict
  for (const char* folder : {"single", "sharded", "proto4", "zip64", "plain_dict"}) check_folder(dir + "/" + folder);
}

TEST_CASE("torch_bin: shared storages, views with offsets and the archive layout") {
  NEED_PYTHON_FILES(dir);
  const json::Value exp = json::parse(read_text(dir + "/single/expected.json"), "expected.json");
  const TorchBinFile f = TorchBinFile::open(dir + "/single/pytorch_model.bin");
  CHECK(f.archive_name() == "pytorch_model");  // torch 1.13 names the archive after the file
  const auto& ts = f.tensors();
  REQUIRE(ts.size() == exp.get_array("tensors").size());
  for (std::size_t i = 0; i < ts.size(); ++i) {  // the state dict's order
    const json::Value& ti = exp.get_array("tensors")[i];
    CHECK(ts[i].name == ti.at("name").as_string());
    CHECK(f.find(ts[i].name) == &ts[i]);
    for (std::size_t j = 0; j < ts.size(); ++j)  // same storage in torch <=> same storage record here
      CHECK((f.storage_keys()[i] == f.storage_keys()[j]) ==
            (ti.at("group").as_int() == exp.get_array("tensors")[j].at("group").as_int()));
  }
  // Tied weights are one set of bytes; views point into their storage at the element offset.
  CHECK(f.find("head.weight")->data == f.find("embed.weight")->data);
  CHECK(f.find("bf16.view")->data == f.find("bf16.base")->data + 2 * 2);
  CHECK(f.find("bf16.view")->offset == 4);
  CHECK(f.find("bf16.tail")->data == f.find("bf16.base")->data + 20 * 2);
  CHECK(f.find("f16.rows")->offset == 3 * 2);  // row 1 of a [6, 3] f16 tensor
  CHECK(f.find("f32.empty")->nbytes == 0);
  CHECK(f.find("f32.scalar")->shape.empty());
  CHECK(tensor_to_float(*f.find("f32.scalar")) == std::vector<float>{-7.25f});
  CHECK(f.find("nope") == nullptr);
  // Moving keeps the views.
  const TensorView* w = f.find("param");
  TorchBinFile g = TorchBinFile::open(dir + "/single/pytorch_model.bin");
  const TensorView* gw = g.find("param");
  TorchBinFile moved = std::move(g);
  CHECK(moved.find("param") == gw);
  CHECK(std::memcmp(gw->data, w->data, w->nbytes) == 0);
  CHECK(g.tensors().empty());

  // The ZIP64 repack puts records at unaligned addresses: the views still read right
  // (check_folder compares the bytes), and at least one F32 tensor really is unaligned.
  const TorchBinFile z = TorchBinFile::open(dir + "/zip64/pytorch_model.bin");
  int unaligned = 0;
  for (const TensorView& t : z.tensors())
    if (t.dtype == DType::F32 && t.nbytes > 0 && reinterpret_cast<std::uintptr_t>(t.data) % 4 != 0) ++unaligned;
  CHECK(unaligned > 0);
}

TEST_CASE("torch_bin: a folder with both formats gives identical tensors") {
  NEED_PYTHON_FILES(dir);
  const WeightStore st = WeightStore::open_dir(dir + "/both");
  CHECK(st.source() == "model.safetensors");  // safetensors first when both exist
  const TorchBinFile bin = TorchBinFile::open(dir + "/both/pytorch_model.bin");
  REQUIRE(bin.tensors().size() == st.names().size());
  for (const TensorView& b : bin.tensors()) {
    CAPTURE(b.name);
    const TensorView& s = st.at(b.name);
    CHECK(b.dtype == s.dtype);
    CHECK(b.shape == s.shape);
    REQUIRE(b.nbytes == s.nbytes);
    CHECK(std::memcmp(b.data, s.data, b.nbytes) == 0);
  }
}

TEST_CASE("torch_bin: formats and tensors the reader refuses, naming the file") {
  NEED_PYTHON_FILES(dir);
  const std::string legacy = dir + "/legacy/pytorch_model.bin";
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir + "/legacy"); }),
                 legacy + ": this is the legacy torch.save format (torch < 1.6"));
  const std::string tr = dir + "/transposed/pytorch_model.bin";
  CHECK(error_of<qstar::ParseError>([&] { (void)TorchBinFile::open(tr); }) ==
        tr + ": tensor \"w\": size [2, 3] with stride [1, 2] is not a contiguous view of its storage (a "
             "transposed or expanded tensor); save it with .contiguous()");
  const std::string i64 = dir + "/int64/pytorch_model.bin";
  const std::string e = error_of<qstar::ParseError>([&] { (void)TorchBinFile::open(i64); });
  CHECK(contains(e, i64 + ": pytorch_model/data.pkl at byte "));
  CHECK(contains(e, "global 'torch.LongStorage' is not allowed"));
}

TEST_CASE("torch_bin: pickles that would run a command are refused, and nothing runs") {
  NEED_PYTHON_FILES(dir);
  // make_torch_bin.py checked that each payload creates its marker under pickle / torch.load.
  const std::pair<const char*, const char*> cases[] = {
      {"evil_os_system", "global 'posix.system' is not allowed"},
      {"evil_subprocess", "global 'commands.check_call' is not allowed"},
      {"evil_eval", "global '__builtin__.eval' is not allowed"},
      {"evil_subprocess_p4", "global 'subprocess.check_call' is not allowed"},
      {"evil_eval_p4", "global 'builtins.eval' is not allowed"},
      {"evil_in_state_dict", "global 'posix.system' is not allowed"},
  };
  for (const auto& [name, global] : cases) {
    CAPTURE(name);
    const std::string folder = dir + "/" + name;
    const std::string e = error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(folder); });
    CHECK(contains(e, folder + "/pytorch_model.bin: "));
    CHECK(contains(e, global));
    CHECK(!fs::exists(dir + "/" + name + ".marker"));
  }
}
