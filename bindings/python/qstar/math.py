"""The math word-problem task (GSM8K, MATH-500, AIME or any JSONL set) and its exact grader.

``load(path=None, ...)`` reads a JSONL file with configurable field names (None: the GSM8K
test split shipped with the package, ``DEFAULT_DATA``; ``data_file("math500_test")`` names
MATH-500); ``check(gold, answer, mode="lenient")`` grades an answer exactly (``"strict"`` for
the PRM800K-like rules); ``extract(text)`` reads the final answer of a whole solution (the
last ``\\boxed{}``, else "The answer is", else "####"); ``canonical_key(answer)`` is the voting
key (``\\frac12``, ``0.5`` and ``1/2`` share it). ``MathTask(...)`` is the task for
``qstar.search(..., task=qstar.math.MathTask(...))`` (``task="math"`` uses the defaults);
``chat_template=`` renders its prompts with a model's chat template (a model folder, a
``tokenizer_config.json`` or a Jinja file) or with any ``callable(messages) -> str``.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple, Union

from ._data import data_path, where
from ._qstar import IoError, Problem
from ._qstar import math as _m

MathTask = _m.MathTask
check = _m.check
extract = _m.extract
canonical_key = _m.canonical_key
normalize = _m.normalize
instruction_preset = _m.instruction_preset
_load = _m.load

#: The data sets shipped with the package, by name.
DATA_NAMES: Tuple[str, ...] = ("gsm8k_test", "math500_test")


def data_file(name: str = "gsm8k_test") -> str:
    """The path of a shipped data set (``DATA_NAMES``): under ``$QSTAR_DATA_DIR/math/`` when that
    variable is set, else the copy next to this module (``qstar/data/math/``)."""
    if name not in DATA_NAMES:
        raise IoError(f"math.data_file: '{name}' is not one of {', '.join(DATA_NAMES)}")
    return data_path("math", name + ".jsonl")


#: The file load() reads when given no path (the GSM8K test split); may not exist.
DEFAULT_DATA: str = data_file()

Ranks = Union[str, Tuple[int, int], None]


def load(path: Optional[Union[str, os.PathLike]] = None, *, question_field: Optional[str] = None,
         answer_field: str = "answer", ranks: Ranks = None, limit: int = 0,
         level: Union[int, Sequence[int], None] = None, subject: Union[str, Sequence[str], None] = None,
         require_answer: bool = False) -> list[Problem]:
    """Problems from a JSONL file, one object per line.

    question_field: None = "question" when a record has it (GSM8K), else "problem" (MATH).
    answer_field:   the gold's field (a string or number; after the last "####" when it has one).
    ranks:          "A-B", (A, B) or None: 1-based record numbers, before the filters.
    limit:          at most this many problems (0 = all); level/subject: MATH-500 filters.
    Problem.id is the record's ``unique_id`` when present, else its rank. Errors name path:line.
    """
    if path is None:
        if not os.path.exists(DEFAULT_DATA):
            raise IoError(f"math.load: no path given and the built-in data file '{DEFAULT_DATA}' is missing "
                          f"(looked in {where()}); pass the path of a JSONL file or set QSTAR_DATA_DIR")
        path = DEFAULT_DATA
    return _load(os.fspath(path), question_field, answer_field, ranks, limit, level, subject, require_answer)


__all__ = ["DATA_NAMES", "DEFAULT_DATA", "MathTask", "canonical_key", "check", "data_file", "extract",
           "instruction_preset", "load", "normalize"]
