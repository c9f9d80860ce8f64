#!/usr/bin/env python3
"""qstar against Hugging Face transformers, on random weights, for scripts/gpu-check.sh.

For every generator family and verifier head that transformers implements itself, writes a
tiny random-weight model with transformers (save_pretrained, safetensors), runs
`qstar lm logits --model DIR --tokens ... --device DEVICE --dtype DTYPE --json` and compares
its rows with transformers' forward of the same tokens on the same device and dtype:

  *ForCausalLM              every position's vocabulary logits
  *ForTokenClassification   every position's score-head outputs
  *ForSequenceClassification every position's score-head outputs (transformers pools the last
                            token; the script compares the whole [T, labels] head output, built
                            from the base model's hidden states and the score layer)

The remote-code heads (Qwen2ForProcessRewardModel, Qwen2ForRewardModel, Qwen2ForPrmModel) are
not in transformers; they are checked against the float64 reference on CPU by the test suite.

The sequence is longer than the sliding window and the RoPE scaling's original context, so
windows and scaling are active. Prints one line per case and a summary; exits 1 when a case
is beyond tolerance (float32: 1e-4 relative to the largest magnitude, bf16: 3e-2).

Needs torch and transformers (not Debian packages: the GPU machine's pip environment).
Usage: transformers_parity.py --qstar build-gpu/qstar [--device cuda] [--dtype float32]
"""
import argparse
import json
import subprocess
import sys
import tempfile

import torch
import transformers as tf

SMALL = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
             rms_norm_eps=1e-6, tie_word_embeddings=False)


def cases():
    """(name, config class, model class, extra config fields)."""
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
    return [
        ("llama", tf.LlamaConfig, tf.LlamaForCausalLM, {}),
        ("llama-tied", tf.LlamaConfig, tf.LlamaForCausalLM, {"tie_word_embeddings": True}),
        ("llama-rope-llama3", tf.LlamaConfig, tf.LlamaForCausalLM, {"rope_scaling": llama3}),
        ("llama-rope-linear", tf.LlamaConfig, tf.LlamaForCausalLM,
         {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}),
        ("llama-rope-dynamic", tf.LlamaConfig, tf.LlamaForCausalLM,
         {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}, "max_position_embeddings": 16}),
        ("llama-rope-yarn", tf.LlamaConfig, tf.LlamaForCausalLM, {"rope_scaling": yarn}),
        ("qwen2", tf.Qwen2Config, tf.Qwen2ForCausalLM, {}),
        ("qwen3", tf.Qwen3Config, tf.Qwen3ForCausalLM, {"head_dim": 32}),
        ("mistral-window", tf.MistralConfig, tf.MistralForCausalLM, {"sliding_window": 8}),
        ("llama-token-cls", tf.LlamaConfig, tf.LlamaForTokenClassification, {"num_labels": 2}),
        ("qwen2-token-cls", tf.Qwen2Config, tf.Qwen2ForTokenClassification, {"num_labels": 2}),
        ("llama-seq-cls", tf.LlamaConfig, tf.LlamaForSequenceClassification, {"num_labels": 1}),
        ("qwen2-seq-cls", tf.Qwen2Config, tf.Qwen2ForSequenceClassification, {"num_labels": 1}),
        ("qwen3-seq-cls", tf.Qwen3Config, tf.Qwen3ForSequenceClassification,
         {"num_labels": 1, "head_dim": 32}),
    ]


def head_outputs(model, ids):
    """Every position's raw head outputs, float32 [T, n]."""
    with torch.no_grad():
        if isinstance(model, tf.PreTrainedModel) and "SequenceClassification" in type(model).__name__:
            hidden = model.model(input_ids=ids).last_hidden_state
            return model.score(hidden)[0].float()
        return model(input_ids=ids).logits[0].float()


def run_case(args, name, cfg_cls, model_cls, extra, tokens):
    fields = dict(SMALL)
    fields.update(extra)
    if model_cls.__name__.endswith("SequenceClassification"):
        fields["pad_token_id"] = 0
    torch.manual_seed(0)
    cfg = cfg_cls(**fields)
    model = model_cls(cfg).eval()
    with torch.no_grad():  # larger than the default init, so every part matters
        for p in model.parameters():
            p.normal_(0.0, 0.2) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d, safe_serialization=True)
        model = model.to(device=args.device, dtype=dtype)
        ids = torch.tensor([tokens], device=args.device)
        ref = head_outputs(model, ids).cpu()
        out = subprocess.run([args.qstar, "lm", "logits", "--model", d, "--tokens",
                              ",".join(map(str, tokens)), "--device", args.device,
                              "--dtype", args.dtype, "--json"],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            return name, None, out.stderr.strip() or out.stdout.strip()
        got = torch.tensor(json.loads(out.stdout)["logits"], dtype=torch.float32)
    if got.shape != ref.shape:
        return name, None, f"shape {tuple(got.shape)} != transformers {tuple(ref.shape)}"
    rel = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
    return name, rel, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qstar", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()
    tol = 1e-4 if args.dtype == "float32" else 3e-2
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, SMALL["vocab_size"], (40,), generator=g).tolist()
    print(f"transformers {tf.__version__}, torch {torch.__version__}, {args.device} {args.dtype}, "
          f"{len(tokens)} tokens, tolerance {tol:g}")
    failed = 0
    for name, cfg_cls, model_cls, extra in cases():
        name, rel, err = run_case(args, name, cfg_cls, model_cls, extra, tokens)
        if rel is None:
            failed += 1
            print(f"  {name:22s} FAILED: {err}")
        else:
            ok = rel <= tol
            failed += 0 if ok else 1
            print(f"  {name:22s} max relative error {rel:.3g} {'ok' if ok else 'FAILED'}")
    print(f"transformers parity: {len(cases()) - failed}/{len(cases())} cases within {tol:g}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
