"""qstar.Tokenizer (qstar::hf, no LibTorch) on the test tokenizers: the character-level
WordLevel one of tiny_model.py and the GPT-2-style byte-level BPE of tests/hf/test_tokenizer.cpp,
written here as tokenizer.json files, with the token ids worked out there."""
import json

import pytest

qstar = pytest.importorskip("qstar")
if not qstar.has_hf:
    pytest.skip("this qstar was built without qstar::hf", allow_module_level=True)
from tiny_model import write_tokenizer  # noqa: E402


def byte_char(b):
    """GPT-2's byte -> character map: printable bytes stand for themselves, the other 68 get
    U+0100, U+0101, ... in increasing order."""
    n = 0
    for c in range(256):
        printable = 0x21 <= c <= 0x7E or 0xA1 <= c <= 0xAC or c >= 0xAE
        if c == b:
            return chr(c) if printable else chr(256 + n)
        if not printable:
            n += 1
    raise ValueError(b)


def bl(raw: bytes) -> str:
    return "".join(byte_char(b) for b in raw)


# tests/hf/test_tokenizer.cpp's merges, in rank order: ids 256, 257, ... ("H e" -> 256 "He",
# ... "Hell o" -> 259 "Hello", ... "Ġwor ld" -> 264 "Ġworld", ..., E4 BD -> 269).
MERGES = [(b"H", b"e"), (b"l", b"l"), (b"He", b"ll"), (b"Hell", b"o"), (b" ", b"w"), (b"o", b"r"), (b" w", b"or"),
          (b"l", b"d"), (b" wor", b"ld"), (b"'", b"s"), (b"1", b"2"), (b" ", b" "), (b"\n", b"\n"),
          (b"\xE4", b"\xBD")]


def added(id_, content, special, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": False, "special": special}


def gpt2_json():
    vocab = {byte_char(b): b for b in range(256)}
    merges, nxt = [], 256
    for a, b in MERGES:
        if bl(a + b) not in vocab:
            vocab[bl(a + b)] = nxt
            nxt += 1
        merges.append(f"{bl(a)} {bl(b)}")
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(300, "<|im_start|>", True), added(301, "<|im_end|>", True),
                         added(302, "<|im", False), added(303, "<L>", False, lstrip=True),
                         added(304, "<R>", False, rstrip=True), added(305, "<W>", False, single_word=True)],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    p = tmp_path_factory.mktemp("gpt2") / "tokenizer.json"
    p.write_text(json.dumps(gpt2_json()), encoding="utf-8")
    return qstar.Tokenizer.from_file(str(p))


@pytest.fixture(scope="module")
def chars(tmp_path_factory):
    p = tmp_path_factory.mktemp("chars") / "tokenizer.json"
    write_tokenizer(str(p))
    return qstar.Tokenizer.from_file(str(p))


def test_byte_level_bpe_known_ids(gpt2):
    assert gpt2.encode("Hello world") == [259, 264]
    assert gpt2.encode("Hel") == [256, ord("l")]
    assert gpt2.encode("it's") == [ord("i"), ord("t"), 265]
    assert gpt2.encode("a 123") == [ord("a"), 32, 266, ord("3")]
    assert gpt2.encode("a\n\n") == [ord("a"), 268]
    assert gpt2.encode("") == []
    assert gpt2.decode([259, 264]) == "Hello world"
    assert gpt2.decode([259, 270, 999999, -5, 264]) == "Hello world"  # ids without a token are skipped
    assert gpt2.vocab_size == 306
    assert gpt2.token_to_id(bl(b" world")) == 264 and gpt2.token_to_id("nope") is None
    assert gpt2.id_to_token(264) == bl(b" world")
    with pytest.raises(qstar.InvalidArgument):
        gpt2.id_to_token(270)
    assert gpt2.bos_id is None and gpt2.eos_id is None


def test_non_ascii_round_trips_and_partial_tokens(gpt2):
    nihao = "\u4f60\u597d"  # E4 BD A0 E5 A5 BD: the first two bytes are merge 269
    assert gpt2.encode(nihao) == [269, 0xA0, 0xE5, 0xA5, 0xBD]
    assert gpt2.decode(gpt2.encode(nihao + " Hello")) == nihao + " Hello"
    assert gpt2.encode("\U0001F600") == [0xF0, 0x9F, 0x98, 0x80]
    assert gpt2.decode([269]) == "\ufffd"  # a partial UTF-8 sequence decodes with a replacement


def test_added_and_special_tokens(gpt2):
    assert gpt2.encode("x<|im_start|>Hello<|im_end|>") == [ord("x"), 300, 259, 301]
    assert gpt2.encode("<|im_s") == [302, ord("_"), ord("s")]
    assert gpt2.encode("a <L> b") == [ord("a"), 303, 32, ord("b")]
    assert gpt2.decode([ord("x"), 300, 259, 301]) == "x<|im_start|>Hello<|im_end|>"
    assert gpt2.decode([ord("x"), 300, 259, 301], skip_special_tokens=True) == "xHello"
    assert gpt2.decode([302], True) == "<|im"  # not special: kept
    assert gpt2.encode("Hello", add_special_tokens=True) == [259]  # a ByteLevel post-processor adds nothing


def test_encode_batch_matches_encode(gpt2, chars):
    texts = ["Hello world", "", "it's 12", "\u4f60\u597d<|im_end|>"]
    assert gpt2.encode_batch(texts) == [gpt2.encode(t) for t in texts]
    assert gpt2.encode_batch(tuple(texts), add_special_tokens=True) == [gpt2.encode(t, True) for t in texts]
    assert chars.encode_batch([]) == []
    with pytest.raises(qstar.InvalidArgument, match=r"texts\[1\]: expected a str"):
        gpt2.encode_batch(["a", 3])
    with pytest.raises(qstar.InvalidArgument, match="texts: expected a list of str"):
        gpt2.encode_batch("Hello")
    with pytest.raises(qstar.InvalidArgument, match=r"ids\[1\]: expected an int"):
        gpt2.decode([1, "2"])
    with pytest.raises(qstar.InvalidArgument, match=r"ids\[0\]: .* out of the int32 range"):
        gpt2.decode([2**40])


def test_character_level_wordlevel_with_a_step_tag(chars):
    # tiny_model.CHARS: " " 1, "\n" 2, "+" 3, "-" 4, "=" 5, ..., "0" 13 ... "9" 22, "a" 23 ...;
    # the added " ки" step tag is 49.
    assert chars.encode("4 + 5") == [17, 1, 3, 1, 18]
    assert chars.encode("4 + 5 = 9 ки\n") == [17, 1, 3, 1, 18, 1, 5, 1, 22, 49, 2]
    assert chars.encode("ab") == [23, 24]
    assert chars.decode([17, 1, 3, 1, 18, 49]) == "4 + 5 ки"
    assert chars.token_to_id(" ки") == 49 and chars.vocab_size == 50


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(qstar.IoError, match="no_such_tokenizer.json"):
        qstar.Tokenizer.from_file(str(tmp_path / "no_such_tokenizer.json"))
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"model": {"type": "Unigram"}}')
    with pytest.raises(qstar.ParseError, match="tokenizer.json: model.type \"Unigram\" is not supported"):
        qstar.Tokenizer.from_file(str(bad))
    assert qstar.Tokenizer.from_json(json.dumps(gpt2_json())).encode("Hello") == [259]


def test_lm_generator_shares_its_tokenizer(tmp_path):
    if not qstar.has_torch:
        pytest.skip("this qstar was built without LibTorch")
    from tiny_model import write_llama

    write_llama(str(tmp_path), seed=1)
    g = qstar.LMGenerator(str(tmp_path))
    t = qstar.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert g.tokenizer.encode("4 + 5 = 9") == t.encode("4 + 5 = 9") == g.tokenize("4 + 5 = 9")
