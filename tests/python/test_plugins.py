"""Python plug-ins: whole batches, exceptions, shapes, the GIL, reference leaks."""
import gc
import math
import sys
import threading
import time
import traceback

import pytest

qstar = pytest.importorskip("qstar")
from helpers import PUZZLES, CountingGenerator, CountingVerifier, oracle, programmatic  # noqa: E402


def test_generator_called_once_per_iteration_with_the_whole_batch():
    gen, ver = CountingGenerator(depth=3), CountingVerifier()
    rs = qstar.search(PUZZLES, algo="beam", generator=gen, verifier=ver, seed=0, num_beams=8, width=2)
    iterations = max(r.stats.generator_calls for r in rs)
    assert len(gen.batches) == iterations == 3
    # the first call holds the root of every problem, asking for N candidates each
    assert sorted(b[0] for b in gen.batches[0]) == list(range(len(PUZZLES)))
    assert all(n == 8 for _, _, n in gen.batches[0])
    # later calls: N/M = 4 beams per problem, M = 2 candidates each, all problems in one call
    for batch in gen.batches[1:]:
        assert len(batch) == 4 * len(PUZZLES) and {p for p, _, _ in batch} == set(range(len(PUZZLES)))
    assert sum(len(b) for b in gen.batches) == sum(r.stats.generator_requests for r in rs)
    # the verifier too: one call per iteration scoring every new step of every problem
    assert len(ver.batches) == max(r.stats.verifier_calls for r in rs)
    assert all(len(b) == 8 * len(PUZZLES) for b in ver.batches)
    assert all(first == n - 1 for b in ver.batches for _, n, first in b)


@pytest.mark.parametrize("algo,kw", [
    ("best-of-n", dict(n=8)), ("dvts", dict(n=8, width=4)), ("best-first", dict(max_expansions=8)),
    ("mcts", dict(num_simulations=8)),
])
def test_every_algorithm_batches_across_problems(algo, kw):
    gen, ver = CountingGenerator(depth=3), CountingVerifier()
    rs = qstar.search(PUZZLES, algo=algo, generator=gen, verifier=ver, seed=0, **kw)
    assert len(gen.batches) == max(r.stats.generator_calls for r in rs)
    assert {p for p, _, _ in gen.batches[0]} == set(range(len(PUZZLES)))
    assert sum(len(b) for b in gen.batches) == sum(r.stats.generator_requests for r in rs)


def test_python_plugins_give_the_same_result_as_without_batch_limits():
    base = qstar.search(PUZZLES, algo="beam", generator=CountingGenerator(), verifier=CountingVerifier(), seed=4)

    class Limited(CountingGenerator):
        max_batch_size = 3

    lim = Limited()
    split = qstar.search(PUZZLES, algo="beam", generator=lim, verifier=CountingVerifier(), seed=4)
    assert all(len(b) <= 3 for b in lim.batches)
    strip = lambda r: (r.answer, r.steps, [c.score for c in r.candidates])  # noqa: E731
    assert [strip(r) for r in base] == [strip(r) for r in split]


def test_steps_with_tokens_are_counted():
    class TokenGen:
        def expand(self, batch):
            return [[qstar.Step("Answer: 4 * 6 = 24", tokens=[1, 2, 3], logprob=-0.5, finish="answer")]
                    for _ in batch]

    r = qstar.search("4 5 6 10", algo="best-of-n", generator=TokenGen(), verifier=oracle(), n=4)[0]
    assert r.stats.generated_tokens == 4 * 3
    assert r.correct is False  # 4 * 6 does not use every number


class Boom(RuntimeError):
    pass


class FailingGenerator:
    def __init__(self, fail_at):
        self.fail_at, self.calls = fail_at, 0

    def expand(self, batch):
        self.calls += 1
        if self.calls == self.fail_at:
            raise Boom(f"boom at call {self.calls}")
        return [["a", "b"][: r.num_candidates] for r in batch]


def test_exception_propagates_unchanged_and_the_next_search_works():
    before = qstar.search(PUZZLES, algo="beam", generator=programmatic(), verifier=oracle(), seed=2)
    gen = FailingGenerator(fail_at=2)
    with pytest.raises(Boom, match="boom at call 2") as e:
        qstar.search(PUZZLES, algo="beam", generator=gen, verifier=oracle(), seed=2)
    # the original exception object, with the plug-in's frame in its traceback
    frames = [f.name for f in traceback.extract_tb(e.value.__traceback__)]
    assert "expand" in frames
    assert any("qstar.search" in n for n in getattr(e.value, "__notes__", []))
    # no corrupted state: the same search again gives the same results
    after = qstar.search(PUZZLES, algo="beam", generator=programmatic(), verifier=oracle(), seed=2)
    assert [r.to_dict()["steps"] for r in before] == [r.to_dict()["steps"] for r in after]


def test_verifier_exception_and_keyboard_interrupt_propagate():
    class Bad:
        def score(self, batch):
            raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        qstar.search("4 5 6 10", generator=programmatic(), verifier=Bad())

    class Interrupt:
        def expand(self, batch):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        qstar.search("4 5 6 10", generator=Interrupt(), verifier=oracle())


@pytest.mark.parametrize("result,match", [
    (lambda b: [["a"]] * (len(b) - 1), r"generator 'Shape': expand\(\) returned \d+ lists for a batch of \d+"),
    (lambda b: "abc", r"generator 'Shape': expand\(\) result is a str, expected a list"),
    (lambda b: [["a"], 5] + [["a"]] * (len(b) - 2), r"generator 'Shape': expand\(\) result \[1\] is a int"),
    (lambda b: [[3]] * len(b), r"generator 'Shape': expand\(\) result \[0\]\[0\] is a int, expected a str"),
    (lambda b: None, r"generator 'Shape': expand\(\) result is a NoneType"),
])
def test_wrong_generator_shapes_raise_value_error(result, match):
    class Shape:
        def expand(self, batch):
            return result(batch)

    with pytest.raises(ValueError, match=match) as e:
        qstar.search(["4 5 6 10", "1 2 4 7"], algo="beam", generator=Shape(), verifier=oracle())
    assert isinstance(e.value, qstar.PluginError)


@pytest.mark.parametrize("result,match", [
    (lambda b: [[0.5]] * (len(b) + 1), r"verifier 'MyPRM': score\(\) returned \d+ entries"),
    (lambda b: [[0.5, 0.5]] * len(b), r"verifier 'MyPRM': score\(\) result \[0\] has 2 scores, expected 1"),
    (lambda b: [["x"]] * len(b), r"verifier 'MyPRM': score\(\) result \[0\]\[0\] is a str, expected a float"),
    (lambda b: [[math.nan]] * len(b), r"verifier 'MyPRM' returned a non-finite score"),
    (lambda b: [[1.5]] * len(b), r"verifier 'MyPRM' returned score 1.5 outside \[0,1\]"),
])
def test_wrong_verifier_shapes_raise_value_error(result, match):
    class V:
        name = "MyPRM"

        def score(self, batch):
            return result(batch)

    with pytest.raises(ValueError, match=match):
        qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=V())


def test_numpy_and_bare_float_scores_are_accepted():
    np = pytest.importorskip("numpy")

    class NumpyPRM:
        def score(self, batch):
            return np.full((len(batch), 1), 0.5)

    class FloatPRM:
        def score(self, batch):
            return [0.5 for _ in batch]  # one new step per request: a bare number is fine

    a = qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=NumpyPRM(), seed=1)[0]
    b = qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=FloatPRM(), seed=1)[0]
    assert a.steps == b.steps


def test_request_objects_expire_with_their_call():
    kept = []

    class Keeper(CountingGenerator):
        def expand(self, batch):
            kept.extend(batch)
            assert batch[0].prompt.startswith("Use numbers")
            assert batch[0].context().startswith(batch[0].prompt)
            return super().expand(batch)

    qstar.search("4 5 6 10", generator=Keeper(), verifier=CountingVerifier())
    with pytest.raises(qstar.Error, match="used after the plug-in call"):
        kept[0].prefix


def test_outcome_verifier_in_python():
    class ORM:
        def __init__(self):
            self.sizes = []

        def score_outcomes(self, batch):
            self.sizes.append(len(batch))
            return [1.0 if qstar.game24.check(r.problem, qstar.game24.extract_answer(r.steps) or "") else 0.0
                    for r in batch]

    orm = ORM()
    r = qstar.search("4 5 6 10", algo="best-of-n", generator=programmatic(0.0), verifier=orm, n=16)[0]
    assert orm.sizes and sum(orm.sizes) == 16
    assert r.correct


def test_gil_is_released_while_the_core_works():
    problems = qstar.game24.load(ranks="901-1000")
    out = {}

    def work():
        out["r"] = qstar.search(problems, algo="mcts", generator=programmatic(), verifier=oracle(), seed=0,
                                num_simulations=64, expand_k=8)

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    t0 = time.perf_counter()
    while t.is_alive():
        spins += 1
    elapsed = time.perf_counter() - t0
    t.join()
    assert len(out["r"]) == 100
    # With the GIL held for the whole search this loop could not run until it ended.
    assert elapsed > 0.05 and spins > 10000, (elapsed, spins)


def test_python_plugins_from_several_threads():
    errors = []

    def work(seed):
        try:
            rs = qstar.search(PUZZLES, algo="beam", generator=CountingGenerator(), verifier=CountingVerifier(),
                              seed=seed)
            assert len(rs) == len(PUZZLES)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_no_reference_leaks_over_10k_calls():
    # A string built at run time: a literal like "a" is a cached object shared with the whole
    # interpreter, whose count other code (earlier tests' garbage) changes.
    step = "".join(["leak-check ", str(len(PUZZLES))])

    class Gen:
        def expand(self, batch):
            return [[step] for _ in batch]

    class Prm:
        def score(self, batch):
            return [[0.5] * len(r.new_steps) for r in batch]

    gen, prm = Gen(), Prm()
    qstar.testing.plugin_call_seconds(gen, "generator", batch_size=8, repeats=100)  # warm up caches
    qstar.testing.plugin_call_seconds(prm, "verifier", batch_size=8, repeats=100)
    gc.collect()
    refs = (sys.getrefcount(gen), sys.getrefcount(prm), sys.getrefcount(step), sys.getrefcount(Gen))
    blocks = sys.getallocatedblocks()
    qstar.testing.plugin_call_seconds(gen, "generator", batch_size=8, repeats=10000)
    qstar.testing.plugin_call_seconds(prm, "verifier", batch_size=8, repeats=10000)
    for _ in range(200):
        qstar.search(PUZZLES[:2], algo="beam", generator=gen, verifier=prm, num_beams=4, width=2, max_depth=3)
    gc.collect()
    assert (sys.getrefcount(gen), sys.getrefcount(prm), sys.getrefcount(step), sys.getrefcount(Gen)) == refs
    # 20k plug-in calls with 8 request objects each: a leak of one object per request would
    # leave >= 160k blocks; allow a little interpreter noise.
    assert sys.getallocatedblocks() - blocks < 2000
