"""One nginx (and one topic) for a whole test module, with the per-test
error-log check the `nginx` fixture does.

Stopping an nginx that runs the module takes about a second (the consumer
thread leaves Kafka), so a module of many small protocol tests shares one
instance: each test still starts with no subscriber connected and fails if
its stretch of error.log has [alert]/[emerg]/[crit] or nginx's stderr a
sanitizer report.

    @pytest.fixture(scope="module")
    def server(workdir, kafka, request):
        yield from shared.nginx(workdir, request, http=..., server=...)

    @pytest.fixture
    def ng(server):
        with shared.per_test(server) as mark:
            yield server          # mark.offset: where this test's log starts
"""

import contextlib
import os
import re
import tempfile
import uuid

import pytest

from . import net, prom
from . import nginx as nginx_lib


def topic(kafka, label, partitions=1):
    """Create a topic; returns (name, cleanup)."""
    name = "t.%s.%s" % (label, uuid.uuid4().hex[:8])
    kafka.create_topic(name, partitions)

    def cleanup():
        try:
            kafka.delete_topic(name, timeout=15)
        except Exception as e:      # the broker may be gone (pytest -x)
            print("could not delete topic %s: %s" % (name, e))
    return name, cleanup


def nginx(workdir, request, **kw):
    """Generator for a module-scoped fixture: a started Nginx(module=True,
    **kw); stopped at the end, failing on log problems not seen yet."""
    if not os.path.isfile(nginx_lib.module_path()):
        if os.environ.get("DASHSTREAM_MODULE"):
            pytest.fail("DASHSTREAM_MODULE=%s does not exist"
                        % nginx_lib.module_path())
        pytest.skip("module not built (%s); run make module"
                    % nginx_lib.module_path())
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    prefix = tempfile.mkdtemp(prefix=name + "-", dir=workdir)
    ng = nginx_lib.Nginx(prefix, module=True, **kw)
    ng.start()
    try:
        yield ng
    finally:
        ng.stop()
    ng.check_log()


class Mark:
    def __init__(self, offset):
        self.offset = offset


def connected(ng, path="/metrics"):
    s = prom.scrape(ng.url(path))
    return prom.value(s.samples, "websocket_connected_clients")


@contextlib.contextmanager
def per_test(ng, metrics="/metrics"):
    """Waits until no subscriber is left from an earlier test, then checks
    at the end that the log lines this test caused are clean."""
    net.wait_for(lambda: connected(ng, metrics) == 0, 10, 0.05,
                 "no subscriber left from an earlier test")
    mark = Mark(os.path.getsize(ng.error_log))
    yield mark
    bad = []
    for line in ng.error_log_text(mark.offset).splitlines():
        m = nginx_lib.LOG_LINE.match(line)
        if m and m.group(1) in nginx_lib.BAD_LEVELS \
                and not any(p.search(line) for p in ng.allowed):
            bad.append(line)
    for line in ng.stderr_text().splitlines():
        if nginx_lib.SANITIZER.search(line):
            bad.append("stderr: " + line)
    assert not bad, "error.log has [alert]/[emerg]/[crit]:\n" + "\n".join(bad)
