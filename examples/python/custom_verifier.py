"""A verifier written in Python, plugged into qstar's C++ search.

The verifier is any object with ``score(batch)``: it receives the whole batch of requests of
one search iteration and returns, per request, one score in [0, 1] for each new step. This
one re-checks each step's arithmetic ("a op b = c (left: ...)") with Python's fractions and
knows nothing about whether 24 is still reachable, so it sits between no verifier and the
exact oracle. The script compares the three on a few puzzles with a generator that errs 30%
of the time.

    PYTHONPATH=build/python python3 examples/python/custom_verifier.py [num_puzzles]
"""
import re
import sys
from fractions import Fraction

import qstar

STEP = re.compile(r"^\s*(\S+)\s*([-+*/])\s*(\S+)\s*=\s*(\S+)\s*\(left:\s*([^)]*)\)\s*$")
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
       "/": lambda a, b: a / b if b != 0 else None}


def arithmetic_ok(step: str) -> bool:
    """True when the step's equation is right (answers are judged by the checker instead)."""
    if step.startswith("Answer:"):
        return True
    m = STEP.match(step)
    if not m:
        return False
    try:
        a, op, b, c = Fraction(m[1]), m[2], Fraction(m[3]), Fraction(m[4])
    except (ValueError, ZeroDivisionError):
        return False
    return OPS[op](a, b) == c


class ArithmeticPRM:
    """Scores 1.0 for a correct equation and 0.0 otherwise; an answer scores 1.0 iff the exact
    Game of 24 checker accepts it."""

    name = "arithmetic-prm"

    def __init__(self):
        self.calls = 0
        self.requests = 0

    def score(self, batch):
        self.calls += 1
        self.requests += len(batch)
        out = []
        for request in batch:
            scores = []
            for step in request.new_steps:
                if step.startswith("Answer:"):
                    answer = qstar.game24.extract_answer([step]) or ""
                    scores.append(1.0 if qstar.game24.check(request.problem, answer) else 0.0)
                else:
                    scores.append(1.0 if arithmetic_ok(step) else 0.0)
            out.append(scores)
        return out


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    problems = qstar.game24.load(ranks="901-1000")[:count]
    generator = qstar.game24.ProgrammaticGenerator(error_rate=0.3)
    prm = ArithmeticPRM()
    print(f"{len(problems)} puzzles, beam search N=16 M=4, generator error rate 0.3, seed 0")
    for label, verifier, algo in (("no verifier (majority vote)", None, "best-of-n"),
                                  ("ArithmeticPRM (Python)", prm, "beam"),
                                  ("exact oracle (C++)", qstar.game24.OracleVerifier(), "beam")):
        kw = dict(n=16) if algo == "best-of-n" else dict(num_beams=16, width=4)
        results = qstar.search(problems, algo=algo, generator=generator, verifier=verifier, seed=0, **kw)
        solved = sum(bool(r.correct) for r in results)
        print(f"  {label:<30} {algo:<10} solved {solved:>3}/{len(problems)}")
    print(f"ArithmeticPRM was called {prm.calls} times for {prm.requests} requests "
          f"({prm.requests / max(prm.calls, 1):.0f} per call: every puzzle's beams in one batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
