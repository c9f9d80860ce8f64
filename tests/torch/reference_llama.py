#!/usr/bin/env python3
"""Independent reference forward of a Llama / Qwen2 / Qwen3 / Mistral Hugging Face folder,
for parity tests.

Needs only torch and numpy (Debian's python3-torch 1.13 works): no transformers, no
safetensors package. The safetensors file(s) are parsed by hand, everything is computed in
float64 (the weights cast up), and the math follows transformers' modeling_llama.py /
modeling_qwen2.py / modeling_qwen3.py / modeling_mistral.py (eager attention):

  x = embed_tokens[ids]
  per layer:
    h = RMSNorm(x)                      # times the weight
    q, k, v = q_proj(h), k_proj(h), v_proj(h)   # + biases per family (qwen2: q/k/v)
    q, k = q_norm(q), k_norm(k)         # qwen3 only: RMSNorm per head over head_dim
    q, k = RoPE(q), RoPE(k)             # rotate_half; scaled RoPE: linear, dynamic, yarn, llama3
    k, v = repeat_kv(k), repeat_kv(v)   # head h reads kv head h // n_rep
    a = softmax(q k^T * d^-0.5 + mask) v    # causal; sliding layers: also q - k < window
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

RoPE inverse frequencies are computed one by one in Python floats from the formulas of
transformers' modeling_rope_utils.py (not from its code); dynamic NTK uses the sequence's
length (a fresh model's single forward). Sliding windows per layer follow transformers'
Mistral / Qwen2 / Qwen3 configs (sliding_window, use_sliding_window, max_window_layers,
layer_types) and masking_utils' sliding_window_overlay (key k seen by query q iff
q - window < k <= q).

Output file: int64 rows, int64 cols (little-endian), then rows*cols float32 values
(row-major): logits [T, vocab] or scores [T, num_labels], rounded from float64. Without
--out, prints JSON.
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


FAMILIES = {"Llama": "llama", "Qwen2": "qwen2", "Qwen3": "qwen3", "Mistral": "mistral"}


def load_config(model_dir):
    """config.json as transformers' Llama/Qwen2/Qwen3/Mistral configs read it (4.x and 5.x)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    cfg = {}
    cfg["arch"] = (c.get("architectures") or ["LlamaForCausalLM"])[0]
    family = c.get("model_type") or next(
        (t for p, t in FAMILIES.items() if cfg["arch"].startswith(p + "For")), "llama")
    cfg["family"] = family
    cfg["hidden"] = c["hidden_size"]
    cfg["layers"] = c["num_hidden_layers"]
    cfg["heads"] = c["num_attention_heads"]
    cfg["kv_heads"] = c.get("num_key_value_heads") or cfg["heads"]
    default_head_dim = 128 if family == "qwen3" else cfg["hidden"] // cfg["heads"]
    cfg["head_dim"] = c.get("head_dim") or default_head_dim
    cfg["eps"] = c.get("rms_norm_eps", 1e-6)
    cfg["max_pos"] = c.get("max_position_embeddings", 2048)

    # Biases and norms per family (modeling_<family>.py).
    attention_bias = bool(c.get("attention_bias", False))
    cfg["qkv_bias"] = {"llama": attention_bias, "qwen2": True, "qwen3": attention_bias,
                       "mistral": False}[family]
    cfg["o_bias"] = attention_bias if family in ("llama", "qwen3") else False
    cfg["mlp_bias"] = bool(c.get("mlp_bias", False)) if family == "llama" else False
    cfg["qk_norm"] = family == "qwen3"

    cfg["rope"] = rope_config(c, cfg["max_pos"])
    cfg["windows"] = layer_windows(c, family, cfg["layers"])
    return cfg


def rope_config(c, max_pos):
    """rope_scaling (4.x) then rope_parameters (5.x, wins) merged; theta and the type's fields."""
    r = {}
    for key in ("rope_scaling", "rope_parameters"):
        d = c.get(key)
        if isinstance(d, dict):
            r.update({k: v for k, v in d.items() if v is not None})
    rope_type = r.get("rope_type", r.get("type", "default"))
    theta = r.get("rope_theta", c.get("rope_theta"))
    r["theta"] = float(theta if theta is not None else 10000.0)
    r["type"] = rope_type
    if c.get("original_max_position_embeddings") is not None:
        r["original_max_position_embeddings"] = c["original_max_position_embeddings"]
    r.setdefault("original_max_position_embeddings", max_pos)
    r["max_pos"] = max_pos
    if float(r.get("partial_rotary_factor", c.get("partial_rotary_factor") or 1.0)) != 1.0:
        raise ValueError("partial_rotary_factor != 1 is not modelled")
    return r


def layer_windows(c, family, n_layers):
    """Each layer's sliding window (0: full causal attention), as transformers resolves it."""
    if family == "llama":
        return [0] * n_layers
    window = c["sliding_window"] if "sliding_window" in c else 4096
    if family in ("qwen2", "qwen3") and not c.get("use_sliding_window", False):
        window = None
    types = c.get("layer_types")
    if types is None:
        first = 0 if family == "mistral" else (c.get("max_window_layers") or 28)
        types = ["sliding_attention" if window is not None and i >= first else "full_attention"
                 for i in range(n_layers)]
    out = []
    for t in types:
        if t == "sliding_attention":
            if not window:
                raise ValueError("a sliding layer without a window")
            out.append(int(window))
        else:
            out.append(0)
    return out


# ---- RoPE, float64, frequency by frequency (modeling_rope_utils.py's formulas) -----------

def inv_freqs(r, d, seq_len):
    """The d/2 inverse frequencies and the cos/sin factor for a sequence of seq_len tokens."""
    theta, kind = r["theta"], r["type"]
    plain = [theta ** (-(2.0 * i) / d) for i in range(d // 2)]
    if kind == "default":
        return plain, 1.0
    if kind == "linear":
        return [f / r["factor"] for f in plain], 1.0
    if kind == "dynamic":
        m = r["max_pos"]
        length = max(seq_len, m)
        factor = r["factor"]
        base = theta * ((factor * length / m) - (factor - 1)) ** (d / (d - 2))
        return [base ** (-(2.0 * i) / d) for i in range(d // 2)], 1.0
    if kind == "llama3":
        factor, low, high = r["factor"], r["low_freq_factor"], r["high_freq_factor"]
        orig = r["original_max_position_embeddings"]
        out = []
        for f in plain:
            wavelen = 2 * math.pi / f
            if wavelen < orig / high:
                out.append(f)
            elif wavelen > orig / low:
                out.append(f / factor)
            else:
                s = (orig / wavelen - low) / (high - low)
                out.append((1 - s) * f / factor + s * f)
        return out, 1.0
    if kind == "yarn":
        orig = r["original_max_position_embeddings"]
        factor = r.get("factor") or r["max_pos"] / orig

        def mscale(scale, m=1.0):
            return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

        attention = r.get("attention_factor")
        if attention is None:
            if r.get("mscale") and r.get("mscale_all_dim"):
                attention = mscale(factor, r["mscale"]) / mscale(factor, r["mscale_all_dim"])
            else:
                attention = mscale(factor)

        def correction_dim(rotations):
            return d * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(theta))

        lo, hi = correction_dim(r.get("beta_fast") or 32), correction_dim(r.get("beta_slow") or 1)
        if r.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, d - 1)
        if lo == hi:
            hi += 0.001
        out = []
        for i, f in enumerate(plain):
            ramp = min(max((i - lo) / (hi - lo), 0.0), 1.0)  # 0: extrapolate, 1: interpolate
            out.append(f * (1 - ramp) + (f / factor) * ramp)
        return out, attention
    raise ValueError(f"rope type {kind} is not modelled")


def rope_cos_sin(r, head_dim, T, dtype):
    freqs, scale = inv_freqs(r, head_dim, T)
    inv = torch.tensor(freqs, dtype=dtype)
    angles = torch.arange(T, dtype=dtype)[:, None] * inv[None, :]
    emb = torch.cat((angles, angles), dim=-1)  # [T, hd]
    return emb.cos() * scale, emb.sin() * scale


# ---- the model (float64) -------------------------------------------------------------------

def rms_norm(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, n_kv, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, n_kv, n_rep, s, d).reshape(b, n_kv * n_rep, s, d)


def linear(x, w, b=None):
    return torch.nn.functional.linear(x, w, b)


def attention_mask(T, window, dtype):
    """Additive [1, 1, T, T]: key k seen by query q iff k <= q and (no window or q - k < window)."""
    q = torch.arange(T)[:, None]
    k = torch.arange(T)[None, :]
    seen = k <= q
    if window:
        seen = seen & (q - k < window)
    return torch.zeros(T, T, dtype=dtype).masked_fill(~seen, float("-inf"))[None, None]


def forward(cfg, W, ids):
    dtype = torch.float64
    W = {k: v.to(dtype) for k, v in W.items()}
    ids = torch.tensor([ids], dtype=torch.int64)
    bsz, T = ids.shape
    hd, H, KV = cfg["head_dim"], cfg["heads"], cfg["kv_heads"]
    n_rep = H // KV
    cos, sin = rope_cos_sin(cfg["rope"], hd, T, dtype)

    x = torch.nn.functional.embedding(ids, W["model.embed_tokens.weight"])
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        g = lambda n: W.get(p + n)
        b = lambda n, on: g(n) if on else None
        residual = x
        h = rms_norm(x, g("input_layernorm.weight"), cfg["eps"])
        q = linear(h, g("self_attn.q_proj.weight"), b("self_attn.q_proj.bias", cfg["qkv_bias"]))
        k = linear(h, g("self_attn.k_proj.weight"), b("self_attn.k_proj.bias", cfg["qkv_bias"]))
        v = linear(h, g("self_attn.v_proj.weight"), b("self_attn.v_proj.bias", cfg["qkv_bias"]))
        q = q.view(bsz, T, H, hd)
        k = k.view(bsz, T, KV, hd)
        if cfg["qk_norm"]:  # Qwen3: RMSNorm over each head's vector, before RoPE
            q = rms_norm(q, g("self_attn.q_norm.weight"), cfg["eps"])
            k = rms_norm(k, g("self_attn.k_norm.weight"), cfg["eps"])
        q = q.transpose(1, 2)
        k = k.transpose(1, 2)
        v = v.view(bsz, T, KV, hd).transpose(1, 2)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        k = repeat_kv(k, n_rep)
        v = repeat_kv(v, n_rep)
        scores = torch.matmul(q, k.transpose(2, 3)) * (hd ** -0.5)
        scores = scores + attention_mask(T, cfg["windows"][i], dtype)
        probs = torch.softmax(scores, dim=-1)
        a = torch.matmul(probs, v).transpose(1, 2).reshape(bsz, T, H * hd)
        x = residual + linear(a, g("self_attn.o_proj.weight"), b("self_attn.o_proj.bias", cfg["o_bias"]))
        residual = x
        h = rms_norm(x, g("post_attention_layernorm.weight"), cfg["eps"])
        gate = linear(h, g("mlp.gate_proj.weight"), b("mlp.gate_proj.bias", cfg["mlp_bias"]))
        up = linear(h, g("mlp.up_proj.weight"), b("mlp.up_proj.bias", cfg["mlp_bias"]))
        x = residual + linear(torch.nn.functional.silu(gate) * up, g("mlp.down_proj.weight"),
                              b("mlp.down_proj.bias", cfg["mlp_bias"]))
    x = rms_norm(x, W["model.norm.weight"], cfg["eps"])
    out = score_head(cfg["arch"], W, x)
    if out is None:
        head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
        out = linear(x, head)
    return out[0]


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
        y = forward(cfg, W, tokens).contiguous().numpy().astype("<f4")  # float64 -> float32
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
