"""Headless Chromium (Debian's chromium) driven over the DevTools protocol.

    with Browser(workdir) as b:
        page = b.page()
        page.navigate("http://127.0.0.1:8080/")
        page.evaluate("document.title")

Chromium runs in its own process group (lib.procs) with a fresh profile and
the flags that keep it from reaching for the network (the machine has
none: without them it stalls on background connections).  Every wait is
bounded.  Page.exceptions() lists uncaught JavaScript exceptions and
console errors seen so far.
"""

import json
import os
import shutil
import tempfile
import time
import urllib.request

import websocket

from . import net, procs

CHROMIUM = os.environ.get("DASHSTREAM_CHROMIUM", "/usr/bin/chromium")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions",
         "--no-default-browser-check", "--mute-audio",
         "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0")


class BrowserError(RuntimeError):
    pass


def available():
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


class Page:
    """One tab over its DevTools websocket."""

    def __init__(self, ws_url, timeout=15):
        self.ws = websocket.create_connection(ws_url, timeout=timeout,
                                              suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method, timeout=15, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer to %s in %ss" % (method,
                                                               timeout))
            self.ws.settimeout(left)
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if msg.get("id") == mid:
                if "error" in msg:
                    raise BrowserError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def navigate(self, url, timeout=15):
        r = self.call("Page.navigate", url=url)
        if r.get("errorText"):
            raise BrowserError("navigate %s: %s" % (url, r["errorText"]))
        net.wait_for(lambda: self.evaluate("document.readyState")
                     == "complete", timeout, 0.1, "page %s loaded" % url)

    def evaluate(self, expression, timeout=15):
        """The JSON value of expression (promises are awaited)."""
        r = self.call("Runtime.evaluate", timeout=timeout,
                      expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError("%s: %s" % (expression,
                                           r["exceptionDetails"]))
        return r["result"].get("value")

    def exceptions(self):
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                d = e["params"]["exceptionDetails"]
                out.append(d.get("exception", {}).get("description")
                           or d.get("text"))
            elif e["method"] == "Runtime.consoleAPICalled" and \
                    e["params"].get("type") == "error":
                out.append("console.error: %s" % [
                    a.get("value", a.get("description"))
                    for a in e["params"].get("args", [])])
        return out

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


class Browser:
    def __init__(self, workdir=None):
        self.profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
        self.proc = None
        self.port = None
        self.pages = []

    def start(self, timeout=30):
        if not available():
            raise BrowserError("%s not found (tools/install-deps.sh test)"
                               % CHROMIUM)
        log = open(os.path.join(self.profile, "chromium.log"), "wb")
        try:
            self.proc = procs.spawn(
                [CHROMIUM] + list(FLAGS)
                + ["--user-data-dir=" + self.profile, "about:blank"],
                stdout=log, stderr=log, tag="chromium")
        finally:
            log.close()
        port_file = os.path.join(self.profile, "DevToolsActivePort")

        def ready():
            if self.proc.poll() is not None:
                raise BrowserError("chromium exited with %s:\n%s" % (
                    self.proc.returncode, self.log_text()[-2000:]))
            try:
                with open(port_file) as f:
                    return int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                return None
        self.port = net.wait_for(ready, timeout, 0.1, "chromium DevTools")
        return self

    def log_text(self):
        try:
            with open(os.path.join(self.profile, "chromium.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def page(self):
        """The first tab."""
        def target():
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list"
                                        % self.port, timeout=5) as r:
                tabs = json.load(r)
            pages = [t for t in tabs if t.get("type") == "page"]
            return pages[0]["webSocketDebuggerUrl"] if pages else None
        p = Page(net.wait_for(target, 15, 0.1, "a chromium tab"))
        self.pages.append(p)
        return p

    def stop(self):
        for p in self.pages:
            p.close()
        if self.proc is not None:
            procs.stop(self.proc, timeout=10)
            self.proc = None
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
