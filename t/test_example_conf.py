"""nginx.conf.example (issue 7): it documents every dashstream directive the
module has, passes `nginx -t` with the module loaded once its placeholders
(certificate, auth service, paths) are filled in, and, run for real on
loopback ports, does what its comments say: TLS, auth_request in front of
the websocket, plain HTTP redirected, metrics and status for the scraper
network only."""

import glob
import http.client
import http.server
import os
import shutil
import re
import socket
import ssl
import subprocess
import threading

import pytest

from lib import net, prom

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(REPO, "nginx.conf.example")
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def example_text():
    with open(EXAMPLE) as f:
        return f.read()


def module_directives():
    """Every directive name the module's sources register."""
    names = set()
    for path in glob.glob(os.path.join(REPO, "src", "*.c")):
        with open(path) as f:
            names.update(re.findall(r'ngx_string\("(dashstream_\w+)"\)',
                                    f.read()))
    return names


def example_directives(text):
    """Directive names used (not merely mentioned in a comment), and those
    shown as the alternative of one used ("#   or: dashstream_x ...;")."""
    return set(re.findall(r"^\s*(?:#\s+or:\s+)?(dashstream_\w+)[\s;]",
                          text, re.M))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    os.chmod(d, 0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=dashstream.example.com",
                    "-keyout", os.path.join(d, "dashstream.example.com.key"),
                    "-out", os.path.join(d, "dashstream.example.com.crt")],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60)
    # the Kafka credentials: a password file, a CA and a client pair
    kd = d + "-kafka"
    os.makedirs(kd)
    os.chmod(kd, 0o755)
    with open(os.path.join(kd, "kafka-password"), "w") as f:
        f.write("example-secret\n")
    for src, dst in (("crt", "kafka-ca.crt"), ("crt", "kafka-client.crt"),
                     ("key", "kafka-client.key")):
        shutil.copy(os.path.join(d, "dashstream.example.com." + src),
                    os.path.join(kd, dst))
    return d


class AuthHandler(http.server.BaseHTTPRequestHandler):
    """The auth service: "Bearer good" is tenant acme, anything else 401."""

    seen = []

    def do_GET(self):
        AuthHandler.seen.append((self.path,
                                 self.headers.get("X-Original-URI")))
        if self.headers.get("Authorization") == "Bearer good":
            self.send_response(204)
            self.send_header("X-DashStream-Tenant", "acme")
        else:
            self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def auth():
    srv = http.server.ThreadingHTTPServer((net.HOST, 0), AuthHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def filled_in(text, module, certs, auth_port, brokers=None):
    """The example with its placeholders satisfied, on loopback ports
    {{port0}} (https), {{port1}} (http), {{port2}} (metrics)."""
    subs = [
        ("/usr/lib/nginx/modules/ngx_http_dashstream_module.so", module),
        ("/etc/nginx/tls/", certs + "/"),
        ("/etc/nginx/kafka/", certs + "-kafka/"),
        ("auth.internal.example.com:9180", "127.0.0.1:%d" % auth_port),
        ("/var/log/nginx/", "{{prefix}}/"),
        ("/run/nginx.pid", "{{prefix}}/nginx.pid"),
        ("worker_processes auto;", "worker_processes 2;"),
        ("listen 443 ssl http2;", "listen 127.0.0.1:{{port0}} ssl http2;"),
        ("listen 80;", "listen 127.0.0.1:{{port1}};"),
        ("listen 9145;", "listen 127.0.0.1:{{port2}};"),
        ("/usr/share/ngx-dashstream/web", REPO + "/web"),
    ]
    for old, new in subs:
        assert old in text, "placeholder %r is gone from the example" % old
        text = text.replace(old, new)
    # IPv6 may be off on a test machine; the IPv4 listens say it all
    text = re.sub(r"^\s*listen \[::\]:\d+[^\n]*\n", "", text, flags=re.M)
    if brokers:
        text = re.sub(r"dashstream_brokers [^;]+;",
                      "dashstream_brokers %s;" % brokers, text)
    # the harness runs the master in the foreground, temp files in prefix
    temp = "".join("    %s_temp_path {{prefix}}/%s_temp;\n" % (k, k)
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi",
                             "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    return "daemon off;\n" + text


def test_example_shows_every_directive():
    text = example_text()
    have = module_directives()
    assert len(have) >= 20, have
    missing = have - example_directives(text)
    assert not missing, "nginx.conf.example lacks %s" % sorted(missing)
    unknown = example_directives(text) - have
    assert not unknown, "nginx.conf.example has unknown %s" % sorted(unknown)
    # each shown with a comment right above it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(dashstream_\w+)", line)
        if m and m.group(1) not in ("dashstream_websocket",
                                    "dashstream_metrics",
                                    "dashstream_status",
                                    "dashstream_slow_subscriber",
                                    "dashstream_tenant_scope"):
            above = lines[i - 1].strip()
            assert above.startswith("#"), \
                "%s at line %d has no comment" % (m.group(1), i + 1)


def test_example_passes_nginx_t(nginx, module, certs, auth):
    ng = nginx(conf=filled_in(example_text(), module, certs, auth), ports=3,
               workers=2)
    r = ng.check_config()
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr


def test_example_placeholders_are_needed(nginx, module, certs, auth):
    """Unfilled, `nginx -t` names the missing certificate: the example is
    not usable by accident."""
    text = filled_in(example_text(), module, certs, auth)
    text = text.replace(certs + "/", "/nonexistent/tls/")
    ng = nginx(conf=text, ports=3)
    r = ng.check_config()
    assert r.returncode != 0
    assert "/nonexistent/tls/dashstream.example.com.crt" in r.stderr


def tls_upgrade(port, headers, path="/ws"):
    """Websocket upgrade over TLS: (status, response head)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((net.HOST, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="dashstream.example.com") \
                as s:
            req = ("GET %s HTTP/1.1\r\nHost: dashstream.example.com\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "%s\r\n" % (path, WS_KEY,
                                 "".join("%s: %s\r\n" % kv
                                         for kv in headers.items())))
            s.sendall(req.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(errors="replace")


def test_example_runs(nginx, module, certs, auth):
    """Started on loopback (brokers on a port nothing listens on: the
    stream is empty, the module says so in the log and keeps serving)."""
    dead = "127.0.0.1:%d" % net.free_port()
    ng = nginx(conf=filled_in(example_text(), module, certs, auth, dead),
               ports=3, workers=2)
    ng.start()
    https, plain, scrape_port = ng.ports

    AuthHandler.seen.clear()
    status, head = tls_upgrade(https, {})
    assert status == 401, head
    status, head = tls_upgrade(https, {"Authorization": "Bearer good"})
    assert status == 101, head
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" \
        in head.lower()
    assert AuthHandler.seen[-1] == ("/verify", "/ws")

    # the origin allow-list and the tenant scope the auth service set
    good = {"Authorization": "Bearer good"}
    assert tls_upgrade(https, dict(
        good, Origin="https://dashstream.example.com"))[0] == 101
    assert tls_upgrade(https, dict(
        good, Origin="https://evil.example.net"))[0] == 403
    assert tls_upgrade(https, good, "/ws?tenant=acme")[0] == 101
    assert tls_upgrade(https, good, "/ws?tenant=globex")[0] == 403

    # plain HTTP redirects to https
    c = http.client.HTTPConnection(net.HOST, plain, timeout=10)
    c.request("GET", "/ws?x=1", headers={"Host": "dashstream.example.com"})
    r = c.getresponse()
    assert r.status == 301
    assert r.getheader("Location") == "https://dashstream.example.com/ws?x=1"
    c.close()

    # metrics and status on the scraper port (127.0.0.1 is allowed)
    s = prom.scrape(ng.url("/metrics", port=scrape_port))
    assert any(name == "websocket_kafka_messages_total"
               for name, _ in s.samples)
    st, _, body = ng.get("/dashstream/status", port=scrape_port)
    assert st == 200 and body.startswith(b"{")
    # ... and not on the public server
    ctx = ssl._create_unverified_context()
    c = http.client.HTTPSConnection(net.HOST, https, timeout=10, context=ctx)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read()
    c.close()
    assert b"websocket_kafka_messages_total" not in body
