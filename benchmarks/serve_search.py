#!/usr/bin/env python3
"""Cross-request batching of `qstar serve --search` (docs/serving.md, "Search as a service").

Starts the service twice with the same search, once batching (--batch-window-ms W) and once
not (--max-batch 1: every request is its own search), sends the same C concurrent requests
(Game of 24 puzzles, ranks 901...) to each with Python's standard library, and prints the wall
time and the server's CPU time of the burst, the searches' sizes, the batch sizes of the generator calls, and whether
every answer is the same in both runs.
Run by hand (a minute with the trained models on one CPU core):

  python3 benchmarks/serve_search.py [--qstar build/qstar] [--concurrency 16] [-- search flags]

Default search flags: --search beam --n 4 (the trained generator and PRM of models/).
"""
import argparse
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def burst(url, puzzles):
    replies = [None] * len(puzzles)
    barrier = threading.Barrier(len(puzzles))

    def one(i):
        barrier.wait()
        req = urllib.request.Request(url + "/v1/chat/completions", method="POST",
                                     data=json.dumps({"messages": [{"role": "user", "content": puzzles[i]}]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            replies[i] = json.loads(r.read())["qstar"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(puzzles))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, replies


def cpu_seconds(pid):
    """The process's user + system CPU seconds (Linux /proc): steadier than wall time on a
    shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(qstar, flags, extra, puzzles):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([qstar, "serve", *flags, "--port", "0", *extra], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        url = re.search(r"http://[\d.]+:\d+", proc.stdout.readline()).group(0)
        burst(url, puzzles[:1])  # warm up (models loaded, caches allocated)
        cpu0 = cpu_seconds(proc.pid)
        wall, qs = burst(url, puzzles)
        return wall, cpu_seconds(proc.pid) - cpu0, qs
    finally:
        proc.terminate()
        proc.wait(timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qstar", default=str(REPO / "build" / "qstar"))
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--window-ms", default="20")
    ap.add_argument("flags", nargs="*")
    a = ap.parse_args()
    flags = a.flags or ["--search", "beam", "--n", "4"]
    rows = (REPO / "data" / "game24" / "24.csv").read_text().splitlines()[1:]
    puzzles = [r.split(",")[1] for r in rows[900:900 + a.concurrency]]
    results = {}
    for name, extra in [("batched", ["--batch-window-ms", a.window_ms]), ("one search per request", ["--max-batch", "1"])]:
        wall, cpu, qs = run(a.qstar, flags, extra, puzzles)
        results[name] = qs
        sizes = sorted({q["batch"]["search_problems"] for q in qs})
        solved = sum(bool(q["correct"]) for q in qs)
        calls = sum(q["stats"]["generator_calls"] for q in qs)
        print(f"{name:24s} {len(qs)} requests in {wall:.2f} s ({cpu:.2f} s server CPU); search sizes {sizes}; solved {solved}/{len(qs)}; "
              f"generator calls taken part in: {calls}, first request's requests per call "
              f"{qs[0]['stats']['generator_batches']}")
    same = sum(x["answer"] == y["answer"] and x["steps"] == y["steps"]
               for x, y in zip(results["batched"], results["one search per request"]))
    print(f"same answer and steps batched and alone: {same}/{len(puzzles)}")


if __name__ == "__main__":
    main()
