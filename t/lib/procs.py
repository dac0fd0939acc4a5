"""Child processes the harness starts (Kafka broker, nginx) and how they end.

Every child runs in its own session, so one killpg() reaches it and all its
descendants (nginx workers, JVM threads).  The direct child also gets
PDEATHSIG=KILL through setpriv(1) (util-linux, essential in Debian), so it
dies with the Python process even on SIGKILL.  Groups still alive at exit are
killed by an atexit hook and by the SIGTERM/SIGHUP handler conftest installs;
groups left by a run that was itself killed are recorded in a registry
directory and reaped by the next run (reap_stale()).
"""

import atexit
import os
import shutil
import signal
import subprocess
import time

_live = {}          # pgid -> (Popen, registry file)


def registry_dir():
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") \
        or "/tmp"
    d = os.path.join(base, "ngx-dashstream-t-%d" % os.getuid())
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _proc_start_time(pid):
    """Start time of pid in clock ticks (field 22 of /proc/pid/stat)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def spawn(argv, stdout=None, stderr=None, cwd=None, env=None, tag="proc"):
    """Start argv in a new session with PDEATHSIG; returns the Popen."""
    setpriv = shutil.which("setpriv")
    full = ([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []) \
        + list(argv)
    p = subprocess.Popen(full, stdout=stdout, stderr=stderr, cwd=cwd,
                         env=env, stdin=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    reg = os.path.join(registry_dir(), "%s-%d" % (tag, p.pid))
    try:
        with open(reg, "w") as f:
            f.write("%s %d %s\n" % (_proc_start_time(p.pid), os.getpid(),
                                     _proc_start_time(os.getpid())))
    except OSError:
        reg = None
    _live[p.pid] = (p, reg)
    return p


def rss_kib(pid):
    """Resident set size of pid in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def live_processes():
    """(pid, ppid, pgid, sid, cmdline) of every live process (no zombies)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # state ppid pgrp session ...: after the command, which may hold ")"
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            yield (int(name), int(fields[1]), int(fields[2]), int(fields[3]),
                   cmd.strip())


def group_pids(pgid):
    """Pids of every live process in process group pgid."""
    return [pid for pid, _, group, _, _ in live_processes() if group == pgid]


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(p, sig=signal.SIGTERM, timeout=15.0):
    """Send sig to p's group, wait up to timeout, then SIGKILL the group.

    Returns p's exit status.  Also waits (bounded) until no member of the
    group is left, so nothing outlives the call.
    """
    pgid = p.pid
    if p.poll() is None and sig is not None:
        _killpg(pgid, sig)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _killpg(pgid, signal.SIGKILL)
        p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while group_pids(pgid) and time.monotonic() < deadline:
        _killpg(pgid, signal.SIGKILL)
        time.sleep(0.05)
    forget(p)
    return p.returncode


def forget(p):
    entry = _live.pop(p.pid, None)
    if entry and entry[1]:
        try:
            os.unlink(entry[1])
        except OSError:
            pass


def kill_all():
    """SIGKILL every group still registered in this process."""
    for pgid, (p, _) in list(_live.items()):
        _killpg(pgid, signal.SIGKILL)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        forget(p)


def reap_stale():
    """Kill groups recorded by an earlier run that did not clean up.

    A record names the group leader's pid and start time, so a recycled pid
    is never mistaken for ours, and its owner (the Python process that
    started it): groups whose owner still runs, e.g. an outer pytest that
    runs this one, are left alone.  Returns the pgids killed.
    """
    killed = []
    d = registry_dir()
    for name in os.listdir(d):
        path = os.path.join(d, name)
        try:
            pid = int(name.rsplit("-", 1)[1])
            with open(path) as f:
                start, owner, owner_start = f.read().split()
            owner = int(owner)
        except (ValueError, IndexError, OSError):
            continue
        if pid in _live or _proc_start_time(owner) == owner_start:
            continue
        members = group_pids(pid)
        if members and _proc_start_time(pid) in (start, None):
            _killpg(pid, signal.SIGKILL)
            killed.append(pid)
        try:
            os.unlink(path)
        except OSError:
            pass
    return killed


atexit.register(kill_all)
