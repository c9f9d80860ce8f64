"""The test-time-compute benchmark driver (benchmarks/game24_ttc.py) end to end on 3 puzzles
with the programmatic generator and the exact oracles (no models needed): every method runs,
the JSON / Markdown / PNG outputs are written and consistent, a rerun reuses the kept runs,
and bad arguments fail with one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "benchmarks" / "game24_ttc.py"
QSTAR = os.environ.get("QSTAR_EXE", str(REPO / "build" / "qstar"))

pytestmark = pytest.mark.skipif(not Path(QSTAR).is_file(), reason=f"no qstar binary at {QSTAR}")


def drive(*args, check=True):
    p = subprocess.run([sys.executable, str(DRIVER), "--qstar", QSTAR, *args], capture_output=True, text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


SMALL = ["--generator", "programmatic", "--prm", "oracle", "--orm", "oracle", "--ranks", "901-903",
         "--budgets", "4", "--chunk", "3"]  # one qstar process per method: ~1 s each


def test_every_method_runs_and_outputs_agree(tmp_path):
    out = tmp_path / "ttc"
    extra = [] if have_matplotlib() else ["--no-plot"]
    p = drive(*SMALL, "--out", str(out), *extra)
    res = json.loads((out / "results.json").read_text())
    rows = res["rows"]
    keys = {r["method"] for r in rows}
    assert keys == {"greedy", "majority", "orm", "prm_vote", "beam_b5", "beam_m4", "dvts", "best_first", "mcts",
                    "particle_filter", "rebase", "oracle_beam", "oracle_pass", "adaptive_majority",
                    "adaptive_prm"}  # no deepconf: no logprobs
    assert [r["n"] for r in rows if r["method"] == "greedy"] == [1]
    assert [r["n"] for r in rows if r["method"] == "majority"] == [4]
    assert [r["n"] for r in rows if r["method"] == "beam_b5"] == [5]  # b = N/M = 5 with M = 1
    assert res["config"]["problems"] == 3 and res["config"]["failed_runs"] == []
    for r in rows:
        assert r["total"] == 3 and 0 <= r["solved"] <= 3
        assert r["solve_rate"] == pytest.approx(r["solved"] / 3)
        assert r["generated_tokens_per_problem"] > 0
        assert r["generated_steps_per_problem"] > 0
        assert r["wall_s_per_problem"] >= 0
        if r["method"] in ("greedy", "majority", "adaptive_majority"):
            assert r["verifier_tokens_per_problem"] == 0
        else:
            assert r["verifier_tokens_per_problem"] > 0
        # each run's raw qstar JSON is kept, with the command that made it
        kept = json.loads((out / "runs" / f"{r['method']}_n{r['n']}.json").read_text())
        assert kept["row"] == r and "--algo" in kept["command"]
    by = {(r["method"], r["n"]): r for r in rows}
    # The same seed gives pass@N and majority the same samples: pass@N bounds the vote.
    for n in (4,):
        assert by[("oracle_pass", n)]["solved"] >= by[("majority", n)]["solved"]
        assert by[("oracle_pass", n)]["generated_tokens_per_problem"] == \
            by[("majority", n)]["generated_tokens_per_problem"]
    md = (out / "results.md").read_text()
    assert md.count("\n| ") == len(rows) + 2  # header, separator, rows
    assert "ToT (b=5) | 74.0%" not in md  # ranks 901-903 are not the ToT split: no GPT-4 reference
    assert "| greedy (1 sample, temperature 0) | 1 |" in md
    if have_matplotlib():
        png = (out / "solve_rate_vs_tokens.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "| method |" in p.stdout

    # A rerun with the same command reuses every kept run and writes the same rows.
    p2 = drive(*SMALL, "--out", str(out), *extra)
    assert p2.stderr.count("reusing") == len(rows)
    assert json.loads((out / "results.json").read_text())["rows"] == rows

    # --report-only runs nothing: the N=16 runs are listed as not run, the kept ones reported.
    wider = [("4,16" if x == "4" else x) for x in SMALL]
    p3 = drive(*wider, "--out", str(out), "--report-only", "--no-plot")
    res3 = json.loads((out / "results.json").read_text())
    assert res3["rows"] == rows
    assert "mcts n=16" in res3["config"]["not_run"] and "greedy n=1" not in res3["config"]["not_run"]
    assert "Not run" in (out / "results.md").read_text() and "not run" in p3.stderr


def test_subset_of_methods_and_budgets(tmp_path):
    drive(*SMALL, "--methods", "greedy,oracle_beam", "--out", str(tmp_path), "--no-plot")
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [(r["method"], r["n"]) for r in rows] == [("greedy", 1), ("oracle_beam", 4)]
    assert not (tmp_path / "solve_rate_vs_tokens.png").exists()


@pytest.mark.parametrize("args,needle", [
    (["--methods", "bogus"], "--methods: 'bogus'"),
    (["--budgets", "1,x"], "--budgets: 'x'"),
    (["--budgets", "0"], "--budgets: 0"),
    (["--generator", "/nonexistent/gen"], "/nonexistent/gen"),
    (["--data", "/nonexistent.csv"], "/nonexistent.csv"),
])
def test_bad_arguments_fail_with_one_line(tmp_path, args, needle):
    base = {"--generator": "programmatic", "--prm": "oracle", "--orm": "oracle"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    flat = [x for kv in base.items() for x in kv]
    p = drive(*flat, "--out", str(tmp_path), "--ranks", "901-901", check=False)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("game24_ttc: error: ")
    assert needle in p.stderr


def test_a_failing_qstar_run_names_the_flag(tmp_path):
    # A flag qstar rejects (bad input, exit 2) stops the benchmark with qstar's own message.
    p = drive(*SMALL, "--methods", "greedy", "--out", str(tmp_path), "--", "--max-tokens", "-5", check=False)
    assert p.returncode == 2
    assert "--max-tokens" in p.stderr.splitlines()[-1]
