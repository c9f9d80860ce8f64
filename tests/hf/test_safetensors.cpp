// Tests of the safetensors reader/writer, the model-folder WeightStore and the 16-bit float
// conversions (no LibTorch needed).
#include <doctest/doctest.h>

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"

namespace fs = std::filesystem;
using namespace qstar::hf;

namespace {

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("qstar_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// Writes `header` (as is) after an 8-byte length (`declared_len`, default the header size),
/// followed by `data_bytes` bytes 0, 1, 2, ...
void write_raw(const std::string& path, const std::string& header, std::size_t data_bytes,
               std::optional<std::uint64_t> declared_len = std::nullopt) {
  std::ofstream out(path, std::ios::binary);
  std::uint64_t n = declared_len.value_or(header.size());
  for (int i = 0; i < 8; ++i) {
    out.put(static_cast<char>(n & 0xFF));
    n >>= 8;
  }
  out << header;
  for (std::size_t i = 0; i < data_bytes; ++i) out.put(static_cast<char>(i & 0xFF));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The message of the exception of type E that f throws; "<no error>" when it throws none,
/// "<wrong type: ...>" for another type.
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

/// The ParseError message of opening a raw file with this header and data size.
std::string open_error(const TempDir& dir, const std::string& header, std::size_t data_bytes,
                       std::optional<std::uint64_t> declared_len = std::nullopt) {
  const std::string p = dir.file("model.safetensors");
  write_raw(p, header, data_bytes, declared_len);
  return error_of<qstar::ParseError>([&] { (void)SafetensorsFile::open(p); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

// ---- round trips -------------------------------------------------------------------------

TEST_CASE("safetensors: write then open round-trips F32, F16, BF16, scalars and empty tensors") {
  TempDir dir;
  const std::vector<float> w32 = {1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, -7.0f};
  std::vector<std::uint16_t> w16, wbf;
  for (float x : {0.5f, -1.0f, 65504.0f, 2.0f}) w16.push_back(float_to_f16(x));
  for (float x : {1.0f, -3.0f, 0.15625f}) wbf.push_back(float_to_bf16(x));
  const std::vector<float> scalar = {42.0f};
  const auto b32 = bytes_of(w32), b16 = bytes_of(w16), bbf = bytes_of(wbf), bsc = bytes_of(scalar);

  const std::vector<TensorToWrite> ts = {
      {"model.embed_tokens.weight", DType::F32, {2, 3}, b32},
      {"half", DType::F16, {4}, b16},
      {"brain", DType::BF16, {3, 1}, bbf},
      {"empty", DType::F32, {0}, {}},
      {"scalar", DType::F32, {}, bsc},
      {"empty2d", DType::BF16, {3, 0}, {}},
  };
  const std::string p = dir.file("model.safetensors");
  write_safetensors(p, ts, {{"format", "pt"}, {"note", "qstar \"test\""}});

  const SafetensorsFile f = SafetensorsFile::open(p);
  CHECK(f.path() == p);
  CHECK(f.metadata().size() == 2);
  CHECK(f.metadata().at("format") == "pt");
  CHECK(f.metadata().at("note") == "qstar \"test\"");
  CHECK(f.data_start() % 8 == 0);
  REQUIRE(f.tensors().size() == ts.size());
  // Written back to back in the given order, so the offset order is the same.
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const TensorView& t = f.tensors()[i];
    CAPTURE(ts[i].name);
    CHECK(t.name == ts[i].name);
    CHECK(t.dtype == ts[i].dtype);
    CHECK(t.shape == ts[i].shape);
    CHECK(t.nbytes == ts[i].data.size());
    CHECK(static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype) == t.nbytes);
    if (t.nbytes > 0) CHECK(std::memcmp(t.data, ts[i].data.data(), t.nbytes) == 0);
    CHECK(f.find(ts[i].name) == &t);
  }
  CHECK(f.find("missing") == nullptr);
  CHECK(f.find("scalar")->numel() == 1);
  CHECK(f.find("scalar")->shape.empty());
  CHECK(f.find("empty")->numel() == 0);
  CHECK(f.find("empty2d")->numel() == 0);

  CHECK(tensor_to_float(*f.find("model.embed_tokens.weight")) == w32);
  CHECK(tensor_to_float(*f.find("half")) == std::vector<float>{0.5f, -1.0f, 65504.0f, 2.0f});
  CHECK(tensor_to_float(*f.find("brain")) == std::vector<float>{1.0f, -3.0f, 0.15625f});
  CHECK(tensor_to_float(*f.find("scalar")) == scalar);
  CHECK(tensor_to_float(*f.find("empty")).empty());

  // The file is exactly 8 + header + data, the header padded with spaces to 8 bytes.
  const std::string raw = read_bytes(p);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[static_cast<std::size_t>(i)]);
  CHECK(n % 8 == 0);
  CHECK(raw.size() == 8 + n + b32.size() + b16.size() + bbf.size() + bsc.size());
  CHECK(raw[8] == '{');
  const std::string header = raw.substr(8, n);
  CHECK(header.find("\"__metadata__\"") == 1);  // metadata first, like HF
  CHECK(header.find_last_not_of(' ') == header.rfind('}'));

  // Moving keeps the mapping and views valid.
  SafetensorsFile g = SafetensorsFile::open(p);
  const TensorView* before = g.find("half");
  SafetensorsFile h = std::move(g);
  CHECK(h.find("half") == before);
  CHECK(tensor_to_float(*h.find("half"))[2] == 65504.0f);
  CHECK(g.tensors().empty());
  g = std::move(h);
  CHECK(g.find("half")->shape == std::vector<std::int64_t>{4});
}

TEST_CASE("safetensors: tensors() is in offset order; no metadata; header-only file") {
  TempDir dir;
  // Header lists "b" first but "a" holds the first bytes; HF-style space padding; zero-sized
  // tensors at the same offset are fine.
  const std::string header =
      R"({"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
      R"("z1":{"dtype":"F32","shape":[0,5],"data_offsets":[8,8]},)"
      R"("z2":{"dtype":"BF16","shape":[0],"data_offsets":[8,8]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}     )";
  const std::string p = dir.file("x.safetensors");
  write_raw(p, header, 12);
  const SafetensorsFile f = SafetensorsFile::open(p);
  REQUIRE(f.tensors().size() == 4);
  CHECK(f.tensors()[0].name == "a");
  CHECK(f.tensors()[1].name == "z1");
  CHECK(f.tensors()[2].name == "z2");
  CHECK(f.tensors()[3].name == "b");
  CHECK(f.metadata().empty());
  CHECK(std::to_integer<int>(f.find("b")->data[0]) == 8);  // data bytes are 0,1,2,...
  CHECK(f.find("b")->offset == 8);

  write_raw(p, "{}", 0);
  CHECK(SafetensorsFile::open(p).tensors().empty());
  write_raw(p, R"({"__metadata__":{"k":"v"}})", 0);
  CHECK(SafetensorsFile::open(p).metadata().at("k") == "v");
  write_raw(p, R"({"__metadata__":null})", 0);
  CHECK(SafetensorsFile::open(p).metadata().empty());
}

// ---- malformed files ---------------------------------------------------------------------

TEST_CASE("safetensors: truncated files and bad header lengths") {
  TempDir dir;
  const std::string p = dir.file("model.safetensors");
  for (const std::string& content : {std::string(), std::string("\x05\x00\x00", 3), std::string(7, '\0')}) {
    write_bytes(p, content);
    const std::string e = error_of<qstar::ParseError>([&] { (void)SafetensorsFile::open(p); });
    CAPTURE(e);
    CHECK(contains(e, p + ": file is " + std::to_string(content.size()) + " bytes, shorter than the 8-byte"));
  }

  // Header length larger than the file.
  std::string e = open_error(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, 1000);
  CHECK(contains(e, p + ": header length 1000 is larger than the file"));
  e = open_error(dir, "{}", 0, std::numeric_limits<std::uint64_t>::max());
  CHECK(contains(e, "header length 18446744073709551615 is larger than the file"));

  // A truncated data section: the last tensor's offsets run past the end.
  const std::string good = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  e = open_error(dir, good, 20);
  CHECK(e == p + R"(: tensor "model.norm.weight": data offsets [8, 24) are out of range of the data section (20 bytes))");
  CHECK(open_error(dir, good, 24) == "<no error>");

  // A header length beyond the 100 MB limit (a sparse file, so this stays cheap).
  {
    const std::string big = dir.file("big.safetensors");
    write_raw(big, "{}", 0, 100'000'001);
    fs::resize_file(big, 100'000'100);
    e = error_of<qstar::ParseError>([&] { (void)SafetensorsFile::open(big); });
    CHECK(contains(e, big + ": header length 100000001 is too large"));
    fs::remove(big);
  }
}

TEST_CASE("safetensors: bad JSON and bad entries name the file and the tensor") {
  TempDir dir;
  const std::string p = dir.file("model.safetensors");
  std::string e = open_error(dir, R"({"a":{"dtype":"F32",)", 0);
  CHECK(contains(e, p + ": header: line 1 col"));
  e = open_error(dir, R"([1,2])", 0);
  CHECK(e == p + ": header must be a JSON object, got array");
  e = open_error(dir, "\x01\x02garbage", 0);
  CHECK(contains(e, p + ": header: line 1 col 1"));
  // Duplicate tensor names are duplicate JSON keys.
  e = open_error(dir,
                 R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                 8);
  CHECK(contains(e, p + ": header: "));
  CHECK(contains(e, "duplicate key \"w\""));

  struct Case {
    std::string entry;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"([1])", "entry must be an object, got array"},
      {R"({"shape":[1],"data_offsets":[0,4]})", "missing \"dtype\""},
      {R"({"dtype":"F32","data_offsets":[0,4]})", "missing \"shape\""},
      {R"({"dtype":"F32","shape":[1]})", "missing \"data_offsets\""},
      {R"({"dtype":7,"shape":[1],"data_offsets":[0,4]})", "\"dtype\" must be a string, got integer"},
      {R"({"dtype":"I64","shape":[1],"data_offsets":[0,4]})", "dtype I64 is not supported (F32, F16, BF16)"},
      {R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", "dtype f32 is not supported (F32, F16, BF16)"},
      {R"({"dtype":"F32","shape":"1","data_offsets":[0,4]})", "\"shape\" must be an array, got string"},
      {R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", "\"shape\" must hold integers, got number"},
      {R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", "negative dimension -1 in \"shape\""},
      {R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]})",
       "shape [4611686018427387904, 4]: element count overflows"},
      {R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]})",
       "shape [4611686018427387904]: byte size overflows"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", "\"data_offsets\" must be an array of 2 non-negative integers, got [0]"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[-4,0]})", "\"data_offsets\" must be an array of 2 non-negative integers, got [-4,0]"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":"0,4"})", "\"data_offsets\" must be an array of 2 non-negative integers, got \"0,4\""},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[4,0]})", "data offsets [4, 0) are reversed"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0,40]})", "data offsets [0, 40) are out of range of the data section (4 bytes)"},
      {R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,4]})",
       "shape [2, 3] with dtype F32 needs 24 bytes, but data offsets [0, 4) hold 4"},
      {R"({"dtype":"BF16","shape":[1],"data_offsets":[0,4]})",
       "shape [1] with dtype BF16 needs 2 bytes, but data offsets [0, 4) hold 4"},
  };
  for (const Case& c : cases) {
    e = open_error(dir, R"({"model.layers.0.self_attn.q_proj.weight":)" + c.entry + "}", 4);
    CAPTURE(c.entry);
    CHECK(e == p + R"(: tensor "model.layers.0.self_attn.q_proj.weight": )" + c.message);
  }

  e = open_error(dir, R"({"__metadata__":{"format":1}})", 0);
  CHECK(e == p + R"(: "__metadata__" key "format" must hold a string, got integer)");
  e = open_error(dir, R"({"__metadata__":[]})", 0);
  CHECK(e == p + R"(: "__metadata__" must be an object of strings, got array)");
}

TEST_CASE("safetensors: overlaps, gaps and trailing bytes") {
  TempDir dir;
  const std::string p = dir.file("model.safetensors");
  // Overlap.
  std::string e = open_error(dir,
                             R"({"model.layers.0.mlp.up_proj.weight":{"dtype":"F32","shape":[4],"data_offsets":[10,26]},)"
                             R"("a":{"dtype":"F16","shape":[6],"data_offsets":[0,12]}})",
                             26);
  CHECK(e == p + R"(: tensor "model.layers.0.mlp.up_proj.weight": data offsets [10, 26) overlap the previous tensor "a" [0, 12))");
  // Two tensors on the same bytes.
  e = open_error(dir,
                 R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                 4);
  CHECK(e == p + R"(: tensor "b": data offsets [0, 4) overlap the previous tensor "a" [0, 4))");
  // Gap between tensors.
  e = open_error(dir,
                 R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                 12);
  CHECK(e == p + R"(: tensor "b": data offsets [8, 12) leave a gap of 4 bytes after the previous tensor "a" [0, 4))");
  // Gap at the start.
  e = open_error(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  CHECK(e == p + R"(: tensor "a": data offsets [4, 8) leave a gap of 4 bytes at the start of the data section)");
  // Trailing bytes nobody owns.
  e = open_error(dir, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6);
  CHECK(e == p + R"(: the data section holds 6 bytes but the tensors cover only 4 (2 trailing bytes after tensor "a"))");
  e = open_error(dir, "{}", 3);
  CHECK(e == p + ": the data section holds 3 bytes but the header lists no tensors");
}

TEST_CASE("safetensors: file system errors are IoError naming the path") {
  TempDir dir;
  const std::string missing = dir.file("nope.safetensors");
  std::string e = error_of<qstar::IoError>([&] { (void)SafetensorsFile::open(missing); });
  CHECK(contains(e, missing + ": cannot open"));
  e = error_of<qstar::IoError>([&] { (void)SafetensorsFile::open(dir.str()); });
  CHECK(e == dir.str() + ": not a regular file");
}

TEST_CASE("safetensors: garbage never crashes") {
  // Random mutations of a valid file: every outcome is a clean open or a qstar::Error.
  TempDir dir;
  const std::string p = dir.file("model.safetensors");
  const std::vector<float> a = {1, 2, 3, 4}, b = {5, 6};
  const auto ba = bytes_of(a), bb = bytes_of(b);
  const std::vector<TensorToWrite> ts = {{"a", DType::F32, {2, 2}, ba}, {"b", DType::F32, {2}, bb}};
  write_safetensors(p, ts);
  const std::string good = read_bytes(p);
  std::mt19937 rng(1234);
  int errors = 0;
  for (int iter = 0; iter < 500; ++iter) {
    std::string bad = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      const std::size_t pos = rng() % bad.size();
      switch (rng() % 3) {
        case 0: bad[pos] = static_cast<char>(rng() & 0xFF); break;
        case 1: bad.resize(pos); break;
        default: bad[pos] = "0123456789[]{}\",:-"[rng() % 18]; break;
      }
      if (bad.empty()) break;
    }
    write_bytes(p, bad);
    try {
      const SafetensorsFile f = SafetensorsFile::open(p);
      for (const TensorView& t : f.tensors()) (void)tensor_to_float(t);
    } catch (const qstar::Error&) {
      ++errors;
    }
  }
  CHECK(errors > 0);
}

// ---- writer ------------------------------------------------------------------------------

TEST_CASE("safetensors: write_safetensors rejects bad tensors") {
  TempDir dir;
  const std::string p = dir.file("out.safetensors");
  const std::vector<float> v = {1, 2, 3};
  const auto bv = bytes_of(v);
  auto err = [&](std::vector<TensorToWrite> ts) {
    return error_of<qstar::InvalidArgument>([&] { write_safetensors(p, ts); });
  };
  CHECK(err({{"w", DType::F32, {2, 2}, bv}}) ==
        "write_safetensors: " + p + ": tensor \"w\": shape [2, 2] with dtype F32 needs 16 bytes, data has 12");
  CHECK(err({{"w", DType::F16, {3}, bv}}) ==
        "write_safetensors: " + p + ": tensor \"w\": shape [3] with dtype F16 needs 6 bytes, data has 12");
  CHECK(err({{"w", DType::F32, {3}, bv}, {"w", DType::F32, {3}, bv}}) ==
        "write_safetensors: " + p + ": tensor \"w\": duplicate name");
  CHECK(err({{"w", DType::F32, {-3}, bv}}) == "write_safetensors: " + p + ": tensor \"w\": negative dimension -3");
  CHECK(contains(err({{"", DType::F32, {3}, bv}}), "empty tensor name"));
  CHECK(contains(err({{"__metadata__", DType::F32, {3}, bv}}), "reserved"));
  const std::vector<TensorToWrite> ok = {{"w", DType::F32, {3}, bv}};
  const std::string bad_path = dir.file("no/such/dir/x.safetensors");
  CHECK(contains(error_of<qstar::IoError>([&] { write_safetensors(bad_path, ok); }), bad_path + ": cannot open"));
}

// ---- model folders -----------------------------------------------------------------------

TEST_CASE("safetensors: WeightStore reads model.safetensors") {
  TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  const auto ba = bytes_of(a), bb = bytes_of(b);
  const std::vector<TensorToWrite> ts = {{"z.weight", DType::F32, {2}, ba}, {"a.weight", DType::F32, {3}, bb}};
  write_safetensors(dir.file("model.safetensors"), ts, {{"format", "pt"}});
  WeightStore ws = WeightStore::open_dir(dir.str());
  CHECK(ws.names() == std::vector<std::string>{"a.weight", "z.weight"});
  CHECK(ws.source() == "model.safetensors");
  CHECK(ws.metadata().at("format") == "pt");
  CHECK(tensor_to_float(ws.at("a.weight")) == b);
  CHECK(ws.find("nope") == nullptr);
  CHECK(ws.file_of("z.weight") == dir.file("model.safetensors"));
  CHECK(ws.file_of("nope").empty());
  const std::string e = error_of<qstar::ParseError>([&] { (void)ws.at("lm_head.weight"); });
  CHECK(e == dir.str() + ": tensor \"lm_head.weight\" is missing (not in model.safetensors)");
  // Moving the store keeps the views.
  const TensorView* t = &ws.at("z.weight");
  WeightStore moved = std::move(ws);
  CHECK(&moved.at("z.weight") == t);
}

TEST_CASE("safetensors: WeightStore reads sharded folders through the index") {
  TempDir dir;
  const std::vector<float> a = {1, 2}, b = {3, 4, 5}, c = {6};
  const auto ba = bytes_of(a), bb = bytes_of(b), bc = bytes_of(c);
  std::vector<std::uint16_t> h = {float_to_bf16(0.5f), float_to_bf16(-8.0f)};
  const auto bh = bytes_of(h);
  const std::vector<TensorToWrite> s1 = {{"model.embed_tokens.weight", DType::F32, {2, 1}, ba},
                                         {"model.norm.weight", DType::BF16, {2}, bh}};
  const std::vector<TensorToWrite> s2 = {{"lm_head.weight", DType::F32, {3}, bb},
                                         {"extra.not_in_map", DType::F32, {1}, bc}};
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  write_safetensors(dir.file(shard1), s1, {{"format", "pt"}});
  write_safetensors(dir.file(shard2), s2, {{"format", "pt"}});
  const std::string index = dir.file("model.safetensors.index.json");
  auto write_index = [&](const std::string& text) { write_bytes(index, text); };
  write_index(R"({"metadata":{"total_size":30,"format":"pt"},"weight_map":{)"
              R"("lm_head.weight":"model-00002-of-00002.safetensors",)"
              R"("model.embed_tokens.weight":"model-00001-of-00002.safetensors",)"
              R"("model.norm.weight":"model-00001-of-00002.safetensors"}})");

  const WeightStore ws = WeightStore::open_dir(dir.str());
  CHECK(ws.source() == "model.safetensors.index.json");
  CHECK(ws.files().size() == 2);  // each shard opened once
  CHECK(ws.names() == std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"});
  CHECK(ws.metadata().at("total_size") == "30");
  CHECK(ws.metadata().at("format") == "pt");
  CHECK(tensor_to_float(ws.at("lm_head.weight")) == b);
  CHECK(tensor_to_float(ws.at("model.norm.weight")) == std::vector<float>{0.5f, -8.0f});
  CHECK(ws.at("model.embed_tokens.weight").shape == std::vector<std::int64_t>{2, 1});
  CHECK(ws.file_of("lm_head.weight") == dir.file(shard2));
  CHECK(ws.file_of("model.norm.weight") == dir.file(shard1));
  CHECK(ws.find("extra.not_in_map") == nullptr);  // the weight_map is authoritative
  CHECK(error_of<qstar::ParseError>([&] { (void)ws.at("missing"); }) ==
        dir.str() + ": tensor \"missing\" is missing (not in model.safetensors.index.json)");

  // A mapped tensor that its shard lacks.
  write_index(R"({"weight_map":{"model.norm.weight":"model-00002-of-00002.safetensors"}})");
  CHECK(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        index + R"(: tensor "model.norm.weight" is mapped to shard "model-00002-of-00002.safetensors", which does not contain it)");
  // A missing shard file.
  write_index(R"({"weight_map":{"lm_head.weight":"model-00003-of-00003.safetensors"}})");
  std::string e = error_of<qstar::IoError>([&] { (void)WeightStore::open_dir(dir.str()); });
  CHECK(contains(e, index + R"(: tensor "lm_head.weight": shard "model-00003-of-00003.safetensors": )"));
  CHECK(contains(e, "cannot open"));
  // A malformed shard: the shard's own ParseError.
  write_bytes(dir.file("broken.safetensors"), "xx");
  write_index(R"({"weight_map":{"lm_head.weight":"broken.safetensors"}})");
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 dir.file("broken.safetensors") + ": file is 2 bytes"));
  // Bad index JSON and bad index shapes.
  write_index(R"({"weight_map":{"a":)");
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }), index + ": line 1 col"));
  write_index(R"({"metadata":{}})");
  CHECK(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        index + ": missing \"weight_map\"");
  write_index(R"({"weight_map":{"a":3}})");
  CHECK(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        index + R"(: weight_map: tensor "a" must map to a shard file name, got integer)");
  write_index(R"({"weight_map":{"a":"../model-00001-of-00002.safetensors"}})");
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 "is not a file name inside the model folder"));

  // model.safetensors takes precedence over the index when both exist.
  write_safetensors(dir.file("model.safetensors"), s2);
  const WeightStore single = WeightStore::open_dir(dir.str());
  CHECK(single.source() == "model.safetensors");
  CHECK(single.names() == std::vector<std::string>{"extra.not_in_map", "lm_head.weight"});
}

TEST_CASE("safetensors: WeightStore needs a folder with weights") {
  TempDir dir;
  CHECK(error_of<qstar::IoError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        dir.str() + ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                    "pytorch_model.bin.index.json in the directory");
  const std::string nodir = dir.file("absent");
  CHECK(error_of<qstar::IoError>([&] { (void)WeightStore::open_dir(nodir); }) == nodir + ": not a directory");
  // A truncated model.safetensors is the file's ParseError.
  write_bytes(dir.file("model.safetensors"), std::string("\x10\x00", 2));
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 dir.file("model.safetensors") + ": file is 2 bytes"));
}

// ---- conversions -------------------------------------------------------------------------

TEST_CASE("safetensors: dtype names and sizes") {
  CHECK(std::string(dtype_name(DType::F32)) == "F32");
  CHECK(std::string(dtype_name(DType::F16)) == "F16");
  CHECK(std::string(dtype_name(DType::BF16)) == "BF16");
  CHECK(dtype_size(DType::F32) == 4);
  CHECK(dtype_size(DType::F16) == 2);
  CHECK(dtype_size(DType::BF16) == 2);
}

TEST_CASE("safetensors: bfloat16 conversion, rounding to nearest even") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(bf16_to_float(0x3F80) == 1.0f);
  CHECK(float_to_bf16(-2.0f) == 0xC000);
  CHECK(float_to_bf16(0.0f) == 0x0000);
  CHECK(float_to_bf16(-0.0f) == 0x8000);
  CHECK(float_to_bf16(inf) == 0x7F80);
  CHECK(float_to_bf16(-inf) == 0xFF80);
  CHECK(bf16_to_float(0x7F80) == inf);
  CHECK(bf16_to_float(0xFF80) == -inf);
  CHECK(float_to_bf16(std::numeric_limits<float>::quiet_NaN()) == 0x7FC0);
  CHECK(std::isnan(bf16_to_float(0x7FC0)));
  CHECK(float_to_bf16(3.140625f) == 0x4049);
  // Ties go to even; above the tie rounds up.
  CHECK(float_to_bf16(std::bit_cast<float>(0x3F808000u)) == 0x3F80);
  CHECK(float_to_bf16(std::bit_cast<float>(0x3F818000u)) == 0x3F82);
  CHECK(float_to_bf16(std::bit_cast<float>(0x3F808001u)) == 0x3F81);
  CHECK(float_to_bf16(std::bit_cast<float>(0x3F807FFFu)) == 0x3F80);
  CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);  // rounds to inf, like torch
  // Every bf16 value round-trips through float.
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = bf16_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(bf16_to_float(float_to_bf16(f))));
    } else if (float_to_bf16(f) != h) {
      FAIL("bf16 round trip failed for 0x" << std::hex << h);
    }
  }
}

TEST_CASE("safetensors: float16 conversion, rounding to nearest even") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(float_to_f16(1.0f) == 0x3C00);
  CHECK(f16_to_float(0x3C00) == 1.0f);
  CHECK(float_to_f16(-2.0f) == 0xC000);
  CHECK(float_to_f16(65504.0f) == 0x7BFF);
  CHECK(f16_to_float(0x7BFF) == 65504.0f);
  CHECK(float_to_f16(65519.0f) == 0x7BFF);
  CHECK(float_to_f16(65520.0f) == 0x7C00);  // the tie rounds to even: inf
  CHECK(float_to_f16(1e6f) == 0x7C00);
  CHECK(float_to_f16(-1e6f) == 0xFC00);
  CHECK(float_to_f16(inf) == 0x7C00);
  CHECK(float_to_f16(-inf) == 0xFC00);
  CHECK(f16_to_float(0x7C00) == inf);
  CHECK(f16_to_float(0xFC00) == -inf);
  CHECK(float_to_f16(std::numeric_limits<float>::quiet_NaN()) == 0x7E00);
  CHECK(float_to_f16(-std::numeric_limits<float>::quiet_NaN()) == 0xFE00);
  CHECK(std::isnan(f16_to_float(0x7E00)));
  CHECK(std::isnan(f16_to_float(0x7C01)));
  CHECK(float_to_f16(0.0f) == 0x0000);
  CHECK(float_to_f16(-0.0f) == 0x8000);
  CHECK(float_to_f16(0.1f) == 0x2E66);
  CHECK(float_to_f16(1.0f / 3.0f) == 0x3555);
  CHECK(float_to_f16(0.5f) == 0x3800);
  // Subnormals: 2^-24 is the smallest, 2^-14 the smallest normal.
  CHECK(float_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f16_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(float_to_f16(std::ldexp(1.0f, -14)) == 0x0400);
  CHECK(float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);       // tie → even (0)
  CHECK(float_to_f16(std::ldexp(1.5f, -25)) == 0x0001);       // above the tie
  CHECK(float_to_f16(std::ldexp(3.0f, -25)) == 0x0002);       // 1.5 ulp → even (2)
  CHECK(float_to_f16(std::ldexp(5.0f, -25)) == 0x0002);       // 2.5 ulp → even (2)
  CHECK(float_to_f16(std::ldexp(1.0f, -30)) == 0x0000);
  CHECK(float_to_f16(-std::ldexp(1.0f, -24)) == 0x8001);
  CHECK(float_to_f16(std::ldexp(2047.0f, -25)) == 0x0400);    // largest subnormal tie rounds up to normal
  // Normal ties: 1 + 2^-11 is halfway between 0x3C00 and 0x3C01.
  CHECK(float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  // Every f16 value round-trips through float.
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = f16_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      CHECK(std::isnan(f16_to_float(float_to_f16(f))));
    } else if (float_to_f16(f) != h) {
      FAIL("f16 round trip failed for 0x" << std::hex << h);
    }
  }
#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__aarch64__))
  // Against the compiler's own _Float16 conversion (IEEE round-to-nearest-even).
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    std::uint32_t bits = static_cast<std::uint32_t>(rng());
    // Mostly exponents near the f16 range (normal, subnormal, overflow).
    if (i % 4 != 0) bits = (bits & 0x807FFFFFu) | ((95u + static_cast<std::uint32_t>(rng() % 50)) << 23);
    const float f = std::bit_cast<float>(bits);
    if (std::isnan(f)) continue;
    const _Float16 ref = static_cast<_Float16>(f);
    const auto ref_bits = std::bit_cast<std::uint16_t>(ref);
    if (float_to_f16(f) != ref_bits) FAIL("float_to_f16 differs from _Float16 for 0x" << std::hex << bits);
    if (f16_to_float(ref_bits) != static_cast<float>(ref)) FAIL("f16_to_float differs for 0x" << std::hex << ref_bits);
  }
#endif
}
