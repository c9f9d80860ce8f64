#!/usr/bin/env python3
"""Independent reference forward of a Llama / Qwen2 Hugging Face folder, for parity tests.

Needs only torch and numpy (Debian's python3-torch 1.13 works): no transformers, no
safetensors package. The safetensors file(s) are parsed by hand, and the math follows
transformers' modeling_llama.py / modeling_qwen2.py (eager attention):

  x = embed_tokens[ids]
  per layer:
    h = RMSNorm(x)                      # float32, cast back, times the weight
    q, k, v = q_proj(h), k_proj(h), v_proj(h)   # + q/k/v bias for qwen2
    q, k = RoPE(q), RoPE(k)             # rotate_half, inv_freq/cos/sin in float32
    k, v = repeat_kv(k), repeat_kv(v)   # head h reads kv head h // n_rep
    a = softmax(q k^T * d^-0.5 + causal_mask, float32) v
    x = x + o_proj(a)
    x = x + down_proj(silu(gate_proj(RMSNorm(x))) * up_proj(RMSNorm(x)))
  x = RMSNorm(x)
  *ForCausalLM: logits = lm_head(x) (lm_head = embed_tokens when tied and absent)
  a score head: its raw outputs, computed in float64 from x (see "score heads" below):
    *ForTokenClassification / *ForSequenceClassification: score(x) (+ score.bias if present)
    Qwen2ForProcessRewardModel / Qwen2ForRewardModel: score.2(relu(score.0(x)))
    Qwen2ForPrmModel (Skywork PRM): v_head.summary(x)

Usage:
  reference_llama.py MODEL_DIR --tokens 1,2,3 [--out PATH]
  reference_llama.py --jobs FILE        (lines: MODEL_DIR <TAB> 1,2,3 <TAB> OUT_PATH)

Output file: int64 rows, int64 cols (little-endian), then rows*cols float32 values
(row-major): logits [T, vocab] or scores [T, num_labels]. Without --out, prints JSON.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch


# ---- safetensors, by hand ----------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = buf[begin:end]
        shape = tuple(info["shape"])
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def load_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        index = json.load(f)
    weights = {}
    for shard in sorted(set(index["weight_map"].values())):
        weights.update(read_safetensors(os.path.join(model_dir, shard)))
    return weights


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    cfg = {}
    cfg["arch"] = (c.get("architectures") or ["LlamaForCausalLM"])[0]
    cfg["hidden"] = c["hidden_size"]
    cfg["layers"] = c["num_hidden_layers"]
    cfg["heads"] = c["num_attention_heads"]
    cfg["kv_heads"] = c.get("num_key_value_heads") or cfg["heads"]
    cfg["head_dim"] = c.get("head_dim") or cfg["hidden"] // cfg["heads"]
    cfg["eps"] = c.get("rms_norm_eps", 1e-6)
    theta = c.get("rope_theta")
    rp = c.get("rope_parameters")
    if isinstance(rp, dict) and rp.get("rope_theta") is not None:
        theta = rp["rope_theta"]
    cfg["theta"] = float(theta if theta is not None else 10000.0)
    cfg["qwen2"] = cfg["arch"].startswith("Qwen2")
    cfg["attention_bias"] = bool(c.get("attention_bias", False))
    cfg["mlp_bias"] = bool(c.get("mlp_bias", False))
    return cfg


# ---- the model (float32) -----------------------------------------------------------------

def rms_norm(x, w, eps):
    dtype = x.dtype
    h = x.to(torch.float32)
    var = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(var + eps)
    return w * h.to(dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(position_ids, head_dim, theta, dtype):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def repeat_kv(x, n_rep):
    b, n_kv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, n_kv, n_rep, s, d).reshape(b, n_kv * n_rep, s, d)


def linear(x, w, b=None):
    return torch.nn.functional.linear(x, w, b)


def forward(cfg, W, ids):
    dtype = torch.float32
    ids = torch.tensor([ids], dtype=torch.int64)
    bsz, T = ids.shape
    hd, H, KV = cfg["head_dim"], cfg["heads"], cfg["kv_heads"]
    n_rep = H // KV
    pos = torch.arange(T, dtype=torch.int64)[None, :]
    cos, sin = rope_cos_sin(pos, hd, cfg["theta"], dtype)
    cos, sin = cos[:, None], sin[:, None]  # [b, 1, T, hd]
    minv = torch.finfo(dtype).min
    mask = torch.full((T, T), minv, dtype=dtype).triu(1)[None, None]  # causal
    qkv_bias = cfg["qwen2"] or cfg["attention_bias"]
    o_bias = (not cfg["qwen2"]) and cfg["attention_bias"]
    mlp_bias = (not cfg["qwen2"]) and cfg["mlp_bias"]

    x = torch.nn.functional.embedding(ids, W["model.embed_tokens.weight"])
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        g = lambda n: W.get(p + n)
        residual = x
        h = rms_norm(x, g("input_layernorm.weight"), cfg["eps"])
        q = linear(h, g("self_attn.q_proj.weight"), g("self_attn.q_proj.bias") if qkv_bias else None)
        k = linear(h, g("self_attn.k_proj.weight"), g("self_attn.k_proj.bias") if qkv_bias else None)
        v = linear(h, g("self_attn.v_proj.weight"), g("self_attn.v_proj.bias") if qkv_bias else None)
        q = q.view(bsz, T, H, hd).transpose(1, 2)
        k = k.view(bsz, T, KV, hd).transpose(1, 2)
        v = v.view(bsz, T, KV, hd).transpose(1, 2)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        k = repeat_kv(k, n_rep)
        v = repeat_kv(v, n_rep)
        scores = torch.matmul(q, k.transpose(2, 3)) * (hd ** -0.5)
        scores = scores + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        a = torch.matmul(probs, v).transpose(1, 2).reshape(bsz, T, H * hd)
        x = residual + linear(a, g("self_attn.o_proj.weight"), g("self_attn.o_proj.bias") if o_bias else None)
        residual = x
        h = rms_norm(x, g("post_attention_layernorm.weight"), cfg["eps"])
        gate = linear(h, g("mlp.gate_proj.weight"), g("mlp.gate_proj.bias") if mlp_bias else None)
        up = linear(h, g("mlp.up_proj.weight"), g("mlp.up_proj.bias") if mlp_bias else None)
        x = residual + linear(torch.nn.functional.silu(gate) * up, g("mlp.down_proj.weight"),
                              g("mlp.down_proj.bias") if mlp_bias else None)
    x = rms_norm(x, W["model.norm.weight"], cfg["eps"])
    out = score_head(cfg["arch"], W, x)
    if out is None:
        head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
        out = linear(x, head)
    return out[0].float()


# ---- score heads (float64) --------------------------------------------------------------
# Written from transformers' modeling_qwen2_rm.py (Qwen2.5-Math-PRM / -RM: nn.Sequential(
# Linear(h, h), ReLU(), Linear(h, num_labels))), TRL's / SkyworkAI's ValueHead (dropout, inactive
# in eval, then summary = Linear(h, 1)) and *ForSequenceClassification (score = Linear(h,
# num_labels, bias=False), pooled at the last non-pad token by the caller).

def _f64_linear(x, W, name, bias_required):
    w = W[name + ".weight"].double()
    b = W.get(name + ".bias")
    if b is None and bias_required:
        raise KeyError(name + ".bias")
    return torch.nn.functional.linear(x, w, None if b is None else b.double())


def score_head(arch, W, x):
    """The raw head outputs [.., n] of final hidden states x, or None for a causal LM."""
    x = x.double()
    if arch.endswith("ForTokenClassification") or arch.endswith("ForSequenceClassification"):
        return _f64_linear(x, W, "score", False)
    if arch in ("Qwen2ForProcessRewardModel", "Qwen2ForRewardModel"):
        h = torch.relu(_f64_linear(x, W, "score.0", True))
        return _f64_linear(h, W, "score.2", True)
    if arch == "Qwen2ForPrmModel":
        return _f64_linear(x, W, "v_head.summary", True)
    return None


def run(model_dir, tokens, out_path):
    cfg = load_config(model_dir)
    W = load_weights(model_dir)
    with torch.no_grad():
        y = forward(cfg, W, tokens).contiguous().numpy().astype("<f4")
    if out_path is None:
        print(json.dumps({"output": y.tolist()}))
        return
    with open(out_path, "wb") as f:
        f.write(struct.pack("<qq", y.shape[0], y.shape[1]))
        f.write(y.tobytes())


def parse_tokens(s):
    return [int(t) for t in s.split(",") if t.strip()]


def main(argv):
    if len(argv) >= 2 and argv[0] == "--jobs":
        with open(argv[1]) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                model_dir, toks, out = line.split("\t")
                run(model_dir, parse_tokens(toks), out)
        return 0
    if len(argv) >= 3 and argv[1] == "--tokens":
        out = argv[4] if len(argv) >= 5 and argv[3] == "--out" else None
        run(argv[0], parse_tokens(argv[2]), out)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
