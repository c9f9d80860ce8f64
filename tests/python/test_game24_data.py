"""game24.DEFAULT_DATA is found at run time (no source path compiled into the module): the
package's copy of data/game24/24.csv, or $QSTAR_DATA_DIR/game24/24.csv when that is set."""
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

qstar = pytest.importorskip("qstar")
REPO = Path(__file__).resolve().parents[2]


def test_default_data_is_package_data_identical_to_the_source_copy():
    d = Path(qstar.game24.DEFAULT_DATA)
    if os.environ.get("QSTAR_DATA_DIR"):
        pytest.skip("QSTAR_DATA_DIR is set")
    assert d == Path(qstar.__file__).resolve().parent / "data" / "game24" / "24.csv"
    assert filecmp.cmp(d, REPO / "data" / "game24" / "24.csv", shallow=False)
    assert [p.id for p in qstar.game24.load(ranks="901-903")] == ["901", "902", "903"]


def test_module_has_no_source_path_in_it():
    so = next((Path(qstar.__file__).parent).glob("_qstar*.so"))
    assert str(REPO / "data").encode() not in so.read_bytes()


def _load_in_subprocess(env):
    code = ("import qstar\nprint(qstar.game24.DEFAULT_DATA)\n"
            "try:\n    print(len(qstar.game24.load(ranks='1-2')))\n"
            "except qstar.IoError as e:\n    print('IoError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_qstar_data_overrides(tmp_path):
    (tmp_path / "game24").mkdir()
    (tmp_path / "game24" / "24.csv").write_bytes((REPO / "data" / "game24" / "24.csv").read_bytes())
    env = dict(os.environ, QSTAR_DATA_DIR=str(tmp_path))
    path, n = _load_in_subprocess(env)
    assert path == str(tmp_path / "game24" / "24.csv") and n == "2"
    env["QSTAR_DATA_DIR"] = str(tmp_path / "empty")
    path, err = _load_in_subprocess(env)
    assert err.startswith("IoError") and "QSTAR_DATA_DIR" in err and "empty" in err
