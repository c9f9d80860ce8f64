"""Shared test plug-ins and paths."""
import os
from pathlib import Path

import qstar

REPO = Path(__file__).resolve().parents[2]
PUZZLES = ["4 5 6 10", "1 2 4 7", "3 3 8 8", "1 1 4 6", "2 5 7 9"]


def oracle():
    return qstar.game24.OracleVerifier()


def programmatic(error_rate=0.1):
    return qstar.game24.ProgrammaticGenerator(error_rate=error_rate)


class CountingGenerator:
    """Wraps nothing: proposes one-character steps ('a'..'h', from the seed) and a final
    'Answer:' step at depth 3; records every call's batch."""

    name = "counting-gen"

    def __init__(self, depth=3):
        self.depth = depth
        self.batches = []

    def expand(self, batch):
        self.batches.append([(r.problem_index, r.depth, r.num_candidates) for r in batch])
        out = []
        for r in batch:
            if r.depth + 1 >= self.depth:
                out.append([qstar.Step("Answer: 1 + 1 = 24", finish="answer")] * r.num_candidates)
            else:
                out.append([chr(ord("a") + (r.seed + j) % 8) for j in range(r.num_candidates)])
        return out


class CountingVerifier:
    """Scores each new step (ord(first char) % 7) / 7; records every call's batch."""

    def __init__(self):
        self.batches = []

    def score(self, batch):
        self.batches.append([(r.problem_index, len(r.steps), r.first_new) for r in batch])
        return [[(ord(s[0]) % 7) / 7 if s else 0.0 for s in r.new_steps] for r in batch]


def cli_path():
    p = os.environ.get("QSTAR_CLI")
    if p and os.path.exists(p):
        return p
    for name in ("build", "build-py"):
        c = REPO / name / "qstar"
        if c.exists():
            return str(c)
    return None


# ---- Python plug-ins delegating to built-in ones (test_wrap_builtins, test_http_wrap) ----

# Each algorithm's budget knob (as in test_parity).
KNOB = {"best-of-n": "n", "beam": "num_beams", "dvts": "n", "best-first": "max_expansions", "mcts": "num_simulations"}
WRAP_PUZZLES = [qstar.Problem(t, id=str(i)) for i, t in enumerate(["4 5 6 10", "1 2 4 7", "3 3 8 8"])]
TIMES = ("generator_seconds", "verifier_seconds", "overhead_seconds", "wall_seconds")


class WrapGenerator:
    """A Python generator that passes every batch on to a built-in one (and counts calls)."""

    def __init__(self, inner, forward_max_batch=True):
        self.inner = inner
        self.calls = 0
        if forward_max_batch:
            self.max_batch_size = inner.max_batch_size

    @property
    def name(self):
        return "wrapped " + self.inner.name

    def expand(self, batch):
        self.calls += 1
        return self.inner.expand(batch)


class WrapPRM:
    """A Python step + outcome verifier delegating to a built-in one."""

    def __init__(self, inner):
        assert inner.has_step_scores and inner.has_outcome_scores
        self.inner = inner
        self.max_batch_size = inner.max_batch_size
        self.calls = 0

    def score(self, batch):
        self.calls += 1
        return self.inner.score_steps(batch)

    def score_outcomes(self, batch):
        self.calls += 1
        return self.inner.score_outcomes(batch)


class WrapORM:
    """A Python outcome-only verifier delegating to a built-in one."""

    def __init__(self, inner):
        self.inner = inner
        self.max_batch_size = inner.max_batch_size
        self.calls = 0

    def score_outcomes(self, batch):
        self.calls += 1
        return self.inner.score_outcomes(batch)


def wrap_verifier(v):
    if v is None:
        return None
    return WrapPRM(v) if v.has_step_scores else WrapORM(v)


def dicts(results, drop_batches=False):
    out = []
    for r in results:
        d = r.to_dict()
        for k in TIMES:
            d["stats"].pop(k)
        if drop_batches:
            d["stats"].pop("generator_batches")
            d["stats"].pop("verifier_batches")
        out.append(d)
    return out


def same_results(make_gen, make_ver, algo, problems=WRAP_PUZZLES, **kw):
    """Runs the built-ins alone and wrapped (fresh instances each: an LM's KV cache must not
    carry over) and checks the results are equal; returns the wrappers."""
    seed = 5
    alone = qstar.search(problems, algo=algo, generator=make_gen(), verifier=make_ver(), seed=seed, **kw)
    gen, ver = WrapGenerator(make_gen()), wrap_verifier(make_ver())
    wrapped = qstar.search(problems, algo=algo, generator=gen, verifier=ver, seed=seed, **kw)
    assert dicts(wrapped) == dicts(alone)
    assert gen.calls >= 1 and (ver is None or ver.calls >= 1)
    return gen, ver
