"""A task written in Python: reach a target number with +1/+2 steps."""
import pytest

qstar = pytest.importorskip("qstar")


def total(steps):
    return sum(int(s[1:]) for s in steps if s.startswith("+"))


class ReachTask:
    def __init__(self, with_check=True):
        if with_check:
            self.check = lambda problem, answer: answer == problem.text

    def format(self, problem):
        return f"Reach {problem.text} with +1 and +2 steps.\n"

    def is_terminal(self, step):
        return step.text.startswith("=")

    def extract_answer(self, steps):
        return steps[-1][1:].strip() if steps and steps[-1].startswith("=") else None


class ReachGenerator:
    def expand(self, batch):
        out = []
        for r in batch:
            target, now = int(r.problem.text), total(r.prefix)
            if now >= target:
                out.append([f"= {now}"])
            else:
                out.append([f"+{1 + (r.seed + j) % 2}" for j in range(r.num_candidates)])
        return out


class ReachPRM:
    def score(self, batch):
        out = []
        for r in batch:
            target = int(r.problem.text)
            out.append([1.0 if total(r.steps[: i + 1]) <= target and not (
                s.startswith("=") and int(s[1:]) != target) else 0.0
                for i, s in enumerate(r.steps) if i >= r.first_new])
        return out


@pytest.mark.parametrize("algo,kw", [("beam", {}), ("best-first", {}), ("mcts", dict(num_simulations=256))])
def test_python_task(algo, kw):
    rs = qstar.search(["5", "7", "4"], algo=algo, generator=ReachGenerator(), verifier=ReachPRM(), task=ReachTask(),
                      seed=0, max_depth=9, **kw)
    for r in rs:
        assert r.answer == r.problem.text and r.correct is True
        assert r.steps[-1] == f"= {r.problem.text}"


def test_python_task_without_check_and_errors():
    r = qstar.search("5", algo="beam", generator=ReachGenerator(), verifier=ReachPRM(),
                     task=ReachTask(with_check=False), max_depth=9)[0]
    assert r.answer == "5" and r.correct is None

    class NoFormat:
        def extract_answer(self, steps):
            return None

    with pytest.raises(TypeError, match="format"):
        qstar.search("5", generator=ReachGenerator(), verifier=ReachPRM(), task=NoFormat())

    class BadFormat(ReachTask):
        def format(self, problem):
            return 42

    with pytest.raises(qstar.PluginError, match=r"format\(\) returned a int"):
        qstar.search("5", generator=ReachGenerator(), verifier=ReachPRM(), task=BadFormat())

    class Raising(ReachTask):
        def extract_answer(self, steps):
            raise ZeroDivisionError("no answer here")

    with pytest.raises(ZeroDivisionError, match="no answer here"):
        qstar.search("5", generator=ReachGenerator(), verifier=ReachPRM(), task=Raising(), max_depth=9)
    with pytest.raises(qstar.InvalidArgument, match="task"):
        qstar.search("5", generator=ReachGenerator(), verifier=ReachPRM(), task="chess")
    # the built-in task by name
    assert qstar.search("4 5 6 10", generator=qstar.game24.ProgrammaticGenerator(),
                        verifier=qstar.game24.OracleVerifier(), task="game24")[0].answer
