// The torch.save (.bin) reader on hand-written archives (tests/hf/torch_bin_builders.hpp):
// valid edge cases, hostile pickles, malformed zips and tensors, limits, and WeightStore's
// .bin folders. No python needed.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hf/torch_bin_builders.hpp"
#include "support/tiny_model.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/safetensors.hpp"
#include "qstar/hf/torch_bin.hpp"

namespace fs = std::filesystem;
namespace tb = qstar_test::torch_bin;
using namespace qstar::hf;
using tb::str;
using namespace std::string_literals;

namespace {

using tiny::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
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

std::string floats(const std::vector<float>& v) {
  std::string out(v.size() * 4, '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

/// {"a": FloatStorage "0" (4 elements) at offset 1, size (2,)} plus {"b": BFloat16Storage
/// "1" (2 elements), size (2, 1), stride (1, 7)}: the stride of a size-1 dimension is free.
std::string good_pickle() {
  return tb::state_dict({{"a", tb::tensor(tb::storage("FloatStorage", "0", 4), 1, {2}, {1})},
                         {"b", tb::tensor(tb::storage("BFloat16Storage", "1", 2), 0, {2, 1}, {1, 7})}});
}
std::vector<std::pair<std::string, std::string>> good_records() {
  return {{"0", floats({1.5f, -2.0f, 3.0f, 4.0f})}, {"1", std::string("\x80\x3f\x00\xc0", 4)}};  // bf16 1.0, -2.0
}

class Files {
 public:
  /// Writes `bytes` as model.bin and opens it.
  TorchBinFile open(const std::string& bytes, const TorchBinLimits& limits = {}) {
    write_bytes(path(), bytes);
    return TorchBinFile::open(path(), limits);
  }
  /// The ParseError of opening `bytes` (or "<no error>").
  std::string error(const std::string& bytes, const TorchBinLimits& limits = {}) {
    return error_of<qstar::ParseError>([&] { (void)open(bytes, limits); });
  }
  /// The ParseError of a pickle inside an otherwise valid archive, without the file's prefix.
  std::string pickle_error(const std::string& pickle, const TorchBinLimits& limits = {}) {
    const std::string e = error(tb::archive(pickle, good_records()), limits);
    const std::string prefix = path() + ": archive/data.pkl at byte ";
    return e.rfind(prefix, 0) == 0 ? e.substr(prefix.size()) : "<unexpected> " + e;
  }
  std::string path() const { return dir.file("model.bin"); }
  TempDir dir;
};

}  // namespace

TEST_CASE("torch_bin: a hand-written archive: offsets, free strides of size-1 dims, dtypes") {
  Files files;
  const TorchBinFile f = files.open(tb::archive(good_pickle(), good_records()));
  REQUIRE(f.tensors().size() == 2);
  CHECK(f.archive_name() == "archive");
  CHECK(f.tensors()[0].name == "a");
  CHECK(f.tensors()[0].offset == 4);
  CHECK(tensor_to_float(f.tensors()[0]) == std::vector<float>{-2.0f, 3.0f});
  CHECK(f.tensors()[1].dtype == DType::BF16);
  CHECK(f.tensors()[1].shape == std::vector<std::int64_t>{2, 1});
  CHECK(tensor_to_float(f.tensors()[1]) == std::vector<float>{1.0f, -2.0f});
  CHECK(f.storage_keys() == std::vector<std::string>{"0", "1"});

  // The other opcodes torch or Python may write: DICT, MEMOIZE/BINGET, DUP/POP, POP_MARK,
  // TUPLE1-3, lists, floats, None, LONG1, _rebuild_parameter and an OrderedDict's BUILD state.
  const std::string param = "ctorch._utils\n_rebuild_parameter\n(" +
                            tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {4}, {1}) + "\x88" +
                            tb::ordered_dict_call() + "tR";
  const std::string state = "}(" + str("_metadata") + "](N\x88G\x3f\xf0\0\0\0\0\0\0\x8a\x02\xff\x7f"s + "K\x01\x85" +
                            "K\x01K\x02\x86K\x01K\x02K\x03\x87" + "e" + "u";
  const std::string pickle = std::string("\x80\x02") + "(" + str("p") + param + "\x94" + "2" + "0" + "(K\x01" + "1" +
                             "d" + tb::ordered_dict_call() + "0" + "h\x00"s + "0" + state + "b" + ".";
  // The stack above: MARK, "p", tensor (memoized as 0, DUP + POP), MARK + 1 + POP_MARK, DICT
  // {"p": tensor}; an OrderedDict pushed and popped; BINGET 0 pushed and popped; BUILD on the dict.
  const TorchBinFile g = files.open(tb::archive(pickle, good_records()));
  REQUIRE(g.tensors().size() == 1);
  CHECK(tensor_to_float(g.tensors()[0]) == std::vector<float>{1.5f, -2.0f, 3.0f, 4.0f});

  // Protocol 4: FRAME, SHORT_BINUNICODE, STACK_GLOBAL of an allowed global.
  const std::string p4 = std::string("\x80\x04\x95") + tb::le(0, 8) + "\x8c\x0b" + "collections" + "\x8c\x0b" +
                         "OrderedDict" + "\x93)R(\x8c\x01q" + tb::tensor(tb::storage("FloatStorage", "0", 4), 3, {}, {}) +
                         "u.";
  const TorchBinFile h = files.open(tb::archive(p4, good_records()));
  REQUIRE(h.tensors().size() == 1);
  CHECK(tensor_to_float(h.tensors()[0]) == std::vector<float>{4.0f});
}

TEST_CASE("torch_bin: globals other than the state dict's are refused when read") {
  Files files;
  CHECK(files.pickle_error("\x80\x02" "cos\nsystem\n" + str("touch /tmp/x") + "\x85R.") ==
        "2: global 'os.system' is not allowed (a state dict may only use collections.OrderedDict, "
        "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.FloatStorage, "
        "torch.HalfStorage, torch.BFloat16Storage)");
  CHECK(contains(files.pickle_error("\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93."), "global 'builtins.exec' is not allowed"));
  CHECK(contains(files.pickle_error("\x80\x02" "c__builtin__\neval\n."), "global '__builtin__.eval' is not allowed"));
  CHECK(contains(files.pickle_error("ctorch\nLongStorage\n."), "0: global 'torch.LongStorage' is not allowed"));
  CHECK(contains(files.pickle_error("ctorch._utils\n_rebuild_tensor_v3\n."), "global 'torch._utils._rebuild_tensor_v3'"));
  CHECK(contains(files.pickle_error("c\x01\xff'\nx\n."), "global '\\x01\\xFF\\x27.x' is not allowed"));
  // Opcodes that build objects without a GLOBAL, or look names up elsewhere.
  CHECK(files.pickle_error("(" + str("x") + "ios\nsystem\n.") == "7: opcode INST (0x69) is not allowed in a state dict");
  CHECK(contains(files.pickle_error("ccollections\nOrderedDict\n)\x81."), "opcode NEWOBJ (0x81) is not allowed"));
  CHECK(contains(files.pickle_error("(ccollections\nOrderedDict\no."), "opcode OBJ (0x6F) is not allowed"));
  CHECK(contains(files.pickle_error("\x82\x01."), "opcode EXT1 (0x82) is not allowed"));
  CHECK(contains(files.pickle_error("P0\n."), "opcode PERSID (0x50) is not allowed"));
  CHECK(contains(files.pickle_error("S'x'\n."), "opcode STRING (0x53) is not allowed"));
  CHECK(contains(files.pickle_error("\xff."), "unknown or unsupported opcode 0xFF"));
  // REDUCE on anything but the two rebuild functions and OrderedDict().
  CHECK(files.pickle_error("\x80\x02" "ctorch\nFloatStorage\n)R.") ==
        "23: REDUCE: global 'torch.FloatStorage' cannot be called (it is only a storage type for persistent ids)");
  CHECK(contains(files.pickle_error(str("os.system") + ")R."), "REDUCE: a str cannot be called"));
  CHECK(contains(files.pickle_error("ccollections\nOrderedDict\n]K\x01K\x02\x86" "a\x85R."),
                 "collections.OrderedDict may only be called with no arguments"));
  CHECK(contains(files.pickle_error("ccollections\nOrderedDict\nK\x01R."), "arguments of collections.OrderedDict must be a tuple"));
  CHECK(contains(files.pickle_error("](b."), "stack underflow"));
  CHECK(contains(files.pickle_error("]}b."), "BUILD of a list with a dict is not allowed"));
  CHECK(contains(files.pickle_error("}K\x01" "b."), "BUILD of a dict with a int is not allowed"));
  // A persistent id must name an allowed storage type.
  CHECK(contains(files.pickle_error("(" + str("storage") + str("x") + str("0") + str("cpu") + "K\x01tQ."),
                 "BINPERSID: the storage type must be torch.FloatStorage, torch.HalfStorage or torch.BFloat16Storage, got a str"));
  CHECK(contains(files.pickle_error("(" + str("module") + "tQ."), "BINPERSID: a persistent id must be"));
}

TEST_CASE("torch_bin: malformed pickles are ParseErrors with the byte offset") {
  Files files;
  CHECK(files.pickle_error("K\x01.") == "2: the pickle holds a int, not a state dict (a dict of tensors)");
  CHECK(files.pickle_error("}") == "1: the pickle ends without STOP");
  CHECK(files.pickle_error("}.junk") == "1: 4 bytes after STOP");
  CHECK(files.pickle_error(".") == "0: stack underflow");
  CHECK(files.pickle_error("}}.") == "2: STOP leaves 1 more values on the stack");
  CHECK(files.pickle_error("(}.") == "2: STOP inside an open MARK");
  CHECK(files.pickle_error("\x80\x06}.") == "0: pickle protocol 6 is not supported (2 to 5)");
  CHECK(files.pickle_error("\x8a\x09" + std::string(9, '\0') + ".") == "0: integer of 9 bytes (at most 8 are supported)");
  CHECK(files.pickle_error("h\x05.") == "0: memo index 5 was never stored");
  CHECK(files.pickle_error("X\xff\xff\xff\x7f") == "0: string of 2147483647 bytes is longer than the limit (1048576)");
  CHECK(files.pickle_error("X\x05\x00\x00\x00"s + "ab") == "0: truncated: needs 5 more bytes, 2 left");
  // Found by fuzz_torch_bin: a tensor name that is not UTF-8 (Python's pickle refuses it;
  // it cannot be a JSON / safetensors name either). corpus/fuzz_torch_bin/regress_name_not_utf8
  CHECK(files.pickle_error("X\x03\x00\x00\x00"s + "a\x99" "b.") == "0: string is not valid UTF-8 (byte 1 of 3)");
  CHECK(files.pickle_error("U\x02\xed\xa0.") == "0: string is not valid UTF-8 (byte 0 of 2)");
  CHECK(files.pickle_error("\x8c\x02\xc3\xa9.") == "4: the pickle holds a str, not a state dict (a dict of tensors)");
  CHECK(files.pickle_error("cos") == "0: GLOBAL: no newline within 256 bytes");
  CHECK(files.pickle_error("T\xff\xff\xff\xff.") == "0: BINSTRING with a negative length");
  CHECK(files.pickle_error("1.") == "0: no MARK to pop to");
  CHECK(files.pickle_error("(K\x01K\x02u.") == "5: stack underflow");
  CHECK(files.pickle_error("}(K\x01u.") == "4: SETITEMS with an odd number of items");
  CHECK(files.pickle_error("K\x01(K\x01K\x02u.") == "7: SETITEM(S) on a int");
  CHECK(files.pickle_error("}K\x01" "a.") == "3: APPEND(S) on a dict");
  CHECK(files.pickle_error("(K\x01" "d.") == "3: DICT with an odd number of items");
  CHECK(files.pickle_error("}(" + str("a") + "K\x01u.") == "11: state dict entry 'a' is a int, not a tensor");
  CHECK(files.pickle_error("}(K\x01K\x02u.") == "7: state dict key 0 is a int, not a str");
  const std::string t = tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {1}, {1});
  CHECK(contains(files.pickle_error("}(" + str("a") + t + str("a") + t + "u."), "state dict key 'a' appears twice"));
  // Bad _rebuild_tensor_v2 arguments.
  const std::string rebuild = "ctorch._utils\n_rebuild_tensor_v2\n";
  const std::string pid = tb::storage("FloatStorage", "0", 4);
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "tR."), "_rebuild_tensor_v2 takes (storage, storage_offset"));
  CHECK(contains(files.pickle_error(rebuild + "(K\x01K\x00)))\x89}tR."s), "_rebuild_tensor_v2: the storage is a int"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "J\xff\xff\xff\xff)))\x89}tR."),
                 "storage_offset must be a non-negative int"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00"s + tb::tuple({-1}) + tb::tuple({1}) + "\x89}tR."),
                 "size must hold non-negative ints"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00"s + tb::tuple({1}) + ")\x89}tR."),
                 "size has 1 dimensions but stride 0"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00"s + "]" + ")\x89}tR."), "size must be a tuple, got a list"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00))K\x00}tR."s), "requires_grad must be a bool"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00))\x89}(K\x01K\x01utR."s),
                 "backward_hooks must be an empty dict, got a dict with items"));
  CHECK(contains(files.pickle_error(rebuild + "(" + pid + "K\x00))\x89})tR."s), "metadata must be an empty dict, got a tuple"));
  CHECK(contains(files.pickle_error("ctorch._utils\n_rebuild_parameter\n(K\x01\x89}tR."),
                 "_rebuild_parameter takes (tensor, requires_grad, backward_hooks)"));
}

TEST_CASE("torch_bin: every truncation of a valid archive or pickle is a ParseError") {
  Files files;
  const std::string pickle = good_pickle();
  for (std::size_t n = 0; n < pickle.size(); ++n) {
    CAPTURE(n);
    CHECK(contains(files.error(tb::archive(pickle.substr(0, n), good_records())), files.path() + ": "));
  }
  const std::string whole = tb::archive(pickle, good_records());
  for (std::size_t n = 0; n < whole.size(); ++n) {
    CAPTURE(n);
    CHECK(contains(files.error(whole.substr(0, n)), files.path() + ": "));
  }
}

TEST_CASE("torch_bin: tensors must fit their storage records") {
  Files files;
  auto one = [&](const std::string& tensor, std::vector<std::pair<std::string, std::string>> recs = {}) {
    if (recs.empty()) recs = good_records();
    return files.error(tb::archive(tb::state_dict({{"w", tensor}}), recs));
  };
  const std::string p = files.path();
  CHECK(one(tb::tensor(tb::storage("FloatStorage", "0", 4), 3, {2}, {1})) ==
        p + ": tensor \"w\": storage offset 3 + 2 elements is outside its storage \"0\" (4 elements)");
  CHECK(one(tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {2, 2}, {1, 2})) ==
        p + ": tensor \"w\": size [2, 2] with stride [1, 2] is not a contiguous view of its storage (a transposed or "
            "expanded tensor); save it with .contiguous()");
  CHECK(contains(one(tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {4, 2}, {0, 1})), "is not a contiguous view"));
  CHECK(one(tb::tensor(tb::storage("FloatStorage", "0", 5), 0, {2}, {1})) ==
        p + ": tensor \"w\": storage record 'archive/data/0' holds 16 bytes, but 5 elements of F32 need 20");
  CHECK(one(tb::tensor(tb::storage("FloatStorage", "9", 4), 0, {2}, {1})) ==
        p + ": tensor \"w\": its storage record 'archive/data/9' is not in the zip archive");
  CHECK(contains(one(tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {2147483647, 2147483647, 2147483647},
                                {1, 1, 1})),
                 "element count overflows"));
  // An empty tensor at the end of its storage is fine; one past it is not.
  CHECK(files.open(tb::archive(tb::state_dict({{"w", tb::tensor(tb::storage("FloatStorage", "0", 4), 4, {0, 3}, {3, 1})}}),
                               good_records()))
            .tensors()[0]
            .nbytes == 0);
  CHECK(contains(one(tb::tensor(tb::storage("FloatStorage", "0", 4), 5, {0}, {1})), "outside its storage"));
  // One storage read as two dtypes.
  CHECK(files.error(tb::archive(tb::state_dict({{"a", tb::tensor(tb::storage("FloatStorage", "0", 4), 0, {1}, {1})},
                                                {"b", tb::tensor(tb::storage("HalfStorage", "0", 8), 0, {1}, {1})}}),
                                good_records())) ==
        p + ": tensor \"b\": storage \"0\" is F16 of 8 elements here but F32 of 4 elements for an earlier tensor");
}

TEST_CASE("torch_bin: archives that are not torch.save zips") {
  Files files;
  const std::string p = files.path();
  CHECK(files.error("ab") == p + ": file is 2 bytes, too short for a torch.save archive");
  CHECK(files.error("hello world") == p + ": not a zip archive (torch.save's format since torch 1.6)");
  CHECK(contains(files.error("\x80\x02\x8a\x0a" + std::string(20, 'x')), p + ": this is the legacy torch.save format"));
  std::string tar(1024, '\0');
  tar.replace(257, 5, "ustar");
  CHECK(contains(files.error(tar), p + ": this is the tar torch.save format"));
  CHECK(files.error("PK\x03\x04" + std::string(40, 'x')) ==
        p + ": zip: no end-of-central-directory record (not a zip archive, or truncated)");
  CHECK(files.error(tb::make_zip({})) == p + ": the zip archive is empty (no data.pkl)");
  CHECK(files.error(tb::make_zip({{"data.pkl", "}."}})) ==
        p + ": zip entry 'data.pkl' is not inside an archive folder (torch.save writes <archive>/data.pkl)");
  CHECK(files.error(tb::make_zip({{"archive/version", "3\n"}})) == p + ": no 'archive/data.pkl' in the zip archive");
  CHECK(files.error(tb::make_zip({{"archive/data.pkl", "}."}}, 8)) ==
        p + ": zip entry 'archive/data.pkl' is compressed; torch.save stores entries uncompressed");
  CHECK(files.error(tb::make_zip({{"archive/data.pkl", "}."}, {"archive/byteorder", "big"}})) ==
        p + ": byteorder is 'big'; only little-endian checkpoints are supported");
  CHECK(files.error(tb::make_zip({{"archive/data.pkl", "}."}, {"archive/data.pkl", "}."}})) ==
        p + ": zip: entry 'archive/data.pkl' appears twice");
  // An empty state dict with a little-endian byteorder is fine.
  CHECK(files.open(tb::make_zip({{"a/data.pkl", "}."}, {"a/byteorder", "little"}})).tensors().empty());

  // Corrupted records of a valid archive.
  const std::string good = tb::archive(good_pickle(), good_records());
  const std::size_t eocd = good.size() - 22;
  std::string bad = good;
  bad.replace(eocd + 16, 4, tb::le(good.size(), 4));  // central directory offset past the end
  CHECK(contains(files.error(bad), p + ": zip: the central directory at offset "));
  bad = good;
  bad.replace(0, 4, "PK\x01\x02");  // the first local header's signature
  CHECK(files.error(bad) == p + ": not a zip archive (torch.save's format since torch 1.6)");
  bad = good;
  bad[30] = 'X';  // the first local header's name
  CHECK(files.error(bad) == p + ": zip: entry 'archive/data.pkl': the local header names a different file");
  bad = good;
  bad.replace(eocd + 10, 2, tb::le(0xFFFF, 2));
  bad.replace(eocd + 8, 2, tb::le(0xFFFF, 2));
  CHECK(files.error(bad) == p + ": zip: the end record asks for ZIP64 values but there is no ZIP64 locator");
  bad = good;
  bad.replace(eocd + 8, 2, tb::le(1000, 2));
  bad.replace(eocd + 10, 2, tb::le(1000, 2));
  CHECK(contains(files.error(bad), p + ": zip: 1000 entries cannot fit a central directory of "));
  bad = good;
  bad.replace(eocd + 4, 2, tb::le(1, 2));
  CHECK(files.error(bad) == p + ": zip: multi-disk archives are not supported");
  bad = good;
  bad.replace(18, 4, tb::le(0, 4));  // the local header's sizes are not used (torch writes 0 there)
  bad.replace(22, 4, tb::le(0, 4));
  CHECK(files.open(bad).tensors().size() == 2);
}

TEST_CASE("torch_bin: limits") {
  Files files;
  const std::string good = tb::archive(good_pickle(), good_records());
  TorchBinLimits l;
  l.max_tensors = 1;
  CHECK(contains(files.error(good, l), "the state dict has 2 entries (limit 1)"));
  l = {};
  l.max_ndim = 1;
  CHECK(contains(files.error(good, l), "_rebuild_tensor_v2: size has 2 dimensions (limit 1)"));
  l = {};
  l.max_zip_entries = 3;
  CHECK(files.error(good, l) == files.path() + ": zip: 4 entries (limit 3)");
  l = {};
  l.max_pickle_bytes = 10;
  CHECK(contains(files.error(good, l), "'archive/data.pkl' is "));
  l = {};
  l.max_objects = 5;
  CHECK(contains(files.error(good, l), "more than 5 objects"));
  l = {};
  l.max_memo = 4;
  CHECK(files.pickle_error("}q\x04.", l) == "1: memo index 4 is not below the limit (4)");
  l = {};
  l.max_stack = 3;
  CHECK(files.pickle_error("((((.", l) == "3: stack deeper than 3");
  CHECK(files.pickle_error("}}}}.", l) == "3: stack deeper than 3");
  l = {};
  l.max_string_bytes = 3;
  CHECK(files.pickle_error(str("abcd") + ".", l) == "0: string of 4 bytes is longer than the limit (3)");
  l = {};
  l.max_stack = 0;
  CHECK(error_of<qstar::InvalidArgument>([&] { (void)files.open(good, l); }) ==
        "TorchBinLimits.max_stack: must be positive");
}

TEST_CASE("torch_bin: WeightStore reads pytorch_model.bin and its sharded index") {
  TempDir dir;
  write_bytes(dir.file("pytorch_model.bin"), tb::archive(good_pickle(), good_records()));
  {
    const WeightStore ws = WeightStore::open_dir(dir.str());
    CHECK(ws.source() == "pytorch_model.bin");
    CHECK(ws.names() == std::vector<std::string>{"a", "b"});
    CHECK(ws.files().empty());
    CHECK(ws.bin_files().size() == 1);
    CHECK(ws.metadata().empty());
    CHECK(ws.file_of("b") == dir.file("pytorch_model.bin"));
    CHECK(tensor_to_float(ws.at("a")) == std::vector<float>{-2.0f, 3.0f});
    CHECK(error_of<qstar::ParseError>([&] { (void)ws.at("c"); }) ==
          dir.str() + ": tensor \"c\" is missing (not in pytorch_model.bin)");
  }
  fs::remove(dir.file("pytorch_model.bin"));
  CHECK(error_of<qstar::IoError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        dir.str() + ": no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                    "pytorch_model.bin.index.json in the directory");

  const std::string s1 = "pytorch_model-00001-of-00002.bin", s2 = "pytorch_model-00002-of-00002.bin";
  write_bytes(dir.file(s1), tb::archive(good_pickle(), good_records()));
  write_bytes(dir.file(s2), tb::archive(tb::state_dict({{"c", tb::tensor(tb::storage("HalfStorage", "0", 2), 1, {1}, {1})}}),
                                        {{"0", std::string("\x00\x3c\x00\xc0", 4)}}));  // f16 1.0, -2.0
  const std::string index = dir.file("pytorch_model.bin.index.json");
  write_bytes(index, R"({"metadata":{"total_size":14},"weight_map":{"a":")" + s1 + R"(","b":")" + s1 +
                         R"(","c":")" + s2 + R"("}})");
  {
    const WeightStore ws = WeightStore::open_dir(dir.str());
    CHECK(ws.source() == "pytorch_model.bin.index.json");
    CHECK(ws.bin_files().size() == 2);
    CHECK(ws.names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(ws.metadata().at("total_size") == "14");
    CHECK(tensor_to_float(ws.at("c")) == std::vector<float>{-2.0f});
    CHECK(tensor_to_float(ws.at("b")) == std::vector<float>{1.0f, -2.0f});
    CHECK(ws.file_of("c") == dir.file(s2));
  }
  write_bytes(index, R"({"weight_map":{"c":")" + s1 + R"("}})");
  CHECK(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }) ==
        index + ": tensor \"c\" is mapped to shard \"" + s1 + "\", which does not contain it");
  write_bytes(index, R"({"weight_map":{"c":"pytorch_model-00003-of-00003.bin"}})");
  CHECK(contains(error_of<qstar::IoError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 index + ": tensor \"c\": shard \"pytorch_model-00003-of-00003.bin\": "));
  write_bytes(index, R"({"weight_map":{"c":"../x.bin"}})");
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 "is not a file name inside the model folder"));
  // A hostile shard is the shard's own error.
  write_bytes(dir.file(s2), tb::archive("\x80\x02" "cposix\nsystem\n.", {}));
  write_bytes(index, R"({"weight_map":{"c":")" + s2 + R"("}})");
  CHECK(contains(error_of<qstar::ParseError>([&] { (void)WeightStore::open_dir(dir.str()); }),
                 dir.file(s2) + ": archive/data.pkl at byte 2: global 'posix.system' is not allowed"));
  // pytorch_model.bin comes before the .bin index, safetensors before both.
  write_bytes(dir.file("pytorch_model.bin"), tb::archive(good_pickle(), good_records()));
  CHECK(WeightStore::open_dir(dir.str()).source() == "pytorch_model.bin");
  const std::vector<float> one = {1.0f};
  std::vector<std::byte> raw(4);
  std::memcpy(raw.data(), one.data(), 4);
  const std::vector<TensorToWrite> ts = {{"z", DType::F32, {1}, raw}};
  write_safetensors(dir.file("model.safetensors"), ts);
  CHECK(WeightStore::open_dir(dir.str()).source() == "model.safetensors");
}

TEST_CASE("torch_bin: ZIP64 records past 4 GiB (a sparse 4 GiB archive)") {
  // A storage record of 2^32 + 16 bytes (a hole on disk, 16 bytes written at its end), then a
  // record that starts past 4 GiB: every size and offset needs the ZIP64 fields.
  TempDir dir;
  const std::string path = dir.file("big.bin");
  const std::uint64_t big = (std::uint64_t{1} << 32) + 16;
  const auto big_numel = static_cast<std::int64_t>(big / 4);
  const std::string pickle =
      tb::state_dict({{"tail", tb::tensor(tb::storage("FloatStorage", "0", big_numel), big_numel - 4, {4}, {1})},
                      {"after", tb::tensor(tb::storage("FloatStorage", "1", 2), 0, {2}, {1})}});
  const std::string tail = floats({1.0f, -2.0f, 0.5f, 8.0f}), after = floats({3.0f, -4.0f});
  struct Entry {
    std::string name;
    std::uint64_t size;
    std::string bytes;  // the last bytes of the entry (the rest is a hole)
  };
  const std::vector<Entry> entries = {{"archive/data.pkl", pickle.size(), pickle},
                                      {"archive/data/0", big, tail},
                                      {"archive/data/1", 8, after},
                                      {"archive/version", 2, "3\n"}};
  std::string central;
  {
    std::ofstream out(path, std::ios::binary);
    for (const Entry& e : entries) {
      const auto offset = static_cast<std::uint64_t>(out.tellp());
      const std::string extra = tb::le(1, 2) + tb::le(16, 2) + tb::le(e.size, 8) + tb::le(e.size, 8);
      out << tb::le(0x04034b50, 4) << tb::le(45, 2) << tb::le(0, 2) << tb::le(0, 2) << tb::le(0, 4) << tb::le(0, 4)
          << tb::le(0xFFFFFFFF, 4) << tb::le(0xFFFFFFFF, 4) << tb::le(e.name.size(), 2) << tb::le(extra.size(), 2)
          << e.name << extra;
      out.seekp(static_cast<std::streamoff>(e.size - e.bytes.size()), std::ios::cur);
      out << e.bytes;
      const std::string cextra = tb::le(1, 2) + tb::le(24, 2) + tb::le(e.size, 8) + tb::le(e.size, 8) + tb::le(offset, 8);
      central += tb::le(0x02014b50, 4) + tb::le(45, 2) + tb::le(45, 2) + tb::le(0, 2) + tb::le(0, 2) + tb::le(0, 4) +
                 tb::le(0, 4) + tb::le(0xFFFFFFFF, 4) + tb::le(0xFFFFFFFF, 4) + tb::le(e.name.size(), 2) +
                 tb::le(cextra.size(), 2) + tb::le(0, 2) + tb::le(0, 2) + tb::le(0, 2) + tb::le(0, 4) +
                 tb::le(0xFFFFFFFF, 4) + e.name + cextra;
    }
    const auto cd = static_cast<std::uint64_t>(out.tellp());
    out << central;
    const auto e64 = static_cast<std::uint64_t>(out.tellp());
    out << tb::le(0x06064b50, 4) << tb::le(44, 8) << tb::le(45, 2) << tb::le(45, 2) << tb::le(0, 4) << tb::le(0, 4)
        << tb::le(entries.size(), 8) << tb::le(entries.size(), 8) << tb::le(central.size(), 8) << tb::le(cd, 8);
    out << tb::le(0x07064b50, 4) << tb::le(0, 4) << tb::le(e64, 8) << tb::le(1, 4);
    out << tb::le(0x06054b50, 4) << tb::le(0, 2) << tb::le(0, 2) << tb::le(0xFFFF, 2) << tb::le(0xFFFF, 2)
        << tb::le(0xFFFFFFFF, 4) << tb::le(0xFFFFFFFF, 4) << tb::le(0, 2);
    REQUIRE(static_cast<bool>(out));
  }
  REQUIRE(fs::file_size(path) > big);
  const TorchBinFile f = TorchBinFile::open(path);
  REQUIRE(f.tensors().size() == 2);
  CHECK(tensor_to_float(*f.find("tail")) == std::vector<float>{1.0f, -2.0f, 0.5f, 8.0f});
  CHECK(f.find("tail")->offset == big - 16);
  CHECK(tensor_to_float(*f.find("after")) == std::vector<float>{3.0f, -4.0f});
  CHECK(static_cast<std::uint64_t>(f.find("after")->data - f.bytes().data()) > big);
}
