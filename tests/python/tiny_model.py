"""Tiny random-weight Llama folders written from Python (numpy + json), the same format as
tests/torch/tiny_model.hpp: config.json, model.safetensors (float32), and a character-level
WordLevel tokenizer.json with Math-Shepherd's " ки" step tag as an added token."""
import json
import struct

import numpy as np

CHARS = " \n+-=*/()?:#0123456789abcdefghijklmnopqrstuvwxyz"


def write_tokenizer(path):
    vocab = {"<unk>": 0}
    for i, c in enumerate(CHARS):
        vocab[c] = i + 1
    tag_id = len(CHARS) + 1
    tok = {
        "version": "1.0",
        "added_tokens": [{"id": tag_id, "content": " ки", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": False}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated",
                          "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def random_llama(rng, vocab, hidden, inter, layers, heads, kv):
    """HF-named float32 Llama tensors drawn from the numpy Generator `rng` (also used by
    benchmarks/make_gguf.py)."""
    hd = hidden // heads

    def w(rows, cols):
        return (2.0 * rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    t = {"model.embed_tokens.weight": rng.standard_normal((vocab, hidden)).astype(np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(hidden)
        t[p + "self_attn.q_proj.weight"] = w(heads * hd, hidden)
        t[p + "self_attn.k_proj.weight"] = w(kv * hd, hidden)
        t[p + "self_attn.v_proj.weight"] = w(kv * hd, hidden)
        t[p + "self_attn.o_proj.weight"] = w(hidden, heads * hd)
        t[p + "post_attention_layernorm.weight"] = norm(hidden)
        t[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        t[p + "mlp.up_proj.weight"] = w(inter, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, inter)
    t["model.norm.weight"] = norm(hidden)
    t["lm_head.weight"] = w(vocab, hidden)
    return t


def write_llama(folder, seed=0, hidden=32, inter=64, layers=2, heads=4, kv=2, vocab=64):
    t = random_llama(np.random.default_rng(seed), vocab, hidden, inter, layers, heads, kv)
    write_safetensors(f"{folder}/model.safetensors", t)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "max_position_embeddings": 512,
        "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "float32",
    }
    with open(f"{folder}/config.json", "w") as f:
        json.dump(config, f)
    write_tokenizer(f"{folder}/tokenizer.json")
