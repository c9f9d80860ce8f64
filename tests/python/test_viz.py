"""qstar.viz: the search-tree viewer page from Results, TraceRecords and trace files.

The page in a real browser: tests/viz/test_viz_browser.py (ctest viz_browser)."""
import html
import json
import os
import re
import subprocess

import pytest

qstar = pytest.importorskip("qstar")
from helpers import PUZZLES, oracle, programmatic  # noqa: E402

_BLOCK = re.compile(r'<script type="application/json" id="qstar-data">(.*?)</script>', re.S)


def _data(page):
    blocks = _BLOCK.findall(page)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def _without_tokens(line):
    rec = json.loads(line)
    for n in rec["nodes"]:
        for k in ("tokens", "token_logprobs", "token_entropies"):
            n.pop(k, None)
    return rec


@pytest.fixture(scope="module")
def results():
    return qstar.search(PUZZLES[:2], algo="beam", generator=programmatic(), verifier=oracle(), keep_tree=True)


def test_viz_of_results_holds_their_trace_lines(results, tmp_path):
    v = qstar.viz(results)
    assert isinstance(v, qstar.Viz) and len(v.records) == 2
    data = _data(v.html)
    assert data == [_without_tokens(r.trace_line()) for r in results]
    for rec, r in zip(data, results):  # the chosen leaf is the Result's chosen candidate
        if r.chosen >= 0:
            assert rec["chosen_node"] == r.candidates[r.chosen].node
            assert rec["nodes"][rec["chosen_node"]]["answer"] == r.answer
        assert rec["stats"]["generated_tokens"] == r.stats.generated_tokens
    assert v.nodes == sum(len(r.tree) for r in results)
    assert "__QSTAR_DATA__" not in v.html and "src=" not in v.html and "http" not in v.html
    # One Result, a TraceRecord, a path, problem=, path=.
    assert _data(qstar.viz(results[1]).html) == data[1:]
    path = tmp_path / "t.jsonl"
    qstar.write_trace(str(path), results)
    recs = qstar.read_trace(str(path))
    assert _data(qstar.viz(recs[0]).html) == data[:1]
    assert _data(qstar.viz(str(path)).html) == data
    assert _data(qstar.viz(path, problem=1).html) == data[1:]
    assert _data(qstar.viz(path, problem=results[0].problem.id).html) == data[:1]
    out = tmp_path / "t.html"
    v2 = qstar.viz(path, path=out)
    assert out.read_text(encoding="utf-8") == v2.html


def test_repr_html_is_an_iframe_holding_the_page(results):
    v = qstar.viz(results[0])
    r = v._repr_html_()
    assert r.startswith("<iframe") and r.endswith("</iframe>")
    srcdoc = re.search(r'srcdoc="(.*)"', r, re.S).group(1)
    assert '"' not in srcdoc and "<" not in srcdoc
    assert html.unescape(srcdoc) == v.html
    assert "problem(s)" in repr(v)


def test_the_data_block_cannot_be_closed_by_the_trace(tmp_path, results):
    rec = json.loads(results[0].trace_line())
    rec["problem"]["text"] = "</script><script>alert(1)</script><!--"
    rec["nodes"][1]["text"] = "a </SCRIPT> & b > c"
    page = qstar.viz(rec).html
    template = qstar.viz(results[0]).html
    assert page.lower().count("</script") == template.lower().count("</script")
    assert page.count("<!--") == template.count("<!--")
    got = _data(page)[0]
    assert got["problem"]["text"] == rec["problem"]["text"] and got["nodes"][1]["text"] == rec["nodes"][1]["text"]
    from qstar.viz import escape_json
    assert escape_json('{"a":"<&>"}') == '{"a":"\\u003c\\u0026\\u003e"}'


@pytest.mark.skipif(not os.environ.get("QSTAR_CLI"), reason="needs the qstar executable (QSTAR_CLI)")
def test_same_data_as_the_cli(results, tmp_path):
    path = tmp_path / "t.jsonl"
    qstar.write_trace(str(path), results)
    out = tmp_path / "cli.html"
    subprocess.run([os.environ["QSTAR_CLI"], "viz", str(path), "-o", str(out)], check=True, capture_output=True)
    cli = out.read_text(encoding="utf-8")
    py = qstar.viz(path).html
    assert _data(cli) == _data(py)
    assert _BLOCK.sub("", cli) == _BLOCK.sub("", py)  # the same template around it


def test_bad_input(tmp_path, results):
    no_tree = qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle())[0]
    with pytest.raises(qstar.InvalidArgument, match="keep_tree"):
        qstar.viz(no_tree)
    with pytest.raises(TypeError, match="Result"):
        qstar.viz(42)
    with pytest.raises(qstar.IoError, match="missing.jsonl"):
        qstar.viz(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(results[0].trace_line() + "\n{\"problem\": 1}\n")
    with pytest.raises(qstar.ParseError, match="bad.jsonl:2"):
        qstar.viz(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(qstar.InvalidArgument, match="no trace records"):
        qstar.viz(empty)
    with pytest.raises(qstar.InvalidArgument, match="out of range"):
        qstar.viz(results, problem=2)
    with pytest.raises(qstar.InvalidArgument, match="no record has problem id"):
        qstar.viz(results, problem="nope")
    rec = json.loads(results[0].trace_line())
    rec["chosen_node"] = len(rec["nodes"])
    with pytest.raises(qstar.ParseError, match="chosen_node"):
        qstar.viz(rec)
