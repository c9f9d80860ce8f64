"""A search with qstar's built-in models: the LibTorch LM generator and PRM.

Model folders are Hugging Face style (config.json, model.safetensors, tokenizer.json). They
are taken from the command line, from $QSTAR_GENERATOR_DIR / $QSTAR_PRM_DIR, or from the
repository's models/ folder (a folder whose name contains "prm" is the PRM, another one the
generator). Where there are none, or this qstar was built without LibTorch, the script says
so and runs the same search with the programmatic generator and the exact oracle instead,
so that it always shows the API.

    PYTHONPATH=build/python python3 examples/python/builtin_models.py [GEN_DIR [PRM_DIR]] [--puzzles N]
"""
import argparse
import os
import sys
import time
from pathlib import Path

import qstar

REPO = Path(__file__).resolve().parents[2]


def find_models(args):
    gen = args.generator or os.environ.get("QSTAR_GENERATOR_DIR")
    prm = args.prm or os.environ.get("QSTAR_PRM_DIR")
    models = REPO / "models"
    if models.is_dir():
        folders = sorted(p for p in models.iterdir() if (p / "config.json").exists())
        # models/generator and models/prm first (the layout of the trained default models)
        folders.sort(key=lambda p: p.name not in ("generator", "prm"))
        if prm is None:
            prm = next((str(p) for p in folders if "prm" in p.name.lower()), None)
        if gen is None:
            gen = next((str(p) for p in folders if "prm" not in p.name.lower()), None)
    return gen, prm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generator", nargs="?", help="generator model folder")
    ap.add_argument("prm", nargs="?", help="PRM model folder or TorchScript file")
    ap.add_argument("--puzzles", type=int, default=5)
    ap.add_argument("--n", type=int, default=8, help="the algorithm's budget (beams, samples, expansions, ...)")
    ap.add_argument("--algo", default="beam", choices=qstar.ALGORITHMS)
    args = ap.parse_args()

    problems = qstar.game24.load(ranks="901-1000")[: args.puzzles]
    gen_dir, prm_dir = find_models(args)
    if not qstar.has_torch:
        print("qstar was built without LibTorch: using the programmatic generator and the oracle instead")
        gen_dir = prm_dir = None
    elif gen_dir is None:
        print("no model folders found (models/ is empty or missing, no arguments, no $QSTAR_GENERATOR_DIR): "
              "using the programmatic generator and the oracle instead")

    if gen_dir:
        generator = qstar.LMGenerator(gen_dir, temperature=0.8, max_step_tokens=48)
        print(f"generator: LMGenerator({gen_dir})")
    else:
        generator = qstar.game24.ProgrammaticGenerator(error_rate=0.1)
    if gen_dir and prm_dir:
        verifier = qstar.PRM(prm_dir)
        print(f"verifier:  PRM({prm_dir}, kind={verifier.kind})")
    else:
        verifier = qstar.game24.OracleVerifier()
        if gen_dir:
            print("verifier:  no PRM folder found: the exact oracle")

    t0 = time.perf_counter()
    budget_knob = {"best-of-n": "n", "beam": "num_beams", "dvts": "n", "best-first": "max_expansions",
                   "mcts": "num_simulations"}[args.algo]
    results = qstar.search(problems, algo=args.algo, generator=generator, verifier=verifier, seed=0,
                           max_depth=6, **{budget_knob: args.n})
    elapsed = time.perf_counter() - t0
    for r in results:
        print(f"  {r.problem.text:<12} answer={r.answer!s:<28} correct={r.correct} "
              f"gen_tokens={r.stats.generated_tokens}")
    solved = sum(bool(r.correct) for r in results)
    print(f"{args.algo}: solved {solved}/{len(results)} in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
