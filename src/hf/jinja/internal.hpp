// Private to src/hf/jinja: the chat-template interpreter's stages.
//   lexer.cpp    source -> tokens (whitespace control, trim_blocks, lstrip_blocks)
//   parser.cpp   tokens -> Node tree (statements and expressions)
//   value.cpp    Value: Python-like truthiness, equality, ordering, str()/repr(), tojson,
//                UTF-8 helpers
//   filters.cpp  filters and tests
//   methods.cpp  Python methods on str/dict/list, loop.cycle, shared string helpers
//   eval.cpp     the evaluator (scopes, loops, macros, builtins, limits; state in eval.hpp)
//   chat_template.cpp  ChatTemplate (the public API)
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/chat_template.hpp"

namespace qstar::hf::jinja {

// ---- values ------------------------------------------------------------------------------
struct Node;
struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, string keys

enum class K : std::uint8_t { Undefined, None, Bool, Int, Float, Str, List, Dict, Namespace, Func };

/// A template value. Lists and dicts are shared and never mutated (the sandbox is
/// immutable); a namespace's dict is the one mutable object.
struct Value {
  K k = K::Undefined;
  bool b = false;
  bool tuple = false;                 // List: a tuple (repr with parentheses, != a list)
  std::uint8_t view = 0;              // List: 1 dict_items, 2 dict_keys, 3 dict_values (repr only)
  std::int64_t i = 0;
  double f = 0;
  std::string s;                      // Str; Func: its name; Undefined: what was looked up
  std::shared_ptr<List> list;         // List (also tuples)
  std::shared_ptr<Dict> dict;         // Dict, Namespace
  std::shared_ptr<Value> self;        // Func: the bound receiver of a method
  const Node* macro = nullptr;        // Func: a macro

  static Value undefined(std::string what = {}) { Value v; v.s = std::move(what); return v; }
  static Value none() { Value v; v.k = K::None; return v; }
  static Value boolean(bool x) { Value v; v.k = K::Bool; v.b = x; return v; }
  static Value integer(std::int64_t x) { Value v; v.k = K::Int; v.i = x; return v; }
  static Value number(double x) { Value v; v.k = K::Float; v.f = x; return v; }
  static Value str(std::string x) { Value v; v.k = K::Str; v.s = std::move(x); return v; }
  static Value make_list(List x) { Value v; v.k = K::List; v.list = std::make_shared<List>(std::move(x)); return v; }
  static Value make_tuple(List x) { Value v = make_list(std::move(x)); v.tuple = true; return v; }
  static Value make_dict(Dict x) { Value v; v.k = K::Dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }
  static Value func(std::string name, std::shared_ptr<Value> self = nullptr) {
    Value v; v.k = K::Func; v.s = std::move(name); v.self = std::move(self); return v;
  }

  bool is_undefined() const noexcept { return k == K::Undefined; }
  bool is_str() const noexcept { return k == K::Str; }
  bool is_numeric() const noexcept { return k == K::Int || k == K::Float || k == K::Bool; }
  /// The dict member named `key`, or nullptr (Dict and Namespace).
  const Value* find(std::string_view key) const noexcept;
};

Value from_json(const json::Value& v);
bool truthy(const Value& v) noexcept;
/// Python ==.
bool equals(const Value& a, const Value& b);
/// Python <: numbers, strings, lists; throws TypeError (as a std::string reason) otherwise.
/// Returns <0, 0, >0; `ok` false when the types cannot be ordered.
int compare(const Value& a, const Value& b, bool& ok);
/// Python str(), as {{ }} prints it (undefined: "").
std::string to_str(const Value& v);
/// Python repr().
std::string repr(const Value& v);
/// Python's float repr.
std::string float_repr(double d);
/// json.dumps(v, ensure_ascii=False, indent=indent (<0: None), sort_keys); `ok` false when
/// a value cannot be serialised (undefined, a function).
std::string to_json(const Value& v, int indent, bool sort_keys, bool& ok);
std::string type_name(const Value& v);

// UTF-8 (Python indexes strings by code point).
std::vector<std::uint32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, std::uint32_t cp);
std::string encode_utf8(const std::vector<std::uint32_t>& cps, std::size_t from, std::size_t to);
bool py_isspace(std::uint32_t cp) noexcept;
std::size_t utf8_length(std::string_view s);

// ---- tokens --------------------------------------------------------------------------------
enum class T : std::uint8_t { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
  T t;
  std::string text;  // Data / Name / Op / decoded String / number text
  int line;
};

std::vector<Token> lex(std::string_view source, const std::string& name);

// ---- tree ------------------------------------------------------------------------------------
enum class N : std::uint8_t {
  // expressions
  Lit, Name, Attr, Item, Slice, Call, Filter, Test, Unary, Binary, Compare, Cond, ListLit,
  TupleLit, DictLit,
  // statements
  Block, Text, Output, If, For, Set, SetBlock, Macro, Break, Continue
};

using NodePtr = std::unique_ptr<Node>;
/// One node. Fields by kind:
///   Lit: lit. Name: str. Attr: kids[0].str. Item: kids[0][kids[1]].
///   Slice: kids[0][kids[1]:kids[2]:kids[3]] (null kids when omitted).
///   Call / Filter / Test: kids[0] the callee or operand, str the filter/test name,
///     kids[1..1+npos) positional args, then one kid per keyword in strs; flag: Test negated.
///   Unary: str op ("not", "-", "+"), kids[0]. Binary: str op, kids[0], kids[1].
///   Compare: kids[0] (strs[i] kids[i+1])... Cond: kids[0] if kids[1] else kids[2] (null).
///   ListLit / TupleLit: kids. DictLit: kids key, value, key, value...
///   Block: kids statements. Text: str. Output: kids[0].
///   If: kids cond, body, cond, body, ... [else body]; npos = number of conditions.
///   For: strs targets; kids[0] iterable, kids[1] filter (null), kids[2] body, kids[3] else (null).
///   Set: strs targets (flag: strs[0].strs[1] attribute set), kids[0] value.
///   SetBlock: strs[0] target, kids[0] body.
///   Macro: str name, strs params, kids[0] body, kids[1..] defaults (null when none).
struct Node {
  N kind;
  int line = 0;
  std::string str;
  Value lit;
  std::vector<NodePtr> kids;
  std::vector<std::string> strs;
  std::size_t npos = 0;
  bool flag = false;
  int height = 1;  // of the expression tree below (the parser bounds it: evaluation and destruction recurse)
};

struct Program {
  std::string name;
  NodePtr root;
};

Program parse(std::vector<Token> tokens, const std::string& name, int max_depth);

// ---- evaluation support ------------------------------------------------------------------------
struct Evaluator;

/// Calls filter `name` on `v` (InvalidArgument on an unknown filter or bad arguments).
Value apply_filter(Evaluator& ev, const Node& at, const std::string& name, const Value& v,
                   const std::vector<Value>& args, const std::vector<std::pair<std::string, Value>>& kwargs);
/// Applies test `name`; `known` false when there is no such test.
bool apply_test(Evaluator& ev, const Node& at, const std::string& name, const Value& v,
                const std::vector<Value>& args);
/// Python's getattr on a str / dict / list: the bound method, or undefined.
Value method_of(const Value& v, const std::string& name);
/// Calls a bound method (Value::func with self).
Value call_method(Evaluator& ev, const Node& at, const Value& fn, const std::vector<Value>& args,
                  const std::vector<std::pair<std::string, Value>>& kwargs);

// Shared by filters.cpp and methods.cpp (defined in methods.cpp).
using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;
/// Positional-or-keyword argument `i` named `name`, or nullptr.
const Value* arg(const Args& args, const Kwargs& kw, std::size_t i, const char* name);
/// Rejects more positional arguments than `names`, unknown or repeated keywords.
void check_arity(Evaluator& ev, const Node& at, const std::string& what, const Args& args, const Kwargs& kw,
                 std::initializer_list<const char*> names);
std::string need_str(Evaluator& ev, const Node& at, const Value* v, const char* what);
std::string map_case(const std::string& s, int mode);  // 0 lower, 1 upper (per code point)
bool is_cased(std::uint32_t cp);
std::string py_capitalize(const std::string& s);
std::string py_title(const std::string& s);    // str.title()
std::string jinja_title(const std::string& s);  // the title filter
std::string py_strip(const std::string& s, const Value* chars, bool left, bool right);
Value py_split(Evaluator& ev, const Node& at, const std::string& s, const Value* sep, std::int64_t maxsplit,
               bool from_right);
std::string py_replace(Evaluator& ev, const Node& at, const std::string& s, const std::string& old,
                       const std::string& rep, std::int64_t count);

/// "<name>:<line>: <msg>" as InvalidArgument.
[[noreturn]] void fail(const Evaluator& ev, const Node& at, const std::string& msg);
/// Counts a loop iteration / a step / output size against the limits.
void charge_string(const Evaluator& ev, const Node& at, std::size_t bytes);

}  // namespace qstar::hf::jinja
