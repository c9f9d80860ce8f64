// Private to src/hf/jinja: the evaluator's state (eval.cpp runs it; filters.cpp calls back).
#pragma once

#include "hf/jinja/internal.hpp"

namespace qstar::hf::jinja {

enum class Flow : std::uint8_t { Normal, Break, Continue };
using Scope = std::vector<std::pair<std::string, Value>>;

struct Evaluator {
  std::string name;              // the template's name, for messages
  ChatTemplateLimits limits;
  std::vector<Scope> scopes;     // [0]: the render's variables; one per loop body / macro call
  std::string* out = nullptr;    // where text goes (a buffer inside set blocks and macros)
  std::size_t steps = 0, iterations = 0, allocated = 0;
  int depth = 0, macro_depth = 0;

  const Value* lookup(const std::string& n) const;
  void assign(const std::string& n, Value v);
  void step(const Node& at);
  /// Counts a newly built value's bytes (strings, elements, nested) against max_alloc_bytes.
  Value alloc(const Node& at, Value v);
  /// Counts a copied value (a string's bytes; containers are shared) against max_alloc_bytes.
  Value copied(const Node& at, Value v);
  void charge_alloc(const Node& at, std::size_t bytes);
  void emit(const Node& at, std::string_view s);
  Value eval(const Node& n);
  Flow exec(const Node& n);
  Flow exec_for(const Node& n);
  List iterate(const Node& at, const Value& v);
  Value arith(const Node& at, const std::string& op, const Value& a, const Value& b);
  bool contains(const Node& at, const Value& needle, const Value& hay);
  Value call(const Node& at, const Value& fn, const std::vector<Value>& args,
             const std::vector<std::pair<std::string, Value>>& kwargs);
  Value call_macro(const Node& at, const Node& m, const std::vector<Value>& args,
                   const std::vector<std::pair<std::string, Value>>& kwargs);
};

}  // namespace qstar::hf::jinja
