"""qstar.math: the JSONL loader on the shipped data (counts checked with Python's json), the
grader and extractor on hand-checked cases, MathTask's prompts, and searches with task="math"
and task=qstar.math.MathTask(...) where voting merges equivalent answers (\\frac12, 0.5, 1/2)."""
import json
from pathlib import Path

import pytest

qstar = pytest.importorskip("qstar")

DATA = Path(__file__).resolve().parents[2] / "data" / "math"


def test_load_shipped_data_matches_json():
    gsm = qstar.math.load()  # the package's GSM8K test split
    rows = [json.loads(line) for line in (DATA / "gsm8k_test.jsonl").read_text().splitlines()]
    assert len(gsm) == len(rows) == 1319
    assert gsm[0].text == rows[0]["question"]
    assert [p.gold for p in gsm[:3]] == ["18", "3", "70000"]
    assert all(p.gold == r["answer"].split("####")[-1].strip() for p, r in zip(gsm, rows))
    m500 = qstar.math.load(qstar.math.data_file("math500_test"))
    assert len(m500) == 500
    assert m500[0].id == "test/precalculus/807.json"
    assert m500[2].gold == "\\frac{14}{3}"
    mrows = [json.loads(line) for line in (DATA / "math500_test.jsonl").read_text().splitlines()]
    want = [r["unique_id"] for r in mrows if r["level"] in (4, 5) and r["subject"] == "Number Theory"]
    got = qstar.math.load(DATA / "math500_test.jsonl", level=[4, 5], subject="Number Theory")
    assert [p.id for p in got] == want and len(want) > 0
    assert len(qstar.math.load(DATA / "math500_test.jsonl", ranks="11-20")) == 10
    assert len(qstar.math.load(DATA / "math500_test.jsonl", limit=5, level=1)) == 5


def test_load_custom_fields_and_errors(tmp_path):
    f = tmp_path / "aime.jsonl"
    f.write_text('{"Problem": "Find N.", "Answer": 204}\n{"Problem": "Find M.", "Answer": "017"}\n')
    ps = qstar.math.load(f, question_field="Problem", answer_field="Answer")
    assert [(p.id, p.text, p.gold) for p in ps] == [("1", "Find N.", "204"), ("2", "Find M.", "017")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a"}\n{"question": 1}\n')
    with pytest.raises(qstar.ParseError, match=r"bad\.jsonl:2:"):
        qstar.math.load(bad)
    with pytest.raises(qstar.IoError):
        qstar.math.load(tmp_path / "missing.jsonl")
    with pytest.raises(qstar.IoError, match="not one of"):
        qstar.math.data_file("aime")


@pytest.mark.parametrize("gold,answer,ok", [
    ("\\frac{1}{2}", "0.5", True), ("\\frac12", "1/2", True), ("18", "19", False), ("1,234", "1234", True),
    ("3\\sqrt{13}", "\\sqrt{117}", True), ("\\frac{\\pi}{2}", "\\pi/2", True), ("(1, 2)", "(2, 1)", False),
    ("-3", "3", False), ("10", "10.0", True), ("\\$18", "18", True),
])
def test_check_hand_checked(gold, answer, ok):
    assert qstar.math.check(gold, answer) is ok


def test_check_modes_extract_and_keys():
    assert qstar.math.check("0.5", "\\frac{1}{2}", mode="strict")
    assert not qstar.math.check("2", "3", mode="strict")
    with pytest.raises(qstar.InvalidArgument, match="mode: 'loose'"):
        qstar.math.check("1", "1", mode="loose")
    assert qstar.math.extract("So \\boxed{\\frac{1}{2}}.\n\nDone, \\boxed{\\frac{3}{4}}.") == "\\frac{3}{4}"
    assert qstar.math.extract("unbalanced \\boxed{\\frac{1}{2}") is None
    assert qstar.math.extract("no answer") is None
    assert qstar.math.extract("work\n#### 72") == "72"
    keys = {qstar.math.canonical_key(a) for a in ("\\frac12", "0.5", "1/2", "\\frac{1}{2}")}
    assert len(keys) == 1
    assert qstar.math.canonical_key("\\frac{2}{3}") not in keys
    assert qstar.math.instruction_preset("boxed").endswith("\\boxed{}.")


def test_math_task_prompts():
    p = qstar.Problem("What is 1+1?", id="1", gold="2")
    t = qstar.math.MathTask()
    assert t.format(p) == "What is 1+1?\n" + qstar.math.instruction_preset("boxed") + "\n\n"
    assert t.mode == "lenient" and t.step_delimiter == "\n\n" and not t.uses_chat
    seen = []

    def render(messages):
        seen.append(messages)
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    c = qstar.math.MathTask(system="Be exact.", instruction="", chat_template=render, mode="strict")
    assert c.uses_chat and c.mode == "strict"
    assert c.format(p) == "<system>Be exact.<user>What is 1+1?<assistant>"
    assert seen[-1] == [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "What is 1+1?"}]
    assert c.extract_answer(["First.", "So \\boxed{2}."]) == "2"
    assert c.extract_answer(["No answer."]) is None
    half = qstar.Problem("q", gold="1/2")
    assert c.check(half, "2/4") is False  # strict: plain fractions must be written identically
    assert t.check(half, "2/4") is True   # lenient: an unreduced fraction equals the reduced one
    assert t.check(p, "2.0") is True
    assert t.canonicalize("0.5") == t.canonicalize("\\frac12")
    with pytest.raises(qstar.InvalidArgument, match="user_template"):
        qstar.math.MathTask(user_template="{instruction}")
    with pytest.raises(qstar.InvalidArgument, match="chat_template"):
        qstar.math.MathTask(chat_template=3)
    bad = qstar.math.MathTask(chat_template=lambda m: 7)
    with pytest.raises(qstar.PluginError, match="renderer returned a int"):
        bad.format(p)


SOLUTIONS = [
    ["Half of the cake is left.", "So the answer is \\boxed{\\frac12}."],
    ["We divide 1 by 2.", "The fraction left is \\boxed{0.5}"],
    ["One of two equal parts remains.", "Hence \\boxed{1/2}."],
    ["She ate half.", "Therefore \\boxed{\\frac{1}{2}}."],
    ["Two of three parts remain.", "So \\boxed{\\frac{2}{3}}."],
    ["Two thirds remain.", "The result: \\boxed{\\frac{2}{3}}"],
    ["Four of six slices remain.", "So \\boxed{\\dfrac{4}{6}}."],
]


class ScriptedSolutions:
    """The i-th new trajectory writes SOLUTIONS[i % 7]; records the prompts it receives."""

    def __init__(self):
        self.next = 0
        self.prompts = set()

    def expand(self, batch):
        out = []
        for r in batch:
            self.prompts.add(r.prompt)
            steps = []
            for _ in range(r.num_candidates):
                if not r.prefix:
                    steps.append(SOLUTIONS[self.next % len(SOLUTIONS)][0])
                    self.next += 1
                else:
                    steps.extend(s[1] for s in SOLUTIONS if s[0] == r.prefix[0])
            out.append(steps)
        return out


@pytest.mark.parametrize("task", ["math", "object"])
def test_search_votes_by_value(task):
    gen = ScriptedSolutions()
    seen = []

    def render(messages):
        seen.append(messages)
        return "<|user|>" + messages[-1]["content"] + "<|assistant|>"

    t = "math" if task == "math" else qstar.math.MathTask(chat_template=render)
    problem = qstar.Problem("What fraction of the cake is left?", id="cake", gold="\\frac{1}{2}")
    r = qstar.search([problem], algo="best-of-n", generator=gen, verifier=None, task=t, n=7, scoring="none",
                     voting="majority")[0]
    assert len(r.candidates) == 7
    # 4 votes for 1/2 in four forms against 3 for 2/3 in two forms.
    assert qstar.math.canonical_key(r.answer) == qstar.math.canonical_key("0.5")
    assert r.correct is True
    assert sum(qstar.math.check(problem.gold, c.answer) for c in r.candidates) == 4
    if task == "math":
        assert gen.prompts == {"What fraction of the cake is left?\n" + qstar.math.instruction_preset("boxed") + "\n\n"}
    else:
        assert gen.prompts == {"<|user|>What fraction of the cake is left?\n" + qstar.math.instruction_preset("boxed")
                               + "<|assistant|>"}
        assert seen
