"""The Game of 24 task: the ToT data, the exact checker and solver, and its plug-ins.

``load(path=None, ranks="901-1000")`` reads a ToT ``24.csv`` (None: ``DEFAULT_DATA``, the copy
shipped with the package); ``check(problem, answer)`` is the exact rational checker;
``ProgrammaticGenerator`` and ``OracleVerifier`` are the C++ plug-ins of the CLI's default
``qstar bench`` configuration.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple, Union

from ._qstar import IoError, Problem
from ._data import data_path, where
from ._qstar import game24 as _g



#: The puzzles load() reads when given no path: the package's copy of data/game24/24.csv, or
#: $QSTAR_DATA_DIR/game24/24.csv (see _data.data_path); may not exist.
DEFAULT_DATA: str = data_path("game24", "24.csv")
OracleOutcomeVerifier = _g.OracleOutcomeVerifier
OracleVerifier = _g.OracleVerifier
ProgrammaticGenerator = _g.ProgrammaticGenerator
check = _g.check
extract_answer = _g.extract_answer
format_prompt = _g.format_prompt
parse_puzzle = _g.parse_puzzle
solve = _g.solve
_load = _g.load

Ranks = Union[str, Tuple[int, int], None]


def load(path: Optional[Union[str, os.PathLike]] = None, ranks: Ranks = "901-1000") -> list[Problem]:
    """Problems from a ToT 24.csv: ``ranks`` "A-B", (A, B) or None (every row); ``path`` None
    means DEFAULT_DATA (the package's copy of data/game24/24.csv, or $QSTAR_DATA_DIR/game24/24.csv)."""
    if path is None:
        if not os.path.exists(DEFAULT_DATA):
            raise IoError(f"game24.load: no path given and the built-in data file '{DEFAULT_DATA}' is missing "
                          f"(looked in {where()}); pass the path of a ToT 24.csv or set QSTAR_DATA_DIR")
        path = DEFAULT_DATA
    return _load(os.fspath(path), ranks)


__all__ = ["DEFAULT_DATA", "OracleOutcomeVerifier", "OracleVerifier", "ProgrammaticGenerator", "check",
           "extract_answer", "format_prompt", "load", "parse_puzzle", "solve"]
