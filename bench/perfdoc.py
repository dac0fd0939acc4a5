"""docs/performance.md from one `make bench` run (bench/run.py).

The tables are the run's; the prose around them says how they were made,
what limits them on this machine, and what the profiles showed.
"""

import datetime
import os

HEAD = """\
# Performance

Written by `make bench` ({mode}) on {date}, {elapsed:.0f} s; regenerate
with the same command.  Every table below is from that one run; the
findings at the end also quote experiments made while building the
benchmark, marked as such.

Machine: {machine}.

## How to run

```sh
make bench                  # installs what it needs (tools/install-deps.sh bench),
                            # builds the module and bench/, runs everything
make bench BENCH_QUICK=1    # a short run (~3 min): fewer cells, 1 window each
BENCH_SECTIONS=fanout,idle make bench     # some sections only
BENCH_MODULE=/path/to/other.so make bench # another build of the module
```

`make bench` is not part of `make test`; `make test` builds the bench tools
and runs the load client for a few seconds against a test nginx
(t/test_bench_tools.py).

The tools (bench/):

| file | what |
| --- | --- |
| `loadclient.c` | websocket load client: N subscribers on epoll (non-blocking, one thread by default), DashFlow, raw or nchan mode; verifies every counted message (payload bytes, per-stream sequence, cursor/binary pairing, cursor partition and offset order) and records latency from the DashStream `Header.timestamp_us` |
| `producer.c` | publisher at a fixed rate and size: Kafka (librdkafka, `linger.ms=1`) or keep-alive pipelined HTTP POSTs (nchan's publisher location) |
| `bench_payload.c` | the messages: valid DashStream values (`0x00` + `DashStreamMessage{{Event}}`) of an exact size carrying the producer clock, a per-stream sequence and pad bytes derived from it |
| `plain_consumer.c` | the ingest baseline: librdkafka consumer with the module's consumer settings, values thrown away |
| `ring_bench.c` | ring micro-benchmark (appends/s, with a reader in another thread) |
| `run.py`, `perfdoc.py` | the run and this page |
| `ingest_trace.py` | the module's per-partition positions through one ingest (finding 3d) |
| `tools/demo/mock_cluster.c -s MS -w` | librdkafka mock cluster whose ListOffsets/OffsetFetch answers are delayed (issue 4) |

## Method and what limits it here

- **Two cores for everything.** The Kafka broker (a JVM), the publisher, the
  load client and nginx (2 workers) share {cpus} cores, so absolute figures
  are lower than on a server and move between runs.  Each comparison is
  made within one run, cell by cell, on the same nginx binary
  (`{nginx}`), the same configuration (both modules loaded in one
  `nginx.conf`, below), 2 workers, the same subscriber count, message size
  and rate; ratios are what to read.  Each measurement is repeated
  {repeat} times and the median shown.
- **The machine is shared.**  Other sessions run their own tests (JVMs,
  nginx, sanitizer builds) on the same two cores.  The fan-out table shows
  per window the CPU of everything: nginx, broker, client, publisher,
  kernel network softirq (loopback TCP, charged to no process) and
  *other*, the rest; a window with *other* above 30 % of a core is measured
  again (twice at most) and left out of the medians.
- **Fan-out.** Per cell and system: a fresh nginx; N subscribers connect
  (DashFlow with `{{"type":"resume","from":"latest"}}` for dashstream, nchan's
  websocket subscriber for nchan); RSS of master + workers is read before
  and after; then the publisher starts, {warmup} s warm-up, then {repeat}
  windows of {window} s.  dashstream is fed through the real Kafka broker,
  nchan by HTTP POSTs to its `nchan_publisher` location; the messages are
  the same bytes.  Latency = wall clock when the load client parses the
  frame − `Header.timestamp_us` written by the publisher when it built the
  message (same machine, same clock): it includes Kafka (produce, broker,
  fetch) for dashstream and the HTTP publish for nchan.  A subscriber
  whose queue passes `dashstream_send_budget 256k` (not the 4m default:
  10,000 saturated subscribers × 4 MiB would not fit in memory) loses
  messages (counted as *lost*, with a gap notice); nchan has no such bound
  and queues.
- **CPU** is utime+stime from `/proc/PID/stat` of master and workers (all
  threads, so the Kafka consumer and lag poller threads in worker 0
  count), over the window, in % of one core.  For dashstream the broker's
  CPU is shown separately: it is the price of Kafka, which nchan does not
  have.  **RSS per subscriber** is the growth of master+worker RSS with N
  idle subscribers connected, divided by N (kernel socket buffers are not
  in RSS).
- **Latency floor of dashstream at low rates**: see the findings below
  (`rd_kafka_consume_batch_queue()` waits up to 100 ms to fill a batch).

nginx configuration of the fan-out, idle and metrics sections (ports,
topic, group and paths filled in per run):

```nginx
{conf}```
"""


def write(path, run_):
    """run_: what bench/run.py keeps of a run (also in last-run.json)."""
    import run
    conf = run.NGINX_CONF.format(
        module=run.MODULE.replace(run.REPO + "/", ""), nchan=run.NCHAN,
        cores="PREFIX/cores",
        workers=2, brokers="127.0.0.1:PORT", topic="bench.fanout.<id>",
        group="bench-<id>", reset="latest", zone="64m", extra="")
    conf = conf.replace("{{prefix}}", "PREFIX").replace("{{port}}", "PORT")
    text = HEAD.format(
        mode="BENCH_QUICK=1" if run_["quick"] else "full run",
        date=run_.get("date") or datetime.datetime.now().strftime(
            "%Y-%m-%d %H:%M"),
        elapsed=run_["elapsed"], machine=run_["machine"],
        cpus=os.cpu_count(), nginx=run.NGINX, repeat=run_["repeat"],
        warmup=run_.get("warmup", run.WARMUP), window=run_["window"],
        conf=conf)
    text += "\n## Results\n\n" + "\n".join(run_["parts"])
    text += findings()
    if run_["errors"]:
        text += "\n## Sections that failed in this run\n\n" + "".join(
            "- %s\n" % e for e in run_["errors"])
    with open(path, "w") as f:
        f.write(text)


def findings():
    """What the profiles and experiments showed: bench/findings.md."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "findings.md")) as f:
            return "\n" + f.read()
    except OSError:
        return ""


if __name__ == "__main__":
    # docs/performance.md again from the last run, e.g. after editing
    # bench/findings.md:  python3 bench/perfdoc.py [build/bench/last-run.json]
    import json
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "..", "build", "bench", "last-run.json")
    with open(src) as f:
        last = json.load(f)
    last.setdefault("date", datetime.datetime.fromtimestamp(
        os.path.getmtime(src)).strftime("%Y-%m-%d %H:%M"))
    write(os.path.join(here, "..", "docs", "performance.md"), last)
