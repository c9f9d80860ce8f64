#!/usr/bin/python3
"""The search-shaped row of benchmarks/vs_llamacpp.sh on llama.cpp's side: against a running
llama-server (--parallel 8), 8 rounds of 8 concurrent /completion requests of 16 tokens each
(temperature 1, seeds 1..8 + 8 * round) on a context of 512 random token ids (seeded; no
BOS/EOS) that grows by the first continuation after each round, as a search's shared prefix
does (cache_prompt: the server reuses the prefix's KV). Prints {"tokens", "seconds",
"tokens_per_s"}: tokens generated over the wall time of the 8 rounds.

Usage: vs_llamacpp_search.py URL TOKENIZER_JSON
"""
import json
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def post(url, body):
    req = urllib.request.Request(url + "/completion", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read(1 << 24))


def main():
    url, tok = sys.argv[1], sys.argv[2]
    vocab = len(json.load(open(tok, encoding="utf-8"))["model"]["vocab"]) - 2  # make_gguf.py: <s>, </s> last
    rng = random.Random(1234)
    ctx = [rng.randrange(vocab) for _ in range(512)]
    total = 0
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for rnd in range(8):
            bodies = [{"prompt": ctx, "n_predict": 16, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                       "seed": 1 + j + 8 * rnd, "cache_prompt": True, "return_tokens": True} for j in range(8)]
            replies = list(pool.map(lambda b: post(url, b), bodies))
            total += sum(len(r["tokens"]) for r in replies)
            first = replies[0]["tokens"]
            ctx = ctx + (first if first else [rng.randrange(vocab)])
    sec = time.monotonic() - t0
    print(json.dumps({"tokens": total, "seconds": sec, "tokens_per_s": total / sec}))


if __name__ == "__main__":
    main()
