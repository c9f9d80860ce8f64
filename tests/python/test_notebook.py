"""examples/notebooks/quickstart.ipynb is valid and runs: executed with nbclient (Debian's
python3-nbclient + python3-ipykernel) where installed, else its code cells run in order with
plain python."""
import json
import os
import subprocess
import sys

import pytest

qstar = pytest.importorskip("qstar")
from helpers import REPO  # noqa: E402

NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def _env():
    env = os.environ.copy()
    d = os.environ.get("QSTAR_PYTHON_DIR")
    if d:
        env["PYTHONPATH"] = d + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    return env


def test_notebook_is_valid_json():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 4
    assert all(c["outputs"] == [] for c in code), "check the notebook in without outputs"
    try:
        import nbformat
    except ImportError:
        return
    nbformat.validate(nbformat.reads(NOTEBOOK.read_text(), as_version=4))


def test_notebook_runs(tmp_path):
    try:
        import nbclient
        import nbformat
        import ipykernel  # noqa: F401
    except ImportError:
        nbclient = None
    if nbclient is None:
        nb = json.loads(NOTEBOOK.read_text())
        source = "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        out = subprocess.run([sys.executable, "-c", source], cwd=NOTEBOOK.parent, env=_env(), capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "solved with LengthPRM" in out.stdout
        return
    # A kernel spec for this very interpreter (the one the module was built for).
    spec = tmp_path / "kernels" / "qstar-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "qstar test", "language": "python"}))
    env = _env()
    old = dict(os.environ)
    os.environ.update(env)
    os.environ["JUPYTER_PATH"] = str(tmp_path)
    try:
        nb = nbformat.read(str(NOTEBOOK), as_version=4)
        client = nbclient.NotebookClient(nb, timeout=300, kernel_name="qstar-test",
                                         resources={"metadata": {"path": str(NOTEBOOK.parent)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "solved with LengthPRM" in outputs
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
