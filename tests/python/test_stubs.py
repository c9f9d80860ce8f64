"""The type stub (qstar/__init__.pyi) declares exactly what the module exports."""
import ast
import inspect
from pathlib import Path

import pytest

qstar = pytest.importorskip("qstar")


def _stub():
    return ast.parse((Path(qstar.__file__).parent / "__init__.pyi").read_text())


def test_stub_names_match_the_module():
    tree = _stub()
    declared = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            declared.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            declared.update(a.asname or a.name for a in node.names)
    public = set(qstar.__all__)
    assert public - declared == set(), "exported but not in the stub"
    assert {n for n in declared if not n.startswith("_")} - public == set(), "in the stub but not exported"
    assert (Path(qstar.__file__).parent / "py.typed").exists()


def test_stub_members_exist():
    for node in _stub().body:
        if not isinstance(node, ast.ClassDef):
            continue
        if node.name in ("LMGenerator", "PRM") and not qstar.has_torch:
            continue  # the fallback classes only raise
        if node.name == "Tokenizer" and not qstar.has_hf:
            continue
        if node.name in ("HttpGenerator", "HttpVerifier") and not qstar.has_http:
            continue
        cls = getattr(qstar, node.name)
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                assert hasattr(cls, item.name), f"{node.name}.{item.name}"
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                assert hasattr(cls, item.target.id) or item.target.id in getattr(cls, "__annotations__", {}), \
                    f"{node.name}.{item.target.id}"


def test_search_signature_matches_the_stub():
    fn = next(n for n in _stub().body if isinstance(n, ast.FunctionDef) and n.name == "search")
    stub_args = [a.arg for a in fn.args.args]
    assert stub_args == list(inspect.signature(qstar.search).parameters)[: len(stub_args)]
