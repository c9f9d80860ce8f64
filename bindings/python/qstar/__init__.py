"""qstar: process-supervised search (best-of-N, beam, DVTS, best-first, MCTS) over a C++ core.

    import qstar
    problems = qstar.game24.load()                       # ranks 901-1000 of the ToT data
    results = qstar.search(problems, algo="beam",
                           generator=qstar.game24.ProgrammaticGenerator(error_rate=0.1),
                           verifier=qstar.game24.OracleVerifier(),
                           seed=0, num_beams=16, width=4)
    print(sum(bool(r.correct) for r in results), "solved")

A generator is any object with ``expand(batch)``, a verifier any object with ``score(batch)``
(process rewards) and/or ``score_outcomes(batch)`` (outcome rewards); the built-in C++ ones
are in ``qstar.game24``, ``qstar.testing``, (with LibTorch) ``qstar.LMGenerator`` /
``qstar.PRM`` and (with libcurl) ``qstar.HttpGenerator`` / ``qstar.HttpVerifier``. The built-in ones have the same methods (``expand``, ``score_steps`` /
``score``, ``score_outcomes``) taking the batch a Python plug-in receives, so a Python plug-in
can wrap one. ``qstar.Tokenizer`` reads a Hugging Face tokenizer.json. See docs/python.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterable, Optional, Union

import os as _os

# A wheel (setup.py) carries libqstar_sentencepiece.so next to the extension (tokenizer.model
# folders load it at run time); the CMake build tree and `cmake --install` find their own copy.
_spm = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "libqstar_sentencepiece.so")
if _os.path.isfile(_spm):
    _os.environ.setdefault("QSTAR_SENTENCEPIECE_MODULE", _spm)

from . import _qstar  # noqa: E402
from ._qstar import (  # noqa: F401  (re-exports)
    BuiltinGenerator,
    BuiltinVerifier,
    Candidate,
    Error,
    ExpandRequest,
    InvalidArgument,
    IoError,
    OutcomeRequest,
    ParseError,
    PluginError,
    Problem,
    Result,
    Stats,
    Step,
    StepScoreRequest,
    TraceRecord,
    Tree,
    __version__,
    has_hf,
    has_http,
    has_torch,
    parse_trace_line,
    read_trace,
    write_trace,
)
from . import game24, math, testing  # noqa: E402,F401
from .viz import Viz, viz  # noqa: E402,F401  (qstar.viz(): the search-tree viewer, docs/viz.md)

#: The algorithms qstar.search runs (also accepted: "bon" for best-of-n).
ALGORITHMS: tuple[str, ...] = tuple(_qstar._ALGORITHMS)  # the C++ registry (search/registry.hpp)

#: The built-in tasks qstar.search runs by name (task="game24").
TASKS: tuple[str, ...] = tuple(_qstar._tasks())

#: The task qstar.search runs when given task=None.
DEFAULT_TASK: str = _qstar._DEFAULT_TASK

if has_http:
    from ._qstar import HttpGenerator, HttpVerifier  # noqa: F401
else:

    class HttpGenerator:  # type: ignore[no-redef]
        """Unavailable: this qstar was built without qstar::http (libcurl)."""

        def __init__(self, urls: Any, **params: Any) -> None:
            raise Error("HttpGenerator: this qstar was built without qstar::http (QSTAR_WITH_HTTP, libcurl)")

    class HttpVerifier:  # type: ignore[no-redef]
        """Unavailable: this qstar was built without qstar::http (libcurl)."""

        def __init__(self, urls: Any, **params: Any) -> None:
            raise Error("HttpVerifier: this qstar was built without qstar::http (QSTAR_WITH_HTTP, libcurl)")

if has_hf:
    from ._qstar import Tokenizer  # noqa: F401
else:

    class Tokenizer:  # type: ignore[no-redef]
        """Unavailable: this qstar was built without qstar::hf (PCRE2 or utf8proc not found)."""

        def __init__(self) -> None:
            raise Error("Tokenizer: this qstar was built without qstar::hf (libpcre2-dev, libutf8proc-dev)")

        @staticmethod
        def from_file(path: str) -> "Tokenizer":
            raise Error("Tokenizer: this qstar was built without qstar::hf (libpcre2-dev, libutf8proc-dev)")

if has_torch:
    from ._qstar import LMGenerator, PRM, set_threads  # noqa: F401
else:

    def set_threads(n: int) -> dict:
        """Unavailable: this qstar was built without LibTorch (QSTAR_WITH_TORCH)."""
        raise Error("set_threads: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF or not found)")

    class LMGenerator:  # type: ignore[no-redef]
        """Unavailable: this qstar was built without LibTorch (QSTAR_WITH_TORCH)."""

        def __init__(self, path: str, **params: Any) -> None:
            raise Error("LMGenerator: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF or not found)")

    class PRM:  # type: ignore[no-redef]
        """Unavailable: this qstar was built without LibTorch (QSTAR_WITH_TORCH)."""

        def __init__(self, path: str, kind: str = "auto", **params: Any) -> None:
            raise Error("PRM: this qstar was built without LibTorch (QSTAR_WITH_TORCH=OFF or not found)")


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        if key.startswith("budget."):
            out.setdefault("budget", {})[key[len("budget."):]] = value
        else:
            out[key] = value
    return out


def default_params(algo: str) -> dict:
    """Every keyword parameter of ``algo`` with its default (the C++ params struct's), the
    budget as a nested dict: ``{"num_beams": 16, ..., "budget": {"max_nodes": 0, ...}}``."""
    return _nest(_qstar._default_params(algo))


def _flatten(algo: str, params: dict) -> tuple[dict, Any]:
    flat = dict(params)
    if "lambda_" in flat:  # `lambda` is a Python keyword
        flat["lambda"] = flat.pop("lambda_")
    custom = flat.pop("custom_aggregation", None)
    budget = flat.pop("budget", None)
    if budget is not None:
        if not isinstance(budget, Mapping):
            raise InvalidArgument(
                f"budget: expected a dict such as {{'max_nodes': 100}}, got a {type(budget).__name__}")
        for key, value in budget.items():
            flat[f"budget.{key}"] = value
    if custom is not None and "aggregation" not in flat:
        flat["aggregation"] = "custom"
    return flat, custom


def check_params(algo: str, **params: Any) -> dict:
    """The parameters a search with these keywords would use (defaults filled in), validated
    exactly as qstar.search validates them (raises qstar.InvalidArgument)."""
    flat, _ = _flatten(algo, params)
    return _nest(_qstar._check_params(algo, flat))


ProblemsLike = Union[str, Problem, Iterable[Union[str, Problem]]]


def search(problems: ProblemsLike, algo: str = "beam", generator: Any = None, verifier: Any = None,
           seed: int = 0, task: Any = None, **params: Any) -> list[Result]:
    """Searches every problem with one algorithm and returns one Result per problem.

    problems:  a puzzle string, a Problem, or a list of them (Game of 24 puzzles: "4 5 6 10").
    algo:      "best-of-n" (or "bon"), "beam", "dvts", "best-first", "mcts",
               "particle-filter" (or "pf"), "rebase",
               "adaptive-best-of-n" (or "asc") or "deepconf".
    generator: a built-in generator or any object with ``expand(batch) -> list[list[str | Step]]``.
    verifier:  a built-in verifier, any object with ``score(batch) -> list[list[float]]`` and/or
               ``score_outcomes(batch) -> list[float]``, or None (best-of-n, adaptive-best-of-n, deepconf).
    seed:      0 <= seed < 2**64; the same seed gives the same results.
    task:      the name of a built-in task (TASKS; "game24": problems are puzzles; "math":
               word problems, see qstar.math), None for DEFAULT_TASK ("game24"),
               a qstar.math.MathTask (runs natively), or a Python task: an object with
               ``format(problem) -> str`` (the prompt) and
               ``extract_answer(steps: list[str]) -> str | None``, optionally
               ``is_terminal(step: Step) -> bool`` (default: its finish is "answer", "eos" or
               "length"), ``canonicalize(answer) -> str`` (the voting key; default: the answer)
               and ``check(problem, answer) -> bool`` (without it Result.correct is None).
               Task methods are called per node, not batched.
    params:    the fields of the algorithm's C++ params struct, same names and defaults (see
               default_params(algo)); ``budget={"max_nodes": ..., ...}`` for the Budget;
               ``custom_aggregation=callable(list[float]) -> float`` implies
               ``aggregation="custom"``.

    Every plug-in is called once per search iteration with the whole batch (a list of request
    objects) and the GIL is released while the C++ core works. An exception raised inside a
    Python plug-in propagates unchanged (with its traceback); a wrong result shape raises
    qstar.PluginError (a ValueError) naming the plug-in; a bad parameter raises
    qstar.InvalidArgument (a ValueError) naming the field.
    """
    if generator is None:
        raise TypeError("search() needs generator=: a built-in generator or an object with expand(batch)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgument(f"seed: expected an int, got a {type(seed).__name__}")
    if not 0 <= seed < 2**64:
        raise InvalidArgument(f"seed: {seed} is out of range [0, 2**64)")
    if not isinstance(algo, str):
        raise InvalidArgument(f"algo: expected a str, got a {type(algo).__name__}")
    if task is None:
        task = DEFAULT_TASK
    flat, custom = _flatten(algo, params)
    return _qstar._search(problems, algo, generator, verifier, seed, flat, custom, task)


__all__ = [
    "ALGORITHMS", "BuiltinGenerator", "BuiltinVerifier", "Candidate", "DEFAULT_TASK", "Error", "ExpandRequest",
    "HttpGenerator", "HttpVerifier", "InvalidArgument", "IoError", "LMGenerator", "OutcomeRequest", "PRM",
    "ParseError", "PluginError", "Problem", "Result", "Stats", "Step", "StepScoreRequest", "TASKS", "Tokenizer",
    "TraceRecord", "Tree", "Viz", "__version__", "check_params", "default_params", "game24", "has_hf", "has_http",
    "has_torch", "math", "parse_trace_line", "read_trace", "search", "set_threads", "testing", "viz", "write_trace",
]
