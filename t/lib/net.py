"""Loopback ports and bounded waits."""

import socket
import time

HOST = "127.0.0.1"
_given = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now.

    The kernel picks it (bind to port 0); ports already handed out in this
    session are not handed out again, so two helpers cannot collide.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _given:
            _given.add(port)
            return port
    raise RuntimeError("no free port on %s" % HOST)


def free_ports(n):
    return [free_port() for _ in range(n)]


def port_open(port, host=HOST, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value, at most timeout seconds.

    Returns that value; raises TimeoutError naming what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s"
                               % (timeout, what))
        time.sleep(interval)
