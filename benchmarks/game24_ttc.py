#!/usr/bin/python3
"""Test-time compute on Game of 24: every search method at several budgets, one table, one plot.

Runs `qstar bench --json` once per (method, budget), keeps each run's JSON under
OUT/runs/ (a rerun skips the runs already there with the same command, so an interrupted
benchmark resumes and a partial one is still useful), then writes

  OUT/results.json   every row: method, budget, solve rate, tokens, steps, wall time, command
  OUT/results.md     the Markdown table
  OUT/solve_rate_vs_tokens.png   solve rate against generated tokens per puzzle (log x), one
                     line per method

Methods (see METHODS below): greedy; best-of-N with majority vote (no verifier); best-of-N
ranked by the ORM; best-of-N with PRM-weighted voting; step beam with b = N/M = 5 survivors
(ToT-BFS-like) and with M = 4; DVTS; best-first; MCTS; adaptive best-of-N (stops a puzzle once
its answers agree: majority and PRM-weighted vote); DeepConf (confidence-filtered vote, only
with a generator that reports token log-probabilities); and the exact oracle verifier as the
upper bound (beam with the oracle PRM, and pass@N: best-of-N ranked by the oracle ORM).

Usage (the one command is scripts/bench-ttc.sh):
  benchmarks/game24_ttc.py --qstar build/qstar --out benchmarks/results/ranks_901-1000
  benchmarks/game24_ttc.py --generator programmatic --prm oracle --orm oracle --ranks 901-903 \
      --budgets 1,4 --out /tmp/ttc        # no models needed (the CI smoke test)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The ToT paper's GPT-4 results on the same 100 puzzles (ranks 901-1000), Table 2 of Yao et
# al. 2023, "Tree of Thoughts". A different model (GPT-4, prompted), so context only.
TOT_GPT4 = [
    ("IO prompt", 7.3),
    ("CoT prompt", 4.0),
    ("CoT-SC (k=100)", 9.0),
    ("ToT (b=1)", 45.0),
    ("ToT (b=5)", 74.0),
]


class BenchError(Exception):
    """A bad argument or a failed qstar run: reported in one line, exit 2 (bad input) or 1."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


@dataclass
class Method:
    """One line of the plot: a qstar algorithm with fixed flags, run at several budgets."""

    key: str  # file-name-safe identifier, also used by --methods
    label: str  # shown in the table and the legend
    algo: str  # qstar --algo
    flags: list[str]  # extra qstar flags; GEN / PRM / ORM placeholders are substituted
    budgets: list[int]  # default --n values
    knob: str  # what --n means for this method
    # subset of {"prm", "orm", "logprobs"}; "logprobs": per-token log-probabilities (lm:, http:)
    needs: set[str] = field(default_factory=set)
    # --n -> extra flags for that budget (e.g. the beam width of the b=5 configuration)
    per_budget: dict[int, list[str]] = field(default_factory=dict)
    upper_bound: bool = False  # uses the exact oracle: plotted dashed


def methods(budgets: list[int] | None) -> list[Method]:
    """The benchmark's methods. `budgets` (from --budgets) replaces each method's default
    budget list, except greedy (always 1) and the b=5 beam (N = 5 M)."""
    B = budgets or [1, 4, 16, 64]
    nb = lambda default: budgets or default  # noqa: E731
    # b = N/M = 5 beams kept, M = 1, 2, 4, 8 proposals each (N = 5, 10, 20, 40); with --budgets,
    # the widths whose N does not exceed the largest budget (at least M = 1).
    tot_widths = [w for w in (1, 2, 4, 8) if budgets is None or 5 * w <= max(budgets)] or [1]
    return [
        Method("greedy", "greedy (1 sample, temperature 0)", "best-of-n",
               ["--verifier", "none", "--greedy"], [1], "samples"),
        Method("majority", "best-of-N, majority vote (no verifier)", "best-of-n",
               ["--verifier", "none", "--voting", "majority"], B, "samples N"),
        Method("orm", "best-of-N, ORM-weighted vote", "best-of-n",
               ["--verifier", "none", "--orm", "ORM", "--voting", "weighted"], B, "samples N", {"orm"}),
        Method("prm_vote", "best-of-N, PRM-weighted vote", "best-of-n",
               ["--verifier", "PRM", "--voting", "weighted"], B, "samples N", {"prm"}),
        Method("beam_b5", "step beam, b=5 kept (ToT-BFS-like), M=N/5 proposals each", "beam",
               ["--verifier", "PRM"], [5 * w for w in tot_widths], "beams N", {"prm"},
               {5 * w: ["--width", str(w)] for w in tot_widths}),
        Method("beam_m4", "step beam, M=4 (N/4 kept)", "beam",
               ["--verifier", "PRM", "--width", "4"], B, "beams N", {"prm"}),
        Method("dvts", "DVTS, M=4 (N/4 subtrees)", "dvts",
               ["--verifier", "PRM", "--width", "4"], B, "completions N", {"prm"}),
        Method("best_first", "best-first, K=4 children per expansion", "best-first",
               ["--verifier", "PRM", "--expand-k", "4"], nb([4, 16, 64]), "expansions", {"prm"}),
        Method("mcts", "MCTS (PUCT, K=4, 4 leaves/iteration)", "mcts",
               ["--verifier", "PRM", "--expand-k", "4", "--leaves", "4"], nb([4, 16, 64]), "simulations", {"prm"}),
        Method("particle_filter", "particle filtering (T=0.2, systematic resampling every step)", "particle-filter",
               ["--verifier", "PRM"], B, "particles N", {"prm"}),
        Method("rebase", "REBASE (T=0.2)", "rebase", ["--verifier", "PRM"], B, "completions N", {"prm"}),
        Method("adaptive_majority", "adaptive best-of-N (Beta stop 0.95, rounds of 4), majority vote", "adaptive-best-of-n",
               ["--verifier", "none", "--voting", "majority"], B, "samples N (at most)"),
        Method("adaptive_prm", "adaptive best-of-N (Beta stop 0.95, rounds of 4), PRM-weighted vote",
               "adaptive-best-of-n", ["--verifier", "PRM", "--voting", "weighted"], B, "samples N (at most)", {"prm"}),
        Method("deepconf", "DeepConf: lowest 16-token window confidence, top 90%, confidence-weighted vote",
               "deepconf", ["--verifier", "none"], B, "traces N", {"logprobs"}),
        Method("oracle_beam", "upper bound: step beam M=4 + exact oracle PRM", "beam",
               ["--verifier", "oracle", "--width", "4"], B, "beams N", upper_bound=True),
        Method("oracle_pass", "upper bound: pass@N (best-of-N ranked by the exact oracle)", "best-of-n",
               ["--verifier", "none", "--orm", "oracle", "--voting", "naive"], B, "samples N", upper_bound=True),
    ]


def die(msg: str, code: int = 2) -> None:
    raise BenchError(msg, code)


def parse_budgets(text: str | None) -> list[int] | None:
    if text is None:
        return None
    out = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            die(f"--budgets: '{part}' is not an integer (e.g. --budgets 1,4,16,64)")
        if n < 1:
            die(f"--budgets: {n} must be >= 1")
        out.append(n)
    return sorted(set(out))


def repo_path(path: str) -> str:
    """`path` relative to the repository when it lies inside it (qstar runs from there), so the
    commands kept in the results do not depend on where the checkout is."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(REPO))
    except ValueError:
        return str(p)


def spec_for(kind: str, value: str) -> str:
    """A verifier/generator flag value: 'programmatic', 'oracle', or a folder -> lm:/prm:."""
    if value in ("programmatic", "oracle"):
        return value
    prefix = "lm:" if kind == "generator" else "prm:"
    if value.startswith(("lm:", "prm:")):
        prefix, value = value[: value.index(":") + 1], value[value.index(":") + 1:]
    if not Path(value).exists():
        hint = " (train them with scripts/train.sh, or pass --generator programmatic --prm oracle --orm oracle)"
        die(f"--{kind}: model folder '{value}' does not exist{hint}")
    return prefix + repo_path(value)


def model_digest(spec: str) -> str | None:
    """sha256 of a model folder's model.safetensors (which weights were benchmarked)."""
    if not spec.startswith(("lm:", "prm:")):
        return None
    f = (REPO / spec.split(":", 1)[1]) / "model.safetensors"
    if not f.is_file():
        return None
    import hashlib

    return hashlib.sha256(f.read_bytes()).hexdigest()


def machine_info() -> dict:
    info = {"cpus": os.cpu_count()}
    try:
        info["loadavg"] = list(os.getloadavg())
    except OSError:
        pass
    return info


def run_one(args, m: Method, n: int, gen: str, prm: str, orm: str, runs_dir: Path, idx: int, total: int,
            t_start: float, may_run: bool) -> tuple[str, dict | None]:
    """Reuses or runs one `qstar bench` call: ("done", row), ("failed", None), or
    ("not run", None) when it is not kept and may_run is false."""
    subst = {"GEN": gen, "PRM": prm, "ORM": orm}
    flags = [subst.get(f, f) for f in m.flags] + m.per_budget.get(n, [])
    cmd = [str(args.qstar), "bench", "--data", repo_path(args.data), "--ranks", args.ranks, "--algo", m.algo,
           "--n", str(n), "--seed", str(args.seed), "--generator", gen, "--chunk", str(args.chunk),
           "--max-depth", str(args.max_depth)]
    cmd += flags + args.extra
    path = runs_dir / f"{m.key}_n{n}.json"
    cmd_str = shlex.join(cmd[1:])  # without the binary's path: reusable across build dirs
    digests = {k: model_digest(v) for k, v in (("generator", gen), ("prm", prm), ("orm", orm)) if v in flags + cmd}
    if path.exists() and not args.force:
        try:
            old = json.loads(path.read_text())
            # reused only when the command and the weights it read are the same
            if old.get("command") == cmd_str and old.get("model_sha256", digests) == digests:
                print(f"[ttc] {idx}/{total} {m.key} n={n}: reusing {path}", file=sys.stderr, flush=True)
                return "done", old["row"]
        except (json.JSONDecodeError, KeyError):
            pass
    if not may_run:
        print(f"[ttc] {idx}/{total} {m.key} n={n}: not run", file=sys.stderr, flush=True)
        return "not run", None
    print(f"[ttc] {idx}/{total} {m.key} n={n}: {cmd_str}", file=sys.stderr, flush=True)
    tmp = runs_dir / f".{m.key}_n{n}.bench.json"
    t0 = time.monotonic()
    load0 = machine_info().get("loadavg")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd + ["--json", str(tmp)], stdout=subprocess.PIPE, stderr=None if args.verbose else
                          subprocess.PIPE, text=True, env=env, cwd=REPO)
    dt = time.monotonic() - t0
    if proc.returncode != 0:
        msg = (proc.stderr or "").strip().splitlines()
        print(f"[ttc] {m.key} n={n} FAILED (exit {proc.returncode}): {msg[-1] if msg else ''}", file=sys.stderr,
              flush=True)
        if proc.returncode == 2 or args.fail_fast:
            die(f"qstar bench failed for {m.key} n={n}: {msg[-1] if msg else 'exit ' + str(proc.returncode)}",
                proc.returncode if proc.returncode == 2 else 1)
        return "failed", None
    bench = json.loads(tmp.read_text())
    tmp.unlink()
    (r,) = bench["results"]
    row = {
        "method": m.key,
        "label": m.label,
        "algo": m.algo,
        "knob": m.knob,
        "n": n,
        "upper_bound": m.upper_bound,
        "solved": r["solved"],
        "total": r["total"],
        "solve_rate": r["solve_rate"],
        "generated_tokens_per_problem": r["generated_tokens_per_problem"],
        "generated_steps_per_problem": r.get("generated_steps_per_problem"),
        "verifier_tokens_per_problem": r["verifier_tokens_per_problem"],
        "wall_s_per_problem": r["wall_s_per_problem"],
        "elapsed_s": round(dt, 3),  # the whole qstar process: start-up and model loading included
        "qstar_method": r["method"],
    }
    record = {"command": cmd_str, "model_sha256": digests, "row": row, "bench": bench, "loadavg_before": load0,
              "loadavg_after": machine_info().get("loadavg")}
    path.write_text(json.dumps(record, indent=1) + "\n")
    el = time.monotonic() - t_start
    print(f"[ttc] {idx}/{total} {m.key} n={n}: solved {r['solved']}/{r['total']} "
          f"({100 * r['solve_rate']:.1f}%), {r['generated_tokens_per_problem']:.0f} gen tok/pb, "
          f"{dt:.1f}s; {el / 60:.1f} min elapsed", file=sys.stderr, flush=True)
    return "done", row


def fmt_num(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


PRM_GUIDED = ("prm_vote", "beam_b5", "beam_m4", "dvts", "best_first", "mcts", "particle_filter", "rebase",
              "adaptive_prm")


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals, checked against the measured rows (only what was run)."""
    out = []
    guided = [r for r in rows if r["method"] in PRM_GUIDED]
    cheap = [r for r in guided if (r["generated_steps_per_problem"] or 0) <= 64]
    if cheap:
        b = max(cheap, key=lambda r: (r["solve_rate"], -r["generated_tokens_per_problem"]))
        out.append(f"PRM-guided search with <= 64 generated steps per puzzle: best {100 * b['solve_rate']:.1f}% "
                   f"({b['label']}, N={b['n']}, {b['generated_steps_per_problem']:.1f} steps/puzzle); goal >= 95%: "
                   f"{'reached' if b['solve_rate'] >= 0.95 else 'not reached'}.")
    maj = [r for r in rows if r["method"] == "majority"]
    gaps = []
    for r in guided:
        # majority voting given at least as many generated tokens (the cheapest such run)
        more = [m for m in maj if m["generated_tokens_per_problem"] >= r["generated_tokens_per_problem"]]
        if more:
            m = min(more, key=lambda m: m["generated_tokens_per_problem"])
            gaps.append((r["solve_rate"] - m["solve_rate"], r, m))
    if gaps:
        g, r, m = max(gaps, key=lambda t: t[0])
        out.append(f"Largest margin over majority voting given at least as many generated tokens: "
                   f"{100 * g:+.1f} points ({r['label']}, N={r['n']}, {r['generated_tokens_per_problem']:.0f} tokens: "
                   f"{100 * r['solve_rate']:.1f}%; majority N={m['n']}, {m['generated_tokens_per_problem']:.0f} tokens: "
                   f"{100 * m['solve_rate']:.1f}%); goal >= 30 points: {'reached' if g >= 0.30 else 'not reached'}.")
    prm = {r["n"]: r for r in rows if r["method"] == "prm_vote"}
    orm = {r["n"]: r for r in rows if r["method"] == "orm"}
    both = sorted(set(prm) & set(orm))
    if both:
        cmp = ", ".join(f"N={n}: {100 * prm[n]['solve_rate']:.1f}% vs {100 * orm[n]['solve_rate']:.1f}%" for n in both)
        wins = sum(prm[n]["solve_rate"] > orm[n]["solve_rate"] for n in both)
        out.append(f"PRM-weighted vs ORM-weighted best-of-N: {cmp}; PRM ahead at {wins} of {len(both)} budgets "
                   "(goal: PRM > ORM at equal N).")
    return out


def markdown(rows: list[dict], config: dict, include_tot: bool) -> str:
    lines = [
        f"Game of 24, ranks {config['ranks']} ({config['problems']} puzzles), generator `{config['generator']}`, "
        f"PRM `{config['prm']}`, ORM `{config['orm']}`, seed {config['seed']}.",
        "",
        "| method | N | solved | solve rate | gen tok/pb | gen steps/pb | ver tok/pb | wall s/pb |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['n']} | {r['solved']}/{r['total']} | {100 * r['solve_rate']:.1f}% | "
            f"{fmt_num(r['generated_tokens_per_problem'])} | {fmt_num(r['generated_steps_per_problem'], 1)} | "
            f"{fmt_num(r['verifier_tokens_per_problem'])} | {r['wall_s_per_problem']:.3f} |")
    lines += [
        "",
        "N is the budget knob: samples (best-of-N, adaptive best-of-N: at most), beams (beam), completions "
        "(DVTS, REBASE), particles (particle filtering), traces (DeepConf), node expansions "
        "(best-first), simulations (MCTS). Tokens are the generator's tokens (word-level for the "
        "shipped models: a number, a word or a symbol is one token); wall time is the search's own "
        "time per puzzle (model loading excluded).",
    ]
    g = goals(rows)
    if g:
        lines += ["", "Goals of issues #4 and #23, from the rows above:", ""] + [f"* {x}" for x in g]
    if config.get("not_run"):
        lines += ["", f"Not run (the time limit, --max-minutes, was reached first): {', '.join(config['not_run'])}."]
    if config.get("failed_runs"):
        lines += ["", f"Failed: {', '.join(config['failed_runs'])}."]
    if include_tot:
        lines += ["", "For context, the ToT paper's GPT-4 results on ranks 901-1000 (Yao et al. 2023, Table 2; "
                  "a different, far larger model prompted without task-specific training):", "",
                  "| method (GPT-4) | solve rate |", "| --- | ---: |"]
        lines += [f"| {name} | {rate:.1f}% |" for name, rate in TOT_GPT4]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], config: dict, path: Path, include_tot: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5.8), dpi=110)
    order = []
    for r in rows:
        if r["method"] not in order:
            order.append(r["method"])
    markers = "osD^v<>Ph*Xp"
    for i, key in enumerate(order):
        pts = sorted((r for r in rows if r["method"] == key), key=lambda r: r["generated_tokens_per_problem"])
        xs = [max(r["generated_tokens_per_problem"], 1e-9) for r in pts]
        ys = [100 * r["solve_rate"] for r in pts]
        style = "--" if pts[0]["upper_bound"] else "-"
        ax.plot(xs, ys, style, marker=markers[i % len(markers)], label=pts[0]["label"], linewidth=1.6,
                markersize=5)
    if include_tot:
        # Reference lines; labels alternate right / left where they would overlap.
        last, side = None, "right"
        for name, rate in sorted(TOT_GPT4, key=lambda t: t[1]):
            side = ("left" if side == "right" else "right") if last is not None and rate - last < 4 else "right"
            last = rate
            ax.axhline(rate, color="0.6", linestyle=":", linewidth=0.9)
            ax.annotate(f"GPT-4 {name}: {rate:g}%", xy=(0.995 if side == "right" else 0.005, rate),
                        xycoords=("axes fraction", "data"), ha=side, va="bottom", fontsize=7, color="0.35")
    ax.set_xscale("log")
    ax.set_ylim(0, 102)
    ax.set_xlabel("generated tokens per puzzle (log scale)")
    ax.set_ylabel("solved (%)")
    ax.set_title(f"Game of 24, ranks {config['ranks']}: solve rate vs test-time compute", fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if include_tot:
        fig.text(0.01, 0.01, "dotted: GPT-4 results on the same puzzles from the Tree of Thoughts paper (Yao et al. "
                 "2023): a different model, prompted, no task-specific training; context only", fontsize=7,
                 color="0.35")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qstar", default=str(REPO / "build" / "qstar"), help="the qstar binary")
    ap.add_argument("--data", default=str(REPO / "data" / "game24" / "24.csv"))
    ap.add_argument("--ranks", default="901-1000", help="ranks of the data file (default: the ToT test split)")
    ap.add_argument("--generator", default=str(REPO / "models" / "generator"),
                    help="model folder, lm:DIR or programmatic (default: models/generator)")
    ap.add_argument("--prm", default=str(REPO / "models" / "prm"), help="model folder, prm:DIR or oracle")
    ap.add_argument("--orm", default=str(REPO / "models" / "orm"), help="model folder, prm:DIR or oracle")
    ap.add_argument("--methods", help="comma-separated subset of: " +
                    ", ".join(m.key for m in methods(None)))
    ap.add_argument("--budgets", help="comma-separated --n values replacing each method's defaults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=25, help="puzzles searched together (qstar bench --chunk)")
    ap.add_argument("--max-depth", type=int, default=6,
                    help="steps per trajectory at most (a solution takes 4: three operations and the answer)")
    ap.add_argument("--threads", type=int, default=1,
                    help="LibTorch threads per qstar run (OMP_NUM_THREADS; 1 is fastest on a shared machine)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ranks_901-1000"))
    ap.add_argument("--force", action="store_true", help="rerun runs whose JSON exists")
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="start no new run after this many minutes (0: no limit); the rest is listed as not run")
    ap.add_argument("--report-only", action="store_true", help="run nothing: table and plot from the kept runs")
    ap.add_argument("--fail-fast", action="store_true", help="stop at the first failed run")
    ap.add_argument("--verbose", action="store_true", help="show qstar's own progress lines")
    ap.add_argument("--no-tot", action="store_true", help="leave the ToT GPT-4 reference out of table and plot")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("extra", nargs="*", help="after --: flags passed to every qstar bench call")
    args = ap.parse_args(argv)

    budgets = parse_budgets(args.budgets)
    all_methods = methods(budgets)
    if args.methods:
        keys = [k.strip() for k in args.methods.split(",")]
        known = {m.key for m in all_methods}
        for k in keys:
            if k not in known:
                die(f"--methods: '{k}' is not one of {', '.join(sorted(known))}")
        all_methods = [m for m in all_methods if m.key in keys]
    if args.chunk < 1:
        die("--chunk must be >= 1")
    if args.threads < 1:
        die("--threads must be >= 1")
    if args.max_depth < 1:
        die("--max-depth must be >= 1")
    qstar = Path(args.qstar)
    if not (qstar.is_file() and os.access(qstar, os.X_OK)):
        die(f"--qstar: '{qstar}' is not an executable (build it with scripts/build.sh)")
    args.qstar = qstar.resolve()
    if not Path(args.data).is_file():
        die(f"--data: '{args.data}' does not exist")
    gen = spec_for("generator", args.generator)
    # DeepConf needs the generator's token log-probabilities: only the lm: and http: generators
    # give them, so the programmatic proposer skips it (and refuses it when it is asked for).
    if not gen.startswith(("lm:", "http:")):
        if args.methods and any("logprobs" in m.needs for m in all_methods):
            die(f"--methods: {', '.join(m.key for m in all_methods if 'logprobs' in m.needs)} needs token "
                f"log-probabilities (--generator lm:DIR or http:URL), not {gen}")
        all_methods = [m for m in all_methods if "logprobs" not in m.needs]
    needs = set().union(*(m.needs for m in all_methods)) if all_methods else set()
    prm = spec_for("prm", args.prm) if "prm" in needs else "not used"
    orm = spec_for("orm", args.orm) if "orm" in needs else "not used"

    out = Path(args.out)
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)

    # Low budgets of every method first: a partial run still covers every method.
    plan = sorted(((m, n) for m in all_methods for n in m.budgets), key=lambda mn: (mn[1], all_methods.index(mn[0])))
    t_start = time.monotonic()
    rows, failed, not_run = [], [], []
    rank = {m.key: i for i, m in enumerate(all_methods)}
    rel = lambda p: os.path.relpath(p, REPO) if p.startswith(str(REPO)) else p  # noqa: E731
    include_tot = not args.no_tot and args.ranks == "901-1000"
    for i, (m, n) in enumerate(plan, 1):
        may_run = not args.report_only and (args.max_minutes <= 0 or time.monotonic() - t_start < 60 * args.max_minutes)
        status, row = run_one(args, m, n, gen, prm, orm, runs_dir, i, len(plan), t_start, may_run)
        if status == "done":
            rows.append(row)
        else:
            (failed if status == "failed" else not_run).append(f"{m.key} n={n}")
        if status == "done" or i == len(plan):  # the report so far: a partial run is still useful
            rows.sort(key=lambda r: (rank[r["method"]], r["n"]))
            write_report(args, out, rows, failed, not_run, gen, prm, orm, t_start, include_tot, rel)
    if rows and not args.no_plot:
        plot(rows, {"ranks": args.ranks}, out / "solve_rate_vs_tokens.png", include_tot)
    print(f"[ttc] {len(rows)} runs, {len(failed)} failed, {len(not_run)} not run; wrote {out}/results.json, "
          "results.md" + ("" if args.no_plot or not rows else ", solve_rate_vs_tokens.png"), file=sys.stderr)
    print((out / "results.md").read_text(), end="")
    return 1 if failed else 0


def write_report(args, out: Path, rows, failed, not_run, gen, prm, orm, t_start, include_tot, rel) -> None:
    problems = rows[0]["total"] if rows else 0
    config = {
        "ranks": args.ranks,
        "problems": problems,
        "data": rel(str(Path(args.data).resolve())),
        "generator": rel(gen.split(":", 1)[1]) if ":" in gen else gen,
        "prm": rel(prm.split(":", 1)[1]) if prm.startswith("prm:") else prm,
        "orm": rel(orm.split(":", 1)[1]) if orm.startswith("prm:") else orm,
        "model_sha256": {k: model_digest(v) for k, v in (("generator", gen), ("prm", prm), ("orm", orm))},
        "seed": args.seed,
        "chunk": args.chunk,
        "threads": args.threads,
        "max_depth": args.max_depth,
        "extra_flags": args.extra,
        "machine": machine_info(),
        "benchmark_wall_s_this_invocation": round(time.monotonic() - t_start, 1),
        "failed_runs": failed,
        "not_run": not_run,
    }
    (out / "results.json").write_text(json.dumps({"config": config, "rows": rows, "tot_gpt4_reference":
                                                  [{"method": k, "solve_rate": v / 100} for k, v in TOT_GPT4]},
                                                 indent=1) + "\n")
    (out / "results.md").write_text(markdown(rows, config, include_tot))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"game24_ttc: error: {e}", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        print("game24_ttc: interrupted; finished runs are kept under OUT/runs/", file=sys.stderr)
        sys.exit(130)
