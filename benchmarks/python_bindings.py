"""What the Python bindings cost.

1. Overhead per batched plug-in call (goal: <= 20 us at batch 64): a trivial Python plug-in is
   called through the boundary (qstar.testing.plugin_call_seconds: request objects built, the
   GIL taken, the method called, the result converted) and directly from Python with an
   equivalent list of plain objects; the overhead is the difference per call. Reported for a
   generator that only builds its result and for one that also reads each request's prefix.
2. Search throughput with a trivial Python generator against the same search with the
   equivalent C++ generator (qstar.testing.ConstantGenerator), both with the C++ constant
   verifier; and with a trivial Python verifier against the C++ one. Reported as ratios.

    PYTHONPATH=build/python python3 benchmarks/python_bindings.py [--repeats R] [--json out.json]
"""
import argparse
import json
import statistics
import sys
import time

import qstar


class FakeRequest:
    """What a plug-in reads from a request, as a plain Python object (the direct-call baseline)."""

    __slots__ = ("problem_index", "num_candidates", "seed", "depth", "prefix", "new_steps")

    def __init__(self, i, depth):
        self.problem_index, self.num_candidates, self.seed, self.depth = i, 1, i, depth
        self.prefix = [f"step {d} of {i}" for d in range(depth)]
        self.new_steps = self.prefix[-1:]


class MinimalGenerator:
    """Returns one constant step per request; reads nothing."""

    def expand(self, batch):
        return [["a"] for _ in batch]


class ReadingGenerator:
    """Reads each request's prefix and seed (what a real generator must do)."""

    def expand(self, batch):
        return [[r.prefix[-1][:1] + str(r.seed % 8)] for r in batch]


class MinimalVerifier:
    def score(self, batch):
        return [[0.5] for _ in batch]


class PyConstantGenerator:
    """The Python twin of qstar.testing.ConstantGenerator (same steps, same finals)."""

    def __init__(self, depth):
        self.depth = depth
        self.final = [qstar.Step(c, num_tokens=1, logprob=-1.0, finish="answer") for c in "abcdefgh"]
        self.step = [qstar.Step(c, num_tokens=1, logprob=-1.0, finish="step") for c in "abcdefgh"]

    def expand(self, batch):
        out = []
        for r in batch:
            table = self.final if r.depth + 1 >= self.depth else self.step
            s = r.seed
            out.append([table[(s + c) % 8] for c in range(r.num_candidates)])
        return out


class PyConstantVerifier:
    """The Python twin of qstar.testing.ConstantVerifier."""

    def score(self, batch):
        return [[(ord(t[0]) % 7) / 7 if t else 0.0 for t in r.new_steps] for r in batch]


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def overhead(plugin, kind, batch, depth, calls, repeats):
    method = plugin.expand if kind == "generator" else plugin.score
    fake = [FakeRequest(i, depth) for i in range(batch)]
    through = median_time(lambda: qstar.testing.plugin_call_seconds(plugin, kind, batch_size=batch, depth=depth,
                                                                     repeats=calls), repeats) / 1.0
    # plugin_call_seconds returns seconds per call; median_time timed the whole helper call.
    per_call_boundary = statistics.median(
        qstar.testing.plugin_call_seconds(plugin, kind, batch_size=batch, depth=depth, repeats=calls)
        for _ in range(repeats))

    def direct():
        for _ in range(calls):
            method(fake)

    per_call_direct = median_time(direct, repeats) / calls
    del through
    return per_call_boundary, per_call_direct


def search_seconds(problems, algo, generator, verifier, repeats, **kw):
    return median_time(lambda: qstar.search(problems, algo=algo, generator=generator, verifier=verifier, seed=0,
                                            **kw), repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    out = {"overhead_us_per_call": {}, "throughput": {}}

    print("1. boundary overhead per plug-in call (median of", args.repeats, "runs of", args.calls, "calls)")
    print(f"   {'plug-in':<28} {'batch':>5} {'through qstar us':>17} {'direct us':>10} {'overhead us':>12}")
    for name, plugin, kind in (("minimal generator", MinimalGenerator(), "generator"),
                               ("generator reading prefixes", ReadingGenerator(), "generator"),
                               ("minimal verifier", MinimalVerifier(), "verifier")):
        for batch in (1, 64, 256):
            b, d = overhead(plugin, kind, batch, 3, args.calls if batch <= 64 else args.calls // 4, args.repeats)
            print(f"   {name:<28} {batch:>5} {b * 1e6:>17.2f} {d * 1e6:>10.2f} {(b - d) * 1e6:>12.2f}")
            out["overhead_us_per_call"][f"{name} @ {batch}"] = {"through": b * 1e6, "direct": d * 1e6,
                                                                "overhead": (b - d) * 1e6}

    print("\n2. search throughput, Python plug-in vs the equivalent C++ plug-in (median wall time)")
    problems = [qstar.Problem("4 5 6 10", id=str(i)) for i in range(64)]
    depth = 6
    cpp_gen, cpp_ver = qstar.testing.ConstantGenerator(depth), qstar.testing.ConstantVerifier()
    py_gen, py_ver = PyConstantGenerator(depth), PyConstantVerifier()
    for algo, kw in (("beam", dict(num_beams=64, width=4)), ("mcts", dict(num_simulations=64, expand_k=4)),
                     ("best-of-n", dict(n=64))):
        ref = qstar.search(problems[:2], algo=algo, generator=cpp_gen, verifier=cpp_ver, seed=0, **kw)
        alt = qstar.search(problems[:2], algo=algo, generator=py_gen, verifier=py_ver, seed=0, **kw)
        assert [r.to_dict()["candidates"] for r in ref] == [r.to_dict()["candidates"] for r in alt], \
            "the Python twins must give the same search"
        nodes = sum(r.stats.nodes for r in qstar.search(problems, algo=algo, generator=cpp_gen, verifier=cpp_ver,
                                                        seed=0, **kw))
        t_cc = search_seconds(problems, algo, cpp_gen, cpp_ver, args.repeats, **kw)
        t_pc = search_seconds(problems, algo, py_gen, cpp_ver, args.repeats, **kw)
        t_cp = search_seconds(problems, algo, cpp_gen, py_ver, args.repeats, **kw)
        t_pp = search_seconds(problems, algo, py_gen, py_ver, args.repeats, **kw)
        print(f"   {algo:<9} 64 problems, {nodes} nodes: C++ gen+ver {t_cc * 1e3:.1f} ms; Python gen "
              f"{t_pc * 1e3:.1f} ms ({t_pc / t_cc:.1f}x); Python ver {t_cp * 1e3:.1f} ms ({t_cp / t_cc:.1f}x); "
              f"both {t_pp * 1e3:.1f} ms ({t_pp / t_cc:.1f}x); {nodes / t_pc / 1e3:.0f}k nodes/s with the Python gen")
        out["throughput"][algo] = {"nodes": nodes, "cpp_ms": t_cc * 1e3, "py_gen_ms": t_pc * 1e3,
                                   "py_ver_ms": t_cp * 1e3, "py_both_ms": t_pp * 1e3,
                                   "ratio_py_gen": t_pc / t_cc, "ratio_py_ver": t_cp / t_cc,
                                   "ratio_py_both": t_pp / t_cc}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
