"""The Python examples run (those that need no GPU), each under a short time limit."""
import os
import subprocess
import sys

import pytest

qstar = pytest.importorskip("qstar")
from helpers import REPO  # noqa: E402

EXAMPLES = REPO / "examples" / "python"


def _run(name, *args, timeout=120):
    env = os.environ.copy()
    d = os.environ.get("QSTAR_PYTHON_DIR")
    if d:
        env["PYTHONPATH"] = d + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_custom_verifier_example():
    out = _run("custom_verifier.py", "10")
    assert out.returncode == 0, out.stderr
    assert "ArithmeticPRM (Python)" in out.stdout and "solved" in out.stdout


def test_builtin_models_example():
    out = _run("builtin_models.py", "--puzzles", "1", "--n", "4")
    assert out.returncode == 0, out.stderr
    assert "solved" in out.stdout


def test_hf_generator_example_is_guarded():
    out = _run("hf_generator.py", "--puzzles", "1")
    assert out.returncode == 0, out.stderr
    try:
        import transformers  # noqa: F401
    except ImportError:
        assert out.stdout.startswith("skipped:")


def test_readme_python_snippet():
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python\n"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    code = code[: code.index("```")]
    env = os.environ.copy()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ShortStepsFirst ") and lines[1].startswith("OracleVerifier ")
