"""Open local HTML pages in headless Chromium and report what a reader would see go wrong:
console errors, uncaught exceptions, images that do not decode.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``: it reads
commands from its file descriptor 3 and writes replies and events to its descriptor 4, each a
JSON message ending in a NUL byte. Only the standard library and Debian's chromium package
(CI installs it) are used; nothing downloads a browser or a driver. Every wait has a deadline,
and the browser's processes are ended whatever happens.

    with Browser(chromium_or_skip()) as browser:     # one browser, any number of pages
        check = browser.check("report.html")         # PageCheck(title, images, ...)
    assert check.console_errors == [] and check.broken_images == []

``check_page(path)`` does the same for a single page.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

__all__ = ["PageCheck", "Browser", "BrowserError", "find_chromium", "chromium_or_skip",
           "check_page"]

SKIP_REASON = "chromium not found: install Debian's chromium package (CI does)"

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]

# Waits until every <img> has settled (decode() rejects for a broken one), then reports.
_IMAGES_JS = """(async () => {
  const images = Array.from(document.images);
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  const broken = images.filter(img => !(img.complete && img.naturalWidth > 0));
  return {title: document.title, images: images.length,
          broken: broken.map(img => img.alt || img.src.slice(0, 80))};
})()"""


@dataclasses.dataclass
class PageCheck:
    """What a page showed: its title, how many <img> it has, the alt text (or the start of the
    src) of each image that did not decode, and one line per console.error, uncaught
    exception or error logged by the browser (a resource that failed to load, ...)."""

    title: str
    images: int
    broken_images: list
    console_errors: list


class BrowserError(RuntimeError):
    """Chromium could not be started, exited, refused a command or did not answer in time."""


def find_chromium():
    """The path of a Chromium executable on PATH, or None."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_or_skip():
    """The path of Chromium; skips the calling test when there is none."""
    path = find_chromium()
    if path is None:
        pytest.skip(SKIP_REASON)
    return path


def check_page(path, timeout=20.0, chromium=None):
    """Browser(chromium).check(path, timeout) in a browser started for this page alone."""
    with Browser(chromium, timeout) as browser:
        return browser.check(path, timeout)


class Browser:
    """A headless Chromium in a fresh profile, driven over the DevTools pipe. Use it as a
    context manager: leaving the block closes the browser (and kills it if it does not close
    within 2 s). ``chromium`` defaults to find_chromium(); ``timeout`` bounds the start."""

    def __init__(self, chromium=None, timeout=20.0):
        self.chromium = chromium or find_chromium()
        if self.chromium is None:
            raise BrowserError(f"browser: {SKIP_REASON}")
        self.timeout = timeout
        self._next_id, self._buffer = 0, b""

    def check(self, path, timeout=20.0):
        """Load the HTML file at ``path`` in a new tab, wait for its load event and for its
        images to settle, and return a PageCheck. Raises BrowserError when Chromium fails or
        this takes longer than ``timeout`` seconds."""
        url = Path(path).resolve().as_uri()
        self._deadline = time.monotonic() + timeout
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        events = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session, events)
        navigation = self.call("Page.navigate", session, events, url=url)
        if navigation.get("errorText"):
            raise BrowserError(f"browser: cannot open {url}: {navigation['errorText']}")
        self._wait_for_event("Page.loadEventFired", session, events)
        found = self.call("Runtime.evaluate", session, events, expression=_IMAGES_JS,
                          awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in found:
            raise BrowserError(f"browser: checking the images of {url} failed: "
                               f"{found['exceptionDetails'].get('text')}")
        self.call("Target.closeTarget", targetId=target)
        page = found["result"]["value"]
        errors = [line for line in map(_error_line, events) if line is not None]
        return PageCheck(title=page["title"], images=page["images"],
                         broken_images=page["broken"], console_errors=errors)

    def call(self, method, session=None, events=None, **params):
        """Send ``method`` with ``params`` to ``session`` (a tab; None: the browser) and wait for
        its reply; returns the reply's result. Events of ``session`` read meanwhile are appended
        to ``events``."""
        self._send(method, session, **params)
        while True:
            message = self._read(f"the reply to {method}")
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"browser: {method} failed: {message['error']}")
                return message["result"]
            if events is not None and message.get("sessionId") == session:
                events.append(message)

    def __enter__(self):
        self._deadline = time.monotonic() + self.timeout
        self._profile = tempfile.mkdtemp(prefix="retrograd-chromium-")
        self._log = os.path.join(self._profile, "stderr.log")
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # NOTE: subprocess keeps an inherited descriptor at its own number, but Chromium wants
        # the pipe at 3 and 4 exactly; posix_spawn's dup2 actions put it there. The ends are
        # first moved to 10 and up so that neither dup2 overwrites the other.
        commands_read, replies_write = (_above_nine(fd) for fd in (commands_read, replies_write))
        try:
            self.pid = os.posix_spawn(
                self.chromium,
                [self.chromium, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                              (os.POSIX_SPAWN_OPEN, 2, self._log, os.O_WRONLY | os.O_CREAT, 0o600),
                              (os.POSIX_SPAWN_DUP2, commands_read, 3),
                              (os.POSIX_SPAWN_DUP2, replies_write, 4)],
                setsid=True)   # its own process group, so that one kill reaches every process
        except OSError as e:
            self._clean_up()
            raise BrowserError(f"browser: cannot start {self.chromium}: {e}") from e
        finally:
            os.close(commands_read)
            os.close(replies_write)
        try:
            self.call("Browser.getVersion")     # fails here, with its stderr, if it cannot start
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self._stop()
        self._clean_up()

    def _stop(self):
        """Ask Chromium to close, which ends its helper processes too; then kill what is left of
        its process group, the browser itself included if it has not exited within 2 s."""
        with contextlib.suppress(BrowserError):
            self._send("Browser.close")
        exited = False
        give_up = time.monotonic() + 2.0
        while not exited and time.monotonic() < give_up:
            exited = os.waitpid(self.pid, os.WNOHANG)[0] == self.pid
            if not exited:
                time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if not exited:
            os.waitpid(self.pid, 0)

    def _clean_up(self):
        os.close(self._commands)
        os.close(self._replies)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _send(self, method, session=None, **params):
        self._next_id += 1
        message = dict(id=self._next_id, method=method, params=params)
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._commands, data):]
        except BrokenPipeError:
            raise BrowserError(f"browser: {self.chromium} exited before the command {method}"
                               f"{self._stderr_tail()}") from None

    def _wait_for_event(self, method, session, events):
        """Read until ``session`` sends the event ``method``; its events go to ``events``."""
        while True:
            message = self._read(f"the event {method}")
            if message.get("sessionId") == session:
                events.append(message)
                if message.get("method") == method:
                    return

    def _read(self, waiting_for):
        """The next message from Chromium, before the deadline."""
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            if not select.select([self._replies], [], [], max(left, 0.0))[0]:
                raise BrowserError(f"browser: {self.chromium} gave no {waiting_for} in time"
                                   f"{self._stderr_tail()}")
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise BrowserError(f"browser: {self.chromium} exited while waiting for "
                                   f"{waiting_for}{self._stderr_tail()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _stderr_tail(self):
        with contextlib.suppress(OSError), open(self._log, errors="replace") as f:
            tail = f.read()[-800:].strip()
            return f"; its stderr ends with:\n{tail}" if tail else ""
        return ""


def _error_line(event):
    """A line describing ``event`` when it is an error the page's reader would see, else None."""
    params = event.get("params", {})
    if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
        words = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
        return "console.error: " + " ".join(words)
    if event.get("method") == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return "uncaught: " + details.get("exception", {}).get("description", details["text"])
    if event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
        entry = params["entry"]
        return f"{entry['source']}: {entry['text']} {entry.get('url', '')}".rstrip()
    return None


def _above_nine(fd):
    """A copy of ``fd`` numbered 10 or more (closed on exec); ``fd`` itself is closed."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return copy
