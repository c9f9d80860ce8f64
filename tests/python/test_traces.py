"""Trees as nested dicts, trace export and import."""
import json

import pytest

qstar = pytest.importorskip("qstar")
from helpers import PUZZLES, oracle, programmatic  # noqa: E402


def _count(node):
    return 1 + sum(_count(c) for c in node["children"]) + sum(_count(c) for c in node["rollouts"])


@pytest.mark.parametrize("algo", ["beam", "mcts"])
def test_tree_as_nested_dicts(algo):
    r = qstar.search("4 5 6 10", algo=algo, generator=programmatic(), verifier=oracle(), keep_tree=True)[0]
    t = r.tree
    assert isinstance(t, qstar.Tree) and len(t) == r.stats.nodes
    d = t.to_dict()
    assert d["id"] == 0 and d["parent"] == -1 and _count(d) == len(t)
    assert json.loads(t.to_json()) == d
    first = d["children"][0]
    assert first["text"] == t.text(first["id"]) and first["parent"] == 0
    assert t.children(0) == [c["id"] for c in d["children"]]
    leaf = r.candidates[r.chosen].node
    assert t.trajectory(leaf) == r.steps
    assert t.node(leaf)["answer"] == r.answer
    with pytest.raises(qstar.InvalidArgument, match="node"):
        t.node(len(t))
    # without keep_tree there is no tree
    assert qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle())[0].tree is None


def test_trace_round_trip(tmp_path):
    rs = qstar.search(PUZZLES, algo="best-first", generator=programmatic(), verifier=oracle(), keep_tree=True)
    path = tmp_path / "trace.jsonl"
    qstar.write_trace(str(path), rs)
    lines = path.read_text().splitlines()
    assert len(lines) == len(PUZZLES)
    assert lines[0] == rs[0].trace_line()
    recs = qstar.read_trace(str(path))
    for r, rec, line in zip(rs, recs, lines):
        assert rec.problem == r.problem and rec.answer == r.answer and rec.correct == r.correct
        assert rec.stop_reason == r.stop_reason and len(rec.tree) == len(r.tree)
        assert rec.tree.to_dict() == r.tree.to_dict()
        assert rec.to_json() == line  # byte-identical after a round trip
        # nodes with answers carry their exact correctness
        for i in range(len(rec.tree)):
            if rec.tree.node(i)["answer"] is not None:
                assert rec.node_correct[i] == qstar.game24.check(rec.problem, rec.tree.node(i)["answer"])
    assert qstar.parse_trace_line(lines[1]).to_json() == lines[1]
    qstar.write_trace(str(path), rs[:1], append=True)
    assert len(path.read_text().splitlines()) == len(PUZZLES) + 1


def test_trace_errors(tmp_path):
    r = qstar.search("4 5 6 10", generator=programmatic(), verifier=oracle())[0]
    with pytest.raises(qstar.InvalidArgument, match="keep_tree"):
        r.trace_line()
    with pytest.raises(qstar.InvalidArgument, match="keep_tree"):
        qstar.write_trace(str(tmp_path / "x.jsonl"), [r])
    with pytest.raises(qstar.IoError, match="missing.jsonl"):
        qstar.read_trace(str(tmp_path / "missing.jsonl"))
    with pytest.raises(qstar.ParseError):
        qstar.parse_trace_line('{"problem": 3}')
