"""Built-in plug-ins called from Python plug-ins: each built-in generator and verifier, wrapped
in a Python plug-in that delegates to its expand / score_steps / score_outcomes with the batch
it received, gives the same search results as the built-in alone (fixed seed)."""
import pytest

qstar = pytest.importorskip("qstar")

from helpers import KNOB, WRAP_PUZZLES as PUZZLES, WrapGenerator, WrapORM, dicts, same_results  # noqa: E402


@pytest.mark.parametrize("algo", sorted(KNOB))
def test_game24_programmatic_and_oracle(algo):
    same_results(lambda: qstar.game24.ProgrammaticGenerator(error_rate=0.2), qstar.game24.OracleVerifier, algo,
                 **{KNOB[algo]: 16})


def test_game24_outcome_oracle_and_no_verifier():
    gen = lambda: qstar.game24.ProgrammaticGenerator(error_rate=0.3)  # noqa: E731
    _, ver = same_results(gen, qstar.game24.OracleOutcomeVerifier, "best-of-n", n=16)
    assert isinstance(ver, WrapORM)
    same_results(gen, lambda: None, "best-of-n", n=16)


@pytest.mark.parametrize("algo", ["beam", "mcts"])
def test_testing_constant_plugins(algo):
    same_results(lambda: qstar.testing.ConstantGenerator(5), qstar.testing.ConstantVerifier, algo,
                 **{KNOB[algo]: 16})


def test_batch_cap_is_kept_when_the_wrapper_passes_a_whole_batch_on():
    """A wrapper without max_batch_size gets whole batches; the built-in splits them to its own
    cap (as the search would), so the results are the same."""
    make = lambda: qstar.game24.ProgrammaticGenerator(error_rate=0.1, max_batch_size=3)  # noqa: E731
    assert make().max_batch_size == 3
    alone = qstar.search(PUZZLES, algo="beam", generator=make(), verifier=qstar.game24.OracleVerifier(), seed=2,
                         num_beams=8)
    gen = WrapGenerator(make(), forward_max_batch=False)
    wrapped = qstar.search(PUZZLES, algo="beam", generator=gen, verifier=qstar.game24.OracleVerifier(), seed=2,
                           num_beams=8)
    assert dicts(wrapped) == dicts(alone)


class FirstOnly:
    """Wraps a built-in generator and keeps only its first proposal for each request (a
    filter the delegation makes possible); counts what it saw and what it passed on."""

    def __init__(self):
        self.gen = qstar.game24.ProgrammaticGenerator(error_rate=0.5)
        self.seen = self.kept = 0

    def expand(self, batch):
        proposals = self.gen.expand(batch)
        assert all(isinstance(s, qstar.Step) for steps in proposals for s in steps)
        self.seen += sum(len(p) for p in proposals)
        out = [steps[:1] for steps in proposals]
        self.kept += sum(len(p) for p in out)
        return out


def test_a_python_plugin_can_filter_what_a_builtin_proposes():
    f = FirstOnly()
    rs = qstar.search(PUZZLES, algo="beam", generator=f, verifier=qstar.game24.OracleVerifier(), seed=1,
                      num_beams=8, width=4)
    assert sum(r.stats.generated_steps for r in rs) == f.kept < f.seen
    assert all(r.candidates for r in rs)


def test_builtin_methods_reject_what_is_not_a_live_batch():
    gen = qstar.game24.ProgrammaticGenerator()
    orm = qstar.game24.OracleOutcomeVerifier()
    with pytest.raises(TypeError, match=r"expand: batch\[0\] is a str, expected a qstar.ExpandRequest"):
        gen.expand(["4 5 6 10"])
    with pytest.raises(TypeError, match="expected a list"):
        gen.expand(None)
    assert gen.expand([]) == []
    with pytest.raises(qstar.InvalidArgument, match="no step scores"):
        orm.score_steps([])

    kept = []

    class Keeper:
        def expand(self, batch):
            kept.append(batch)
            return gen.expand(batch)

    qstar.search("4 5 6 10", algo="best-of-n", generator=Keeper(), verifier=None, n=2)
    with pytest.raises(qstar.Error, match="used after the plug-in call"):
        gen.expand(kept[0])

    class WrongKind:
        def score(self, batch):
            return orm.score_outcomes(batch)  # StepScoreRequests, not OutcomeRequests

    with pytest.raises(TypeError, match="expected a qstar.OutcomeRequest"):
        qstar.search("4 5 6 10", algo="beam", generator=gen, verifier=WrongKind(), num_beams=4)


def test_builtin_verifier_is_duck_compatible():
    v = qstar.game24.OracleVerifier()
    assert v.max_batch_size == 0 and qstar.game24.OracleVerifier(max_batch_size=4).max_batch_size == 4
    got = []

    class Spy:
        def score(self, batch):
            a, b = v.score(batch), v.score_steps(batch)
            assert a == b
            got.append(a)
            return a

    qstar.search("4 5 6 10", algo="beam", generator=qstar.game24.ProgrammaticGenerator(), verifier=Spy(), num_beams=4)
    assert got and all(0.0 <= x <= 1.0 for batch in got for row in batch for x in row)


# ---- LibTorch backends on a tiny random model ---------------------------------------------------

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    if not qstar.has_torch:
        pytest.skip("this qstar was built without LibTorch")
    from tiny_model import write_llama

    d = tmp_path_factory.mktemp("tiny_llama_wrap")
    write_llama(str(d), seed=3)
    return str(d)


@pytest.mark.parametrize("algo", ["beam", "best-of-n", "mcts"])
def test_lm_generator_and_prm(model_dir, algo):
    gen = lambda: qstar.LMGenerator(model_dir, max_step_tokens=6, temperature=1.0, max_batch=3)  # noqa: E731
    prm = lambda: qstar.PRM(model_dir, kind="token-logit", max_batch=4)  # noqa: E731
    assert gen().max_batch_size == 3 and prm().max_batch_size == 4
    kw = {"best-of-n": {"n": 6}, "beam": {"num_beams": 4, "width": 2}, "mcts": {"num_simulations": 6}}[algo]
    same_results(gen, prm, algo, problems=PUZZLES[:2], max_depth=3, **kw)


def test_lm_generator_splits_a_whole_batch_to_its_cap(model_dir):
    """The wrapper declares no max_batch_size, so it gets whole batches: the LM generator's
    expand splits them into max_batch-sized calls as the search does for it."""
    runs = []
    for wrap in (False, True):
        g = qstar.LMGenerator(model_dir, max_step_tokens=4, max_batch=2)
        r = qstar.search(PUZZLES, algo="beam", generator=WrapGenerator(g, forward_max_batch=False) if wrap else g,
                         verifier=qstar.game24.OracleVerifier(), seed=4, num_beams=4, width=2,
                         max_depth=2)
        runs.append((dicts(r), g.stats()["expand_calls"], g.stats()["requests"]))
    assert runs[0] == runs[1]
    assert runs[0][1] >= runs[0][2] / 2 > 1


def test_lm_generator_without_verifier(model_dir):
    gen = lambda: qstar.LMGenerator(model_dir, max_step_tokens=5)  # noqa: E731
    wrapped, _ = same_results(gen, lambda: None, "best-of-n", problems=PUZZLES[:2], n=4, max_depth=2)
    assert wrapped.inner.stats()["expand_calls"] >= 1
