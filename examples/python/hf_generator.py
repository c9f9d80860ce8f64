"""Wrapping a Hugging Face ``transformers`` causal LM as a qstar Generator.

A Generator is any object with ``expand(batch)``: here one batched ``model.generate`` call per
search iteration covers every request of every problem. Each request asks for
``num_candidates`` next steps after ``request.context()`` (the prompt and the steps so far,
each followed by a newline); a step is the generated text up to the first newline. Sampling
uses the request's seed, so a search is reproducible.

This example runs only where ``transformers`` (and ``torch``) are installed; elsewhere it says
so and exits 0. It needs a model: pass a folder or hub name (default: $QSTAR_HF_MODEL).

    PYTHONPATH=build/python python3 examples/python/hf_generator.py [MODEL] [--puzzles N]
"""
import argparse
import os
import sys

import qstar


class HFGenerator:
    """qstar Generator over a transformers causal LM (batched; left padding)."""

    def __init__(self, model_name, max_step_tokens=48, temperature=0.8, device="cpu"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_name)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(model_name).to(device).eval()
        self.device = device
        self.max_step_tokens = max_step_tokens
        self.temperature = temperature
        self.name = f"hf:{model_name}"

    def expand(self, batch):
        contexts, owners = [], []
        for i, request in enumerate(batch):
            for _ in range(request.num_candidates):
                contexts.append(request.context("\n"))
                owners.append(i)
        # One seed per call, derived from the requests' seeds: reproducible for a search seed.
        self.torch.manual_seed(hash(tuple(r.seed for r in batch)) & 0x7FFFFFFF)
        enc = self.tok(contexts, return_tensors="pt", padding=True).to(self.device)
        limit = min([self.max_step_tokens] + [r.max_new_tokens for r in batch if r.max_new_tokens > 0])
        greedy = any(r.greedy for r in batch) or self.temperature == 0
        with self.torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=limit, do_sample=not greedy,
                                      temperature=self.temperature if not greedy else None,
                                      pad_token_id=self.tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        steps = [[] for _ in batch]
        for row, i in zip(new, owners):
            text = self.tok.decode(row, skip_special_tokens=True)
            cut = text.split("\n", 1)[0]
            finish = "answer" if "Answer:" in cut else ("step" if "\n" in text else "length")
            n_tokens = min(len(self.tok(cut + "\n")["input_ids"]), limit)
            steps[i].append(qstar.Step(cut, num_tokens=n_tokens, finish=finish))
        return steps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=os.environ.get("QSTAR_HF_MODEL"))
    ap.add_argument("--puzzles", type=int, default=3)
    args = ap.parse_args()
    try:
        import transformers  # noqa: F401  (first: it fails fast where it is missing)
        import torch  # noqa: F401
    except ImportError as e:
        print(f"skipped: this example needs transformers and torch ({e})")
        return 0
    if not args.model:
        print("skipped: give a model folder or hub name (or set QSTAR_HF_MODEL)")
        return 0
    generator = HFGenerator(args.model)
    problems = qstar.game24.load(ranks="901-1000")[: args.puzzles]
    results = qstar.search(problems, algo="beam", generator=generator, verifier=qstar.game24.OracleVerifier(),
                           seed=0, num_beams=8, width=4, max_depth=5)
    for r in results:
        print(f"{r.problem.text:<12} answer={r.answer} correct={r.correct}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
