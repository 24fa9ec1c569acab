"""The watchdog ends a blocked socket read at its deadline, and leaves released sockets alone."""

from __future__ import annotations

import socket
import time

from langchain_imagegen.watchdog import Watchdog


def test_a_blocked_read_returns_at_the_deadline() -> None:
    watchdog = Watchdog()
    reader, writer = socket.socketpair()
    with reader, writer:
        reader.settimeout(10.0)  # what httpx would wait without the watchdog
        token = watchdog.watch(reader, 0.2)
        started = time.monotonic()
        assert reader.recv(10) == b""  # shut down: the read ends instead of waiting 10 s
        assert time.monotonic() - started < 5.0
        assert watchdog.release(token) is True


def test_a_released_socket_is_left_alone() -> None:
    watchdog = Watchdog()
    reader, writer = socket.socketpair()
    with reader, writer:
        token = watchdog.watch(reader, 0.05)
        assert watchdog.release(token) is False
        time.sleep(0.2)  # past the deadline it no longer has
        writer.sendall(b"ok")
        reader.settimeout(1.0)
        assert reader.recv(10) == b"ok"


def test_earlier_deadlines_wake_the_thread() -> None:
    watchdog = Watchdog()
    a_reader, a_writer = socket.socketpair()
    b_reader, b_writer = socket.socketpair()
    with a_reader, a_writer, b_reader, b_writer:
        slow = watchdog.watch(a_reader, 30.0)
        fast = watchdog.watch(b_reader, 0.1)
        b_reader.settimeout(10.0)
        started = time.monotonic()
        assert b_reader.recv(10) == b""
        assert time.monotonic() - started < 5.0
        assert watchdog.release(fast) is True
        assert watchdog.release(slow) is False  # still watched, not due: untouched
        a_writer.sendall(b"ok")
        assert a_reader.recv(10) == b"ok"


def test_the_thread_ends_soon_after_its_last_socket_is_released() -> None:
    """Released with a far deadline (a 900 s retry budget), the thread must not sleep until
    then: the load suite counts threads and saw it outlive the call."""
    import threading

    watchdog = Watchdog(idle_s=0.1)
    reader, writer = socket.socketpair()
    with reader, writer:
        before = {thread.ident for thread in threading.enumerate()}
        token = watchdog.watch(reader, 900.0)
        (started,) = [t for t in threading.enumerate() if t.ident not in before]
        time.sleep(0.2)  # the thread is now waiting for the 900 s deadline
        watchdog.release(token)
        started.join(timeout=10.0)  # it lingers idle_s, checks, lingers again at most
        assert not started.is_alive()
