#!/usr/bin/python3
"""Writes a tiny random-weight Llama model twice: as a GGUF file for llama.cpp (with llama.cpp's
own gguf-py) and as a Hugging Face folder for qstar (config.json, model.safetensors,
tokenizer.json), holding the same weights and the same tokenizer, so that qstar and llama.cpp can
be run (and timed) on one model.

The tokenizer is a GPT-2-style byte-level BPE: the 256 byte tokens, `--merges` merges learned
from a small built-in corpus of Game-of-24 / arithmetic text, then <s> and </s> (BOS and EOS;
no BOS is added when encoding). With random weights every byte is likely, so generated text is
often invalid UTF-8: that exercises servers' handling of it.

Usage: make_gguf.py --gguf-py DIR --out DIR [--hidden 64 --layers 2 --heads 4 --kv-heads 2
                    --inter 128 --merges 200 --seed 0 --ctx 2048] [--outtype f32|f16|q8_0] [--gguf-only]
writes DIR/model.gguf (--outtype f32, the default; else DIR/model-f16.gguf / DIR/model-q8_0.gguf)
and DIR/hf/{config.json,model.safetensors,tokenizer.json} (float32; not with --gguf-only: the
same seed and shape give the same weights, so a second run adds another GGUF of the same model).
--outtype f16 / q8_0 store the attention, MLP and output matrices as F16 / Q8_0 (gguf-py's own
numpy quantiser, gguf.quants, as convert_hf_to_gguf.py --outtype does); the token embedding and
the norms stay F32, the same split as qstar's --dtype int8 (its embedding stays float32).
DIR/hf is a model folder for `qstar ... --model DIR/hf`. Needs python3-numpy (Debian) and the
gguf-py folder of a llama.cpp source tree (scripts/llamacpp.sh prints it).
"""
import argparse
import json
import os
import sys

import numpy as np

# The random weights and the safetensors writer of the tests' tiny models.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from tiny_model import random_llama, write_safetensors  # noqa: E402

CORPUS = """Use numbers and basic arithmetic operations (+ - * /) to obtain 24.
Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
6 - 4 = 2 (left: 2 12)
2 * 12 = 24 (left: 24)
Answer: (6 - 4) * (4 + 8) = 24
Input: 2 9 10 12
12 * 2 = 24 (left: 9 10 24)
10 - 9 = 1 (left: 1 24)
24 * 1 = 24 (left: 24)
Answer: (12 * 2) * (10 - 9) = 24
The answer is 42. Let x = 3 and y = 5, then x + y = 8 and x * y = 15.
"""


def bytes_to_unicode():
    """GPT-2's byte -> printable character map (as in its encoder.py and HF ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def learn_merges(text, count):
    """Plain BPE over the corpus's words (split before spaces, as GPT-2's regex roughly does):
    the most frequent adjacent pair first, ties by the pair's text; deterministic."""
    b2u = bytes_to_unicode()
    words = {}
    for line in text.split("\n"):
        for i, w in enumerate(line.split(" ")):
            if not w:
                continue
            w = (" " + w) if i > 0 else w
            key = tuple(b2u[b] for b in w.encode("utf-8"))
            words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(count):
        pairs = {}
        for w, f in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + f
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + f
        words = new
    return merges


def make_vocab(n_merges):
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    merges = learn_merges(CORPUS, n_merges)
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
    bos, eos = len(tokens), len(tokens) + 1
    tokens += ["<s>", "</s>"]
    return tokens, merges, bos, eos


def tokenizer_json(tokens, merges, bos, eos):
    special = [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                "normalized": False, "special": True} for i in (bos, eos)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": special,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [f"{a} {b}" for a, b in merges]},
    }


def permute_qk(w, n_head):
    """HF's rotate-half q/k rows -> llama.cpp's interleaved RoPE layout (convert_hf_to_gguf.py's
    LlamaModel.permute): the same model in both files."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def matrix(gguf, x, outtype):
    """(array, raw_dtype) of a weight matrix in --outtype."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if outtype == "f16":
        return x.astype(np.float16), None
    if outtype == "q8_0":
        q = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(x, q), q
    return x, None


def write_gguf(gguf, path, t, tokens, merges, bos, eos, a):
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_name("qstar-tiny-random-llama")
    wr.add_context_length(a.ctx)
    wr.add_embedding_length(a.hidden)
    wr.add_block_count(a.layers)
    wr.add_feed_forward_length(a.inter)
    wr.add_head_count(a.heads)
    wr.add_head_count_kv(a.kv_heads)
    wr.add_layer_norm_rms_eps(1e-6)
    wr.add_rope_dimension_count(a.hidden // a.heads)
    wr.add_rope_freq_base(10000.0)
    wr.add_vocab_size(len(tokens))
    wr.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                      "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[a.outtype])
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre("gpt-2")
    wr.add_token_list(tokens)
    types = [gguf.TokenType.NORMAL] * len(tokens)
    types[bos] = types[eos] = gguf.TokenType.CONTROL
    wr.add_token_types(types)
    wr.add_token_merges([f"{x} {y}" for x, y in merges])
    wr.add_bos_token_id(bos)
    wr.add_eos_token_id(eos)
    wr.add_add_bos_token(False)
    wr.add_add_eos_token(False)
    names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    wr.add_tensor("token_embd.weight", t["model.embed_tokens.weight"])
    for i in range(a.layers):
        for hf, gg in names.items():
            x = t[f"model.layers.{i}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                x = permute_qk(x, a.heads)
            elif hf == "self_attn.k_proj":
                x = permute_qk(x, a.kv_heads)
            if gg.endswith("norm"):
                wr.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(x))
            else:
                data, raw = matrix(gguf, x, a.outtype)
                wr.add_tensor(f"blk.{i}.{gg}.weight", data, raw_dtype=raw)
    wr.add_tensor("output_norm.weight", t["model.norm.weight"])
    data, raw = matrix(gguf, t["lm_head.weight"], a.outtype)
    wr.add_tensor("output.weight", data, raw_dtype=raw)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("--out", required=True, help="output folder (model.gguf and hf/)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--inter", type=int, default=128)
    ap.add_argument("--merges", type=int, default=200)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f32",
                    help="the GGUF's weight matrices: f32 (model.gguf), f16 or q8_0 (model-TYPE.gguf)")
    ap.add_argument("--gguf-only", action="store_true", help="write only the GGUF (not hf/)")
    a = ap.parse_args()
    for name in ("hidden", "layers", "heads", "kv_heads", "inter", "ctx"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.hidden % a.heads or a.heads % a.kv_heads or (a.hidden // a.heads) % 2:
        ap.error("--hidden must be a multiple of --heads, --heads of --kv-heads, and the head size even")
    if not os.path.isfile(os.path.join(a.gguf_py, "gguf", "gguf_writer.py")):
        ap.error(f"--gguf-py {a.gguf_py}: no gguf/gguf_writer.py there")
    sys.path.insert(0, a.gguf_py)
    import gguf  # noqa: E402  (llama.cpp's own writer, from the source tree)

    tokens, merges, bos, eos = make_vocab(a.merges)
    t = random_llama(np.random.default_rng(a.seed), len(tokens), a.hidden, a.inter, a.layers, a.heads, a.kv_heads)
    if (a.hidden % 32 or a.inter % 32) and a.outtype == "q8_0":
        ap.error("--outtype q8_0 needs --hidden and --inter multiples of 32 (Q8_0's block)")
    hf = os.path.join(a.out, "hf")
    gguf_path = os.path.join(a.out, "model.gguf" if a.outtype == "f32" else f"model-{a.outtype}.gguf")
    if a.gguf_only:
        os.makedirs(a.out, exist_ok=True)
        write_gguf(gguf, gguf_path, t, tokens, merges, bos, eos, a)
        print(f"make_gguf.py: {gguf_path} ({a.outtype})")
        return
    os.makedirs(hf, exist_ok=True)
    write_safetensors(os.path.join(hf, "model.safetensors"), t)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": len(tokens),
        "hidden_size": a.hidden, "intermediate_size": a.inter, "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "max_position_embeddings": a.ctx, "hidden_act": "silu",
        "tie_word_embeddings": False, "torch_dtype": "float32", "bos_token_id": bos, "eos_token_id": eos,
    }
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(hf, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(tokens, merges, bos, eos), f, ensure_ascii=False)
    write_gguf(gguf, gguf_path, t, tokens, merges, bos, eos, a)
    print(f"make_gguf.py: {len(tokens)} tokens, {len(merges)} merges, {a.layers} layers x {a.hidden}: "
          f"{gguf_path} ({a.outtype}) and {hf}/")


if __name__ == "__main__":
    main()
