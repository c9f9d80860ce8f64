"""pytest setup: finds the built extension (QSTAR_PYTHON_DIR, or build*/python of this checkout).

ctest runs this suite with QSTAR_PYTHON_DIR set and QSTAR_PYTHON_REQUIRED=1, so a module that
fails to import is an error there; run by hand without a build, every test module skips.
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _module_dir():
    env = os.environ.get("QSTAR_PYTHON_DIR")
    if env:
        return Path(env)
    for name in ("build", "build-py"):
        d = REPO / name / "python"
        if (d / "qstar").is_dir() and any((d / "qstar").glob("_qstar*.so")):
            return d
    return None


_dir = _module_dir()
if _dir is not None and str(_dir) not in sys.path:
    sys.path.insert(0, str(_dir))
if _dir is not None:
    os.environ.setdefault("QSTAR_PYTHON_DIR", str(_dir))
    # subprocesses (examples, the notebook, torch-import checks) find the module too
    if str(_dir) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_dir), os.environ.get("PYTHONPATH")) if p)

if os.environ.get("QSTAR_PYTHON_REQUIRED") == "1":
    import qstar  # noqa: F401  (a broken build must fail here, not skip)
