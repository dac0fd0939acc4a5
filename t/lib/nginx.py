"""nginx under test: a per-test config in a private prefix directory.

Runs Debian's /usr/sbin/nginx as
    nginx -p DIR -c DIR/nginx.conf -e DIR/error.log
with `daemon off` so the master is our child (its own process group), as
nginx-tests does.  Snippets may use placeholders: {{port}} (= {{port0}}),
{{port1}}, ... for the allocated ports, {{prefix}} for DIR and {{module}}
for the module path.

At teardown the nginx fixture stops every instance and fails the test if
error.log has [alert], [emerg] or [crit] lines the test did not allow with
allow_log(), or if nginx's stderr has a sanitizer report.
"""

import collections
import http.client
import os
import re
import signal
import subprocess

from . import net, procs

NGINX = os.environ.get("DASHSTREAM_NGINX", "/usr/sbin/nginx")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_MODULE = os.path.join(REPO, "build", "nginx", "objs",
                              "ngx_http_dashstream_module.so")
BAD_LEVELS = ("alert", "emerg", "crit")
SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                       r"runtime error:|SUMMARY: \w+Sanitizer")
LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] "
                      r"\d+#\d+: (?:\*\d+ )?(.*)$")

Result = collections.namedtuple("Result", "returncode stdout stderr")


class NginxError(RuntimeError):
    pass


def module_path():
    """The module .so: $DASHSTREAM_MODULE, else the build tree's."""
    return os.environ.get("DASHSTREAM_MODULE") or DEFAULT_MODULE


TEMPLATE = """\
{load_module}daemon off;
master_process on;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log {error_level};
{main}
events {{
    worker_connections 1024;
{events}}}

http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body_temp;
    proxy_temp_path {prefix}/proxy_temp;
    fastcgi_temp_path {prefix}/fastcgi_temp;
    uwsgi_temp_path {prefix}/uwsgi_temp;
    scgi_temp_path {prefix}/scgi_temp;
    default_type application/octet-stream;
{http}
    server {{
        listen 127.0.0.1:{{{{port}}}};
        server_name localhost;
{server}
    }}
}}
"""


def _indent(text, n):
    if not text:
        return ""
    pad = " " * n
    return "".join(pad + line.strip() + "\n" if line.strip() else "\n"
                   for line in text.strip("\n").splitlines())


class Nginx:
    """One nginx instance; see module doc.  Construct via the fixture."""

    def __init__(self, prefix, workers=1, ports=1, main="", events="",
                 http="", server="", module=False, error_level="info",
                 conf=None):
        self.prefix = prefix
        os.makedirs(prefix, exist_ok=True)
        os.chmod(prefix, 0o755)     # workers run as nobody when we are root
        self.ports = net.free_ports(ports)
        self.port = self.ports[0]
        self.conf_path = os.path.join(prefix, "nginx.conf")
        self.error_log = os.path.join(prefix, "error.log")
        self.pid_path = os.path.join(prefix, "nginx.pid")
        self.stderr_path = os.path.join(prefix, "stderr.log")
        self.params = dict(workers=workers, main=main, events=events,
                           http=http, server=server, module=module,
                           error_level=error_level, conf=conf)
        self.proc = None
        self.allowed = []
        self._reported = set()
        self.write_config()

    # -- configuration

    def subst(self, text):
        text = text.replace("{{port}}", str(self.port))
        for i, p in enumerate(self.ports):
            text = text.replace("{{port%d}}" % i, str(p))
        text = text.replace("{{prefix}}", self.prefix)
        return text.replace("{{module}}", module_path())

    def render(self):
        p = self.params
        if p["conf"] is not None:
            return self.subst(p["conf"])
        load = ""
        if p["module"]:
            load = "load_module %s;\n" % (p["module"] if isinstance(
                p["module"], str) else module_path())
        return self.subst(TEMPLATE.format(
            load_module=load, workers=p["workers"], prefix=self.prefix,
            error_level=p["error_level"], main=_indent(p["main"], 0),
            events=_indent(p["events"], 4), http=_indent(p["http"], 4),
            server=_indent(p["server"], 8)))

    def write_config(self, **changes):
        """Apply changes (same names as the constructor) and rewrite the
        config file; running nginx sees it on reload()."""
        unknown = set(changes) - set(self.params)
        if unknown:
            raise TypeError("unknown config parameters %s" % unknown)
        self.params.update(changes)
        if self.params["module"] is True and \
                not os.path.isfile(module_path()):
            raise NginxError("module not built: %s" % module_path())
        with open(self.conf_path, "w") as f:
            f.write(self.render())

    def config_text(self):
        with open(self.conf_path) as f:
            return f.read()

    def line_of(self, needle):
        """1-based line number of the first config line containing needle."""
        for i, line in enumerate(self.config_text().splitlines(), 1):
            if needle in line:
                return i
        raise KeyError(needle)

    def _cmd(self, *extra):
        return [NGINX, "-p", self.prefix + "/", "-c", self.conf_path,
                "-e", self.error_log] + list(extra)

    def check_config(self, timeout=30):
        """`nginx -t`: Result(returncode, stdout, stderr).

        The [emerg]/[alert]/[crit] lines it printed on stderr were handed to
        the test, so the teardown check does not count them again.
        """
        r = subprocess.run(self._cmd("-t"), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        res = Result(r.returncode, r.stdout.decode(errors="replace"),
                     r.stderr.decode(errors="replace"))
        for line in res.stderr.splitlines():
            m = re.match(r"nginx: \[(\w+)\] (.*)$", line)
            if m and m.group(1) in BAD_LEVELS:
                self._reported.add(m.group(2))
        return res

    # -- processes

    @property
    def master_pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def processes(self):
        """[(pid, title)] of the master's children (workers, helpers)."""
        if not self.running():
            return []
        return sorted((pid, cmd) for pid, ppid, _, _, cmd
                      in procs.live_processes() if ppid == self.proc.pid)

    def worker_pids(self, shutting_down=False):
        """Pids of the workers; with shutting_down=True only of the old
        workers still draining after a reload."""
        want = "worker process is shutting down" if shutting_down \
            else "worker process"
        return [pid for pid, title in self.processes()
                if title.endswith(want)]

    def _log_size(self):
        try:
            return os.path.getsize(self.error_log)
        except OSError:
            return 0

    def start(self, timeout=15):
        """Start nginx; returns once every port accepts and all workers run."""
        if self.running():
            raise NginxError("already running")
        with open(self.stderr_path, "ab") as err:
            self.proc = procs.spawn(self._cmd(), stdout=err, stderr=err,
                                    cwd=self.prefix, tag="nginx")

        def up():
            if self.proc.poll() is not None:
                raise NginxError("nginx exited with %s:\n%s%s" % (
                    self.proc.returncode, self.error_log_text()[-3000:],
                    self.stderr_text()[-2000:]))
            return all(net.port_open(p) for p in self.ports) and \
                len(self.worker_pids()) == self.params["workers"]
        try:
            net.wait_for(up, timeout, 0.05, "nginx on ports %s" % self.ports)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def reload(self, timeout=30, expect_failure=False, via_signal=False,
               **changes):
        """Rewrite the config with changes, `nginx -s reload` (or SIGHUP to
        the master with via_signal=True), and wait until the old workers are
        gone and the new ones run.

        A failed reload raises NginxError.  With expect_failure=True it
        returns the [emerg] lines instead (`nginx -s reload` refuses a bad
        config itself; a SIGHUP makes the master log it and keep the old
        workers), and they no longer count at teardown.
        """
        if changes:
            self.write_config(**changes)
        old = set(self.worker_pids())
        mark = self._log_size()
        if via_signal:
            self.signal(signal.SIGHUP)
        else:
            r = subprocess.run(self._cmd("-s", "reload"),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=timeout)
            if r.returncode != 0:
                errs = re.findall(r"^nginx: \[emerg\] (.*)$",
                                  r.stderr.decode(errors="replace"), re.M)
                if not expect_failure or not errs:
                    raise NginxError("nginx -s reload (exit %d): %s"
                                     % (r.returncode, r.stderr.decode()))
                self._reported.update(errs)
                return errs

        def emergs():
            return [m.group(2) for m in map(LOG_LINE.match,
                                            self.error_log_text(mark)
                                            .splitlines())
                    if m and m.group(1) == "emerg"]

        def done():
            if not self.running():
                raise NginxError("nginx master exited on reload:\n%s"
                                 % self.error_log_text(mark)[-3000:])
            if emergs():
                return True
            now = set(self.worker_pids())
            return not (now & old) and \
                len(now) == self.params["workers"] and \
                not self.worker_pids(shutting_down=True)
        net.wait_for(done, timeout, 0.05, "reload of nginx %s" % self.prefix)
        errs = emergs()
        if errs and not expect_failure:
            raise NginxError("reload failed: %s" % "; ".join(errs))
        if expect_failure:
            if not errs:
                raise NginxError("reload was expected to fail but did not")
            self._reported.update(errs)
        return errs

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=30, fast=False):
        """Graceful quit (SIGQUIT; SIGTERM with fast=True) to the master,
        bounded, then SIGKILL to the group; returns the exit code.  Signals
        the master directly: `nginx -s quit` would parse the config first
        and fail if a test left a broken one."""
        if self.proc is None:
            return None
        if self.running():
            self.signal(signal.SIGTERM if fast else signal.SIGQUIT)
        rc = procs.stop(self.proc, None, timeout)
        self.proc = None
        return rc

    # -- logs

    def error_log_text(self, offset=0):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def allow_log(self, pattern):
        """Declare an expected [alert]/[emerg]/[crit] line (regex search)."""
        self.allowed.append(re.compile(pattern))

    def log_problems(self):
        """Error-log lines at alert/emerg/crit not allowed or already
        reported, and sanitizer reports from stderr."""
        bad = []
        for line in self.error_log_text().splitlines():
            m = LOG_LINE.match(line)
            if not m or m.group(1) not in BAD_LEVELS:
                continue
            if m.group(2) in self._reported:
                continue
            if any(p.search(line) for p in self.allowed):
                continue
            bad.append(line)
        for line in self.stderr_text().splitlines():
            if SANITIZER.search(line):
                bad.append("stderr: " + line)
        return bad

    def check_log(self):
        bad = self.log_problems()
        if bad:
            raise AssertionError("%s/error.log has %d bad line(s):\n%s"
                                 % (self.prefix, len(bad), "\n".join(bad)))

    # -- clients

    def url(self, path="/", port=None, scheme="http"):
        return "%s://%s:%d%s" % (scheme, net.HOST, port or self.port, path)

    def ws_url(self, path="/", port=None):
        return self.url(path, port, "ws")

    def get(self, path="/", port=None, headers=None, timeout=10):
        """HTTP GET: (status, {lowercased header: value}, body bytes)."""
        c = http.client.HTTPConnection(net.HOST, port or self.port,
                                       timeout=timeout)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, \
                r.read()
        finally:
            c.close()
