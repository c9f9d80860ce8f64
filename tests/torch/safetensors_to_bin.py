#!/usr/bin/env python3
"""Rewrites a model folder's model.safetensors as torch.save checkpoints, with Debian's
python3-torch, for tests/torch/test_bin_weights.cpp.

Usage: safetensors_to_bin.py DIR [--shards N]

Reads DIR/model.safetensors (parsed here from the format's spec: an 8-byte little-endian header
length, the JSON header, the byte buffer), writes DIR/pytorch_model.bin (or, with --shards N > 1,
DIR/pytorch_model-0000i-of-0000N.bin and DIR/pytorch_model.bin.index.json as transformers'
save_pretrained(safe_serialization=False) names them), checks that torch.load reads every
tensor back equal, and removes model.safetensors.
"""
import argparse
import collections
import json
import os
import struct

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    out = collections.OrderedDict()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(buf[begin:end]), dtype=DTYPES[info["dtype"]]) if end > begin else \
            torch.zeros(0, dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    src = os.path.join(args.dir, "model.safetensors")
    sd = read_safetensors(src)
    names = list(sd.keys())
    if args.shards <= 1:
        files = {"pytorch_model.bin": names}
    else:
        per = (len(names) + args.shards - 1) // args.shards
        files = {"pytorch_model-%05d-of-%05d.bin" % (i + 1, args.shards): names[i * per:(i + 1) * per]
                 for i in range(args.shards)}
        weight_map = {k: f for f, keys in files.items() for k in keys}
        total = sum(t.numel() * t.element_size() for t in sd.values())
        with open(os.path.join(args.dir, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    for fname, keys in files.items():
        path = os.path.join(args.dir, fname)
        torch.save(collections.OrderedDict((k, sd[k]) for k in keys), path)
        back = torch.load(path)
        for k in keys:
            assert back[k].dtype == sd[k].dtype and torch.equal(back[k], sd[k]), k
    os.remove(src)


if __name__ == "__main__":
    main()
