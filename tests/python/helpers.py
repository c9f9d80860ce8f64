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
