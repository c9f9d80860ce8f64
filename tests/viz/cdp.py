"""A minimal headless-Chromium driver over the DevTools protocol on a pipe (stdlib only).

Chromium started with --remote-debugging-pipe reads protocol messages on fd 3 and writes on
fd 4, each a JSON object ended by a NUL byte. Used by test_viz_browser.py; nothing here
touches the network (the pages are file:// URLs and the browser's own services are off).
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from typing import Any, Optional


def find_chromium() -> Optional[str]:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    """One headless Chromium with one page (a flattened target session)."""

    def __init__(self, exe: str, width: int = 1400, height: int = 900, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="qstar-viz-chromium-")
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        import fcntl
        # High copies so that dup2 onto 3 and 4 in the child cannot clobber them.
        hr = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 100)
        hw = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 100)

        def child() -> None:
            os.dup2(hr, 3)  # os.dup2 makes 3 and 4 inheritable; everything else is close-on-exec
            os.dup2(hw, 4)

        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=child, close_fds=False)
        for fd in (to_chrome_r, from_chrome_w, hr, hw):
            os.close(fd)
        self.w, self.r = to_chrome_w, from_chrome_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []
        self.session: Optional[str] = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Network.enable")
        self.size(width, height)

    # ---- protocol ----------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.r], [], [], left)
            if ready:
                chunk = os.read(self.r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe (did it crash?)")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: Optional[dict] = None, session: bool = True) -> dict:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def size(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def eval(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"page exception in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def open(self, path: str, ready: str = "document.body && document.body.dataset.ready === '1'") -> float:
        """Loads file `path` and waits until `ready` is true; returns the seconds it took."""
        self.events.clear()
        t0 = time.monotonic()
        self.call("Page.navigate", {"url": "file://" + os.path.abspath(path)})
        while not self.eval(f"!!({ready})"):
            if time.monotonic() - t0 > self.timeout:
                raise TimeoutError(f"{path}: the page did not get ready in {self.timeout} s")
            time.sleep(0.02)
        return time.monotonic() - t0

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, fast: bool = True) -> bytes:
        """The viewport as PNG; fast: Chromium's quick encoding (every row "Up"-filtered,
        which decode_png undoes quickly), else its smaller default encoding."""
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": fast})["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def decode_png(data: bytes) -> tuple[int, int, list[bytearray]]:
    """(width, height, rows of RGB bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", 0
    height = ctype = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {ctype}, interlace {interlace}")
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp
    rows: list[bytearray] = []
    prev = bytearray(stride)
    low = int.from_bytes(b"\x7f" * stride, "big")
    high = int.from_bytes(b"\x80" * stride, "big")
    at = 0
    for _ in range(height):
        f, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        if f == 2:  # Up: bytewise (line + prev) mod 256, eight bits at a time in one big integer
            x, y = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = bytearray((((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(stride, "big"))
        elif f == 1:  # Sub: running sums per channel
            for c in range(bpp):
                line[c::bpp] = bytes(map((255).__and__, itertools.accumulate(line[c::bpp])))
        elif f in (3, 4):
            _unfilter_slow(line, prev, f, bpp)
        elif f != 0:
            raise ValueError(f"bad PNG filter {f}")
        prev = line
        if bpp == 4:
            rgb = bytearray(width * 3)
            for c in range(3):
                rgb[c::3] = line[c::4]
            rows.append(rgb)
        else:
            rows.append(line)
    return width, height, rows


def _unfilter_slow(line: bytearray, prev: bytearray, f: int, bpp: int) -> None:
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if f == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 255
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
