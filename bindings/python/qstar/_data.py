"""Where the data sets shipped with the package are found at run time (no source path is
compiled in): under ``$QSTAR_DATA_DIR`` when that variable is set (a folder like the source
tree's data/ or an installed <prefix>/share/qstar, as for the qstar program), else next to this
module (package data, ``qstar/data/``: in the build tree, the wheel and the installed package)."""

from __future__ import annotations

import os


def data_path(*parts: str) -> str:
    """The path of a shipped data file, e.g. ``data_path("game24", "24.csv")``."""
    env = os.environ.get("QSTAR_DATA_DIR")
    base = env if env else os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    return os.path.join(base, *parts)


def where() -> str:
    """Where data_path looks, for error messages."""
    return "$QSTAR_DATA_DIR" if os.environ.get("QSTAR_DATA_DIR") else "the qstar package"
