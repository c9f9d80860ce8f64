// The restricted state-dict unpickler (src/hf/pickle.hpp). Opcode semantics follow CPython's
// Lib/pickle.py (_Unpickler); only what torch.save writes for a state dict is accepted.
#include "hf/pickle.hpp"
#include "hf/zip.hpp"
#include "qstar/core/json.hpp"

#include <bit>
#include <cstring>
#include <set>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "qstar/error.hpp"

namespace qstar::hf::detail {

void PickleLimits::validate() const {
  auto positive = [](std::size_t v, const char* field) {
    if (v == 0) throw InvalidArgument(fmt::format("PickleLimits.{}: must be positive", field));
  };
  positive(max_stack, "max_stack");
  positive(max_memo, "max_memo");
  positive(max_objects, "max_objects");
  positive(max_string_bytes, "max_string_bytes");
  positive(max_tensors, "max_tensors");
  positive(max_ndim, "max_ndim");
}

namespace {

/// Longest "module\nname\n" line of a GLOBAL opcode.
constexpr std::size_t kMaxGlobalLine = 256;

enum class Kind : std::uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

/// The globals a state dict needs; nothing else can be named.
enum class Global : std::uint8_t {
  OrderedDict,
  RebuildTensorV2,
  RebuildParameter,
  FloatStorage,
  HalfStorage,
  BFloat16Storage
};

struct AllowedGlobal {
  std::string_view module, name;
  Global g;
};
constexpr AllowedGlobal kAllowed[] = {
    {"collections", "OrderedDict", Global::OrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Global::RebuildTensorV2},
    {"torch._utils", "_rebuild_parameter", Global::RebuildParameter},
    {"torch", "FloatStorage", Global::FloatStorage},
    {"torch", "HalfStorage", Global::HalfStorage},
    {"torch", "BFloat16Storage", Global::BFloat16Storage},
};

std::string global_name(Global g) {
  for (const auto& a : kAllowed)
    if (a.g == g) return fmt::format("{}.{}", a.module, a.name);
  return "?";
}

bool storage_dtype(Global g, DType& out) {
  switch (g) {
    case Global::FloatStorage: out = DType::F32; return true;
    case Global::HalfStorage: out = DType::F16; return true;
    case Global::BFloat16Storage: out = DType::BF16; return true;
    default: return false;
  }
}

std::string shown(std::string_view s) { return printable(s); }

/// Names of the opcodes the reader refuses, for the error message.
const char* refused_opcode_name(std::uint8_t op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'p': return "PUT";
    case 'g': return "GET";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

using Ref = std::uint32_t;

struct Obj {
  Kind kind = Kind::None;
  bool b = false;        // Bool
  Global g{};            // Global
  DType dtype{};         // Storage
  std::int64_t i = 0;    // Int; Storage: numel; Tensor: index into the tensor table
  double f = 0;          // Float
  std::string s;         // Str; Storage: key
  std::vector<Ref> items;  // Tuple, List; Dict: key, value, key, value, ...
};

class Unpickler {
 public:
  Unpickler(std::string_view in, const std::string& where, const PickleLimits& lim)
      : in_(in), where_(where), lim_(lim) {}

  std::vector<PickledTensor> run();

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw ParseError(fmt::format("{} at byte {}: {}", where_, op_pos_, what));
  }

  // ---- input ----
  std::string_view take(std::uint64_t n) {
    if (n > in_.size() - pos_) fail(fmt::format("truncated: needs {} more bytes, {} left", n, in_.size() - pos_));
    const std::string_view out = in_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return out;
  }
  std::uint64_t le(int n) {
    const std::string_view b = take(static_cast<std::uint64_t>(n));
    std::uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(k)]);
    return v;
  }
  std::string_view line() {
    const std::size_t len = in_.substr(pos_, kMaxGlobalLine + 1).find('\n');  // a bounded search
    if (len == std::string_view::npos) fail(fmt::format("GLOBAL: no newline within {} bytes", kMaxGlobalLine));
    const std::string_view out = in_.substr(pos_, len);
    pos_ += len + 1;
    return out;
  }
  /// A string's bytes, which must be UTF-8 as Python decodes them (torch.load reads the
  /// Python 2 strings of old pickles as UTF-8 too); tensor names must also be JSON strings.
  std::string_view string_of(std::uint64_t n) {
    if (n > lim_.max_string_bytes)
      fail(fmt::format("string of {} bytes is longer than the limit ({})", n, lim_.max_string_bytes));
    const std::string_view s = take(n);
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    for (std::size_t k = 0; k < s.size();) {
      const std::size_t len = json::detail::utf8_length(p + k, p + s.size());
      if (len == 0) fail(fmt::format("string is not valid UTF-8 (byte {} of {})", k, s.size()));
      k += len;
    }
    return s;
  }

  // ---- objects and the stack ----
  Ref make(Obj o) {
    if (objs_.size() >= lim_.max_objects) fail(fmt::format("more than {} objects", lim_.max_objects));
    objs_.push_back(std::move(o));
    return static_cast<Ref>(objs_.size() - 1);
  }
  Ref make_kind(Kind k) {
    Obj o;
    o.kind = k;
    return make(std::move(o));
  }
  void push(Ref r) {
    if (stack_.size() + marks_.size() >= lim_.max_stack) fail(fmt::format("stack deeper than {}", lim_.max_stack));
    stack_.push_back(r);
  }
  Ref pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Ref make_seq(Kind k, std::vector<Ref> items) {
    Obj o;
    o.kind = k;
    o.items = std::move(items);
    return make(std::move(o));
  }
  void memo_put(std::uint64_t idx) {
    if (idx >= lim_.max_memo) fail(fmt::format("memo index {} is not below the limit ({})", idx, lim_.max_memo));
    memo_[idx] = top();
  }
  void memo_get(std::uint64_t idx) {
    const auto it = memo_.find(idx);
    if (it == memo_.end()) fail(fmt::format("memo index {} was never stored", idx));
    push(it->second);
  }
  const Obj& at(Ref r) const { return objs_[r]; }

  // ---- opcodes ----
  bool step();
  void op_global(std::string_view module, std::string_view name);
  void op_setitems(const std::vector<Ref>& kv);
  void op_appends(const std::vector<Ref>& xs);
  void op_persid();
  void op_reduce();
  void op_build();
  Ref rebuild_tensor(const std::vector<Ref>& args);
  void check_empty_dict(Ref r, const char* what);
  std::vector<std::int64_t> int_tuple(Ref r, const char* what);
  std::vector<PickledTensor> finish(Ref result);

  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  const std::string& where_;
  const PickleLimits& lim_;
  std::vector<Obj> objs_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<std::uint64_t, Ref> memo_;
  std::vector<PickledTensor> table_;  // tensors built so far (Obj::i indexes it)
};

void Unpickler::op_global(std::string_view module, std::string_view name) {
  for (const auto& a : kAllowed) {
    if (a.module == module && a.name == name) {
      Obj o;
      o.kind = Kind::Global;
      o.g = a.g;
      push(make(std::move(o)));
      return;
    }
  }
  fail(fmt::format(
      "global '{}.{}' is not allowed (a state dict may only use collections.OrderedDict, "
      "torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and torch.FloatStorage, "
      "torch.HalfStorage, torch.BFloat16Storage)",
      shown(module), shown(name)));
}

void Unpickler::op_setitems(const std::vector<Ref>& kv) {
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  const Ref d = top();
  if (at(d).kind != Kind::Dict) fail(fmt::format("SETITEM(S) on a {}", kind_name(at(d).kind)));
  auto& items = objs_[d].items;
  items.insert(items.end(), kv.begin(), kv.end());
}

void Unpickler::op_appends(const std::vector<Ref>& xs) {
  const Ref l = top();
  if (at(l).kind != Kind::List) fail(fmt::format("APPEND(S) on a {}", kind_name(at(l).kind)));
  auto& items = objs_[l].items;
  items.insert(items.end(), xs.begin(), xs.end());
}

void Unpickler::op_persid() {
  const Ref pid = pop();
  const Obj& t = at(pid);
  const auto& it = t.items;
  if (t.kind != Kind::Tuple || it.size() != 5 || at(it[0]).kind != Kind::Str || at(it[0]).s != "storage")
    fail("BINPERSID: a persistent id must be ('storage', storage type, key, location, numel)");
  DType dt{};
  if (at(it[1]).kind != Kind::Global || !storage_dtype(at(it[1]).g, dt))
    fail(fmt::format("BINPERSID: the storage type must be torch.FloatStorage, torch.HalfStorage or "
                     "torch.BFloat16Storage, got a {}{}",
                     kind_name(at(it[1]).kind),
                     at(it[1]).kind == Kind::Global ? " " + global_name(at(it[1]).g) : std::string()));
  if (at(it[2]).kind != Kind::Str || at(it[2]).s.empty()) fail("BINPERSID: the storage key must be a non-empty str");
  if (at(it[3]).kind != Kind::Str) fail("BINPERSID: the storage location must be a str");
  if (at(it[4]).kind != Kind::Int || at(it[4]).i < 0)
    fail("BINPERSID: the storage size must be a non-negative int");
  Obj s;
  s.kind = Kind::Storage;
  s.dtype = dt;
  s.s = at(it[2]).s;
  s.i = at(it[4]).i;
  push(make(std::move(s)));
}

void Unpickler::check_empty_dict(Ref r, const char* what) {
  if (at(r).kind != Kind::Dict || !at(r).items.empty())
    fail(fmt::format("_rebuild_tensor_v2: {} must be an empty dict, got a {}{}", what, kind_name(at(r).kind),
                     at(r).kind == Kind::Dict ? " with items" : ""));
}

std::vector<std::int64_t> Unpickler::int_tuple(Ref r, const char* what) {
  if (at(r).kind != Kind::Tuple)
    fail(fmt::format("_rebuild_tensor_v2: {} must be a tuple, got a {}", what, kind_name(at(r).kind)));
  if (at(r).items.size() > lim_.max_ndim)
    fail(fmt::format("_rebuild_tensor_v2: {} has {} dimensions (limit {})", what, at(r).items.size(), lim_.max_ndim));
  std::vector<std::int64_t> out;
  for (const Ref x : at(r).items) {
    if (at(x).kind != Kind::Int || at(x).i < 0)
      fail(fmt::format("_rebuild_tensor_v2: {} must hold non-negative ints", what));
    out.push_back(at(x).i);
  }
  return out;
}

Ref Unpickler::rebuild_tensor(const std::vector<Ref>& a) {
  if (a.size() != 6 && a.size() != 7)
    fail(fmt::format("_rebuild_tensor_v2 takes (storage, storage_offset, size, stride, requires_grad, "
                     "backward_hooks[, metadata]), got {} arguments",
                     a.size()));
  const Obj& st = at(a[0]);
  if (st.kind != Kind::Storage) fail(fmt::format("_rebuild_tensor_v2: the storage is a {}", kind_name(st.kind)));
  if (at(a[1]).kind != Kind::Int || at(a[1]).i < 0)
    fail("_rebuild_tensor_v2: storage_offset must be a non-negative int");
  PickledTensor t;
  t.dtype = st.dtype;
  t.storage_key = st.s;
  t.storage_numel = static_cast<std::uint64_t>(st.i);
  t.storage_offset = at(a[1]).i;
  t.size = int_tuple(a[2], "size");
  t.stride = int_tuple(a[3], "stride");
  if (t.size.size() != t.stride.size())
    fail(fmt::format("_rebuild_tensor_v2: size has {} dimensions but stride {}", t.size.size(), t.stride.size()));
  if (at(a[4]).kind != Kind::Bool) fail("_rebuild_tensor_v2: requires_grad must be a bool");
  check_empty_dict(a[5], "backward_hooks");
  if (a.size() == 7) check_empty_dict(a[6], "metadata");
  table_.push_back(std::move(t));
  Obj o;
  o.kind = Kind::Tensor;
  o.i = static_cast<std::int64_t>(table_.size() - 1);
  return make(std::move(o));
}

void Unpickler::op_reduce() {
  const Ref args_ref = pop();
  const Ref fn = pop();
  if (at(fn).kind != Kind::Global) fail(fmt::format("REDUCE: a {} cannot be called", kind_name(at(fn).kind)));
  if (at(args_ref).kind != Kind::Tuple)
    fail(fmt::format("REDUCE: the arguments of {} must be a tuple", global_name(at(fn).g)));
  const std::vector<Ref> args = at(args_ref).items;  // a copy: make() may move objs_
  switch (at(fn).g) {
    case Global::OrderedDict:
      if (!args.empty()) fail("REDUCE: collections.OrderedDict may only be called with no arguments");
      push(make_kind(Kind::Dict));
      return;
    case Global::RebuildTensorV2:
      push(rebuild_tensor(args));
      return;
    case Global::RebuildParameter:
      if (args.size() != 3 || at(args[0]).kind != Kind::Tensor || at(args[1]).kind != Kind::Bool)
        fail("torch._utils._rebuild_parameter takes (tensor, requires_grad, backward_hooks)");
      if (at(args[2]).kind != Kind::Dict || !at(args[2]).items.empty())
        fail("torch._utils._rebuild_parameter: backward_hooks must be an empty dict");
      push(args[0]);
      return;
    default:
      fail(fmt::format("REDUCE: global '{}' cannot be called (it is only a storage type for persistent ids)",
                       global_name(at(fn).g)));
  }
}

void Unpickler::op_build() {
  const Ref state = pop();
  const Ref target = top();
  // An OrderedDict's instance attributes (state_dict()'s `_metadata`): read, then dropped.
  if (at(target).kind != Kind::Dict || (at(state).kind != Kind::Dict && at(state).kind != Kind::None))
    fail(fmt::format("BUILD of a {} with a {} is not allowed (only a dict's attributes)", kind_name(at(target).kind),
                     kind_name(at(state).kind)));
}

bool Unpickler::step() {
  op_pos_ = pos_;
  const auto op = static_cast<std::uint8_t>(take(1)[0]);
  switch (op) {
    case 0x80: {  // PROTO
      const auto v = le(1);
      if (v > 5) fail(fmt::format("pickle protocol {} is not supported (2 to 5)", v));
      return true;
    }
    case 0x95: (void)le(8); return true;  // FRAME: the frame's length, nothing to do
    case '.': return false;               // STOP
    case '(':                             // MARK
      if (stack_.size() + marks_.size() >= lim_.max_stack) fail(fmt::format("stack deeper than {}", lim_.max_stack));
      marks_.push_back(stack_.size());
      return true;
    case '0': (void)pop(); return true;  // POP
    case '1': (void)pop_mark(); return true;  // POP_MARK
    case '2': push(top()); return true;  // DUP
    case 'N': push(make_kind(Kind::None)); return true;
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      Obj o;
      o.kind = Kind::Bool;
      o.b = op == 0x88;
      push(make(std::move(o)));
      return true;
    }
    case 'K':
    case 'M':
    case 'J':
    case 0x8a:
    case 0x8b: {  // BININT1, BININT2, BININT, LONG1, LONG4
      std::int64_t v = 0;
      if (op == 'K') v = static_cast<std::int64_t>(le(1));
      else if (op == 'M') v = static_cast<std::int64_t>(le(2));
      else if (op == 'J') v = static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4)));
      else {
        const std::uint64_t n = le(op == 0x8a ? 1 : 4);
        if (n > 8) fail(fmt::format("integer of {} bytes (at most 8 are supported)", n));
        std::uint64_t u = n == 0 ? 0 : le(static_cast<int>(n));
        if (n > 0 && n < 8 && (u >> (8 * n - 1)) != 0) u |= ~std::uint64_t{0} << (8 * n);  // sign-extend
        v = static_cast<std::int64_t>(u);
      }
      Obj o;
      o.kind = Kind::Int;
      o.i = v;
      push(make(std::move(o)));
      return true;
    }
    case 'G': {  // BINFLOAT: big-endian double
      const std::string_view b = take(8);
      std::uint64_t u = 0;
      for (const char c : b) u = (u << 8) | static_cast<unsigned char>(c);
      Obj o;
      o.kind = Kind::Float;
      o.f = std::bit_cast<double>(u);
      push(make(std::move(o)));
      return true;
    }
    case 'X':
    case 0x8c:
    case 0x8d:
    case 'T':
    case 'U': {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
      std::uint64_t n = 0;
      if (op == 'X') n = le(4);
      else if (op == 0x8d) n = le(8);
      else if (op == 'T') {
        const auto s = static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4)));
        if (s < 0) fail("BINSTRING with a negative length");
        n = static_cast<std::uint64_t>(s);
      } else n = le(1);
      Obj o;
      o.kind = Kind::Str;
      o.s = std::string(string_of(n));
      push(make(std::move(o)));
      return true;
    }
    case ')': push(make_kind(Kind::Tuple)); return true;  // EMPTY_TUPLE
    case ']': push(make_kind(Kind::List)); return true;   // EMPTY_LIST
    case '}': push(make_kind(Kind::Dict)); return true;   // EMPTY_DICT
    case 't': push(make_seq(Kind::Tuple, pop_mark())); return true;  // TUPLE
    case 'l': push(make_seq(Kind::List, pop_mark())); return true;   // LIST
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
      std::vector<Ref> items(static_cast<std::size_t>(op - 0x84));
      for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
      push(make_seq(Kind::Tuple, std::move(items)));
      return true;
    }
    case 'd': {  // DICT
      std::vector<Ref> kv = pop_mark();
      if (kv.size() % 2 != 0) fail("DICT with an odd number of items");
      push(make_seq(Kind::Dict, std::move(kv)));
      return true;
    }
    case 's': {  // SETITEM
      const Ref v = pop();
      const Ref k = pop();
      op_setitems({k, v});
      return true;
    }
    case 'u': op_setitems(pop_mark()); return true;  // SETITEMS
    case 'a': op_appends({pop()}); return true;      // APPEND
    case 'e': op_appends(pop_mark()); return true;   // APPENDS
    case 'q': memo_put(le(1)); return true;          // BINPUT
    case 'r': memo_put(le(4)); return true;          // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); return true;  // MEMOIZE
    case 'h': memo_get(le(1)); return true;          // BINGET
    case 'j': memo_get(le(4)); return true;          // LONG_BINGET
    case 'c': {                                      // GLOBAL
      const std::string_view module = line();
      const std::string_view name = line();
      op_global(module, name);
      return true;
    }
    case 0x93: {  // STACK_GLOBAL
      const Ref name = pop();
      const Ref module = pop();
      if (at(name).kind != Kind::Str || at(module).kind != Kind::Str) fail("STACK_GLOBAL needs two str");
      op_global(at(module).s, at(name).s);
      return true;
    }
    case 'Q': op_persid(); return true;  // BINPERSID
    case 'R': op_reduce(); return true;  // REDUCE
    case 'b': op_build(); return true;   // BUILD
    default:
      if (const char* name = refused_opcode_name(op))
        fail(fmt::format("opcode {} (0x{:02X}) is not allowed in a state dict", name, op));
      fail(fmt::format("unknown or unsupported opcode 0x{:02X}", op));
  }
}

std::vector<PickledTensor> Unpickler::finish(Ref result) {
  const Obj& d = at(result);
  if (d.kind != Kind::Dict)
    fail(fmt::format("the pickle holds a {}, not a state dict (a dict of tensors)", kind_name(d.kind)));
  if (d.items.size() / 2 > lim_.max_tensors)
    fail(fmt::format("the state dict has {} entries (limit {})", d.items.size() / 2, lim_.max_tensors));
  std::vector<PickledTensor> out;
  std::set<std::string_view> seen;
  for (std::size_t k = 0; k + 1 < d.items.size(); k += 2) {
    const Obj& key = at(d.items[k]);
    const Obj& val = at(d.items[k + 1]);
    if (key.kind != Kind::Str) fail(fmt::format("state dict key {} is a {}, not a str", k / 2, kind_name(key.kind)));
    if (val.kind != Kind::Tensor)
      fail(fmt::format("state dict entry '{}' is a {}, not a tensor", shown(key.s), kind_name(val.kind)));
    if (!seen.insert(key.s).second) fail(fmt::format("state dict key '{}' appears twice", shown(key.s)));
    PickledTensor t = table_[static_cast<std::size_t>(val.i)];
    t.name = key.s;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<PickledTensor> Unpickler::run() {
  while (pos_ < in_.size()) {
    if (!step()) {
      if (pos_ != in_.size()) fail(fmt::format("{} bytes after STOP", in_.size() - pos_));
      if (!marks_.empty()) fail("STOP inside an open MARK");
      const Ref result = pop();
      if (!stack_.empty()) fail(fmt::format("STOP leaves {} more values on the stack", stack_.size()));
      return finish(result);
    }
  }
  op_pos_ = pos_;
  fail("the pickle ends without STOP");
}

}  // namespace

std::vector<PickledTensor> read_state_dict_pickle(std::string_view pickle, const std::string& where,
                                                  const PickleLimits& limits) {
  limits.validate();
  Unpickler u(pickle, where, limits);
  return u.run();
}

}  // namespace qstar::hf::detail
