"""Zero-cost C++ plug-ins and a boundary micro-benchmark, for benchmarks and tests.

``ConstantGenerator(depth)`` proposes one-character steps, the one at ``depth`` final;
``ConstantVerifier()`` scores them by a cheap hash. ``plugin_call_seconds(plugin, kind,
batch_size, depth, repeats)`` times calls of any plug-in through the boundary with a
synthetic batch, the GIL released as during a search.
"""

from ._qstar import testing as _t

ConstantGenerator = _t.ConstantGenerator
ConstantVerifier = _t.ConstantVerifier
plugin_call_seconds = _t.plugin_call_seconds

__all__ = ["ConstantGenerator", "ConstantVerifier", "plugin_call_seconds"]
