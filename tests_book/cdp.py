"""A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (standard library only).

Headless Chromium reads JSON commands, each ended by a NUL byte, on file descriptor 3 and writes
replies and events on descriptor 4; no websocket library, no Playwright, no network port.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (tab); ``page.*`` commands go to that tab."""

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 1600,
                 extra_args: tuple[str, ...] = ()):
        exe = executable or find_chromium()
        if not exe:
            raise FileNotFoundError("no chromium on PATH (`make chromium` installs Debian's package)")
        self._profile = tempfile.mkdtemp(prefix="h-chromium-")
        to_child_r, self._to_child_w = os.pipe()
        self._from_child_r, from_child_w = os.pipe()

        args = [
            exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--disable-extensions", "--mute-audio", "--disable-background-networking",
            f"--user-data-dir={self._profile}", f"--window-size={width},{height}", *extra_args, "about:blank",
        ]
        # A Python trampoline puts the pipe ends on descriptors 3 (commands in) and 4 (replies out),
        # then becomes Chromium (dash cannot redirect descriptors above 9; preexec_fn is not thread-safe).
        r, w = to_child_r, from_child_w
        trampoline = [
            sys.executable, "-c",
            "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
            "[os.close(fd) for fd in (r, w) if fd not in (3, 4)]; os.execvp(sys.argv[3], sys.argv[3:])",
            str(r), str(w),
        ]
        self.proc = subprocess.Popen(
            trampoline + args, pass_fds=(r, w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    # --- protocol -----------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child_r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def page(self, method: str, timeout: float = 60, **params) -> dict:
        return self.call(method, session=self.session, timeout=timeout, **params)

    def wait_event(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method and ev.get("sessionId") == self.session:
                    return self._events.pop(i)
            self._events.append(self._read_message(deadline))

    # --- conveniences -------------------------------------------------------------------------
    def goto(self, url: str, timeout: float = 60) -> None:
        self._events.clear()
        res = self.page("Page.navigate", url=url)
        if res.get("errorText"):
            raise CDPError(f"{url}: {res['errorText']}")
        self.wait_event("Page.loadEventFired", timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60):
        res = self.page("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                        timeout=timeout)
        if "exceptionDetails" in res:
            raise CDPError(f"script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: str) -> None:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child_w)
        os.close(self._from_child_r)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
