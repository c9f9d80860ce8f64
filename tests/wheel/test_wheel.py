"""The pip path: `python3 -m build --wheel --no-isolation` builds a wheel (offline, Debian's
setuptools and wheel), pip installs it with --no-index into a fresh virtual environment with
the system site packages, and a search runs from outside the source tree with the installed
package alone (its extension, its Python files and its data).

ctest (wheel_install) sets QSTAR_CMAKE_BUILD_DIR to the build folder, so setup.py packages the
extension built there instead of compiling it again (seconds, not minutes). Without it the
test builds the extension from scratch (docs/python.md gives the time)."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What setup.py reads from a checkout when QSTAR_CMAKE_BUILD_DIR is set (the extension, the
# data and the Python files of the wheel then come from that build folder).
SOURCES = ["setup.py", "pyproject.toml", "LICENSE", "docs/python.md", "include/qstar/version.hpp",
           "bindings/python/qstar"]

_missing = [m for m in ("build", "setuptools", "wheel", "venv", "pip") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_missing), reason=f"python3-{_missing} not installed (scripts/install-deps.sh)")

CHILD = r"""
import json, os, sys
import qstar
problems = qstar.game24.load(ranks="901-905")          # the wheel's package data
results = qstar.search(problems, algo="best-first", generator=qstar.game24.ProgrammaticGenerator(error_rate=0.1),
                       verifier=qstar.game24.OracleVerifier(), seed=0, expand_k=8, max_expansions=64,
                       keep_tree=True)
page = qstar.viz(results[0]).html                      # the viewer template is package data
print(json.dumps({"file": qstar.__file__, "version": qstar.__version__,
                  "spm": os.environ.get("QSTAR_SENTENCEPIECE_MODULE"), "viz_bytes": len(page),
                  "results": [[p.text, r.answer, r.correct] for p, r in zip(problems, results)]}))
"""


def makes_24(puzzle, answer):
    """Independent check of a Game of 24 answer: the expression (left of '=') uses each of the
    puzzle's numbers once and evaluates to 24 in exact rationals."""
    expr = answer.split("=")[0]
    if sorted(int(t) for t in re.findall(r"\d+", expr)) != sorted(int(t) for t in puzzle.split()):
        return False
    if not re.fullmatch(r"[\d\s+\-*/()]+", expr):
        return False
    value = eval(re.sub(r"(\d+)", r"Fraction(\1)", expr), {"Fraction": Fraction, "__builtins__": {}})
    return value == 24


def test_wheel_installs_into_a_fresh_venv_and_searches(tmp_path):
    build_dir = os.environ.get("QSTAR_CMAKE_BUILD_DIR")
    src = tmp_path / "src"
    for rel in SOURCES:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, src / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / rel, src / rel)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QSTAR_PYTHON_DIR", "QSTAR_DATA_DIR",
                                                            "QSTAR_SENTENCEPIECE_MODULE")}
    if not build_dir:  # the scratch build compiles from the whole checkout
        src = REPO
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)],
                   check=True, env=env, capture_output=True, timeout=3600)
    wheels = list(dist.glob("qstar-*.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert any(re.fullmatch(r"qstar/_qstar\..*\.so", n) for n in names), names
    for n in ("qstar/__init__.py", "qstar/py.typed", "qstar/viewer.html", "qstar/data/game24/24.csv", "qstar/data/math/math500_test.jsonl"):
        assert n in names
    spm_in_build = build_dir and (Path(build_dir) / "libqstar_sentencepiece.so").is_file()
    if spm_in_build:
        assert "qstar/libqstar_sentencepiece.so" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   env=env, timeout=120)
    py = venv / "bin" / "python"
    # The venv has no pip of its own: the system's (python3-pip) installs into the venv it runs in.
    subprocess.run([str(py), "-m", "pip", "install", "--no-index", "--no-deps", "--no-cache-dir", str(wheels[0])],
                   check=True, env=env, capture_output=True, timeout=300)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    out = subprocess.run([str(py), "-c", CHILD], check=True, env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    got = json.loads(out.stdout)
    assert Path(got["file"]).resolve().is_relative_to(venv.resolve())  # the installed copy, not the build tree
    if spm_in_build:
        assert Path(got["spm"]).resolve().is_relative_to(venv.resolve())
    results = got["results"]
    assert len(results) == 5
    assert got["viz_bytes"] > 10000, got["viz_bytes"]
    for puzzle, answer, correct in results:
        assert correct == (answer is not None and makes_24(puzzle, answer)), (puzzle, answer, correct)
    # best-first with the exact oracle solves each of these five (measured: 5/5 at seed 0)
    assert sum(bool(c) for _, _, c in results) == 5
