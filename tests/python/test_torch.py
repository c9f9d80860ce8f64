"""The LibTorch backends from Python, on tiny random models written by the test."""
import os
import subprocess
import sys

import pytest

qstar = pytest.importorskip("qstar")
if not qstar.has_torch:
    pytest.skip("this qstar was built without LibTorch", allow_module_level=True)
from tiny_model import write_llama  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_llama")
    write_llama(str(d), seed=3)
    return str(d)


def test_lm_generator_and_prm_in_a_search(model_dir):
    gen = qstar.LMGenerator(model_dir, max_step_tokens=6, temperature=1.0)
    prm = qstar.PRM(model_dir, kind="token-logit")
    assert prm.kind == "token-logit" and prm.has_step_scores and prm.has_outcome_scores
    assert gen.params["max_step_tokens"] == 6 and gen.params["step_delimiter"] == "\n"
    run = lambda seed: qstar.search(["4 5 6 10", "1 2 4 7"], algo="beam", generator=gen, verifier=prm,  # noqa: E731
                                    seed=seed, num_beams=4, width=2, max_depth=3)
    a, b = run(11), run(11)
    for r in a:
        assert r.stats.generated_tokens > 0 and r.stats.verifier_calls >= 1
        assert all(0.0 <= c.score <= 1.0 for c in r.candidates)
    # deterministic on CPU: the same steps; scores equal up to float rounding (the second run
    # reads the KV cache the first one filled)
    for x, y in zip(a, b):
        assert [c.steps for c in x.candidates] == [c.steps for c in y.candidates]
        assert [c.score for c in x.candidates] == pytest.approx([c.score for c in y.candidates], abs=1e-5)
    s = gen.stats()
    assert s["expand_calls"] >= 2 and s["steps"] > 0
    assert prm.stats()["calls"] >= 2
    assert gen.tokenize("4 + 5") == gen.tokenize("4 + 5") and len(gen.tokenize("4 + 5")) == 5


def test_prm_kinds_selectable(model_dir, tmp_path):
    # chat-logit: each step a user turn, the judgement "+" an assistant turn of this template.
    tpl = tmp_path / "turns.jinja"
    tpl.write_text("{% for m in messages %}#{{ m.role }}:{{ m.content }}\n{% endfor %}")
    prm = qstar.PRM(model_dir, kind="chat-logit", chat_template=str(tpl))
    assert prm.kind == "chat-logit" and prm.has_step_scores and prm.has_outcome_scores
    gen = qstar.LMGenerator(model_dir, max_step_tokens=4)
    r = qstar.search(["4 5 6 10"], algo="beam", generator=gen, verifier=prm, seed=1, num_beams=2, width=2,
                     max_depth=2)[0]
    assert r.stats.verifier_calls >= 1 and all(0.0 <= c.score <= 1.0 for c in r.candidates)
    # a head kind must match the folder's architecture (this one is a LlamaForCausalLM)
    for kind, arch in [("process-reward", "Qwen2ForProcessRewardModel"), ("seq-class", "ForSequenceClassification")]:
        with pytest.raises(qstar.InvalidArgument, match=arch):
            qstar.PRM(model_dir, kind=kind)


def test_backend_errors(model_dir, tmp_path):
    with pytest.raises(qstar.IoError, match="no_such_model"):
        qstar.LMGenerator(str(tmp_path / "no_such_model"))
    with pytest.raises(qstar.InvalidArgument, match="temprature"):
        qstar.LMGenerator(model_dir, temprature=0.5)
    with pytest.raises(qstar.InvalidArgument, match="top_p"):
        qstar.LMGenerator(model_dir, top_p=0.0)
    with pytest.raises(qstar.InvalidArgument, match="kind"):
        qstar.PRM(model_dir, kind="reward")


def test_import_together_with_torch(model_dir):
    pytest.importorskip("torch")
    code = (
        "import {first}, {second}\n"
        "import qstar, torch\n"
        "g = qstar.LMGenerator({path!r}, max_step_tokens=4)\n"
        "r = qstar.search('4 5 6 10', algo='best-of-n', generator=g, verifier=None, n=2, max_depth=2)[0]\n"
        "assert torch.ones(2).sum().item() == 2.0\n"
        "print('ok', r.stats.generated_tokens > 0)\n"
    )
    # torch first, then qstar, in a fresh interpreter; qstar first, then torch, here.
    out = subprocess.run([sys.executable, "-c", code.format(first="torch", second="qstar", path=model_dir)],
                         capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok True"
    import torch

    g = qstar.LMGenerator(model_dir, max_step_tokens=4)
    r = qstar.search("4 5 6 10", algo="best-of-n", generator=g, verifier=None, n=2, max_depth=2)[0]
    assert r.stats.generated_tokens > 0 and torch.ones(3).sum().item() == 3.0
