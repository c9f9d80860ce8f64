// Chat templates: the Jinja subset that Hugging Face `tokenizer_config.json` "chat_template"s
// use, rendered in C++ the way transformers renders them (jinja2's
// ImmutableSandboxedEnvironment with trim_blocks=True, lstrip_blocks=True, the loopcontrols
// extension, a raise_exception global and a tojson filter with ensure_ascii=False).
//
// Covered: {{ }} {% %} {# #} with whitespace control (- and +), trim_blocks/lstrip_blocks,
// one trailing newline dropped; if/elif/else, for (tuple targets, `if` filter, else, loop.index,
// index0, revindex, revindex0, first, last, length, previtem, nextitem, cycle), break/continue,
// set (names, tuples, ns.attr, block set), macro; namespace(), dict(), range(),
// raise_exception(), strftime_now() (transformers' global: the local time, strftime format);
// literals (strings, numbers, lists, tuples, dicts, true/false/none), attribute/item access,
// slicing, calls, arithmetic (+ - * / // % **), `~`, comparisons, `in`/`not in`, and/or/not,
// a if b else c; filters (trim, length, count, tojson, string, upper, lower, capitalize,
// title, replace, join, default/d, items, first, last, list, reverse, sort, unique,
// selectattr, rejectattr, map, select, reject, int, float, abs, round, indent, safe, e/escape,
// wordcount, min, max, sum); tests (defined, undefined, none, string, mapping,
// iterable, number, integer, float, sequence, boolean, true, false, callable, equalto/eq/==,
// ne, lt, le, gt, ge, in, sameas, odd, even, divisibleby, lower, upper); Python methods on
// strings (startswith, endswith, split, rsplit, strip, lstrip, rstrip, lower, upper, title,
// capitalize, replace, find, rfind, count, join, splitlines, isdigit, isalpha, isspace, isupper,
// islower), dicts (items, keys, values, get), lists (count, index), and nothing that mutates
// (the sandbox is immutable, as in transformers).
// Output follows Python: None/True/False print as such, floats as repr(), lists and dicts
// as their Python repr; undefined values print as "" and fail on attribute access.
// Not covered (a ParseError names the tag): include/import/extends/block, call blocks,
// filter blocks, raw, recursive loops. {% generation %} (transformers' tag) renders its body. Integers are 64-bit (overflow is an error,
// Python's are unbounded); filters jinja2 makes lazy (map, select, reverse, ...) return lists,
// so printing one unlisted differs from jinja2's "<generator object ...>"; Markup is a str.
//
// Errors: a syntax error is a qstar::ParseError, a rendering error (type error, undefined
// attribute, raise_exception, a limit) a qstar::InvalidArgument; both read
// "<name>:<line>: <reason>", the line 1-based in the template source.
// Limits (ChatTemplateLimits) bound the template size, the nesting depth, the output size,
// the bytes built during a render, loop iterations and evaluation steps, so a hostile template cannot hang or exhaust memory.
// The interpreter never executes anything but the template: no files, no imports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"

namespace qstar::hf {

namespace jinja {
struct Program;  // the parsed template (src/hf/jinja/internal.hpp)
}

/// What a template may use up. validate() throws InvalidArgument naming the field.
struct ChatTemplateLimits {
  std::size_t max_template_bytes = 1 << 20;      ///< source size (bytes), checked before lexing
  std::size_t max_output_bytes = 16u << 20;      ///< rendered text (bytes), and any string built
  std::size_t max_loop_iterations = 1'000'000;   ///< loop bodies run, all loops together
  std::size_t max_steps = 20'000'000;            ///< expression/statement evaluations per render
  /// bytes of strings and list/dict elements built by operators, literals, filters, calls and
  /// loops during one render, all together (bounds memory and copying, not only the output)
  std::size_t max_alloc_bytes = 256u << 20;
  int max_depth = 64;                            ///< nesting of expressions/blocks and macro calls
  void validate() const;
};

/// One chat message. `extra` (an object, or null) adds fields the template may read, e.g.
/// "reasoning_content" or "tool_calls"; its members follow role and content in the dict.
struct ChatMessage {
  std::string role, content;
  json::Value extra = {};
};

class ChatTemplate {
 public:
  /// Parses `source` (ParseError "<name>:<line>: ..." on a syntax error).
  static ChatTemplate from_string(std::string source, std::string name = "template",
                                  ChatTemplateLimits limits = {});
  /// tokenizer_config.json's "chat_template" (a string, or the list-of-{name, template} form,
  /// of which "default" is used), plus bos_token/eos_token (strings or {"content": ...}
  /// objects). `path_or_model_dir` is the file or the folder holding it. IoError when it
  /// cannot be read; ParseError when it has no usable chat_template.
  static ChatTemplate from_tokenizer_config(const std::string& path_or_model_dir,
                                            ChatTemplateLimits limits = {});
  /// What a `--chat-template PATH` names: a model folder or a *.json file is read with
  /// from_tokenizer_config; any other file is a Jinja template (from_string, named by the
  /// path). IoError when it cannot be read.
  static ChatTemplate from_path(const std::string& path, ChatTemplateLimits limits = {});

  /// Renders with `messages` (each a dict of role, content and extra's members),
  /// add_generation_prompt, bos_token, eos_token, tools=None and documents=None like
  /// transformers' apply_chat_template; extra_kwargs (an object, or null) adds variables or
  /// overrides those, e.g. {"enable_thinking": false}.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const json::Value& extra_kwargs = {}) const;
  /// The same with messages given as JSON (an array of objects), for tool calls and other
  /// structured fields.
  std::string render_json(const json::Value& messages, bool add_generation_prompt,
                          const json::Value& extra_kwargs = {}) const;

  const std::string& name() const noexcept { return name_; }
  const std::string& source() const noexcept { return source_; }
  const std::string& bos_token() const noexcept { return bos_token_; }
  const std::string& eos_token() const noexcept { return eos_token_; }
  void set_bos_token(std::string s) { bos_token_ = std::move(s); }
  void set_eos_token(std::string s) { eos_token_ = std::move(s); }
  const ChatTemplateLimits& limits() const noexcept { return limits_; }

 private:
  std::shared_ptr<const jinja::Program> program_;
  std::string name_, source_, bos_token_, eos_token_;
  ChatTemplateLimits limits_;
};

}  // namespace qstar::hf
