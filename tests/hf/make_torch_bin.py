#!/usr/bin/env python3
"""Writes torch.save checkpoints with Debian's python3-torch for tests/hf/test_torch_bin.cpp.

Usage: make_torch_bin.py OUT_DIR

Every folder under OUT_DIR gets an expected.json: the tensors as torch itself reads them back
(name, dtype, shape, the bytes of .contiguous() in hex, and a storage group: tensors with the
same group share one storage in the file). The reader under test must reproduce them bit for
bit. Folders:

  single/    pytorch_model.bin: an OrderedDict state dict (nn.Module.state_dict(), so with
             `_metadata`) of f32/bf16/f16 tensors with special values, a tied weight, views with
             storage offsets, a 0-d and an empty tensor, and an nn.Parameter
  sharded/   pytorch_model-0000{1,2}-of-00002.bin and pytorch_model.bin.index.json
  both/      the same tensors as pytorch_model.bin and as model.safetensors (written here by
             hand from the format's spec, not by our writer)
  proto4/    torch.save(..., pickle_protocol=4): FRAME, SHORT_BINUNICODE, MEMOIZE
  zip64/     single/'s archive repacked with ZIP64 records everywhere and unaligned data,
             checked to load in torch.load and Python's zipfile
  plain_dict/ a plain dict (not an OrderedDict), as recent transformers shard writers save
  legacy/    the pre-1.6 format (_use_new_zipfile_serialization=False): must be refused
  transposed/ a non-contiguous tensor (w.t()): must be refused
  int64/     a LongStorage buffer: must be refused
  evil_*/    pickles that run a command when torch.load reads them (protocols 2 and 4): each would create
             OUT_DIR/<name>.marker (checked here by loading one with pickle, then the marker
             is removed); the reader must refuse them and the marker must stay absent.
"""
import builtins
import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib

import torch


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.float32:
        return t.view(torch.int32).numpy().tobytes()
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.view(torch.int16).numpy().tobytes()
    raise ValueError(t.dtype)


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def expected(sd):
    groups = {}
    out = []
    for name, t in sd.items():
        ptr = t.storage().data_ptr()
        groups.setdefault(ptr, len(groups))
        out.append({"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape),
                    "hex": raw_bytes(t).hex(), "group": groups[ptr]})
    return out


def write_expected(folder, tensors, source):
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({"source": source, "tensors": tensors}, f)


def special(dtype):
    vals = [float("nan"), float("inf"), float("-inf"), -0.0, 1e-40, 65504.0, -2.5, 1.0 / 3.0]
    return torch.tensor(vals, dtype=torch.float32).to(dtype)


def state_dict():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(5, 4)
    lin = torch.nn.Linear(4, 5, bias=True)
    model = torch.nn.Module()
    model.embed = emb
    model.head = lin
    model.head.weight = model.embed.weight  # tied: one storage, two names
    sd = model.state_dict()
    base = torch.randn(24).to(torch.bfloat16)
    sd["bf16.view"] = base[2:14].view(3, 4)  # storage offset 2, shares base's storage
    sd["bf16.base"] = base
    sd["bf16.tail"] = base[20:]
    sd["f16.special"] = special(torch.float16)
    sd["bf16.special"] = special(torch.bfloat16)
    sd["f32.special"] = special(torch.float32)
    sd["f32.scalar"] = torch.tensor(-7.25)
    sd["f32.empty"] = torch.zeros(0, 3)
    sd["f32.col"] = torch.randn(4, 1)  # stride of the size-1 dim is free
    sd["f16.rows"] = torch.randn(6, 3).to(torch.float16)[1:3]  # a row slice: contiguous, offset 3
    return sd


def check_loads_back(path, sd):
    back = torch.load(path)
    assert list(back.keys()) == list(sd.keys()), path
    for k in sd:
        assert raw_bytes(back[k]) == raw_bytes(sd[k]), (path, k)


def write_safetensors(path, sd):
    header, blobs, offset = {}, [], 0
    for name, t in sd.items():
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def repack_zip64(src, dst):
    """Rewrites a zip with ZIP64 sizes and offsets in every record, and a 3-byte extra field
    before each entry's data so that no tensor is aligned."""
    entries = []
    with zipfile.ZipFile(src) as z:
        for info in z.infolist():
            entries.append((info.filename.encode(), z.read(info.filename)))
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        crc = zlib.crc32(data)
        offset = len(out)
        local_extra = struct.pack("<HHQQ", 1, 16, len(data), len(data)) + struct.pack("<HH3s", 0xCAFE, 3, b"pad")
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name),
                           len(local_extra)) + name + local_extra + data
        cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(name), len(cextra), 0, 0, 0, 0, 0xFFFFFFFF) + name + cextra
    cd_offset = len(out)
    out += central
    e64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, e64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(dst, "wb") as f:
        f.write(out)
    with zipfile.ZipFile(dst) as z:
        assert z.testzip() is None
        assert [i.filename.encode() for i in z.infolist()] == [n for n, _ in entries]


def write_pickle_zip(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


class Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def main():
    out = sys.argv[1]

    def folder(name):
        p = os.path.join(out, name)
        os.makedirs(p, exist_ok=True)
        return p

    sd = state_dict()
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))  # saved through _rebuild_parameter
    exp = expected(sd)

    p = os.path.join(folder("single"), "pytorch_model.bin")
    torch.save(sd, p)
    check_loads_back(p, sd)
    write_expected(folder("single"), exp, "pytorch_model.bin")

    # Sharded like transformers' save_pretrained(safe_serialization=False).
    names = list(sd.keys())
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    weight_map = {}
    for shard, keys in shards.items():
        torch.save(collections.OrderedDict((k, sd[k]) for k in keys), os.path.join(folder("sharded"), shard))
        weight_map.update({k: shard for k in keys})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(os.path.join(folder("sharded"), "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    write_expected(folder("sharded"), exp, "pytorch_model.bin.index.json")

    plain = {k: v.detach() for k, v in sd.items()}
    torch.save(plain, os.path.join(folder("both"), "pytorch_model.bin"))
    write_safetensors(os.path.join(folder("both"), "model.safetensors"), plain)
    write_expected(folder("both"), exp, "model.safetensors")

    p = os.path.join(folder("proto4"), "pytorch_model.bin")
    torch.save(sd, p, pickle_protocol=4)
    check_loads_back(p, sd)
    write_expected(folder("proto4"), exp, "pytorch_model.bin")

    p = os.path.join(folder("zip64"), "pytorch_model.bin")
    repack_zip64(os.path.join(out, "single", "pytorch_model.bin"), p)
    check_loads_back(p, sd)
    write_expected(folder("zip64"), exp, "pytorch_model.bin")

    p = os.path.join(folder("plain_dict"), "pytorch_model.bin")
    torch.save(plain, p)
    check_loads_back(p, plain)
    write_expected(folder("plain_dict"), exp, "pytorch_model.bin")

    torch.save(sd, os.path.join(folder("legacy"), "pytorch_model.bin"), _use_new_zipfile_serialization=False)
    torch.save({"w": torch.randn(3, 2).t()}, os.path.join(folder("transposed"), "pytorch_model.bin"))
    torch.save({"w": torch.randn(2), "position_ids": torch.arange(4)}, os.path.join(folder("int64"), "pytorch_model.bin"))

    # Payloads that run a command when unpickled by pickle / torch.load.
    def marker(name):
        return os.path.join(out, name + ".marker")

    evil = {
        "evil_os_system": Payload(os.system, ("touch '%s'" % marker("evil_os_system"),)),
        "evil_subprocess": Payload(subprocess.check_call, (["touch", marker("evil_subprocess")],)),
        "evil_eval": Payload(builtins.eval, ("open(%r, 'w').close()" % marker("evil_eval"),)),
    }
    # Protocol 2 writes Python 2 names (posix.system, __builtin__.eval, commands.check_call);
    # protocol 4 the Python 3 ones, through STACK_GLOBAL.
    evil["evil_subprocess_p4"] = Payload(subprocess.check_call, (["touch", marker("evil_subprocess_p4")],))
    evil["evil_eval_p4"] = Payload(builtins.eval, ("open(%r, 'w').close()" % marker("evil_eval_p4"),))
    for name, payload in evil.items():
        pkl = pickle.dumps(payload, protocol=4 if name.endswith("_p4") else 2)
        write_pickle_zip(os.path.join(folder(name), "pytorch_model.bin"), pkl)
    # Inside a real checkpoint, after a valid tensor: torch.save writes the payload's REDUCE.
    torch.save({"w": torch.randn(2), "x": Payload(os.system, ("touch '%s'" % marker("evil_in_state_dict"),))},
               os.path.join(folder("evil_in_state_dict"), "pytorch_model.bin"))
    # The control: each payload is live (it creates its marker when torch.load / pickle reads it).
    torch.load(os.path.join(out, "evil_in_state_dict", "pytorch_model.bin"))
    for name in evil:
        with zipfile.ZipFile(os.path.join(out, name, "pytorch_model.bin")) as z:
            pickle.loads(z.read("archive/data.pkl"))
    for name in list(evil) + ["evil_in_state_dict"]:
        assert os.path.exists(marker(name)), name
        os.remove(marker(name))


if __name__ == "__main__":
    main()
