"""End a blocked sync socket read when its deadline passes.

A sync httpx read cannot be cancelled, and each one may wait for the whole read timeout that
was fixed when the request was sent: a body that stalls late in a call would outlive the
call's deadline by up to that much. :data:`WATCHDOG` shuts the socket down at the deadline
instead, which makes the blocked ``recv()`` return at once (httpx then raises a read error,
and the connection is dropped rather than pooled). The socket comes from the
``network_stream`` response extension that httpcore documents.

One daemon thread serves the whole process; it starts when a socket is first watched and
ends after a second with nothing to watch. Watching and releasing cost a lock and a dict
operation: a call is not made to wait for a thread switch. The thread is woken only when a
new deadline is earlier than the one it waits for, and otherwise looks at least once a
second, so it ends within about two seconds of the last release, never at that socket's
(possibly far) deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["WATCHDOG", "Watchdog"]

_IDLE_S = 1.0  # how long the thread lingers with nothing to watch


class Watchdog:
    """Shuts down each watched socket still unreleased at its deadline."""

    def __init__(self, idle_s: float = _IDLE_S) -> None:
        self._idle_s = idle_s
        self._cond = threading.Condition()
        self._watched: dict[object, tuple[float, socket.socket]] = {}
        self._next_due = float("inf")
        self._running = False

    def watch(self, sock: socket.socket, seconds: float) -> object:
        """Shut ``sock`` down ``seconds`` from now unless released first; returns a token."""
        token = object()
        due = time.monotonic() + seconds
        with self._cond:
            self._watched[token] = (due, sock)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="imagegen-deadline", daemon=True).start()
            elif due < self._next_due:
                self._cond.notify()
        return token

    def fire(self, token: object) -> None:
        """Shut the socket of ``token`` down now (if it is still watched): its read fails."""
        with self._cond:
            entry = self._watched.pop(token, None)
        if entry is not None:
            with contextlib.suppress(OSError):
                entry[1].shutdown(socket.SHUT_RDWR)

    def release(self, token: object) -> bool:
        """Stop watching; whether the deadline had already passed (the socket was shut)."""
        with self._cond:
            # Only the thread removes a token before its release: gone means it fired.
            return self._watched.pop(token, None) is None

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (due, sock) in list(self._watched.items()):
                    if due <= now:
                        del self._watched[token]
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                if not self._watched:
                    self._next_due = float("inf")
                    if not self._cond.wait(self._idle_s) and not self._watched:
                        self._running = False
                        return
                    continue
                self._next_due = min(due for due, _ in self._watched.values())
                # At most a second: a release does not wake the thread (every request would
                # pay a thread switch), so this is how it notices it has nothing left.
                self._cond.wait(min(self._next_due - now, self._idle_s))


WATCHDOG = Watchdog()
