#!/usr/bin/env python3
"""Decode tokens/s of qstar's LM generator against transformers' generate, for gpu-check.sh.

Writes one random-weight model with transformers (default: the Qwen2-0.5B shape, bfloat16)
and a character-level WordLevel tokenizer.json, then, for the same prompt and batch:
  transformers: model.generate(batch of N copies of the prompt, sampling, top_k 0,
                min_new_tokens = max_new_tokens = T)
  qstar:        qstar lm generate --model DIR --prompt P --candidates N --max-step-tokens T
                --delimiter <a string the vocabulary cannot produce> --json
                (N continuations of the shared prompt, T tokens each unless EOS, which the
                model's config places out of the vocabulary's reach)
and prints generated tokens/s for both and their ratio. Times exclude loading; each side is
run twice and the faster run kept (warm-up). Needs torch (CUDA) and transformers.
Usage: decode_speed.py --qstar build-gpu/qstar [--device cuda] [--dtype bfloat16]
                       [--batch 8] [--new-tokens 128] [--shape qwen2-0.5b|tiny]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time

import torch
import transformers as tf

SHAPES = {
    "qwen2-0.5b": dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                       num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                       tie_word_embeddings=True),
    "tiny": dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
}


def write_tokenizer(path, vocab_size):
    """One token per printable character first, then filler tokens "<tN>"."""
    chars = [chr(c) for c in range(32, 127)]
    vocab = {"<unk>": 0}
    for c in chars:
        vocab[c] = len(vocab)
    while len(vocab) < vocab_size:
        vocab[f"<t{len(vocab)}>"] = len(vocab)
    tok = {"version": "1.0", "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"},
                             "behavior": "Isolated", "invert": False},
           "post_processor": None, "decoder": {"type": "Fuse"},
           "model": {"type": "WordLevel", "unk_token": "<unk>", "vocab": vocab}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tok, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qstar", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--shape", default="qwen2-0.5b", choices=sorted(SHAPES))
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    shape = SHAPES[args.shape]
    prompt = "Let us think step by step about 4 5 6 10. " * 8
    torch.manual_seed(0)
    # EOS beyond the vocabulary: neither side can stop early.
    cfg = tf.Qwen2Config(**shape, eos_token_id=shape["vocab_size"] + 1, bos_token_id=None,
                         max_position_embeddings=4096)
    model = tf.Qwen2ForCausalLM(cfg).eval()
    with tempfile.TemporaryDirectory() as d:
        model.to(dtype).save_pretrained(d, safe_serialization=True)
        write_tokenizer(f"{d}/tokenizer.json", shape["vocab_size"])
        model = model.to(device=args.device, dtype=dtype)
        ids = torch.tensor([[1 + (ord(c) - 32) for c in prompt]] * args.batch, device=args.device)
        hf_best = float("inf")
        for _ in range(2):
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                out = model.generate(ids, do_sample=True, top_k=0, max_new_tokens=args.new_tokens,
                                     min_new_tokens=args.new_tokens, pad_token_id=0)
            torch.cuda.synchronize()
            hf_best = min(hf_best, time.perf_counter() - t)
        hf_tokens = (out.shape[1] - ids.shape[1]) * args.batch
        q_best, q_tokens = float("inf"), 0
        for _ in range(2):
            r = subprocess.run([args.qstar, "lm", "generate", "--model", d, "--prompt", prompt,
                                "--candidates", str(args.batch), "--max-step-tokens",
                                str(args.new_tokens), "--delimiter", "\x01\x02", "--device",
                                args.device, "--dtype", args.dtype, "--json"],
                               capture_output=True, text=True, check=False)
            if r.returncode != 0:
                print(f"qstar lm generate failed: {r.stderr.strip()}", file=sys.stderr)
                return 1
            o = json.loads(r.stdout)
            q_best = min(q_best, o["expand_seconds"])
            q_tokens = o["generated_tokens"]
    hf_tps, q_tps = hf_tokens / hf_best, q_tokens / q_best
    print(f"{args.shape} {args.dtype} on {torch.cuda.get_device_name(0)}: batch {args.batch}, "
          f"{args.new_tokens} new tokens each, prompt {len(prompt)} tokens")
    print(f"  transformers generate: {hf_tokens} tokens in {hf_best:.3f} s = {hf_tps:.1f} tokens/s")
    print(f"  qstar lm generate:     {q_tokens} tokens in {q_best:.3f} s = {q_tps:.1f} tokens/s")
    print(f"  ratio qstar / transformers: {q_tps / hf_tps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
