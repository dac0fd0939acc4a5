#!/usr/bin/python3
"""`make bench`: ngx_dashstream side by side with nchan and a plain
librdkafka consumer, on this machine, in one run.

Prints a table per section and writes docs/performance.md with the exact
commands and the figures of the run.  Sections (BENCH_SECTIONS, comma
separated, default all):

  ring      bench/ring_bench: ring appends/s, with and without a reader
  fanout    100 / 1,000 / 10,000 websocket subscribers, 200 B and 2 KiB,
            fixed rates: dashstream (fed by a real Kafka broker) against
            nchan (fed over HTTP POST) in the same nginx binary and config
  idle      nginx CPU with subscribers connected and no traffic (issue 3)
  ingest    1,000,000 pre-produced messages into the ring against
            bench/plain_consumer, with and without subscribers
  metrics   GET /metrics latency with 256 assigned partitions under load
  slowlag   delivery latency with the lag poller's broker requests slowed
            (librdkafka mock cluster) and without (issue 4)

Environment: BENCH_QUICK=1 (a short run), BENCH_MODULE (the .so, default
the build tree's), BENCH_BIN (the bench binaries, default build/bench),
BENCH_OUT (default docs/performance.md; "-" for none), BENCH_REPEAT
(default 3, 1 with BENCH_QUICK), BENCH_SECTIONS, BENCH_PROFILE=0 (no perf
profile of the saturated fan-out cells).

Every child (broker, nginx, mock cluster, tools) is started through the
test harness's procs.spawn: its own session with PDEATHSIG, stopped at
exit.
"""

import collections
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "t"))

from lib import kafka, net, procs                        # noqa: E402
from lib import nginx as nginx_lib                       # noqa: E402

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
REPEAT = int(os.environ.get("BENCH_REPEAT", "1" if QUICK else "3"))
BIN = os.path.abspath(os.environ.get("BENCH_BIN",
                                     os.path.join(REPO, "build", "bench")))
MODULE = os.path.abspath(os.environ.get("BENCH_MODULE",
                                        nginx_lib.DEFAULT_MODULE))
NCHAN = "/usr/lib/nginx/modules/ngx_nchan_module.so"
NGINX = nginx_lib.NGINX
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "docs",
                                               "performance.md"))
SECTIONS = [s for s in os.environ.get(
    "BENCH_SECTIONS", "ring,fanout,idle,ingest,metrics,slowlag").split(",")
    if s]
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0" and not QUICK
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# (subscribers, messages/s) per fan-out cell; the same for both sizes and
# both systems.  100 x 1,000/s is issue 3's latency point; the others
# offer 500,000 deliveries/s.
FANOUT = [(100, 1000), (1000, 200)] if QUICK else \
    [(100, 1000), (1000, 500), (10000, 50)]
SIZES = [200] if QUICK else [200, 2048]
WARMUP = 2 if QUICK else 3
WINDOW = 3 if QUICK else 5
INGEST_N = 200000 if QUICK else 1000000
SCRAPES = 100 if QUICK else 500
IDLE_S = 10
SOURCES = 8                 # 127.0.0.1..8 for the load client


def log(msg):
    print("bench: " + msg, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- processes

def cpu_ticks(pids):
    """utime + stime of pids (all their threads), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total


def machine_busy_ticks():
    """(busy, softirq) clock ticks of all CPUs together, /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], v[6]


class CpuMeter:
    """CPU of groups of pids and of the whole machine over a window, in %
    of one core."""

    def __init__(self, groups):
        self.groups = groups            # name -> callable returning pids
        self.t0 = time.monotonic()
        self.start = {k: cpu_ticks(f()) for k, f in groups.items()}
        self.busy0 = machine_busy_ticks()

    def stop(self):
        dt = time.monotonic() - self.t0
        out = {k: (cpu_ticks(f()) - self.start[k]) / TICK / dt * 100
               for k, f in self.groups.items()}
        busy, soft = machine_busy_ticks()
        out["machine"] = (busy - self.busy0[0]) / TICK / dt * 100
        # network softirq (loopback TCP) is nobody's process time
        out["softirq"] = (soft - self.busy0[1]) / TICK / dt * 100
        out["other"] = max(0.0, out["machine"] - sum(
            v for k, v in out.items() if k != "machine"))
        return out


# a window in which processes outside the benchmark took more than this
# (% of one core: other jobs on the machine, kernel threads) is repeated
NOISY = 30.0


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/statm" % pid) as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except OSError:
            pass
    return total


class Tool:
    """A bench binary run as a child; JSON lines on its stdout."""

    def __init__(self, argv, stdin=False, tag="tool"):
        self.argv = [str(a) for a in argv]
        self.err_path = tempfile.mktemp(prefix="bench-%s-" % tag,
                                        suffix=".err")
        self.err = open(self.err_path, "wb")
        full = ([shutil.which("setpriv"), "--pdeathsig", "KILL", "--"]
                if shutil.which("setpriv") else []) + self.argv
        self.proc = subprocess.Popen(
            full, stdout=subprocess.PIPE, stderr=self.err,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            start_new_session=True, text=True, bufsize=1)

    def line(self, timeout=120):
        """Next stdout line (blocking, bounded by a watchdog)."""
        deadline = time.monotonic() + timeout

        def kill():
            self.kill()
        import threading
        t = threading.Timer(timeout, kill)
        t.start()
        try:
            out = self.proc.stdout.readline()
        finally:
            t.cancel()
        if not out:
            raise RuntimeError("%s ended (exit %s): %s" % (
                os.path.basename(self.argv[0]), self.proc.poll(),
                self.stderr()[-1500:]))
        if time.monotonic() > deadline:
            raise TimeoutError(self.argv[0])
        return out.strip()

    def json(self, timeout=120):
        while True:
            out = self.line(timeout)
            if out.startswith("{"):
                return json.loads(out)

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait(10)

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stderr(self):
        self.err.flush()
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.kill()
            self.proc.wait(10)
        self.err.close()
        try:
            os.unlink(self.err_path)
        except OSError:
            pass


def run_tool(argv, timeout=600):
    t = Tool(argv)
    try:
        res = t.json(timeout)
        t.wait(timeout)
        return res
    finally:
        t.close()


class Subscribers:
    """bench/loadclient in interactive mode: connects, then measures on
    command."""

    def __init__(self, url, n, mode, size=None, resume=True, threads=1):
        argv = [os.path.join(BIN, "loadclient"), "-i", "-u", url,
                "-n", n, "-m", mode, "-S", SOURCES, "-T", threads,
                "-t", 60]
        if size:
            argv += ["-e", size]
        if resume and mode == "dashflow":
            argv += ["-R"]
        self.cmd = " ".join(str(a) for a in argv)
        self.tool = Tool(argv, stdin=True, tag="loadclient")
        ready = self.tool.line(120)
        m = re.match(r"ready (\d+) open (\d+) failed", ready)
        if not m:
            raise RuntimeError("loadclient: %s" % ready)
        self.open, self.failed = int(m.group(1)), int(m.group(2))
        if self.open != n:
            log("warning: %d of %d subscribers connected (%d failed): %s"
                % (self.open, n, self.failed, self.tool.stderr()[-500:]))

    def measure(self, seconds):
        self.tool.send("measure %g" % seconds)
        return self.tool.json(seconds + 60)

    def close(self):
        try:
            self.tool.send("quit")
            self.tool.wait(30)
        except (BrokenPipeError, OSError):
            pass
        self.tool.close()


# ---------------------------------------------------------------- nginx

NGINX_CONF = """\
load_module {module};
load_module {nchan};
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 20000;
worker_rlimit_core 2g;
working_directory {cores};
pid {{{{prefix}}}}/nginx.pid;
error_log {{{{prefix}}}}/error.log notice;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    client_body_temp_path {{{{prefix}}}}/client_body_temp;
    proxy_temp_path {{{{prefix}}}}/proxy_temp;
    fastcgi_temp_path {{{{prefix}}}}/fastcgi_temp;
    uwsgi_temp_path {{{{prefix}}}}/uwsgi_temp;
    scgi_temp_path {{{{prefix}}}}/scgi_temp;
    keepalive_requests 100000000;

    dashstream_brokers {brokers};
    dashstream_topic {topic};
    dashstream_group_id {group};
    dashstream_offset_reset {reset};
    dashstream_zone dashstream {zone};
{extra}
    nchan_shared_memory_size 256m;

    server {{
        listen 127.0.0.1:{{{{port}}}} reuseport backlog=4096;

        location /ws {{
            dashstream_websocket;
            dashstream_send_budget 256k;
        }}
        location /raw {{
            dashstream_websocket raw;
            dashstream_send_budget 256k;
        }}
        location = /metrics {{ dashstream_metrics; }}
        location = /status {{ dashstream_status; }}

        location = /pub {{
            nchan_publisher;
            nchan_channel_id bench;
            nchan_message_buffer_length 16;
        }}
        location = /sub {{
            nchan_subscriber websocket;
            nchan_channel_id bench;
            nchan_subscriber_first_message newest;
        }}
    }}
}}
"""


class Server:
    """One nginx with both modules: the same binary, workers and config
    for dashstream and nchan."""

    def __init__(self, workdir, brokers, topic, reset="latest", zone="64m",
                 extra="", workers=2):
        self.prefix = tempfile.mkdtemp(prefix="nginx-", dir=workdir)
        # a crashing worker (nobody) leaves its core here
        self.cores = os.path.join(self.prefix, "cores")
        os.makedirs(self.cores)
        os.chmod(self.cores, 0o1777)
        self.crash_report = []
        self.conf = NGINX_CONF.format(
            module=MODULE, nchan=NCHAN, workers=workers, cores=self.cores,
            brokers=brokers,
            topic=topic, group="bench-%s" % uuid.uuid4().hex[:8],
            reset=reset, zone=zone,
            extra="".join("    %s\n" % line for line in extra.splitlines()))
        self.ng = nginx_lib.Nginx(self.prefix, workers=workers,
                                  conf=self.conf)
        self.ng.start()
        self.http = None

    @property
    def port(self):
        return self.ng.port

    def pids(self):
        return [self.ng.master_pid] + [p for p, _ in self.ng.processes()]

    def url(self, path, scheme="ws"):
        return "%s://127.0.0.1:%d%s" % (scheme, self.port, path)

    def get(self, path):
        if self.http is None:
            self.http = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=30)
        try:
            self.http.request("GET", path)
            r = self.http.getresponse()
            return r.status, r.read()
        except (http.client.HTTPException, OSError):
            self.http.close()
            self.http = None
            raise

    def metrics(self):
        status, body = self.get("/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line:
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def wait_assigned(self, topic, n=1, timeout=60):
        key = 'websocket_kafka_assigned_partitions{topic="%s"}' % topic
        net.wait_for(lambda: self.metric(key) >= n, timeout, 0.1,
                     "%d partitions of %s assigned" % (n, topic))

    def crashes(self):
        """Workers that died on a signal, by error.log."""
        return len(re.findall(r"worker process \d+ exited on signal",
                              self.ng.error_log_text()))

    def stop(self):
        """Stops nginx; a worker that crashed (also while stopping) is
        counted, and the backtrace of its core kept in crash_report."""
        if self.http:
            self.http.close()
        self.ng.stop(timeout=30)
        bad = self.ng.log_problems()
        if bad:
            log("warning: nginx error.log: %s" % "; ".join(bad[:3]))
        self.crash_count = self.crashes()
        core = os.path.join(self.cores, "core")
        if os.path.exists(core):
            self.crash_report.append(backtrace(core))
        shutil.rmtree(self.prefix, ignore_errors=True)


def backtrace(core):
    """The frames of a worker's core, as far as symbols go."""
    try:
        out = subprocess.run(["gdb", "-q", "-batch", "-ex", "bt 12", NGINX,
                              core], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return "no backtrace: %s" % e
    lines = [ln for ln in out.splitlines()
             if ln.startswith("#") or ln.startswith("Program terminated")]
    return "\n".join(re.sub(r"0x[0-9a-f]{16} in ", "", ln)
                     for ln in lines[:14])


def module_supports(directive):
    """True if the module knows this http-level directive line."""
    d = tempfile.mkdtemp(prefix="bench-probe-")
    try:
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("load_module %s;\nevents {}\nhttp {\n"
                    "dashstream_brokers 127.0.0.1:9;\n"
                    "dashstream_zone probe 8m;\n%s\n}\n"
                    % (MODULE, directive))
        r = subprocess.run([NGINX, "-t", "-p", d + "/", "-c", conf,
                            "-e", os.path.join(d, "error.log")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return r.returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- report

class Report:
    def __init__(self):
        self.parts = []          # markdown
        self.findings = {}

    def table(self, title, head, rows, note=None):
        """Print a table and keep it for the markdown file."""
        cells = [[fmt(c) for c in r] for r in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells
                  else len(h) for i, h in enumerate(head)]
        print()
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        print("  ".join("-" * w for w in widths))
        for r in cells:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if note:
            print(note)
        print(flush=True)
        md = ["### " + title, "", "| " + " | ".join(head) + " |",
              "|" + "|".join(" --- " for _ in head) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in cells]
        if note:
            md += ["", note]
        self.parts.append("\n".join(md) + "\n")

    def text(self, md):
        self.parts.append(md.rstrip() + "\n")


def fmt(v):
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return "{:,.0f}".format(v)
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    if isinstance(v, int):
        return "{:,}".format(v)
    return str(v)


# ---------------------------------------------------------------- sections

def section_ring(rep, ctx):
    rows = []
    for size in SIZES:
        for readers in (0, 1):
            out = subprocess.run(
                [os.path.join(BIN, "ring_bench"), str(size), str(readers)],
                stdout=subprocess.PIPE, text=True, timeout=120).stdout
            m = re.search(r"([\d.]+) appends/s \(([\d.]+) MB/s\)", out)
            r = re.search(r"reader 0: ([\d.]+) reads/s, (\d+) overtaken",
                          out)
            rows.append([size, readers, float(m.group(1)),
                         float(m.group(2)),
                         float(r.group(1)) if r else None,
                         int(r.group(2)) if r else None])
    rep.table("Ring (bench/ring_bench, 2 s each)",
              ["payload B", "readers", "appends/s", "MB/s", "reads/s",
               "overtaken"], rows,
              "Command: `%s/ring_bench SIZE READERS`." % rel(BIN))


def fanout_run(ctx, system, subs, rate, size, profile=False):
    """One cell for one system: fresh nginx, N subscribers, rate x size."""
    cluster, topic = ctx["cluster"], ctx["fan_topic"]
    srv = Server(ctx["workdir"], cluster.bootstrap, topic)
    res = {"system": system, "subs": subs, "rate": rate, "size": size}
    sub = prod = None
    try:
        srv.wait_assigned(topic)
        base_rss = rss_kb(srv.pids())
        if system == "dashstream":
            url, mode = srv.url("/ws"), "dashflow"
        else:
            url, mode = srv.url("/sub"), "nchan"
        sub = Subscribers(url, subs, mode, size)
        res["client_cmd"] = sub.cmd
        res["open"] = sub.open
        time.sleep(1.0)
        res["rss_per_sub_kb"] = (rss_kb(srv.pids()) - base_rss) / subs

        if system == "dashstream":
            argv = [os.path.join(BIN, "producer"), "-b", cluster.bootstrap,
                    "-t", topic, "-r", rate, "-s", size, "-d", 0]
        else:
            argv = [os.path.join(BIN, "producer"), "-u",
                    srv.url("/pub", "http"), "-r", rate, "-s", size,
                    "-d", 0]
        res["producer_cmd"] = " ".join(str(a) for a in argv)
        prod = Tool(argv, tag="producer")
        time.sleep(WARMUP)

        res["windows"] = measure_windows(ctx, srv, sub, prod,
                                         system == "dashstream")
        if profile and ctx.get("perf"):
            res["profile"] = perf_profile(srv.pids()[1:], 5)
        prod.signal(signal.SIGTERM)
        res["producer"] = prod.json(60)
        res["metrics_dropped"] = sum(
            v for k, v in srv.metrics().items()
            if k.startswith("websocket_dropped_messages_total"))
    finally:
        if prod:
            prod.close()
        if sub:
            sub.close()
        srv.stop()
    res["crashes"] = srv.crash_count
    res["crash_report"] = srv.crash_report
    if res["crashes"]:
        log("warning: %d nginx worker(s) crashed in the %s cell"
            % (res["crashes"], system))
    return res


def measure_windows(ctx, srv, sub, prod, broker=True):
    """REPEAT windows; one disturbed by other processes is done again
    (twice at most) and left out of the medians if enough are clean."""
    groups = {"nginx": srv.pids,
              "client": lambda: [sub.tool.proc.pid],
              "producer": lambda: [prod.proc.pid]}
    if broker:
        groups["broker"] = lambda: [ctx["broker_pid"]]
    windows = []
    clean = 0
    while clean < REPEAT and len(windows) < REPEAT + 2:
        meter = CpuMeter(groups)
        w = sub.measure(WINDOW)
        cpu = meter.stop()
        w["cpu"] = cpu
        w["noisy"] = cpu["other"] > NOISY
        clean += not w["noisy"]
        windows.append(w)
    if clean >= (REPEAT + 1) // 2:
        windows = [w for w in windows if not w["noisy"]]
    return windows


def summarize(res):
    ws = res["windows"]
    errs = collections.Counter()
    for w in ws:
        errs.update({k: v for k, v in w["errors"].items() if v})
    return {
        "delivered": median([w["rate"] for w in ws]),
        "p50": median([w["p50_ms"] for w in ws]),
        "p99": median([w["p99_ms"] for w in ws]),
        "p999": median([w["p999_ms"] for w in ws]),
        "lost": sum(w["lost"] for w in ws),
        "nginx_cpu": median([w["cpu"]["nginx"] for w in ws]),
        "broker_cpu": median([w["cpu"].get("broker") for w in ws]),
        "client_cpu": median([w["cpu"]["client"] for w in ws]),
        "producer_cpu": median([w["cpu"]["producer"] for w in ws]),
        "machine_cpu": median([w["cpu"]["machine"] for w in ws]),
        "softirq_cpu": median([w["cpu"]["softirq"] for w in ws]),
        "other_cpu": median([w["cpu"]["other"] for w in ws]),
        "windows": len(ws),
        "errors": dict(errs),
        "rss": res["rss_per_sub_kb"],
        "prod_rate": res["producer"]["rate"],
        "prod_behind": res["producer"]["behind_max_s"],
        "crashes": res.get("crashes", 0),
        "open": res["open"],
    }


def section_fanout(rep, ctx):
    ctx["fan_topic"] = ctx["cluster"].create_topic(
        "bench.fanout.%s" % uuid.uuid4().hex[:6], 1)
    rows, ratios, results = [], [], []
    cmds = {}
    for size in SIZES:
        for subs, rate in FANOUT:
            pair = {}
            for system in ("dashstream", "nchan"):
                log("fan-out: %s, %d subscribers, %d msg/s of %d B"
                    % (system, subs, rate, size))
                profile = PROFILE and subs == FANOUT[-1][0] and \
                    size == SIZES[0]
                res = fanout_run(ctx, system, subs, rate, size, profile)
                results.append(res)
                s = summarize(res)
                pair[system] = s
                cmds.setdefault(system, (res["producer_cmd"],
                                         res["client_cmd"]))
                rows.append([subs, size, rate, system,
                             float(subs * rate), s["delivered"],
                             s["p50"], s["p99"], s["p999"], s["lost"],
                             s["nginx_cpu"], s["broker_cpu"],
                             s["client_cpu"], s["softirq_cpu"],
                             s["machine_cpu"], s["other_cpu"], s["rss"],
                             "%.0f (%.2f s, %.0f %% CPU)"
                             % (s["prod_rate"], s["prod_behind"],
                                s["producer_cpu"]),
                             s["crashes"],
                             ",".join("%s=%d" % kv for kv in
                                      sorted(s["errors"].items())) or "0"])
            d, n = pair["dashstream"], pair["nchan"]
            ratios.append([subs, size, rate,
                           ratio(d["delivered"], n["delivered"]),
                           ratio(d["p99"], n["p99"]),
                           ratio(d["p50"], n["p50"])])
    ctx["fanout"] = results
    ctx["fanout_ratios"] = ratios
    rep.table(
        "Fan-out: delivered messages/s and end-to-end latency (median of "
        "%d windows of %d s)" % (REPEAT, WINDOW),
        ["subs", "size B", "rate/s", "system", "offered/s", "delivered/s",
         "p50 ms", "p99 ms", "p99.9 ms", "lost", "nginx CPU %",
         "broker CPU %", "client CPU %", "softirq %", "machine CPU %",
         "other CPU %",
         "RSS/sub KiB", "publisher msg/s (max behind, CPU)",
         "worker crashes",
         "errors"], rows,
        "offered = subscribers x rate; CPU in %% of one core (the machine "
        "has %d: %d %% is all of it); softirq = kernel network processing "
        "(loopback TCP), in nobody's process time; machine = all CPU time "
        "spent; other = machine minus all of the above (other jobs on the "
        "machine, kernel threads): a window with other > %d %% is repeated "
        "(at most twice) and left out; lost = sequence gaps the "
        "subscribers saw (messages dropped over the send budget); worker "
        "crashes = `exited on signal` in error.log (the master starts a new "
        "worker; its subscribers are gone: errors `closed`); RSS/sub = "
        "growth of master+worker RSS with N idle subscribers, / N; "
        "publisher = the rate it achieved, how far it fell behind its "
        "schedule (HTTP: it keeps at most 256 POSTs in flight, so a slow "
        "publisher location holds it back) and its own CPU."
        % (os.cpu_count(), os.cpu_count() * 100, NOISY))
    rep.table("Fan-out ratios dashstream / nchan (same cell)",
              ["subs", "size B", "rate/s", "delivered ratio",
               "p99 ratio", "p50 ratio"], ratios,
              "delivered ratio > 1 and p99 ratio < 1 favour dashstream.")
    rep.text("Commands of a cell (dashstream, then nchan), with the "
             "nginx configuration below:\n\n```sh\n%s\n```\n" % "\n".join(
                 "%s &\n%s    # then: measure %d (x%d), quit"
                 % (p, c, WINDOW, REPEAT) for p, c in cmds.values()))
    for res in results:
        for bt in res.get("crash_report", []):
            rep.text("A worker crashed in the %s cell, %d subscribers, %d "
                     "msg/s of %d B; backtrace of its core:\n\n```\n%s\n```"
                     "\n" % (res["system"], res["subs"], res["rate"],
                              res["size"], bt))
        if res.get("profile"):
            rep.text("perf profile of the nginx workers, %s, %d "
                     "subscribers, %d B (`perf record -e cpu-clock -g`, "
                     "5 s, self time):\n\n```\n%s\n```\n"
                     % (res["system"], res["subs"], res["size"],
                        res["profile"]))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def perf_profile(pids, seconds):
    data = tempfile.mktemp(prefix="bench-perf-", suffix=".data")
    try:
        subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-g",
                        "-o", data, "-p", ",".join(map(str, pids)),
                        "--", "sleep", str(seconds)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 60)
        out = subprocess.run(["perf", "report", "-i", data, "--stdio",
                              "--no-children", "--sort", "dso,sym",
                              "-g", "none", "--percent-limit", "1.5"],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True,
                             timeout=120).stdout
        lines = [ln for ln in out.splitlines()
                 if ln.strip() and not ln.startswith("#")]
        return "\n".join(lines[:25])
    except (OSError, subprocess.SubprocessError) as e:
        return "perf failed: %s" % e
    finally:
        try:
            os.unlink(data)
        except OSError:
            pass


def section_idle(rep, ctx):
    topic = ctx.get("fan_topic") or ctx["cluster"].create_topic(
        "bench.idle.%s" % uuid.uuid4().hex[:6], 1)
    rows = []
    for system, path, mode in (("dashstream", "/ws", "dashflow"),
                               ("nchan", "/sub", "nchan")):
        srv = Server(ctx["workdir"], ctx["cluster"].bootstrap, topic)
        sub = None
        try:
            srv.wait_assigned(topic)
            sub = Subscribers(srv.url(path), 100, mode)
            time.sleep(2)
            secs = []
            for _ in range(REPEAT):
                c0 = cpu_ticks(srv.pids())
                time.sleep(IDLE_S)
                secs.append((cpu_ticks(srv.pids()) - c0) / TICK)
            rows.append([system, 100, IDLE_S, median(secs),
                         " / ".join("%.2f" % s for s in secs),
                         median(secs) / IDLE_S * 100])
        finally:
            if sub:
                sub.close()
            srv.stop()
    ctx["idle"] = rows
    rep.table("Idle: nginx CPU with 100 subscribers connected and no "
              "traffic (issue 3)",
              ["system", "subs", "seconds", "CPU s (median)",
               "CPU s per run", "CPU %"], rows,
              "CPU seconds = utime + stime of master and workers (all "
              "threads, the consumer and lag poller included) from "
              "/proc/PID/stat, resolution %.2f s." % (1.0 / TICK))


# librdkafka 2.0.2 stops fetching a partition whose queue holds
# queued.min.messages (100,000 by default) and looks again only after a
# back-off: a consumer slower than the fetcher idles in between
TUNED = ("queued.min.messages", "1000000")


def section_ingest(rep, ctx):
    cluster = ctx["cluster"]
    topic = cluster.create_topic("bench.ingest.%s" % uuid.uuid4().hex[:6],
                                 4)
    log("ingest: producing %d messages of 200 B" % INGEST_N)
    argv = [os.path.join(BIN, "producer"), "-b", cluster.bootstrap, "-t",
            topic, "-S", 4, "-r", 0, "-s", 200, "-n", INGEST_N, "-d", 0]
    pre = run_tool(argv)
    plain_cmd = [os.path.join(BIN, "plain_consumer"), "-b",
                 cluster.bootstrap, "-t", topic, "-n", INGEST_N]
    tuned_cmd = plain_cmd + ["-X", "%s=%s" % TUNED]
    tuned_conf = "dashstream_kafka_property %s %s;" % TUNED
    tuned = module_supports(tuned_conf)
    runs = collections.OrderedDict()
    configs = [("plain_consumer", lambda: run_tool(plain_cmd)["seconds"]),
               ("module, no subscribers",
                lambda: ingest_module(ctx, topic, 0)),
               ("module, 100 subscribers",
                lambda: ingest_module(ctx, topic, 100))]
    if tuned:
        configs += [("plain_consumer, %s=%s" % TUNED,
                     lambda: run_tool(tuned_cmd)["seconds"]),
                    ("module, no subscribers, %s=%s" % TUNED,
                     lambda: ingest_module(ctx, topic, 0, tuned_conf))]
    for i in range(REPEAT):
        for name, fn in configs:
            log("ingest: %s, run %d" % (name, i + 1))
            runs.setdefault(name, []).append(fn())
    rows = []
    for name, secs in runs.items():
        base = median(runs["plain_consumer" + (", %s=%s" % TUNED
                                               if TUNED[0] in name else "")])
        rows.append([name, median(secs), INGEST_N / median(secs),
                     base / median(secs),
                     " / ".join("%.2f" % x for x in secs)])
    ctx["ingest"] = rows
    rep.table("Ingest: %s pre-produced messages of 200 B, 4 partitions, "
              "first to last message" % fmt(INGEST_N),
              ["consumer", "seconds", "msg/s", "x plain (same settings)",
               "runs"], rows,
              "Producer: `%s` (%.0f msg/s). Plain: `%s` (`-X %s=%s` in the "
              "tuned rows). Module: nginx with `dashstream_offset_reset "
              "earliest`, a new group, `dashstream_zone 256m` (and `%s` in "
              "the tuned row); time from the first message to the last by "
              "`websocket_kafka_messages_total` (scraped every 50 ms, the "
              "ends interpolated). The module decodes every message, the "
              "plain consumer does not; with subscribers, the workers fan "
              "out to them on the same two cores."
              % (cmdline(argv), pre["rate"], cmdline(plain_cmd), TUNED[0],
                 TUNED[1], tuned_conf))


def cmdline(argv):
    return " ".join(rel(str(a)) for a in argv)


def rel(path):
    return os.path.relpath(path, REPO) if path.startswith(REPO) else path


def ingest_module(ctx, topic, subs, extra=""):
    """Seconds from the module's first message to its INGEST_N-th: scraped
    every 50 ms, each scrape dated at the middle of its request, the ends
    interpolated between the scrapes around them."""
    srv = Server(ctx["workdir"], ctx["cluster"].bootstrap, topic,
                 reset="earliest", zone="256m", extra=extra)
    sub = None
    key = 'websocket_kafka_messages_total{status="success"}'
    try:
        if subs:
            sub = Subscribers(srv.url("/ws"), subs, "dashflow", 200)
        first = prev_t = None
        prev_n = 0
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            n = srv.metric(key)
            t = (t0 + time.monotonic()) / 2
            if n > 0 and first is None:
                first = (prev_t + t) / 2 if prev_t is not None else t
                if sub and n > INGEST_N * 0.05:
                    log("warning: %d messages in before the subscribers"
                        % n)
            if n >= INGEST_N:
                if prev_t is None or n == prev_n:
                    return t - first
                last = prev_t + (t - prev_t) * (INGEST_N - prev_n) \
                    / (n - prev_n)
                return max(last, first) - first
            prev_t, prev_n = t, n
            time.sleep(0.05)
        raise TimeoutError("module ingested %d of %d" % (n, INGEST_N))
    finally:
        if sub:
            sub.close()
        srv.stop()


def section_metrics(rep, ctx):
    cluster = ctx["cluster"]
    topic = cluster.create_topic("bench.m256.%s" % uuid.uuid4().hex[:6],
                                 256)
    srv = Server(ctx["workdir"], cluster.bootstrap, topic)
    sub = prod = None
    rows = []
    try:
        srv.wait_assigned(topic, 256, timeout=120)
        sub = Subscribers(srv.url("/ws"), 100, "dashflow", 200)
        argv = [os.path.join(BIN, "producer"), "-b", cluster.bootstrap,
                "-t", topic, "-S", 256, "-r", 1000, "-s", 200, "-d", 0]
        prod = Tool(argv, tag="producer")
        # the consumer starts fetching 256 partitions over a few seconds
        # and then catches up: scrape in the steady state that follows
        settle(sub)
        net.wait_for(lambda: srv.get("/metrics")[1].count(
            b"websocket_kafka_consumer_lag{") >= 256, 30, 0.2,
            "lag series of 256 partitions")
        groups = {"nginx": srv.pids, "client": lambda: [sub.tool.proc.pid],
                  "producer": lambda: [prod.proc.pid],
                  "broker": lambda: [ctx["broker_pid"]]}
        for i in range(REPEAT):
            lat, size = [], 0
            meter = CpuMeter(groups)
            for _ in range(SCRAPES):
                t0 = time.perf_counter()
                status, body = srv.get("/metrics")
                lat.append((time.perf_counter() - t0) * 1000)
                size = len(body)
                time.sleep(0.02)
            cpu = meter.stop()
            lat.sort()
            rows.append([i + 1, SCRAPES, size, pct(lat, 0.5),
                         pct(lat, 0.99), lat[-1],
                         body.count(b"\nwebsocket_kafka_consumer_lag{"),
                         cpu["nginx"], cpu["machine"], cpu["other"]])
        w = sub.measure(WINDOW)
    finally:
        stop_load(prod, sub, srv)
    med = ["median", SCRAPES, rows[0][2], median([r[3] for r in rows]),
           median([r[4] for r in rows]), median([r[5] for r in rows]),
           rows[0][6], median([r[7] for r in rows]),
           median([r[8] for r in rows]), median([r[9] for r in rows])]
    ctx["metrics"] = med
    rep.table("Metrics scrape latency, 256 assigned partitions, under "
              "fan-out load (100 subscribers, 1,000 msg/s)",
              ["run", "scrapes", "bytes", "p50 ms", "p99 ms", "max ms",
               "lag series", "nginx CPU %", "machine CPU %",
               "other CPU %"], rows + [med],
              "Sequential keep-alive GET /metrics every 20 ms (Python "
              "http.client, time to the last byte); meanwhile the "
              "subscribers received %.0f msg/s, p99 %.1f ms. Producer: `%s`."
              % (w["rate"], w["p99_ms"], cmdline(argv)))


def stop_load(prod, sub, srv):
    """Stops a section's publisher, subscribers and server, those started."""
    if prod:
        prod.signal()
        prod.close()
    if sub:
        sub.close()
    if srv:
        srv.stop()


def settle(sub, p50_ms=100, timeout=60):
    """Short windows until the subscribers' median latency is below
    p50_ms (a consumer catching up after its start is past)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w = sub.measure(2)
        if w["msgs"] and w["p50_ms"] < p50_ms:
            return True
    log("warning: latency did not settle below %d ms" % p50_ms)
    return False


def pct(sorted_xs, q):
    return sorted_xs[min(len(sorted_xs) - 1, int(q * len(sorted_xs)))]


def section_slowlag(rep, ctx):
    mock = os.path.join(BIN, "mock_cluster")
    fetch = "dashstream_kafka_property fetch.wait.max.ms 10;"
    extra = "dashstream_lag_interval 1s;\ndashstream_lag_timeout 900ms;"
    fetch_ok = module_supports(fetch)
    if fetch_ok:
        extra += "\n" + fetch
    rows, cmds = [], []
    for slow in (0, 3000):
        argv = [mock, "-t", "bench", "-p", 1]
        if slow:
            argv += ["-s", slow, "-w"]
        cmds.append(cmdline(argv))
        for i in range(REPEAT):
            log("slow lag poller: %s, run %d"
                % ("slowed %d ms" % slow if slow else "normal", i + 1))
            rows.append(slowlag_run(ctx, argv, slow, extra))
    ctx["slowlag"] = rows

    def agg(slow):
        rs = [r for r in rows if r[0] == slow]
        return [slow, median([r[1] for r in rs]), median([r[2] for r in rs]),
                median([r[3] for r in rs]), median([r[4] for r in rs]),
                median([r[5] for r in rs]), median([r[6] for r in rs]),
                median([r[7] for r in rs])]
    table = [agg(0), agg(3000)]
    ctx["slowlag_summary"] = table
    rep.table(
        "Delivery latency with the lag poller's broker slowed (issue 4), "
        "librdkafka mock cluster, 100 subscribers, 1,000 msg/s of 200 B "
        "(median of %d runs)" % REPEAT,
        ["ListOffsets/OffsetFetch delay ms", "delivered/s", "p50 ms",
         "p99 ms", "p99.9 ms", "lag polls", "poll failures",
         "mean poll s"], table,
        "Mock: `%s` (normal) and `%s` (slowed once the consumer runs: "
        "SIGUSR1). nginx: `dashstream_lag_interval 1s; "
        "dashstream_lag_timeout 900ms;`%s. Lag polls, failures and mean "
        "poll duration are the module's own metrics over the measured "
        "windows." % (cmds[0], cmds[1],
                      " and `%s`" % fetch if fetch_ok else
                      " (this build has no dashstream_kafka_property, so "
                      "the mock's 500 ms empty-fetch wait shows in both "
                      "rows)"))


def slowlag_run(ctx, argv, slow, extra):
    mock = Tool(argv, tag="mock")
    srv = sub = prod = None
    try:
        brokers = mock.line(30)
        srv = Server(ctx["workdir"], brokers, "bench", extra=extra)
        srv.wait_assigned("bench")
        pargv = [os.path.join(BIN, "producer"), "-b", brokers, "-t",
                 "bench", "-r", 1000, "-s", 200, "-d", 0]
        prod = Tool(pargv, tag="producer")
        net.wait_for(lambda: srv.metric(
            'websocket_kafka_messages_total{status="success"}') > 0, 60,
            0.1, "the consumer running")
        if slow:
            mock.signal(signal.SIGUSR1)
        sub = Subscribers(srv.url("/ws"), 100, "dashflow", 200)
        time.sleep(WARMUP)
        m0 = srv.metrics()
        w = sub.measure(WINDOW * 2)
        m1 = srv.metrics()
        polls = m1["websocket_kafka_lag_poll_duration_seconds_count"] - \
            m0["websocket_kafka_lag_poll_duration_seconds_count"]
        fails = m1["websocket_kafka_lag_poll_failures_total"] - \
            m0["websocket_kafka_lag_poll_failures_total"]
        dur = m1["websocket_kafka_lag_poll_duration_seconds_sum"] - \
            m0["websocket_kafka_lag_poll_duration_seconds_sum"]
        return [slow, w["rate"], w["p50_ms"], w["p99_ms"], w["p999_ms"],
                polls, fails, dur / polls if polls else None]
    finally:
        stop_load(prod, sub, srv)
        mock.signal(signal.SIGTERM)
        mock.wait(15)
        mock.close()


# ---------------------------------------------------------------- issues

def issue_points(rep, ctx):
    """The figures issues 3 and 4 ask bench/ to print, in one place."""
    rows = []
    for res in ctx.get("fanout", []):
        if res["subs"] == 100 and res["rate"] == 1000:
            s = summarize(res)
            rows.append(["delivery latency, 1,000 msg/s of %d B to 100 "
                         "subscribers, %s" % (res["size"], res["system"]),
                         "p50 %.1f ms, p99 %.1f ms" % (s["p50"], s["p99"])])
    for row in ctx.get("idle", []):
        rows.append(["nginx CPU, idle 10 s, 100 subscribers, %s" % row[0],
                     "%.2f s (%.2f %%; runs %s s)" % (row[3], row[5],
                                                      row[4])])
    table = ctx.get("slowlag_summary")
    if table:
        for r in table:
            rows.append(["delivery latency, lag poller's broker %s (mock "
                         "cluster)" % ("slowed %d ms" % r[0] if r[0]
                                       else "normal"),
                         "p50 %.1f ms, p99 %.1f ms (%d of %d polls "
                         "failed)" % (r[2], r[3], r[6] or 0, r[5] or 0)])
    if rows:
        rep.table("Issue 3 and issue 4 figures", ["what", "measured"], rows)


# ---------------------------------------------------------------- targets

def targets(rep, ctx):
    rows = []
    for subs, size, rate, dr, pr, _ in ctx.get("fanout_ratios", []):
        ok = dr is not None and dr >= 2 and pr is not None and pr <= 1
        rows.append(["fan-out %d subs, %d B, %d/s" % (subs, size, rate),
                     ">= 2x nchan delivered, p99 <= nchan",
                     "%sx delivered, p99 %sx" % (fmt(dr), fmt(pr)),
                     "met" if ok else "missed"])
    for row in ctx.get("ingest", [])[1:]:
        if row[0].startswith("module"):
            rows.append(["ingest, " + row[0][8:], ">= 0.8x plain consumer",
                         "%.2fx" % row[3],
                         "met" if row[3] >= 0.8 else
                         "missed by %.0f %%" % ((0.8 - row[3]) / 0.8 * 100)])
    for res in ctx.get("fanout", []):
        if res["system"] == "dashstream" and res["size"] == SIZES[0]:
            kb = res["rss_per_sub_kb"]
            rows.append(["RSS per idle subscriber, %d subs" % res["subs"],
                         "<= 8 KiB", "%.1f KiB" % kb,
                         "met" if kb <= 8 else
                         "missed by %.1f KiB" % (kb - 8)])
    if ctx.get("metrics"):
        p99 = ctx["metrics"][4]
        rows.append(["metrics p99, 256 partitions, under load", "< 10 ms",
                     "%.2f ms" % p99, "met" if p99 < 10 else
                     "missed by %.1f ms" % (p99 - 10)])
    ctx["targets"] = rows
    if rows:
        rep.table("Targets (issue 8; reported, not asserted)",
                  ["what", "target", "measured", "verdict"], rows)


# ---------------------------------------------------------------- main

def machine():
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f
                      if ln.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    ver = subprocess.run([NGINX, "-v"], stderr=subprocess.PIPE,
                         text=True).stderr.strip()
    rdk = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                          "librdkafka1"], stdout=subprocess.PIPE,
                         text=True).stdout
    nch = subprocess.run(["dpkg-query", "-W", "-f", "${Version}",
                          "libnginx-mod-nchan"], stdout=subprocess.PIPE,
                         text=True).stdout
    return ("%d x %s, %d GiB RAM, Linux %s; %s; librdkafka %s; nchan %s; "
            "Apache Kafka %s (single KRaft node, JVM)"
            % (os.cpu_count(), model, mem, os.uname().release, ver, rdk,
               nch, kafka.KAFKA_VERSION))


def perf_works():
    try:
        r = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o",
                            "/dev/null", "--", "true"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
        return r.returncode == 0
    except OSError:
        return False


def main():
    for tool in ("loadclient", "producer", "plain_consumer", "ring_bench",
                 "mock_cluster"):
        if not os.access(os.path.join(BIN, tool), os.X_OK):
            sys.exit("bench: %s/%s missing (make bench builds it)"
                     % (BIN, tool))
    if not os.path.isfile(MODULE):
        sys.exit("bench: module %s missing (make module)" % MODULE)
    if not os.path.isfile(NCHAN):
        sys.exit("bench: %s missing (tools/install-deps.sh bench)" % NCHAN)

    procs.reap_stale()
    started = time.monotonic()
    rep = Report()
    ctx = {"workdir": tempfile.mkdtemp(prefix="dashstream-bench-"),
           "perf": PROFILE and perf_works()}
    os.chmod(ctx["workdir"], 0o755)
    broker = None
    errors = []
    log("machine: " + machine())
    try:
        if set(SECTIONS) - {"ring"}:
            log("starting a Kafka %s broker" % kafka.KAFKA_VERSION)
            broker = kafka.KafkaBroker(
                workdir=os.path.join(ctx["workdir"], "kafka"), heap="1g")
            os.makedirs(broker.workdir, exist_ok=True)
            broker.start()
            ctx["cluster"] = broker.cluster()
            ctx["broker_pid"] = broker.proc.pid
        for name in SECTIONS:
            fn = globals().get("section_" + name)
            if fn is None:
                sys.exit("bench: unknown section %s" % name)
            try:
                fn(rep, ctx)
            except Exception as e:          # one section must not end all
                traceback.print_exc()
                errors.append("%s: %s" % (name, e))
                rep.text("### %s\n\nFAILED: `%s`\n" % (name, e))
        issue_points(rep, ctx)
        targets(rep, ctx)
    finally:
        if broker:
            broker.stop()
        shutil.rmtree(ctx["workdir"], ignore_errors=True)
    elapsed = time.monotonic() - started
    log("done in %.0f s" % elapsed)
    run = {"parts": rep.parts, "machine": machine(), "elapsed": elapsed,
           "quick": QUICK, "repeat": REPEAT, "window": WINDOW,
           "warmup": WARMUP, "errors": errors,
           "date": time.strftime("%Y-%m-%d %H:%M")}
    with open(os.path.join(BIN, "last-run.json"), "w") as f:
        json.dump(run, f)
    if OUT != "-":
        import perfdoc
        perfdoc.write(OUT, run)
        log("wrote %s" % rel(OUT))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
