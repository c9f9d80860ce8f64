// Hand-written torch.save archives for the tests of the .bin reader (tests/hf/test_torch_bin.cpp)
// and its fuzz target's seeds: a stored-zip writer and pickle opcode builders, written from
// PKWARE's APPNOTE and CPython's pickle opcode table, not from the reader's code.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qstar_test::torch_bin {

inline std::string le(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

/// A zip archive of stored entries (CRCs left 0: the reader does not check them).
/// `method` is written into every entry (0 = stored).
inline std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries, int method = 0) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    const std::uint64_t offset = out.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(static_cast<std::uint64_t>(method), 2) + le(0, 4) +
           le(0, 4) + le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    central += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(static_cast<std::uint64_t>(method), 2) +
               le(0, 4) + le(0, 4) + le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) +
               le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) + name;
  }
  const std::uint64_t cd = out.size();
  out += central;
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
         le(central.size(), 4) + le(cd, 4) + le(0, 2);
  return out;
}

// ---- pickle opcodes (protocol 2) ----

inline std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }  // BINUNICODE
inline std::string i32(std::int64_t v) { return "J" + le(static_cast<std::uint64_t>(v), 4); }  // BININT
inline std::string tuple(const std::vector<std::int64_t>& v) {
  std::string out = "(";
  for (const std::int64_t x : v) out += i32(x);
  return out + "t";
}
inline std::string ordered_dict_call() { return "ccollections\nOrderedDict\n)R"; }

/// BINPERSID of ('storage', torch.<type>, key, 'cpu', numel).
inline std::string storage(const std::string& type, const std::string& key, std::int64_t numel) {
  return "(" + str("storage") + "ctorch\n" + type + "\n" + str(key) + str("cpu") + i32(numel) + "tQ";
}

/// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
inline std::string tensor(const std::string& storage_pid, std::int64_t offset, const std::vector<std::int64_t>& size,
                          const std::vector<std::int64_t>& stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n(" + storage_pid + i32(offset) + tuple(size) + tuple(stride) + "\x89" +
         ordered_dict_call() + "tR";
}

/// A protocol-2 pickle of {name: tensor_pickle, ...} (a plain dict, one SETITEMS).
inline std::string state_dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string out = "\x80\x02}(";
  for (const auto& [name, t] : items) out += str(name) + t;
  return out + "u.";
}

/// An archive "archive/data.pkl" + `records` as "archive/data/<key>" + "archive/version".
inline std::string archive(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<std::pair<std::string, std::string>> entries = {{"archive/data.pkl", pickle}};
  for (const auto& [key, bytes] : records) entries.emplace_back("archive/data/" + key, bytes);
  entries.emplace_back("archive/version", "3\n");
  return make_zip(entries);
}

}  // namespace qstar_test::torch_bin
