"""qstar.viz: search trees as one self-contained HTML page (no network), like ``qstar viz``.

    results = qstar.search(problems, algo="beam", keep_tree=True, ...)
    v = qstar.viz(results)          # in Jupyter, the cell shows the viewer inline
    v.save("tree.html")             # or qstar.viz(results, path="tree.html")
    qstar.viz("tree.jsonl")         # a trace file (qstar solve --tree, qstar bench --trace)

The page is the same template ``qstar viz`` embeds (src/app/viz/viewer.html, shipped as
package data next to this module) with the trace records, without their token lists, as its
data block; docs/viz.md says what the colours, sizes and marks mean.
"""

from __future__ import annotations

import html as _html
import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from . import _qstar

#: The largest trace file qstar.viz reads (bytes) and the most nodes one page holds; the same
#: limits as ``qstar viz`` (src/app/viz.hpp).
MAX_BYTES = 256 << 20
MAX_NODES = 200_000

_TEMPLATE = Path(__file__).with_name("viewer.html")
_SLOT = "__QSTAR_DATA__"
_TOKEN_KEYS = ("tokens", "token_logprobs", "token_entropies")


def escape_json(text: str) -> str:
    """JSON text made safe inside a <script> element ('<', '>', '&' as \\u003c, \\u003e, \\u0026)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _strip(rec: dict) -> dict:
    for node in rec["nodes"]:
        for k in _TOKEN_KEYS:
            node.pop(k, None)
    return rec


def _from_file(path: Union[str, os.PathLike]) -> list[dict]:
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
    except OSError as e:
        raise _qstar.IoError(f"{p}: cannot read the trace file ({e.strerror})") from None
    if size > MAX_BYTES:
        raise _qstar.InvalidArgument(f"{p}: {size} bytes is over the viewer's limit of {MAX_BYTES >> 20} MiB")
    recs = [r.to_dict() for r in _qstar.read_trace(p)]  # checked: ParseError names the line and field
    if not recs:
        raise _qstar.InvalidArgument(f"{p}: no trace records (an empty file?)")
    return recs


def _records(x: Any) -> list[dict]:
    if isinstance(x, (str, os.PathLike)):
        return _from_file(x)
    if isinstance(x, _qstar.Result):
        return [json.loads(x.trace_line())]  # InvalidArgument without keep_tree=True
    if isinstance(x, _qstar.TraceRecord):
        return [x.to_dict()]
    if isinstance(x, dict):  # a trace record as a dict: checked by the C++ reader
        return [_qstar.parse_trace_line(json.dumps(x)).to_dict()]
    if isinstance(x, Iterable):
        out: list[dict] = []
        for item in x:
            if isinstance(item, (str, os.PathLike)):
                raise TypeError("qstar.viz: give one trace file, not a list of paths")
            out.extend(_records(item))
        return out
    raise TypeError(f"qstar.viz: expected a Result, a list of Results, a TraceRecord or a trace file path, "
                    f"got {type(x).__name__}")


def page(records: list[dict]) -> str:
    """The viewer page holding `records` (trace records as dicts)."""
    template = _TEMPLATE.read_text(encoding="utf-8")
    if template.count(_SLOT) != 1:
        raise _qstar.Error(f"qstar.viz: the viewer template {_TEMPLATE} has no single {_SLOT} slot")
    data = json.dumps([_strip(r) for r in records], ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return template.replace(_SLOT, escape_json(data))


class Viz:
    """A rendered viewer page: ``html`` (the page), ``save(path)``, and inline display in Jupyter."""

    def __init__(self, html: str, records: list[dict]) -> None:
        self.html = html
        self.records = records

    @property
    def nodes(self) -> int:
        """The number of nodes on the page, every problem together."""
        return sum(len(r["nodes"]) for r in self.records)

    def save(self, path: Union[str, os.PathLike]) -> str:
        """Writes the page to `path` and returns the path."""
        p = os.fspath(path)
        with open(p, "w", encoding="utf-8") as f:
            f.write(self.html)
        return p

    def _repr_html_(self) -> str:
        # An iframe keeps the page's script and style apart from the notebook's.
        return ('<iframe style="width:100%;height:640px;border:1px solid #ccc" sandbox="allow-scripts" srcdoc="'
                + _html.escape(self.html, quote=True) + '"></iframe>')

    def __repr__(self) -> str:
        return f"Viz({len(self.records)} problem(s), {self.nodes} nodes)"


def viz(result_or_tree: Any, path: Optional[Union[str, os.PathLike]] = None, *, problem: Optional[Union[int, str]] = None) -> Viz:
    """The search-tree viewer of a Result (searched with keep_tree=True), a list of them, a
    TraceRecord, or a JSONL trace file; `problem` keeps one record (an index or a problem id);
    with `path` the page is also written there."""
    recs = _records(result_or_tree)
    if not recs:
        raise _qstar.InvalidArgument("qstar.viz: no results to show")
    if problem is not None:
        if isinstance(problem, int) and not isinstance(problem, bool):
            if not 0 <= problem < len(recs):
                raise _qstar.InvalidArgument(f"problem: {problem} is out of range: {len(recs)} record(s)")
            recs = [recs[problem]]
        else:
            hit = [r for r in recs if r["problem"]["id"] == str(problem)]
            if not hit:
                raise _qstar.InvalidArgument(f"problem: no record has problem id '{problem}'")
            recs = hit[:1]
    n = sum(len(r["nodes"]) for r in recs)
    if n > MAX_NODES:
        raise _qstar.InvalidArgument(f"qstar.viz: {n} nodes is over the viewer's limit of {MAX_NODES}")
    v = Viz(page(recs), recs)
    if path is not None:
        v.save(path)
    return v
