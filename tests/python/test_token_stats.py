"""Per-token statistics of steps from Python: qstar.Step.token_logprobs / token_entropies, the
LMGenerator's values against the independent reference forward (tests/torch/reference_llama.py,
torch; log-softmax and entropy in float64), and their way through the tree and trace files."""
import sys
from pathlib import Path

import pytest

qstar = pytest.importorskip("qstar")


class ShortTask:
    """Prompt = the problem text and a newline; never terminal (max_depth ends the chains)."""

    def format(self, problem):
        return f"{problem.text}\n"

    def is_terminal(self, step):
        return False

    def extract_answer(self, steps):
        return steps[-1] if steps else None


class Recording:
    """Wraps a generator and keeps every step it returned."""

    def __init__(self, gen):
        self.gen = gen
        self.steps = []

    def expand(self, batch):
        out = self.gen.expand(batch)
        for steps in out:
            self.steps.extend(steps)
        return out


def test_step_fields_from_python_generators(tmp_path):
    s = qstar.Step("ab", tokens=[3, 4], logprob=-0.75, token_logprobs=[-0.5, -0.25], token_entropies=[1.5, 0.0])
    assert s.token_logprobs == [-0.5, -0.25] and s.token_entropies == [1.5, 0.0]
    assert qstar.Step("x").token_logprobs == [] and qstar.Step("x").token_entropies == []

    class Gen:
        def __init__(self, extra=0):
            self.extra = extra

        def expand(self, batch):
            return [[qstar.Step(f"s{r.depth}{j}", tokens=[1, 2], logprob=-0.75,
                                token_logprobs=[-0.5, -0.25] + [-1.0] * self.extra, token_entropies=[0.125, 2.0])
                     for j in range(r.num_candidates)] for r in batch]

    res = qstar.search(["1"], task=ShortTask(), algo="best-of-n", generator=Gen(), verifier=None, scoring="none", n=2,
                       max_depth=2, keep_tree=True)
    tree = res[0].tree
    nodes = [tree.node(i) for i in range(1, len(tree))]
    assert nodes and all(n["token_logprobs"] == [-0.5, -0.25] and n["token_entropies"] == [0.125, 2.0] for n in nodes)
    assert "token_logprobs" not in tree.node(0)
    # through a trace file and back
    path = str(tmp_path / "t.jsonl")
    qstar.write_trace(path, res)
    back = qstar.read_trace(path)[0].tree
    assert [back.node(i) for i in range(len(back))] == [tree.node(i) for i in range(len(tree))]
    assert '"token_entropies":[0.125,2]' in open(path).read()
    with pytest.raises(qstar.PluginError, match="3 token_logprobs but num_tokens = 2"):
        qstar.search(["1"], task=ShortTask(), algo="best-of-n", generator=Gen(extra=1), verifier=None,
                     scoring="none", n=2, max_depth=1)


@pytest.mark.skipif(not qstar.has_torch, reason="this qstar was built without LibTorch")
@pytest.mark.parametrize("settings", [dict(temperature=1.0), dict(temperature=0.7, top_k=8),
                                      dict(temperature=1.2, top_p=0.8), dict(temperature=0.0)])
def test_lm_generator_stats_match_the_reference_forward(tmp_path, settings):
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "torch"))
    import reference_llama as ref  # noqa: E402
    from tiny_model import write_llama

    write_llama(str(tmp_path), seed=5)
    gen = qstar.LMGenerator(str(tmp_path), max_step_tokens=8, **settings)
    rec = Recording(gen)
    problems = ["4 5 6 10", "1 2 4 7"]
    res = qstar.search(problems, task=ShortTask(), algo="best-of-n", generator=rec, verifier=None, scoring="none", n=3,
                       max_depth=2, keep_tree=True, seed=9)
    # The steps as Python sees them: one value per token, summing to logprob.
    assert rec.steps
    for s in rec.steps:
        assert len(s.token_logprobs) == len(s.tokens) == len(s.token_entropies) == s.num_tokens
        assert sum(s.token_logprobs) == pytest.approx(s.logprob, abs=1e-5)
        assert all(h >= 0 for h in s.token_entropies)

    cfg, W = ref.load_config(str(tmp_path)), ref.load_weights(str(tmp_path))
    worst, checked = 0.0, 0
    for problem, r in zip(problems, res):
        tree = r.tree
        prompt = gen.tokenize(f"{problem}\n")
        for i in range(1, len(tree)):
            node = tree.node(i)
            ctx, p = [], node["parent"]
            while p > 0:
                ctx = tree.node(p)["tokens"] + ctx
                p = tree.node(p)["parent"]
            ctx = prompt + ctx
            toks = node["tokens"]
            assert len(node["token_logprobs"]) == len(toks) == len(node["token_entropies"])
            if not toks:
                continue
            with torch.no_grad():
                logits = ref.forward(cfg, W, ctx + toks).double()
            lp = torch.log_softmax(logits, dim=-1)
            ent = -(lp.exp() * lp).sum(dim=-1)
            for k, t in enumerate(toks):
                row = len(ctx) - 1 + k
                d1 = abs(node["token_logprobs"][k] - lp[row, t].item())
                d2 = abs(node["token_entropies"][k] - ent[row].item())
                worst = max(worst, d1, d2)
                checked += 1
    assert checked > 20
    # two float32 forwards (qstar's cached decode, the reference's full pass): measured at most
    # 5.1e-6 over these four settings; the bound is 2e-5 (as tests/torch/test_token_stats.cpp)
    print(f"{settings}: {checked} tokens, max difference {worst:.3g}")
    assert worst <= 2e-5, f"max difference {worst} over {checked} tokens"


@pytest.mark.skipif(not qstar.has_torch, reason="this qstar was built without LibTorch")
def test_token_stats_off(tmp_path):
    from tiny_model import write_llama

    write_llama(str(tmp_path), seed=6)
    on, off = (qstar.LMGenerator(str(tmp_path), max_step_tokens=6, token_stats=v) for v in (True, False))
    assert off.params["token_stats"] is False and on.params["token_stats"] is True
    run = lambda g: qstar.search(["3 3 8 8"], task=ShortTask(), algo="best-of-n", generator=g,  # noqa: E731
                                 verifier=None, scoring="none", n=2, max_depth=2, keep_tree=True, seed=1)[0].tree
    a, b = run(on), run(off)
    assert len(a) == len(b)
    for i in range(1, len(a)):
        x, y = a.node(i), b.node(i)
        assert x["tokens"] == y["tokens"] and x["logprob"] == y["logprob"]
        assert len(x.get("token_logprobs", [])) == len(x["tokens"]) > 0
        assert "token_logprobs" not in y and "token_entropies" not in y
        assert sum(x["token_logprobs"]) == pytest.approx(x["logprob"], abs=1e-5)
