"""Keyword parameters mirror the C++ params structs and are validated by them."""
import pytest

qstar = pytest.importorskip("qstar")
from helpers import oracle, programmatic  # noqa: E402


def test_defaults_are_the_cpp_defaults():
    beam = qstar.default_params("beam")
    assert beam["num_beams"] == 16 and beam["width"] == 4 and beam["lookahead"] == 0 and beam["dedup"] is False
    assert beam["max_depth"] == 16 and beam["aggregation"] == "last" and beam["voting"] == "weighted"
    assert beam["budget"] == {"max_generated_tokens": 0, "max_verifier_tokens": 0, "max_generator_calls": 0,
                              "max_nodes": 0, "max_wall_seconds": 0.0}
    mcts = qstar.default_params("mcts")
    assert mcts["num_simulations"] == 64 and mcts["selection"] == "puct" and mcts["c_puct_init"] == 1.25
    assert mcts["final_choice"] == "visits" and mcts["eval"] == "value"
    assert qstar.default_params("best-first")["g_aggregation"] == "min"
    assert qstar.default_params("bon") == qstar.default_params("best-of-n")
    for algo in qstar.ALGORITHMS:
        d = qstar.default_params(algo)
        assert qstar.check_params(algo) == d
        # every default is accepted back as a keyword
        flat = {k: v for k, v in d.items() if k != "budget"}
        assert qstar.check_params(algo, budget=d["budget"], **flat) == d


def test_keywords_reach_the_search():
    r = qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=oracle(), num_beams=8, width=2,
                     budget={"max_generator_calls": 2})[0]
    assert r.stats.generator_calls == 2 and r.stop_reason == "generator_calls"
    assert qstar.check_params("mcts", selection="uct", budget={"max_wall_seconds": 1})["budget"]["max_wall_seconds"] == 1.0


@pytest.mark.parametrize("algo,kw,match", [
    ("beam", dict(num_beams=16, width=3), "num_beams must be a multiple of width"),
    ("beam", dict(width=0), "width must be >= 1"),
    ("beam", dict(widht=2), r"widht: 'beam' has no parameter"),
    ("beam", dict(num_beams="8"), "num_beams: expected an integer, got a string"),
    ("beam", dict(num_beams=2**40), "num_beams: .* out of range"),
    ("beam", dict(dedup=1), "dedup: expected a bool"),
    ("beam", dict(aggregation="median"), "aggregation: 'median' is not one of"),
    ("beam", dict(budget={"max_nodes": 1}), "budget.max_nodes must be 0"),
    ("beam", dict(budget={"max_nodez": 5}), "budget.max_nodez"),
    ("beam", dict(budget=5), "budget: expected a dict"),
    ("mcts", dict(pw_alpha=2.0), "pw_alpha must be in"),
    ("mcts", dict(selection="ucb"), "selection: 'ucb' is not one of puct, uct"),
    ("best-first", dict(lambda_=-1), "lambda must be finite and >= 0"),
    ("best-first", dict(stop_threshold=-1), "stop_threshold must be >= 0"),
    ("best-of-n", dict(n=0), "n must be >= 1"),
    ("best-of-n", dict(scoring="best"), "scoring: 'best'"),
    ("dvts", dict(num_beams=4), "num_beams: 'dvts' has no parameter"),
    ("mcts", dict(max_depth=0), "max_depth must be >= 1"),
    ("astar", dict(), "algo must be one of"),
])
def test_bad_parameters_raise(algo, kw, match):
    with pytest.raises(qstar.InvalidArgument, match=match) as e:
        qstar.search("4 5 6 10", algo=algo, generator=programmatic(), verifier=oracle(), **kw)
    assert isinstance(e.value, ValueError) and isinstance(e.value, qstar.Error)


def test_bad_seed_and_plugins():
    with pytest.raises(qstar.InvalidArgument, match="seed"):
        qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle(), seed=-1)
    with pytest.raises(qstar.InvalidArgument, match="seed"):
        qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle(), seed=1.5)
    with pytest.raises(TypeError, match="generator"):
        qstar.search("4 5 6 10", verifier=oracle())
    with pytest.raises(TypeError, match="expand"):
        qstar.search("4 5 6 10", generator=object(), verifier=oracle())
    with pytest.raises(TypeError, match="score"):
        qstar.search("4 5 6 10", generator=programmatic(), verifier=object())
    with pytest.raises(qstar.InvalidArgument, match="needs a verifier"):
        qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=None)
    with pytest.raises(qstar.InvalidArgument, match="step scores"):
        qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=qstar.game24.OracleOutcomeVerifier())


def test_lambda_keyword_alias():
    # `lambda` is a Python keyword: lambda_=... (or **{"lambda": ...}) sets BestFirstParams::lambda
    assert qstar.check_params("best-first", lambda_=0.5)["lambda"] == 0.5
    assert qstar.check_params("best-first", **{"lambda": 0.25})["lambda"] == 0.25


def test_custom_aggregation_is_called():
    seen = []

    def agg(scores):
        seen.append(list(scores))
        return min(scores) if scores else 0.0

    r = qstar.search("4 5 6 10", algo="beam", generator=programmatic(), verifier=oracle(), custom_aggregation=agg)[0]
    assert seen and all(isinstance(x, float) for s in seen for x in s)
    assert r.answer is not None
    with pytest.raises(qstar.InvalidArgument, match="custom_aggregation"):
        qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle(), aggregation="custom")
