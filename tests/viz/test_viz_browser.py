#!/usr/bin/env python3
"""`qstar viz` pages in a real browser: headless Chromium (Debian's chromium) over the DevTools
protocol on a pipe (tests/viz/cdp.py; Python stdlib only, no network).

  python3 tests/viz/test_viz_browser.py --qstar build/qstar [--screenshot docs/viz.png]

1. A real search writes the trees: `qstar solve` (programmatic generator, exact oracle
   verifier) with MCTS and beam on two puzzles, one trace file with both records.
2. `qstar viz` renders them; the page loads with no request but its own file.
3. The drawn node count equals the trace's node count; the highlighted nodes equal the chosen
   path rebuilt here from the trace's chosen_node and parent ids; both problems (selector).
4. The screenshot against the tree's structure: on the pixel row of each depth, the number of
   node blobs equals the number of nodes of that depth in the trace; exactly one blob per depth
   carries the chosen-path blue, and it is the k-th blob where k is the chosen node's rank in
   a depth-first (id-ordered) walk of the trace; each blob's centre has the colour of its
   node's score (the scale the docs give: red 0, yellow 0.5, green 1; grey for none).
5. A synthetic 10,000-node tree: load + render time, the collapsed default view (drawn plus
   hidden = 10,000, the chosen path drawn), then "expand all" draws all 10,000 (timed).
Exit 0 pass, 1 fail, 77 skip (no chromium, no qstar).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

SKIP = 77
HL = (0x20, 0x60, 0xFF)  # the chosen path's blue (viewer.html HL)


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond: bool, msg: str) -> None:
    if not cond:
        fail(msg)


# ---- independent readings of the trace ------------------------------------------------
def chosen_path(rec: dict) -> list[int]:
    c = rec.get("chosen_node")
    path = []
    while c is not None and c >= 0:
        path.append(c)
        c = rec["nodes"][c]["parent"]
    return path[::-1]


def preorder(rec: dict) -> list[int]:
    kids: dict[int, list[int]] = {}
    for n in rec["nodes"][1:]:
        kids.setdefault(n["parent"], []).append(n["id"])
    out, stack = [], [0]
    while stack:
        i = stack.pop()
        out.append(i)
        stack.extend(reversed(kids.get(i, [])))
    return out


def by_depth(rec: dict) -> list[list[int]]:
    rows: list[list[int]] = []
    for i in preorder(rec):
        d = rec["nodes"][i]["depth"]
        while len(rows) <= d:
            rows.append([])
        rows[d].append(i)
    return rows


def score_colour(score) -> tuple[int, int, int]:
    if score is None:
        return (0x9A, 0xA0, 0xA8)
    t = min(1.0, max(0.0, score))
    a, b, u = ((215, 48, 39), (254, 224, 139), t * 2) if t < 0.5 else ((254, 224, 139), (26, 152, 80), (t - 0.5) * 2)
    return tuple(int(round(a[k] + (b[k] - a[k]) * u + 1e-9)) for k in range(3))


# ---- pixels ------------------------------------------------------------------------------
def ink(px) -> bool:
    return min(px) < 235


def blobs_on_row(row: bytearray, x0: int, x1: int) -> list[tuple[int, int]]:
    out, start = [], None
    for x in range(x0, x1):
        on = ink(row[3 * x:3 * x + 3])
        if on and start is None:
            start = x
        elif not on and start is not None:
            out.append((start, x))
            start = None
    if start is not None:
        out.append((start, x1))
    return out


def is_blue(px) -> bool:
    return abs(px[0] - HL[0]) < 40 and abs(px[1] - HL[1]) < 40 and px[2] > 200


def check_screenshot(png: bytes, rec: dict, state: dict) -> str:
    w, h, rows = cdp.decode_png(png)
    c = state["canvas"]
    x0, x1 = int(c["left"]) + 1, int(c["left"] + c["width"]) - 1
    expect = by_depth(rec)
    path = chosen_path(rec)
    for d, ids in enumerate(expect):
        y = int(round(state["depthY"][d]))
        check(0 <= y < h, f"depth {d}: row {y} is off the screenshot")
        runs = blobs_on_row(rows[y], x0, x1)
        check(len(runs) == len(ids), f"depth {d}: {len(runs)} node blobs on pixel row {y}, the trace has {len(ids)} nodes")
        blue = [k for k, (a, b) in enumerate(runs) if any(is_blue(rows[y][3 * x:3 * x + 3]) for x in range(a, b))]
        want = [ids.index(path[d])] if d < len(path) else []
        check(blue == want, f"depth {d}: the chosen-path blue is on blob(s) {blue}, the trace's chosen path gives {want}")
        for k, (a, b) in enumerate(runs):
            node = rec["nodes"][ids[k]]
            px = tuple(rows[y][3 * ((a + b) // 2):3 * ((a + b) // 2) + 3])
            want_c = score_colour(node["score"])
            check(all(abs(px[j] - want_c[j]) <= 3 for j in range(3)),
                  f"depth {d}, node {ids[k]}: centre colour {px}, its score {node['score']} gives {want_c}")
    return f"{len(rec['nodes'])} nodes in {len(expect)} depth rows match the screenshot"


# ---- trees -------------------------------------------------------------------------------
def solve(qstar: str, puzzle: str, algo: str, n: int, out: str) -> dict:
    subprocess.run([qstar, "solve", puzzle, "--algo", algo, "--generator", "programmatic", "--verifier", "oracle",
                    "--n", str(n), "--seed", "0", "--tree", out], check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.loads(f.read())


def synthetic(n: int, seed: int) -> dict:
    """A random tree of n nodes (branching 1-6, deeper nodes likelier to branch), with a chosen leaf."""
    rng = random.Random(seed)
    nodes = [dict(id=0, parent=-1, depth=0, text="", tokens=[], num_tokens=0, logprob=0, score=None, prior=0,
                  visits=n, value_sum=0, q=0, value=None, value_max=None, terminal=False, finish="none",
                  answer=None, correct=None, detached=False, pruned=False)]
    frontier = [0]
    while len(nodes) < n:
        p = frontier.pop(rng.randrange(len(frontier)))
        for _ in range(min(n - len(nodes), rng.randint(1, 6))):
            i = len(nodes)
            term = nodes[p]["depth"] >= 3 and rng.random() < 0.3 and len(frontier) > 20
            nodes.append(dict(id=i, parent=p, depth=nodes[p]["depth"] + 1, text=f"step {i} </script><b>x</b>",
                              tokens=[], num_tokens=5, logprob=-1.0, score=round(rng.random(), 3), prior=0.2,
                              visits=rng.randint(0, 20), value_sum=0, q=0, value=None, value_max=None,
                              terminal=term, finish="answer" if term else "step", answer="24" if term else None,
                              correct=(rng.random() < 0.5) if term else None, detached=False, pruned=False))
            if not term:
                frontier.append(i)
    leaf = max(range(n), key=lambda i: (nodes[i]["depth"], i))
    return dict(problem=dict(id="synthetic", text="a synthetic tree", gold=None), answer=None, correct=None,
                stop_reason="completed", chosen_node=leaf, nodes=nodes)


def viz(qstar: str, trace: str, page: str) -> None:
    r = subprocess.run([qstar, "viz", trace, "-o", page], capture_output=True, text=True)
    check(r.returncode == 0, f"qstar viz {trace}: exit {r.returncode}: {r.stderr.strip()}")


# ---- the checks --------------------------------------------------------------------------
def settle(b: cdp.Browser) -> None:
    """Waits two animation frames (a resize the page reacts to is drawn by then)."""
    b.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def check_page(b: cdp.Browser, page: str, recs: list[dict], shot_out: str | None) -> None:
    secs = b.open(page)
    urls = b.requested_urls()
    check(all(u.startswith("file://") for u in urls) and len(urls) == 1, f"the page requested {urls}")
    for k, rec in enumerate(recs):
        if k:
            b.eval(f"qstarViz.show({k})")
        settle(b)
        ds = b.eval("Object.assign({}, document.body.dataset)")
        n = len(rec["nodes"])
        check(ds["problem"] == str(k), f"problem {k}: the page shows problem {ds['problem']}")
        check(int(ds["nodes"]) == n and int(ds["drawn"]) == n and int(ds["hidden"]) == 0,
              f"problem {k}: drawn {ds['drawn']} of {ds['nodes']} (hidden {ds['hidden']}); the trace has {n} nodes")
        path = ",".join(map(str, chosen_path(rec)))
        check(ds["chosenPath"] == path, f"problem {k}: the page's chosen path {ds['chosenPath']!r}, the trace's {path!r}")
        check(ds["highlighted"] == path, f"problem {k}: highlighted {ds['highlighted']!r}, the chosen path {path!r}")
        state = b.eval("qstarViz.state()")
        msg = check_screenshot(b.screenshot(), rec, state)
        print(f"ok  problem {k} ({rec['problem']['text']}, {n} nodes): drawn {n}, path {path or '(none)'} "
              f"highlighted; {msg}")
    print(f"ok  {page}: ready in {secs:.2f} s (page: load {ds['loadMs']} ms); requests: {urls}")
    check_mouse(b, recs[-1])
    if shot_out:  # the docs' screenshot: the last problem with its chosen leaf selected
        b.eval(f"qstarViz.select({recs[-1]['chosen_node']})")
        settle(b)
        with open(shot_out, "wb") as f:
            f.write(b.screenshot(fast=False))
        print(f"wrote {shot_out}")


def subtree_size(rec: dict, i: int) -> int:
    size = [1] * len(rec["nodes"])
    for n in reversed(rec["nodes"][1:]):
        size[n["parent"]] += size[n["id"]]
    return size[i]


def mouse(b: cdp.Browser, kind: str, x: float, y: float, clicks: int = 0) -> None:
    b.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left" if clicks else "none",
                                         "clickCount": clicks})


def check_mouse(b: cdp.Browser, rec: dict) -> None:
    """Hover shows the step, a click selects (the path with per-step scores), a double-click
    collapses the subtree (drawn count drops by its size - 1) and expands it again."""
    settle(b)
    st = b.eval("qstarViz.state()")
    xy = {i: (x, y) for i, x, y, _ in st["xy"]}
    node = next(i for i in chosen_path(rec)[1:] if subtree_size(rec, i) > 1)
    x, y = xy[node]
    mouse(b, "mouseMoved", x, y)
    tip = b.eval("document.getElementById('tip').style.display === 'block' ? document.getElementById('tip').textContent : ''")
    check(rec["nodes"][node]["text"] in tip, f"hover over node {node}: tooltip {tip!r}")
    mouse(b, "mousePressed", x, y, 1)
    mouse(b, "mouseReleased", x, y, 1)
    steps = b.eval("[...document.querySelectorAll('#path .step')].map((d) => d.textContent)")
    want = chosen_path(rec)[1:chosen_path(rec).index(node) + 1]
    check(len(steps) == len(want) and all(rec["nodes"][i]["text"] in t and f"#{i}" in t for i, t in zip(want, steps)),
          f"click on node {node}: the path panel shows {steps}")
    mouse(b, "mousePressed", x, y, 2)
    mouse(b, "mouseReleased", x, y, 2)
    n, sub = len(rec["nodes"]), subtree_size(rec, node)
    ds = b.eval("Object.assign({}, document.body.dataset)")
    check(int(ds["drawn"]) == n - (sub - 1) and int(ds["hidden"]) == sub - 1,
          f"double-click on node {node} (subtree {sub}): drawn {ds['drawn']}, hidden {ds['hidden']}")
    b.eval(f"qstarViz.toggle({node})")
    ds = b.eval("Object.assign({}, document.body.dataset)")
    check(int(ds["drawn"]) == n, "expanding the collapsed subtree again")
    print(f"ok  mouse: hover shows node {node}'s step, a click its path ({len(want)} steps with scores), "
          f"a double-click collapses its {sub - 1} descendants")


def check_big(b: cdp.Browser, page: str, rec: dict) -> None:
    n = len(rec["nodes"])
    secs = b.open(page)
    settle(b)
    ds = b.eval("Object.assign({}, document.body.dataset)")
    drawn, hidden = int(ds["drawn"]), int(ds["hidden"])
    path = ",".join(map(str, chosen_path(rec)))
    check(int(ds["nodes"]) == n and drawn + hidden == n, f"10k: drawn {drawn} + hidden {hidden} != {n}")
    check(drawn < n, "10k: the default view collapses nothing")
    check(ds["highlighted"] == path, f"10k default view: highlighted {ds['highlighted']!r}, the chosen path {path!r}")
    print(f"ok  {n} nodes: page ready in {secs:.2f} s (navigation to first frame drawn: {ds['loadMs']} ms, "
          f"layout+draw {ds['renderMs']} ms); default view draws {drawn}, {hidden} in collapsed subtrees")
    t = b.eval("(() => { const t0 = performance.now(); qstarViz.expandAll(); return performance.now() - t0; })()")
    ds = b.eval("Object.assign({}, document.body.dataset)")
    check(int(ds["drawn"]) == n and int(ds["hidden"]) == 0, f"10k expand all: drawn {ds['drawn']} of {n}")
    check(ds["highlighted"] == path, "10k expand all: the chosen path is not highlighted")
    t2 = b.eval("(() => { const t0 = performance.now(); qstarViz.select(1); return performance.now() - t0; })()")
    print(f"ok  {n} nodes expanded: all {n} drawn in {t:.1f} ms (layout + draw); a redraw takes {t2:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qstar", default=os.environ.get("QSTAR_EXE"))
    ap.add_argument("--screenshot", help="also write the docs' screenshot (PNG) here")
    ap.add_argument("--big", type=int, default=10000, help="the synthetic tree's node count")
    a = ap.parse_args()
    exe = cdp.find_chromium()
    if not exe:
        print("SKIP: no chromium on PATH (Debian: apt-get install chromium; scripts/install-deps.sh)")
        return SKIP
    if not a.qstar or not os.path.exists(a.qstar):
        print("SKIP: no qstar executable (--qstar or QSTAR_EXE)")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="qstar-viz-") as tmp:
        recs = [solve(a.qstar, "4 5 6 10", "mcts", 32, os.path.join(tmp, "a.jsonl")),
                solve(a.qstar, "4 5 6 10", "beam", 16, os.path.join(tmp, "b.jsonl"))]
        check(all(r.get("chosen_node") is not None for r in recs), "a search found no answer: no chosen path to check")
        for r in recs:  # the chosen leaf carries the record's answer
            check(r["nodes"][r["chosen_node"]]["answer"] == r["answer"], "chosen_node's answer != the record's")
        trace = os.path.join(tmp, "two.jsonl")
        with open(trace, "w") as f:
            f.write("".join(json.dumps(r) + "\n" for r in recs))
        viz(a.qstar, trace, os.path.join(tmp, "two.html"))
        big = synthetic(a.big, 7)
        with open(os.path.join(tmp, "big.jsonl"), "w") as f:
            f.write(json.dumps(big) + "\n")
        viz(a.qstar, os.path.join(tmp, "big.jsonl"), os.path.join(tmp, "big.html"))
        t0 = time.monotonic()
        b = cdp.Browser(exe, 1400, 900)
        print(f"chromium started in {time.monotonic() - t0:.1f} s ({exe})")
        try:
            check_page(b, os.path.join(tmp, "two.html"), recs, a.screenshot)
            check_big(b, os.path.join(tmp, "big.html"), big)
        finally:
            b.close()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
