"""Parity: the same seed gives the same result from Python as from the C++ CLI."""
import json
import subprocess

import pytest

qstar = pytest.importorskip("qstar")
from helpers import cli_path, oracle, programmatic  # noqa: E402

# The CLI's --n is each algorithm's budget knob; its --width defaults to min(4, n).
KNOB = {"best-of-n": "n", "beam": "num_beams", "dvts": "n", "best-first": "max_expansions", "mcts": "num_simulations"}


@pytest.mark.parametrize("algo", sorted(KNOB))
def test_python_matches_cli(algo):
    seed = 7
    cli = cli_path()
    if cli is None:
        pytest.skip("the qstar CLI is not built (QSTAR_CLI unset)")
    puzzle = "1 2 4 7"
    out = subprocess.run([cli, "solve", puzzle, "--algo", algo, "--n", "16", "--seed", str(seed), "--json",
                          "--generator", "programmatic", "--verifier", "oracle", "--error-rate", "0.2"], check=True, capture_output=True, text=True, timeout=60)
    c = json.loads(out.stdout)
    # seeds derive from the problem's id and text: the CLI's problem is called "cli"
    r = qstar.search(qstar.Problem(puzzle, id="cli"), algo=algo, generator=programmatic(0.2), verifier=oracle(), seed=seed,
                     **{KNOB[algo]: 16})[0]
    assert r.answer == c["answer"] and r.correct == c["correct"] and r.steps == c["steps"]
    assert r.stop_reason == c["stop_reason"]
    assert r.score == c["score"]
    py, cs = r.stats.to_dict(), c["stats"]
    for k in ("generated_tokens", "verifier_tokens", "generator_calls", "verifier_calls", "generator_requests",
              "generated_steps", "nodes", "iterations", "generator_batches", "verifier_batches"):
        assert py[k] == cs[k], k


class PyConstantGenerator:
    """The Python twin of qstar.testing.ConstantGenerator."""

    def __init__(self, depth):
        self.depth = depth

    def expand(self, batch):
        return [[qstar.Step("abcdefgh"[(r.seed + c) % 8], num_tokens=1, logprob=-1.0,
                            finish="answer" if r.depth + 1 >= self.depth else "step")
                 for c in range(r.num_candidates)] for r in batch]


class PyConstantVerifier:
    """The Python twin of qstar.testing.ConstantVerifier."""

    def score(self, batch):
        return [[(ord(t[0]) % 7) / 7 for t in r.new_steps] for r in batch]

    def score_outcomes(self, batch):
        return [0.5] * len(batch)


@pytest.mark.parametrize("algo", sorted(KNOB))
def test_python_plugins_match_their_cpp_twins(algo):
    problems = [qstar.Problem("4 5 6 10", id=str(i)) for i in range(3)]
    kw = {KNOB[algo]: 16}
    cpp = qstar.search(problems, algo=algo, generator=qstar.testing.ConstantGenerator(5),
                       verifier=qstar.testing.ConstantVerifier(), seed=3, **kw)
    py = qstar.search(problems, algo=algo, generator=PyConstantGenerator(5), verifier=PyConstantVerifier(), seed=3,
                      **kw)
    for a, b in zip(cpp, py):
        da, db = a.to_dict(), b.to_dict()
        for d in (da, db):
            for k in ("generator_seconds", "verifier_seconds", "overhead_seconds", "wall_seconds"):
                d["stats"].pop(k)
        assert da == db
