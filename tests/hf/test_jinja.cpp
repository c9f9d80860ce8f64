// Tests of the chat-template interpreter (include/qstar/hf/chat_template.hpp). The expected
// strings are what Python's jinja2 renders with transformers' settings (trim_blocks,
// lstrip_blocks); tests/python/test_jinja_parity.py checks many more cases against jinja2 itself.
#include <doctest/doctest.h>

#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qstar/core/json.hpp"
#include "qstar/error.hpp"
#include "qstar/hf/chat_template.hpp"

using qstar::hf::ChatMessage;
using qstar::hf::ChatTemplate;
using qstar::hf::ChatTemplateLimits;

namespace {

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

const std::vector<ChatMessage> kChat = {
    {"system", "Be brief.", {}}, {"user", "What is 2+2?", {}}, {"assistant", "4", {}}, {"user", "And 3+3?", {}}};

std::string R(const std::string& tpl, const std::vector<ChatMessage>& msgs = kChat, bool agp = false,
              const qstar::json::Value& kw = {}) {
  return ChatTemplate::from_string(tpl).render(msgs, agp, kw);
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("jinja: ChatML with add_generation_prompt") {
  const std::string tpl =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const std::vector<ChatMessage> m = {{"user", "Hi", {}}};
  CHECK(R(tpl, m, false) == "<|im_start|>user\nHi<|im_end|>\n");
  CHECK(R(tpl, m, true) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_CASE("jinja: whitespace control, trim_blocks, lstrip_blocks, comments, trailing newline") {
  CHECK(R("A\n  {% if true %}\n    B\n  {% endif %}\nC\n") == "A\n    B\nC");
  CHECK(R("A  {{- ' x ' -}}  B") == "A x B");
  CHECK(R("A\n   {#- c -#}   B") == "AB");
  CHECK(R("A\n  {%+ if true %}x{% endif %}") == "A\n  x");
  CHECK(R("{% if true +%}\nx{% endif %}") == "\nx");
  CHECK(R("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc") == "a\nb\nc");
  CHECK(R("x\n\n") == "x\n");
}

TEST_CASE("jinja: loop variables, loop filter, else, break, continue") {
  CHECK(R("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
          "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('a','b') }};{% endfor %}",
          {{"u", "1", {}}, {"a", "2", {}}}) == "1021TrueFalse2a;2110FalseTrue2b;");
  CHECK(R("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }} {{ m.content }};{% endfor %}") ==
        "1/2 What is 2+2?;2/2 And 3+3?;");
  CHECK(R("{% for m in [] %}x{% else %}empty{% endfor %}") == "empty");
  CHECK(R("{% for i in range(10) %}{% if i == 3 %}{% break %}{% endif %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}") == "02");
  CHECK(R("{% for m in messages %}{{ loop.previtem.role if loop.previtem is defined else '-' }}{% endfor %}") ==
        "-systemuserassistant");
  CHECK(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}") == "a=1;b=2;");
}

TEST_CASE("jinja: set scoping, namespace, tuple and block set, macros") {
  CHECK(R("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}") == "1");
  CHECK(R("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}") == "4");
  CHECK(R("{% set a, b = 1, 2 %}{{ b }}{{ a }}") == "21");
  CHECK(R("{% set c %}[{{ 1 + 1 }}]{% endset %}{{ c }}{{ c|length }}") == "[2]3");
  CHECK(R("{% macro f(x, y='d') %}{{ x }}-{{ y }}{% endmacro %}{{ f(1) }} {{ f(2, y='e') }}") == "1-d 2-e");
  CHECK(R("{% for m in messages %}{% if m.role == 'assistant' %}\n  {% generation %}\n  [{{ m.content }}]\n  {% endgeneration %}\n{% endif %}{% endfor %}") ==
        "  [4]\n");
}

TEST_CASE("jinja: strftime_now is transformers' global") {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char year[16];
  std::strftime(year, sizeof year, "%Y", &tm);
  CHECK(R("{{ strftime_now('%Y') }}|{{ strftime_now is defined }}") == std::string(year) + "|True");
}

TEST_CASE("jinja: if/elif/else, operators, comparisons, in, ternary") {
  CHECK(R("{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' %}U{% else %}A{% endif %}{% endfor %}") ==
        "SUAU");
  CHECK(R("{{ 1 + 2 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 0.1 + 0.2 }}") ==
        "7 3.5 3 -4 2 1024 0.30000000000000004");
  CHECK(R("{{ 1e20 }} {{ 1e-5 }} {{ 100.0 }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 2 }} {{ [1] + [2] }}") ==
        "1e+20 1e-05 100.0 a1None abab [1, 2]");
  CHECK(R("{{ 1 == 1.0 }} {{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1] }} {{ not true }} {{ none or 0 }}") ==
        "True True True True False 0");
  CHECK(R("{{ 'y' if 1 else 'n' }}{{ 'y' if 0 }}|{{ -2|abs }} {{ 2 ** 3 ** 2 }}") == "y|2 64");  // jinja2: ** is left-associative
}

TEST_CASE("jinja: filters") {
  CHECK(R("{{ '  a b  '|trim }}|{{ 'xhix'|trim('x') }}|{{ 'ab'|upper }}{{ 'AB'|lower }}|{{ 'hELLO wORLD'|capitalize }}|{{ 'hello-world x'|title }}") ==
        "a b|hi|ABab|Hello world|Hello-World X");
  CHECK(R("{{ messages|length }} {{ 'ünï'|length }} {{ nothing|length }} {{ 1|string }}{{ none|string }}") == "4 3 0 1None");
  CHECK(R("{{ {'b': 1, 'a': [1, 2.5, none, true, 'é\"\\n']}|tojson }}") ==
        "{\"b\": 1, \"a\": [1, 2.5, null, true, \"é\\\"\\n\"]}");
  CHECK(R("{{ {'a': [1]}|tojson(indent=2) }}") == "{\n  \"a\": [\n    1\n  ]\n}");
  CHECK(R("{{ 'aXbX'|replace('X', '-') }} {{ ['a', 'b']|join(', ') }} {{ nothing|default('d') }} {{ ''|default('e', true) }}") ==
        "a-b- a, b d e");
  CHECK(R("{{ {'a': 1}|items|list }} {{ [1, 2]|first }}{{ [1, 2]|last }} {{ 'ab'|list }} {{ [3, 1, 2]|sort }} {{ [1, 1, 2]|unique|list }}") ==
        "[('a', 1)] 12 ['a', 'b'] [1, 2, 3] [1, 2]");
  CHECK(R("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}") ==
        "What is 2+2?|And 3+3?");
  CHECK(R("{{ messages|rejectattr('role', 'in', ['user', 'system'])|map(attribute='role')|list }}") == "['assistant']");
  CHECK(R("{{ '42'|int + 1 }} {{ 'x'|int }} {{ '2.5'|float }} {{ 2.5|round }} {{ 2.567|round(2) }} {{ 'a\\nb'|indent(2) }}") ==
        "43 0 2.5 2.0 2.57 a\n  b");
}

TEST_CASE("jinja: tests") {
  CHECK(R("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}"
          "{{ [] is iterable }}{{ 1.5 is number }}{{ [] is sequence }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}"
          "{{ 'a' is equalto 'a' }}{{ true is boolean }}{{ 1 is integer }}{{ 1.0 is float }}{{ 'ab' is lower }}") ==
        "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
  CHECK(R("{{ messages[0].role is not none }} {{ messages[0].missing is defined }}") == "True False");
}

TEST_CASE("jinja: slicing and Python string/dict methods") {
  CHECK(R("{% set s = 'Hello, World' %}{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ [1, 2, 3][1:] }}{{ messages[::-1][0].content }}") ==
        "Hdell" "dlroW ,olleH" "[2, 3]" "And 3+3?");
  CHECK(R("{{ 'a</think>b'.split('</think>')[-1] }}{{ '\\n\\nx\\n'.lstrip('\\n') }}{{ 'x\\n'.rstrip('\\n') }}"
          "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'bc')) }}{{ ' a  b '.split() }}{{ 'a,b,c'.rsplit(',', 1) }}") ==
        "bx\nxTrueTrue['a', 'b']['a,b', 'c']");
  CHECK(R("{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 'd') }}{{ {'a': 1}.get('b') }}{{ {'a': 1}.keys()|list }}") ==
        "1dNone['a']");
}

TEST_CASE("jinja: output follows Python's str() and repr()") {
  CHECK(R("{{ none }} {{ true }} {{ [1, 'a', none, 1.5, {'k': \"it's\"}] }} {{ (1,) }} {{ nothing }}|") ==
        "None True [1, 'a', None, 1.5, {'k': \"it's\"}] (1,) |");
  CHECK(R("{{ 'esc: \\t \\u00e9 \\x41' }}") == "esc: \t é A");
  CHECK(R("{{ {'a': 1}.items() }} {{ (1, 2) + (3,) }} {{ (1,) * 2 }} {{ [nothing] }} {{ 2.5|round }} {{ 3|round }}") ==
        "dict_items([('a', 1)]) (1, 2, 3) (1, 1) [Undefined] 2.0 3");
  // jinja2 quirks kept: failed subscripts are undefined, select/map of a falsy value are empty
  CHECK(R("{{ 1['x'] is defined }} {{ [1][5] is defined }} {{ 0|select('odd')|list }} {{ none|map('string')|list }}") ==
        "False False [] []");
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ [1] + (2,) }}"); }), "can only concatenate"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ [1] in {} }}"); }), "unhashable type: 'list'"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ 5[1:] }}"); }), "not subscriptable"));
}

TEST_CASE("jinja: variables, kwargs, bos/eos, message extra fields") {
  auto t = ChatTemplate::from_string(
      "{{ bos_token }}{% if enable_thinking is defined and enable_thinking is false %}NT{% endif %}"
      "{{ tools }}{% for m in messages %}{{ m.reasoning_content if m.reasoning_content is defined else '' }}{% endfor %}{{ eos_token }}");
  t.set_bos_token("<s>");
  t.set_eos_token("</s>");
  qstar::json::Value extra = qstar::json::Value::object();
  extra.as_object().emplace_back("reasoning_content", "R");
  const std::vector<ChatMessage> m = {{"assistant", "x", extra}};
  CHECK(t.render(m, false) == "<s>NoneR</s>");
  qstar::json::Value kw = qstar::json::parse(R"({"enable_thinking": false, "tools": [1]})");
  CHECK(t.render(m, false, kw) == "<s>NT[1]R</s>");
  qstar::json::Value bad = qstar::json::Value::object();
  bad.as_object().emplace_back("role", "x");
  CHECK(contains(error_of<qstar::InvalidArgument>([&] { t.render({{"user", "x", bad}}, false); }), "messages[0].extra"));
}

TEST_CASE("jinja: errors name the template line") {
  CHECK(error_of<qstar::ParseError>([] { ChatTemplate::from_string("a\n{% if true %}\nb", "t"); }) ==
        "t:3: unexpected end of template: 'if' opened on line 2 is not closed");
  CHECK(error_of<qstar::ParseError>([] { ChatTemplate::from_string("x\n\n{{ 1 + }}", "t"); }) == "t:3: unexpected '}}'");
  CHECK(contains(error_of<qstar::ParseError>([] { ChatTemplate::from_string("{% include 'x' %}", "t"); }),
                 "t:1: unknown or unsupported tag 'include'"));
  CHECK(contains(error_of<qstar::ParseError>([] { ChatTemplate::from_string("{{ 'abc }}", "t"); }), "t:1: unterminated string"));
  CHECK(contains(error_of<qstar::ParseError>([] { ChatTemplate::from_string("{% break %}", "t"); }), "t:1: 'break' outside a loop"));
  auto t = ChatTemplate::from_string("line1\n{% for m in messages %}\n{% if m.role == 'tool' %}{{ raise_exception('no tools: ' ~ m.content) }}{% endif %}{% endfor %}", "tpl");
  CHECK(error_of<qstar::InvalidArgument>([&] { t.render({{"tool", "x", {}}}, false); }) == "tpl:3: raise_exception: no tools: x");
  CHECK(error_of<qstar::InvalidArgument>([] { R("\n{{ 'a' + 1 }}"); }) ==
        "template:2: unsupported operand type(s) for +: 'str' and 'int'");
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ nothing.attr }}"); }), "template:1: 'nothing' is undefined"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ 1|nope }}"); }), "no filter named 'nope'"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ 1 is nope }}"); }), "no test named 'nope'"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ 1 // 0 }}"); }), "by zero"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] { R("{{ 9223372036854775807 + 1 }}"); }), "integer overflow"));
}

TEST_CASE("jinja: limits") {
  ChatTemplateLimits lim;
  lim.max_template_bytes = 10;
  CHECK(contains(error_of<qstar::ParseError>([&] { ChatTemplate::from_string("01234567890", "t", lim); }),
                 "exceeds max_template_bytes 10"));
  lim = {};
  lim.max_output_bytes = 100;
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{% for i in range(1000) %}xx{% endfor %}", "t", lim).render({}, false);
                 }),
                 "max_output_bytes 100"));
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{{ 'x' * 1000 }}", "t", lim).render({}, false);
                 }),
                 "max_output_bytes"));
  lim = {};
  lim.max_loop_iterations = 50;
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}", "t", lim)
                       .render({}, false);
                 }),
                 "max_loop_iterations 50"));
  lim = {};
  lim.max_steps = 1000;
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{% for i in range(900) %}{{ i + 1 }}{% endfor %}", "t", lim).render({}, false);
                 }),
                 "max_steps 1000"));
  lim = {};
  lim.max_depth = 8;
  CHECK(contains(error_of<qstar::ParseError>([&] { ChatTemplate::from_string("{{ ((((((((((1)))))))))) }}", "t", lim); }),
                 "max_depth 8"));
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "t", lim).render({}, false);
                 }),
                 "max_depth 8"));
  // memory and copying: a list of references to a big string, and a big string read in a loop
  CHECK(contains(error_of<qstar::InvalidArgument>([] {
                   R("{% set ns = namespace(l=[], s='x' * 1000000) %}{% for i in range(1000) %}"
                     "{% set ns.l = ns.l + [ns.s] %}{% endfor %}{{ ns.l|length }}");
                 }),
                 "max_alloc_bytes 268435456"));
  CHECK(contains(error_of<qstar::InvalidArgument>([] {
                   R("{% set s = 'x' * 10000000 %}{% for i in range(100000) %}{% if s %}{% endif %}{% endfor %}");
                 }),
                 "max_alloc_bytes"));
  lim = {};
  lim.max_alloc_bytes = 1000;
  CHECK(contains(error_of<qstar::InvalidArgument>([&] {
                   ChatTemplate::from_string("{% for m in messages %}{{ m.content }}{% endfor %}", "t", lim)
                       .render({{"user", std::string(2000, 'a'), {}}}, false);
                 }),
                 "t:1: the render built or copied more than max_alloc_bytes 1000"));
  // long chains are bounded too (evaluating and destroying the tree recurse): 4 * max_depth
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  chain += " }}";
  CHECK(contains(error_of<qstar::ParseError>([&] { ChatTemplate::from_string(chain, "t"); }),
                 "t:1: expression nested deeper than 256"));
  std::string ok_chain = "{{ 1";
  for (int i = 0; i < 200; ++i) ok_chain += "+1";
  CHECK(ChatTemplate::from_string(ok_chain + " }}").render({}, false) == "201");
  lim = {};
  lim.max_depth = 1;
  CHECK(contains(error_of<qstar::InvalidArgument>([&] { lim.validate(); }), "max_depth"));
}

TEST_CASE("jinja: from_tokenizer_config") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("qstar_jinja_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": {"__type": "AddedToken", "content": "<B>"}, "eos_token": "<E>",
              "chat_template": [{"name": "tool_use", "template": "T"},
                                {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]})";
  }
  const auto t = ChatTemplate::from_tokenizer_config(dir.string());
  CHECK(t.bos_token() == "<B>");
  CHECK(t.eos_token() == "<E>");
  CHECK(t.render({{"user", "hi", {}}}, false) == "<B>hi<E>");
  { std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<E>"})"; }
  CHECK(contains(error_of<qstar::ParseError>([&] { ChatTemplate::from_tokenizer_config(dir.string()); }), "no \"chat_template\""));
  { std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "{% if %}"})"; }
  CHECK(contains(error_of<qstar::ParseError>([&] { ChatTemplate::from_tokenizer_config(dir.string()); }),
                 "tokenizer_config.json:chat_template:1:"));
  CHECK(contains(error_of<qstar::IoError>([&] { ChatTemplate::from_tokenizer_config((dir / "nope").string()); }), "cannot open"));
  fs::remove_all(dir);
}
