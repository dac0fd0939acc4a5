"""docker/ (issue 9): no Docker engine runs here, so every part the images
and the compose stack are made of is exercised without one: the compose file
validates (Debian's docker-compose, offline), every file the Dockerfiles
copy exists and is in the build context, the build stage runs the `make`
CI runs, the runtime libraries are those `ldd` of the built module needs,
the entrypoint renders the template into a config that `nginx -t` accepts
with the module (and rejects bad variables by name), the rendered config
serves a real broker's stream through the front proxy's config with two
replicas, the healthcheck judges it, the topic script creates its topics on
the real broker, the generator image's protoc rule works, and the upstream
variant's --with-compat build of nginx.org's source loads into Debian's
nginx of the same version."""

import glob
import http.client
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import uuid

import pytest
import yaml

from lib import dashstream as ds
from lib import net, prom
from lib import ws as wslib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER = os.path.join(REPO, "docker")
COMPOSE = os.path.join(DOCKER, "compose.yml")
DOCKERFILES = ("Dockerfile", "Dockerfile.upstream", "Dockerfile.generator")
ENTRYPOINT = os.path.join(DOCKER, "docker-entrypoint.sh")
ENVSH = os.path.join(DOCKER, "entrypoint.d", "15-dashstream.envsh")
HEALTHCHECK = os.path.join(DOCKER, "healthcheck.sh")
IMAGE_MODULE = "/usr/lib/nginx/modules/ngx_http_dashstream_module.so"
IMAGE_WEB = "/usr/share/ngx-dashstream/web"

# directives the environment does not set, and why (docs/deploy.md)
NOT_BY_ENV = {
    "dashstream_zone": "DASHSTREAM_ZONE_SIZE sizes the image's one zone",
    "dashstream_brokers": "DASHSTREAM_BROKERS, in the template itself",
    "dashstream_kafka_property": "DASHSTREAM_KAFKA_PROPERTY_<ANY>",
    "dashstream_sasl_password": "secrets from files only",
    "dashstream_websocket": "a location of the template",
    "dashstream_metrics": "a location of the template",
    "dashstream_status": "a location of the template",
    "dashstream_tenant_scope": "needs your auth: your own template",
}


def read(path):
    with open(path) as f:
        return f.read()


def plain_env():
    """The environment without what an outer `make X=...` passes down (its
    flags, and X itself for the Makefile's `X ?=` defaults): a docker build
    has none of it."""
    drop = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    drop.update(re.findall(r"^(\w+)\s*\?=", read(os.path.join(REPO,
                                                              "Makefile")),
                           re.M))
    return {k: v for k, v in os.environ.items() if k not in drop}


# --- Dockerfiles -------------------------------------------------------------

def instructions(path):
    """[(INSTRUCTION, argument text)]: continuations joined, comments out."""
    out, cur = [], ""
    for line in read(path).splitlines():
        s = line.strip()
        if s.startswith("#") or (not s and not cur):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    assert not cur, "%s ends inside a continuation" % path
    return out


def stages(name):
    """[{name, base, steps}] of docker/NAME, ARG defaults put into FROM."""
    args, result = {}, []
    for word, rest in instructions(os.path.join(DOCKER, name)):
        if word == "ARG" and not result:
            k, _, v = rest.partition("=")
            args[k] = v
        elif word == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)],
                          parts[0])
            alias = parts[2] if len(parts) == 3 and \
                parts[1].upper() == "AS" else str(len(result))
            result.append({"name": alias, "base": base, "steps": []})
        else:
            assert result, "%s: %s before FROM" % (name, word)
            result[-1]["steps"].append((word, rest))
    return result


def copy_parts(rest):
    """(flags, sources, dest) of a COPY or ADD argument text."""
    flags = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        k, _, v = flag[2:].partition("=")
        flags[k] = v
        rest = rest.strip()
    items = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    assert len(items) >= 2, rest
    return flags, items[:-1], items[-1]


def runs(stage):
    return [rest for word, rest in stage["steps"] if word == "RUN"]


def dockerignore():
    pats = []
    for line in read(os.path.join(REPO, ".dockerignore")).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "exceptions are not handled"
            rx = re.escape(line.strip("/")).replace(r"\*\*/", "(.*/)?") \
                .replace(r"\*\*", ".*").replace(r"\*", "[^/]*") \
                .replace(r"\?", "[^/]")
            pats.append(re.compile(rx + "$"))
    return pats


def ignored(rel, pats):
    """Docker leaves out a path when it or a parent matches."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        if any(p.match("/".join(parts[:i])) for p in pats):
            return True
    return False


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_exist(name):
    """Every COPY/ADD source is in the repository and in the build context
    (.dockerignore); every --from names an earlier stage that makes it."""
    pats = dockerignore()
    seen = []
    copies = 0
    for st in stages(name):
        assert ":" in st["base"] and not st["base"].endswith(":latest"), \
            "%s: base image %s is not pinned by tag" % (name, st["base"])
        workdir = "/"
        for word, rest in st["steps"]:
            if word == "WORKDIR":
                workdir = rest
            if word not in ("COPY", "ADD"):
                continue
            copies += 1
            flags, sources, dest = copy_parts(rest)
            if "from" in flags:
                src_stage = [s for s in seen if s["name"] == flags["from"]]
                assert src_stage, "%s: COPY --from=%s: no such earlier stage" \
                    % (name, flags["from"])
                made = " ".join(runs(src_stage[0]))
                for src in sources:
                    rel = os.path.relpath(src, src_stage[0]["workdir"])
                    assert src in made or src.rstrip("/") in made or \
                        rel in made, "%s: stage %s does not make %s" \
                        % (name, flags["from"], src)
                continue
            assert word == "COPY", "%s: ADD where COPY does" % name
            for src in sources:
                hits = glob.glob(os.path.join(REPO, src))
                assert hits, "%s copies %s: not in the repository" \
                    % (name, src)
                for hit in hits:
                    rel = os.path.relpath(hit, REPO)
                    assert not ignored(rel, pats), \
                        "%s copies %s but .dockerignore leaves it out" \
                        % (name, rel)
        st["workdir"] = workdir
        seen.append(st)
    assert copies >= 3


def test_compose_builds_only_these_dockerfiles():
    cfg = compose_config()
    built = {(s["build"]["context"], s["build"]["dockerfile"])
             for s in cfg["services"].values() if "build" in s}
    assert built == {(REPO, "docker/Dockerfile"),
                     (REPO, "docker/Dockerfile.generator")}
    # the image's ARG default and the generator's agree on Debian
    assert stages("Dockerfile")[-1]["base"] == \
        stages("Dockerfile.generator")[-1]["base"] == "debian:bookworm-slim"


def test_build_stage_runs_the_make_ci_runs():
    """The build stage installs with tools/install-deps.sh build and builds
    with plain `make`: the default goal is the module, which `make test`
    (.ci/run) builds through `integration`; `make` prints the .so path,
    which the stage installs for the runtime stage."""
    build = stages("Dockerfile")[0]
    cmds = runs(build)
    assert any(re.match(r"tools/install-deps\.sh build( |$)", c)
               for c in cmds), cmds
    make = [c for c in cmds if re.match(r"make( |$)", c)]
    assert len(make) == 1, cmds
    assert make[0].startswith("make > /tmp/make.out &&")
    assert '"$(tail -n 1 /tmp/make.out)"' in make[0]

    assert "make test" in read(os.path.join(REPO, ".ci", "run"))
    mk = read(os.path.join(REPO, "Makefile"))
    first = re.search(r"^([A-Za-z][\w-]*):(.*)$", mk, re.M)
    assert first.group(1) == "all" and first.group(2).split() == ["module"]
    assert "module" in re.search(r"^integration:(.*)$", mk, re.M) \
        .group(1).split()
    assert re.search(r"^test:.*\n(\t.*\n)*\t.*\$\(MAKE\).* integration$",
                     mk, re.M)

    # here: `make` prints the module path last
    r = subprocess.run(["make", "--no-print-directory"], cwd=REPO,
                       env=plain_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=900)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    last = r.stdout.decode().strip().splitlines()[-1]
    assert last.endswith("/nginx/objs/ngx_http_dashstream_module.so")
    assert os.path.isfile(last), last


def runtime_packages(so):
    r = subprocess.run(["sh", os.path.join(DOCKER, "runtime-packages.sh"),
                        so], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().split()


def apt_installs(stage):
    pkgs = []
    for c in runs(stage):
        for m in re.finditer(r"apt-get install ((?:-\S+ )*)([^&]+)", c):
            pkgs += m.group(2).split()
    return pkgs


def depends_closure(pkgs):
    """The packages pkgs pull in, by their Depends/Pre-Depends here."""
    queue, seen = list(pkgs), set()
    while queue:
        p = queue.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f",
                            "${Depends}, ${Pre-Depends}", p],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=30)
        for alt in r.stdout.decode().split(","):
            names = [re.split(r"[\s(:]", a.strip())[0]
                     for a in alt.split("|") if a.strip()]
            queue += [n for n in names[:1] if n]
    return seen


def test_runtime_libraries_match_ldd(module):
    """The runtime stage installs exactly the packages of the libraries
    the module links (as docker/runtime-packages.sh finds them, which
    Dockerfile.upstream uses), and with their dependencies every library
    ldd resolves is provided."""
    runtime = stages("Dockerfile")[-1]
    installed = apt_installs(runtime)
    assert {"nginx", "gettext-base"} <= set(installed), installed
    libs = sorted(set(installed) - {"nginx", "gettext-base"})
    assert libs == runtime_packages(module)
    assert libs == ["libprotobuf-c1", "librdkafka1", "libssl3", "libzstd1"]

    closure = depends_closure(installed)
    out = subprocess.run(["ldd", module], stdout=subprocess.PIPE,
                         timeout=30, check=True).stdout.decode()
    paths = re.findall(r"=> (/\S+)", out)
    assert len(paths) >= 5, out
    for path in paths:
        r = subprocess.run(["dpkg-query", "-S", os.path.realpath(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            r = subprocess.run(["dpkg-query", "-S", path],
                               stdout=subprocess.PIPE, timeout=30)
        pkg = r.stdout.decode().split(":")[0]
        assert pkg, "no package has %s" % path
        assert pkg == "libc6" or pkg in closure, \
            "%s (%s) is not installed by the runtime stage" % (path, pkg)


def load_check(name):
    """The RUN of the runtime stage that loads the module with nginx -t."""
    cmds = [c for c in runs(stages(name)[-1]) if "nginx -t" in c]
    assert len(cmds) == 1, cmds
    return cmds[0]


def test_runtime_stage_load_check(module, tmp_path):
    """The runtime stage's own check loads the built module, and fails the
    build for a file that is not a module of this nginx."""
    cmd = load_check("Dockerfile")
    assert IMAGE_MODULE in cmd
    ok = subprocess.run(["sh", "-c", cmd.replace(IMAGE_MODULE, module)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        timeout=60)
    assert ok.returncode == 0, ok.stdout.decode()
    bad = tmp_path / "bad.so"
    shutil.copy("/lib/x86_64-linux-gnu/libz.so.1", bad)
    r = subprocess.run(["sh", "-c", cmd.replace(IMAGE_MODULE, str(bad))],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert r.returncode != 0
    assert "ngx_modules" in r.stdout.decode()


# --- docker-compose ----------------------------------------------------------

def compose_config():
    """`docker-compose config` of docker/compose.yml: offline, no daemon,
    an environment without any DASHSTREAM_/DOCKER_ variable."""
    home = os.environ.get("HOME", "/tmp")
    r = subprocess.run(["docker-compose", "-f", COMPOSE, "config"],
                       env={"PATH": os.environ["PATH"], "HOME": home},
                       cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert b"WARN" not in r.stderr, r.stderr.decode()
    return yaml.safe_load(r.stdout)


def mounts(svc):
    """{container path: host path or volume name}."""
    out = {}
    for v in svc.get("volumes", []):
        parts = v.split(":") if isinstance(v, str) else \
            [v["source"], v["target"]]
        out[parts[1]] = parts[0]
    return out


def env_of(svc):
    e = svc.get("environment", {})
    if isinstance(e, list):
        e = dict(x.split("=", 1) for x in e)
    return {k: str(v) for k, v in e.items()}


def test_compose_config():
    cfg = compose_config()
    svcs = cfg["services"]
    assert set(svcs) == {"kafka", "kafka-init", "generator",
                         "dashstream-nginx-0", "dashstream-nginx-1",
                         "dashstream", "prometheus", "alertmanager",
                         "grafana"}
    for name, s in svcs.items():
        image = s["image"]
        assert ":" in image and not image.endswith(":latest"), name
        for c, h in mounts(s).items():
            if h.startswith("/"):
                assert os.path.exists(h), "%s mounts missing %s" % (name, h)
    published = {name: s["ports"] for name, s in svcs.items()
                 if s.get("ports")}
    assert set(published) == {"kafka", "dashstream", "prometheus",
                              "alertmanager", "grafana"}
    for ports in published.values():
        assert all(str(p).startswith("127.0.0.1:") for p in ports), ports

    # Kafka 4 in KRaft mode, one node, no auto-created topics
    k = svcs["kafka"]
    ke = env_of(k)
    assert k["image"].startswith("apache/kafka:4.")
    assert set(ke["KAFKA_PROCESS_ROLES"].split(",")) == {"broker",
                                                         "controller"}
    assert ke["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert ke["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert not [v for v in ke if "ZOOKEEPER" in v]
    assert svcs["kafka-init"]["depends_on"] == \
        {"kafka": {"condition": "service_healthy"}}
    assert k["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "kafka-broker-api-versions.sh --bootstrap-server localhost:9092" \
        in k["healthcheck"]["test"][1]

    # the topics, then everyone who needs them
    init = svcs["kafka-init"]
    assert mounts(init)[init["entrypoint"][-1]] == \
        os.path.join(DOCKER, "kafka-init-topics.sh")
    ie = env_of(init)
    assert ie["DLQ_TOPIC"] == ie["TOPIC"] + "-dlq"
    for name in ("generator", "dashstream-nginx-0", "dashstream-nginx-1"):
        assert svcs[name]["depends_on"]["kafka-init"]["condition"] == \
            "service_completed_successfully"

    # two identical replicas in broadcast mode behind the one front proxy
    r0, r1 = svcs["dashstream-nginx-0"], svcs["dashstream-nginx-1"]
    assert env_of(r0) == env_of(r1)
    e = env_of(r0)
    assert e["DASHSTREAM_MODE"] == "broadcast"
    assert e["DASHSTREAM_TOPIC"] == ie["TOPIC"]
    assert e["DASHSTREAM_BROKERS"] == ie["BOOTSTRAP"] == "kafka:9092"
    for r in (r0, r1):
        assert r["networks"]["default"]["aliases"] == ["dashstream-nginx"]
        assert r["image"] == svcs["dashstream"]["image"]
    lb = svcs["dashstream"]
    assert mounts(lb)["/etc/nginx/lb/nginx.conf"] == \
        os.path.join(DOCKER, "lb", "nginx.conf")
    assert lb["entrypoint"][:1] == ["nginx"] and \
        "/etc/nginx/lb/nginx.conf" in lb["entrypoint"]
    lbconf = read(os.path.join(DOCKER, "lb", "nginx.conf"))
    assert "set $replicas dashstream-nginx;" in lbconf
    assert "$replicas:%s;" % e["DASHSTREAM_PORT"] in lbconf
    assert lb["ports"][0].endswith(":8080/tcp")

    # the generator, pointed at that broker and topic
    gen = svcs["generator"]["command"]
    assert gen[gen.index("--brokers") + 1] == "kafka:9092"
    assert gen[gen.index("--topic") + 1] == ie["TOPIC"]
    sys.path.insert(0, os.path.join(REPO, "tools", "demo"))
    try:
        import generator
    finally:
        sys.path.pop(0)
    a = generator.parse_args(["--gen", "/opt/dashstream/gen"] + gen)
    assert a.rate == 20 and a.topic == ie["TOPIC"]


def test_compose_monitoring_uses_the_project_files():
    """Prometheus runs monitoring/prometheus.yml and alert_rules.yml as they
    are, and their targets are services of the stack; Grafana gets the
    provisioning and the dashboard where the provisioning says."""
    svcs = compose_config()["services"]
    prom_m = mounts(svcs["prometheus"])
    conf = os.path.join(REPO, "monitoring", "prometheus.yml")
    assert prom_m["/etc/prometheus/prometheus.yml"] == conf
    pconf = yaml.safe_load(read(conf))
    for rf in pconf["rule_files"]:
        target = os.path.join("/etc/prometheus", rf)
        assert prom_m.get(target) == os.path.join(REPO, "monitoring", rf), \
            "rule file %s is not mounted at %s" % (rf, target)
    assert os.path.join(REPO, "monitoring", "alert_rules.yml") in \
        prom_m.values()
    job = [j for j in pconf["scrape_configs"]
           if j["job_name"] == "dashstream"]
    assert len(job) == 1
    targets = [t for sc in job[0]["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == ["dashstream-nginx-0:9145",
                               "dashstream-nginx-1:9145"]
    for t in targets:
        host, port = t.split(":")
        assert env_of(svcs[host])["DASHSTREAM_METRICS_PORT"] == port
        assert job[0].get("metrics_path", "/metrics") == "/metrics"
    for am in pconf.get("alerting", {}).get("alertmanagers", []):
        for sc in am["static_configs"]:
            for t in sc["targets"]:
                assert t.split(":")[0] in svcs

    graf = mounts(svcs["grafana"])
    prov = os.path.join(REPO, "grafana", "provisioning")
    for sub in os.listdir(prov):
        assert graf["/etc/grafana/provisioning/" + sub] == \
            os.path.join(prov, sub)
    for f in glob.glob(os.path.join(prov, "dashboards", "*.y*ml")):
        for p in yaml.safe_load(read(f))["providers"]:
            assert graf[p["options"]["path"]] == \
                os.path.join(REPO, "grafana", "dashboards")
    for f in glob.glob(os.path.join(prov, "datasources", "*.y*ml")):
        for d in yaml.safe_load(read(f))["datasources"]:
            host = re.match(r"https?://([^:/]+)", d["url"]).group(1)
            assert host in svcs, d["url"]
    home = env_of(svcs["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = os.path.dirname(home)
    assert os.path.isfile(os.path.join(graf[mount], os.path.basename(home)))


# --- the template and the entrypoint -----------------------------------------

def module_directives():
    names = set()
    for path in glob.glob(os.path.join(REPO, "src", "*.c")):
        names.update(re.findall(r'ngx_string\("(dashstream_\w+)"\)',
                                read(path)))
    return names


def envsh_table():
    """{directive: kind} of the entrypoint's variable table."""
    text = read(ENVSH)
    table = {}
    for kind in ("single", "files", "lists"):
        m = re.search(r'^dashstream_env_%s="([^"]*)"' % kind, text, re.M)
        for d in m.group(1).split():
            table["dashstream_" + d] = kind
    return table


def test_every_directive_has_a_variable_or_a_reason():
    table = envsh_table()
    have = module_directives()
    assert len(have) >= 40
    assert set(table) | set(NOT_BY_ENV) == have, \
        "directives without a DASHSTREAM_ variable or a reason: %s; " \
        "unknown: %s" % (sorted(have - set(table) - set(NOT_BY_ENV)),
                         sorted(set(table) | set(NOT_BY_ENV) - have))
    assert not set(table) & set(NOT_BY_ENV)
    doc = read(os.path.join(REPO, "docs", "deploy.md"))
    for d in table:
        assert "`DASHSTREAM_%s`" % d[len("dashstream_"):].upper() in doc, d


class Rendered:
    """A prefix with the image's nginx.conf and module snippet, pointed at
    the prefix instead of /etc/nginx and /tmp/nginx, and the entrypoint run
    on it with env: the command is `nginx ... -t`, so the entrypoint renders,
    checks and execs nginx -t."""

    def __init__(self, prefix, module, web=None, workers=2):
        self.prefix = str(prefix)
        self.module = module
        for d in ("conf.d", "modules-enabled", "run", "templates"):
            os.makedirs(os.path.join(self.prefix, d), exist_ok=True)
        os.chmod(self.prefix, 0o755)
        snippet = read(os.path.join(DOCKER, "mod-http-dashstream.conf"))
        assert IMAGE_MODULE in snippet
        with open(os.path.join(self.prefix, "modules-enabled",
                               "50-mod-http-dashstream.conf"), "w") as f:
            f.write(snippet.replace(IMAGE_MODULE, module))
        tpl = read(os.path.join(DOCKER, "templates",
                                "dashstream.conf.template"))
        if web:
            assert IMAGE_WEB in tpl
            tpl = tpl.replace(IMAGE_WEB, web)
        with open(os.path.join(self.prefix, "templates",
                               "dashstream.conf.template"), "w") as f:
            f.write(tpl)
        self.conf = self.nginx_conf(workers)
        self.conf_path = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(self.conf)

    def nginx_conf(self, workers):
        text = read(os.path.join(DOCKER, "nginx.conf"))
        p = self.prefix
        subs = [("/etc/nginx/modules-enabled/", p + "/modules-enabled/"),
                ("/etc/nginx/conf.d/", p + "/conf.d/"),
                ("/tmp/nginx/", p + "/run/"),
                ("error_log stderr notice;", "error_log %s/error.log info;"
                 % p),
                ("access_log /dev/stdout;", "access_log %s/access.log;" % p),
                ("worker_processes auto;", "worker_processes %d;" % workers)]
        for old, new in subs:
            assert old in text, "%r is gone from docker/nginx.conf" % old
            text = text.replace(old, new)
        return "daemon off;\n" + text

    def env(self, **kw):
        e = {"PATH": os.environ["PATH"],
             "NGINX_ENTRYPOINT_QUIET_LOGS": "1",
             "DASHSTREAM_ENTRYPOINT_DIR": os.path.dirname(ENVSH),
             "DASHSTREAM_RUN_DIR": os.path.join(self.prefix, "run"),
             "NGINX_ENVSUBST_TEMPLATE_DIR": os.path.join(self.prefix,
                                                         "templates"),
             "NGINX_ENVSUBST_OUTPUT_DIR": os.path.join(self.prefix, "conf.d"),
             "DASHSTREAM_PORT": "127.0.0.1:%d" % net.free_port(),
             "DASHSTREAM_METRICS_PORT": "127.0.0.1:%d" % net.free_port()}
        e.update({k: v for k, v in kw.items() if v is not None})
        return e

    def run(self, **kw):
        """Run the entrypoint: (returncode, stderr text, rendered text)."""
        out = os.path.join(self.prefix, "conf.d", "dashstream.conf")
        if os.path.exists(out):
            os.unlink(out)
        r = subprocess.run(
            ["sh", ENTRYPOINT, "nginx", "-p", self.prefix + "/", "-c",
             self.conf_path, "-e", os.path.join(self.prefix, "error.log"),
             "-t"], env=self.env(**kw), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=60)
        text = read(out) if os.path.exists(out) else ""
        return r.returncode, r.stdout.decode(errors="replace"), text


@pytest.fixture
def rendered(tmp_path, module):
    return Rendered(tmp_path / "prefix", module)


def test_template_renders_to_a_config_nginx_accepts(rendered):
    rc, out, text = rendered.run(
        DASHSTREAM_BROKERS="kafka-0:9092,kafka-1:9092")
    assert rc == 0, out
    assert "test is successful" in out
    assert "dashstream_brokers kafka-0:9092,kafka-1:9092;" in text
    assert "dashstream_zone dashstream 64m;" in text
    assert "# no DASHSTREAM_* settings: module defaults" in text
    # nginx's own variables survive; no DASHSTREAM_ reference is left
    assert "try_files $uri /index.html;" in text
    assert "${" not in text and "DASHSTREAM_" not in text.replace(
        "DASHSTREAM_* ", "")
    assert re.search(r"listen 127\.0\.0\.1:\d+;", text)


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kafka-tls")
    os.chmod(d, 0o755)
    ca, key = str(d / "ca.crt"), str(d / "client.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=test-ca", "-keyout", str(d / "ca.key"), "-out", ca)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=dashstream", "-keyout", key,
            "-out", str(d / "client.crt"))
    pw = d / "sasl-password"
    pw.write_text("s3cret\n")
    return {"ca": ca, "cert": str(d / "client.crt"), "key": key,
            "password": str(pw)}


EVERY = {
    "DASHSTREAM_TOPIC": "telemetry", "DASHSTREAM_GROUP_ID": "ngx-x",
    "DASHSTREAM_MODE": "broadcast", "DASHSTREAM_OFFSET_RESET": "earliest",
    "DASHSTREAM_MAX_MESSAGE_SIZE": "512k",
    "DASHSTREAM_SESSION_TIMEOUT": "10s", "DASHSTREAM_LAG_INTERVAL": "10s",
    "DASHSTREAM_LAG_TIMEOUT": "3s", "DASHSTREAM_STREAM_MAX_SERIES": "32",
    "DASHSTREAM_SEQUENCE_THREADS": "5000",
    "DASHSTREAM_SECURITY_PROTOCOL": "sasl_ssl",
    "DASHSTREAM_SASL_MECHANISM": "PLAIN",
    "DASHSTREAM_SASL_USERNAME": "dashstream",
    "DASHSTREAM_SOCKET_TIMEOUT": "30s", "DASHSTREAM_CONNECT_TIMEOUT": "10s",
    "DASHSTREAM_DLQ_MODE": "fail_closed",
    "DASHSTREAM_DLQ_TOPIC": "telemetry-dead",
    "DASHSTREAM_DLQ_PAYLOAD": "truncated",
    "DASHSTREAM_DLQ_MAX_PAYLOAD": "16k",
    "DASHSTREAM_DLQ_MAX_INFLIGHT": "100", "DASHSTREAM_DLQ_RETRIES": "3",
    "DASHSTREAM_DLQ_BACKOFF": "100ms 5s",
    "DASHSTREAM_DLQ_TIMEOUT": "20s", "DASHSTREAM_PING_INTERVAL": "15s",
    "DASHSTREAM_IDLE_TIMEOUT": "45s", "DASHSTREAM_RESUME_WAIT": "300ms",
    "DASHSTREAM_CLIENT_MAX_MESSAGE": "8k", "DASHSTREAM_SEND_BUDGET": "2m",
    "DASHSTREAM_SLOW_SUBSCRIBER": "close",
    "DASHSTREAM_RESUME_MAX_PARTITIONS": "64",
    "DASHSTREAM_STREAM_METRICS": "quality_score, latency_ms tokens",
    "DASHSTREAM_ALLOWED_ORIGINS": "https://a.example https://b.example",
}


def test_every_variable_renders_and_passes_nginx_t(rendered, tls_files):
    env = dict(EVERY, DASHSTREAM_BROKERS="kafka:9093",
               DASHSTREAM_SASL_PASSWORD_FILE=tls_files["password"],
               DASHSTREAM_SSL_CA=tls_files["ca"],
               DASHSTREAM_SSL_CERTIFICATE=tls_files["cert"],
               DASHSTREAM_SSL_CERTIFICATE_KEY=tls_files["key"],
               DASHSTREAM_KAFKA_PROPERTY_B="fetch.wait.max.ms=100",
               DASHSTREAM_KAFKA_PROPERTY_A="client.rack=zone-a",
               DASHSTREAM_OPS_ALLOW="10.0.0.0/8, 192.168.1.7")
    table = envsh_table()
    for d, kind in table.items():
        assert "DASHSTREAM_" + d[len("dashstream_"):].upper() in env, d
    rc, out, text = rendered.run(**env)
    assert rc == 0, out
    assert "warning" not in out, out
    lines = [l for l in text.splitlines() if re.match(r"dashstream_\w+ \"",
                                                      l)]
    want = []
    for d, kind in table.items():
        var = "DASHSTREAM_" + d[len("dashstream_"):].upper()
        items = re.split(r"[ ,]+", env[var]) if kind == "lists" \
            else [env[var]]
        want.append('%s %s;  # %s' % (d, " ".join('"%s"' % i for i in items),
                                       var))
    want.append('dashstream_kafka_property "client.rack" "zone-a";  '
                '# DASHSTREAM_KAFKA_PROPERTY_A')
    want.append('dashstream_kafka_property "fetch.wait.max.ms" "100";  '
                '# DASHSTREAM_KAFKA_PROPERTY_B')
    assert lines == want
    access = "allow 127.0.0.1; allow ::1; allow 10.0.0.0/8; " \
        "allow 192.168.1.7; deny all;"
    assert text.count(access) == 2
    # the secret stays in its file
    assert "s3cret" not in text


def test_values_are_quoted_for_nginx(rendered, tls_files):
    """A value with quotes, backslashes, ; and $ is one argument: the config
    stays one directive per variable and nginx -t accepts it."""
    odd = 'we"ird\\us;er $x {'
    rc, out, text = rendered.run(
        DASHSTREAM_BROKERS="kafka:9092",
        DASHSTREAM_SECURITY_PROTOCOL="sasl_plaintext",
        DASHSTREAM_SASL_MECHANISM="PLAIN", DASHSTREAM_SASL_USERNAME=odd,
        DASHSTREAM_SASL_PASSWORD_FILE=tls_files["password"])
    assert rc == 0, out
    assert 'dashstream_sasl_username "we\\"ird\\\\us;er $x {";  ' \
        '# DASHSTREAM_SASL_USERNAME' in text


@pytest.mark.parametrize("env,says", [
    ({}, "DASHSTREAM_BROKERS is not set"),
    ({"DASHSTREAM_BROKERS": "kafka:9092; include /etc/passwd"},
     "DASHSTREAM_BROKERS=\"kafka:9092; include /etc/passwd\" is not"),
    ({"DASHSTREAM_SASL_PASSWORD": "hunter2"},
     "DASHSTREAM_SASL_PASSWORD is not read"),
    ({"DASHSTREAM_SASL_PASSWORD_FILE": "/nonexistent/pw"},
     "DASHSTREAM_SASL_PASSWORD_FILE=/nonexistent/pw: no such file"),
    ({"DASHSTREAM_ZONE_SIZE": "huge"}, "DASHSTREAM_ZONE_SIZE=\"huge\""),
    ({"DASHSTREAM_PORT": "http"}, "DASHSTREAM_PORT=\"http\" is not a port"),
    ({"DASHSTREAM_PORT": "70000"}, "port out of range"),
    ({"DASHSTREAM_PORT": "9145", "DASHSTREAM_METRICS_PORT": "9145"},
     "must differ"),
    ({"DASHSTREAM_KAFKA_PROPERTY_X": "novalue"},
     "DASHSTREAM_KAFKA_PROPERTY_X=\"novalue\" is not name=value"),
    ({"DASHSTREAM_OPS_ALLOW": "10.0.0.0/8; allow all"},
     "DASHSTREAM_OPS_ALLOW: \"10.0.0.0/8;\" is not"),
    ({"DASHSTREAM_TOPIC": "a\nb"}, "DASHSTREAM_TOPIC has a line break"),
    # nginx judges the value; the entrypoint shows the line and its variable
    ({"DASHSTREAM_MODE": "sideways"},
     'dashstream_mode "sideways";  # DASHSTREAM_MODE'),
    ({"DASHSTREAM_SECURITY_PROTOCOL": "sasl_ssl"},
     "# DASHSTREAM_SECURITY_PROTOCOL"),
    ({"DASHSTREAM_KAFKA_PROPERTY_Z": "no.such.property=1"},
     "# DASHSTREAM_KAFKA_PROPERTY_Z"),
])
def test_bad_variables_stop_the_start(rendered, env, says):
    env = dict(env)
    if "DASHSTREAM_BROKERS" not in env and env:
        env["DASHSTREAM_BROKERS"] = "kafka:9092"
    rc, out, _ = rendered.run(**env)
    assert rc != 0
    assert says in out, out
    assert "test is successful" not in out


def test_misspelt_variable_is_reported(rendered):
    rc, out, _ = rendered.run(DASHSTREAM_BROKERS="kafka:9092",
                              DASHSTREAM_OFSET_RESET="earliest")
    assert rc == 0, out
    assert "warning: DASHSTREAM_OFSET_RESET is not a setting" in out


def test_template_with_an_unset_variable_is_refused(rendered):
    with open(os.path.join(rendered.prefix, "templates",
                           "extra.conf.template"), "w") as f:
        f.write("# ${DASHSTREAM_NOT_SET_ANYWHERE}\n")
    rc, out, _ = rendered.run(DASHSTREAM_BROKERS="kafka:9092")
    assert rc != 0
    assert "uses variables that are not set: ${DASHSTREAM_NOT_SET_ANYWHERE}" \
        in out


def test_image_defaults_agree():
    """The healthcheck's default port is the entrypoint's."""
    r = subprocess.run(["sh", "-c", '. "$0"; echo "$DASHSTREAM_METRICS_PORT '
                        '$DASHSTREAM_PORT"', ENVSH],
                       env={"PATH": os.environ["PATH"],
                            "DASHSTREAM_BROKERS": "k:1"},
                       stdout=subprocess.PIPE, timeout=30, check=True)
    metrics_port, port = r.stdout.decode().split()
    assert "${DASHSTREAM_METRICS_PORT:-%s}" % metrics_port in \
        read(HEALTHCHECK)
    df = read(os.path.join(DOCKER, "Dockerfile"))
    assert "EXPOSE %s %s" % (port, metrics_port) in df
    assert "EXPOSE %s %s" % (port, metrics_port) in \
        read(os.path.join(DOCKER, "Dockerfile.upstream"))


# --- running: replicas, front proxy, healthcheck, real broker ----------------

class FakeDNS:
    """Docker's embedded DNS for the front proxy: NAME -> addresses (A),
    anything else NXDOMAIN.  Loopback, in a thread."""

    def __init__(self, name, addrs):
        self.name, self.addrs = name, addrs
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((net.HOST, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            self.queries += 1
            qid, = struct.unpack("!H", q[:2])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode())
                i += 1 + q[i]
            qtype, = struct.unpack("!H", q[i + 1:i + 3])
            question = q[12:i + 5]
            ok = ".".join(labels) == self.name and qtype == 1
            answers = b"".join(
                struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) +
                socket.inet_aton(a) for a in self.addrs) if ok else b""
            head = struct.pack("!HHHHHH", qid, 0x8180 if ok else 0x8183, 1,
                               len(self.addrs) if ok else 0, 0, 0)
            self.sock.sendto(head + question + answers, peer)

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def lb_conf(dns_port, backend_port):
    text = read(os.path.join(DOCKER, "lb", "nginx.conf"))
    subs = [("pid /tmp/nginx-lb.pid;", "pid {{prefix}}/nginx.pid;"),
            ("error_log stderr notice;",
             "error_log {{prefix}}/error.log info;"),
            ("access_log /dev/stdout;", "access_log {{prefix}}/access.log;"),
            ("/tmp/lb_", "{{prefix}}/lb_"),
            ("resolver 127.0.0.11 ", "resolver 127.0.0.1:%d " % dns_port),
            ("listen 8080;", "listen 127.0.0.1:{{port}};"),
            ("$replicas:8080;", "$replicas:%d;" % backend_port)]
    for old, new in subs:
        assert old in text, "%r is gone from docker/lb/nginx.conf" % old
        text = text.replace(old, new)
    return "daemon off;\n" + text


def healthcheck(*args):
    r = subprocess.run(["bash", HEALTHCHECK] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env={"PATH": os.environ["PATH"]}, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace")


def replica(nginx, module, env, addr, public_port):
    """The image's config for one replica: rendered by the entrypoint,
    public server on addr:public_port, metrics server on 127.0.0.1:port."""
    ng = nginx(workers=2, ports=1, conf="")
    r = Rendered(ng.prefix, module, web=os.path.join(REPO, "web"))
    ng.write_config(conf=r.conf)
    rc, out, text = r.run(DASHSTREAM_PORT="%s:%d" % (addr, public_port),
                          DASHSTREAM_METRICS_PORT="127.0.0.1:%d" % ng.port,
                          **env)
    assert rc == 0, out
    ng.start()
    return ng


def status(port, path="/dashstream/status"):
    c = http.client.HTTPConnection(net.HOST, port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


@pytest.mark.partitions(2)
def test_two_replicas_behind_the_front_proxy(nginx, module, kafka, topic):
    """docker/compose.yml without Docker: two replicas rendered from the
    template in broadcast mode, the front proxy's config resolving the
    replicas' shared name, the healthcheck; a client through the proxy gets
    the whole stream, and keeps being served when a replica stops."""
    public = net.free_port()
    addrs = ["127.0.0.2", "127.0.0.3"]
    env = {"DASHSTREAM_BROKERS": kafka.bootstrap, "DASHSTREAM_TOPIC": topic,
           "DASHSTREAM_MODE": "broadcast",
           "DASHSTREAM_OFFSET_RESET": "earliest",
           "DASHSTREAM_ZONE_SIZE": "16m"}
    produced = kafka.produce(topic, [ds.event(thread_id="t%d" % (i % 5),
                                              sequence=i)
                                     for i in range(40)])
    reps = [replica(nginx, module, env, a, public) for a in addrs]
    dns = FakeDNS("dashstream-nginx", addrs)
    try:
        lb = nginx(conf=lb_conf(dns.port, public))
        lb.start()
        for ng in reps:
            net.wait_for(lambda: json.loads(status(ng.port)[2])["consumer"]
                         ["messages"]["success"] == 40, 60, 0.2,
                         "40 messages in the replica on %d" % ng.port)
            assert healthcheck("127.0.0.1:%d" % ng.port) == (0, "")
            st = json.loads(status(ng.port)[2])
            assert st["config"]["mode"] == "broadcast"
            assert st["config"]["topic"] == topic

        # both replicas answer through the proxy
        seen = set()
        for _ in range(40):
            s = prom.scrape(lb.url("/metrics"))
            seen.add(s.headers["x-dashstream-replica"])
            if len(seen) == 2:
                break
        assert seen == {"%s:%d" % (a, public) for a in addrs}
        code, _, body = status(lb.port, "/")
        assert code == 200 and b"<html" in body.lower()
        assert healthcheck(str(lb.port)) == (0, "")

        # the whole stream through the proxy, then live
        c = wslib.Client(lb.ws_url("/ws"))
        c.send_resume({}, from_="earliest")
        got = c.recv_messages(40, timeout=30)
        assert sorted((m.partition, m.offset) for m in got) == \
            sorted((p.partition, p.offset) for p in produced)
        more = kafka.produce(topic, [ds.token_chunk(text="x%d" % i,
                                                    thread_id="live")
                                     for i in range(5)])
        got = c.recv_messages(5, timeout=30)
        assert [(m.partition, m.offset) for m in got] == \
            [(p.partition, p.offset) for p in more]
        assert [m.data for m in got] == [p.value for p in more]
        c.close()

        # one replica stops: the proxy goes on with the other
        reps[0].stop()
        rc, out = healthcheck("127.0.0.1:%d" % reps[0].port)
        assert rc == 1
        for _ in range(10):
            code, headers, _ = status(lb.port)
            assert code == 200
            # the addresses tried: the stopped one perhaps, then the other
            assert headers["x-dashstream-replica"].endswith(
                "%s:%d" % (addrs[1], public))
        assert dns.queries >= 1
    finally:
        dns.close()


def test_healthcheck_fails_without_a_status_location(nginx):
    ng = nginx(server="location = /dashstream/status { return 503; }")
    ng.start()
    rc, out = healthcheck(str(ng.port))
    assert rc == 1 and "answered: HTTP/1.1 503" in out
    rc, out = healthcheck("127.0.0.1:%d" % net.free_port())
    assert rc == 1


@pytest.mark.parametrize("how", ["sasl_password_file", "mutual_tls"])
def test_kafka_security_from_the_environment(nginx, module, kafka, topic,
                                            tmp_path, how):
    """The image's security variables against the real broker: SASL PLAIN
    with the password from a file, and TLS with a client certificate."""
    env = {"DASHSTREAM_TOPIC": topic, "DASHSTREAM_MODE": "broadcast",
           "DASHSTREAM_OFFSET_RESET": "earliest",
           "DASHSTREAM_ZONE_SIZE": "16m"}
    if how == "sasl_password_file":
        sasl = kafka.via("SASL_PLAINTEXT")
        conf = sasl.conf()
        pw = tmp_path / "password"
        pw.write_text(conf["sasl.password"] + "\n")
        os.chmod(tmp_path, 0o755)
        secret = conf["sasl.password"]
        env.update(DASHSTREAM_BROKERS=sasl.bootstrap,
                   DASHSTREAM_SECURITY_PROTOCOL="sasl_plaintext",
                   DASHSTREAM_SASL_MECHANISM="PLAIN",
                   DASHSTREAM_SASL_USERNAME=conf["sasl.username"],
                   DASHSTREAM_SASL_PASSWORD_FILE=str(pw))
    else:
        files = getattr(kafka, "tls", None)
        if not files:
            pytest.skip("this broker has no SSL listener of the test CA")
        secret = read(files["key"]).strip().splitlines()[1]
        env.update(DASHSTREAM_BROKERS=kafka.via("SSL").bootstrap,
                   DASHSTREAM_SECURITY_PROTOCOL="ssl",
                   DASHSTREAM_SSL_CA=files["ca"],
                   DASHSTREAM_SSL_CERTIFICATE=files["cert"],
                   DASHSTREAM_SSL_CERTIFICATE_KEY=files["key"])
    produced = kafka.produce(topic, [ds.event(sequence=i) for i in range(3)])
    ng = replica(nginx, module, env, "127.0.0.1", net.free_port())
    net.wait_for(lambda: json.loads(status(ng.port)[2])["consumer"]
                 ["messages"]["success"] == len(produced), 60, 0.2,
                 "messages over %s" % how)
    st = json.loads(status(ng.port)[2])
    assert st["config"]["security_protocol"] == \
        env["DASHSTREAM_SECURITY_PROTOCOL"]
    assert secret not in json.dumps(st)
    assert secret not in read(os.path.join(ng.prefix, "conf.d",
                                           "dashstream.conf"))


# --- the topic script, the generator image's protoc rule ---------------------

TOPICS_SHIM = r'''#!/usr/bin/python3
"""kafka-topics.sh for the test: the options docker/kafka-init-topics.sh
uses, strictly parsed, applied with the admin client."""
import argparse, sys
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka import KafkaException
ap = argparse.ArgumentParser(allow_abbrev=False)
ap.add_argument("--bootstrap-server", required=True)
g = ap.add_mutually_exclusive_group(required=True)
g.add_argument("--create", action="store_true")
g.add_argument("--list", action="store_true")
g.add_argument("--describe", action="store_true")
ap.add_argument("--if-not-exists", action="store_true")
ap.add_argument("--topic")
ap.add_argument("--partitions", type=int)
ap.add_argument("--replication-factor", type=int)
ap.add_argument("--config", action="append", default=[])
a = ap.parse_args()
admin = AdminClient({"bootstrap.servers": a.bootstrap_server})
if a.list:
    print("\n".join(admin.list_topics(timeout=10).topics))
elif a.describe:
    t = admin.list_topics(a.topic, timeout=10).topics[a.topic]
    print(a.topic, len(t.partitions))
else:
    conf = dict(c.split("=", 1) for c in a.config)
    f = admin.create_topics([NewTopic(a.topic, a.partitions,
                                      a.replication_factor, config=conf)])
    try:
        f[a.topic].result(30)
    except KafkaException as e:
        if not (a.if_not_exists and "TOPIC_ALREADY_EXISTS" in str(e)):
            sys.exit(str(e))
'''


def test_topic_script_creates_the_topics(kafka, tmp_path):
    shim = tmp_path / "kafka-topics.sh"
    shim.write_text(TOPICS_SHIM)
    shim.chmod(0o755)
    name = "init-%s" % uuid.uuid4().hex[:8]
    env = {"PATH": os.environ["PATH"], "KAFKA_TOPICS": str(shim),
           "BOOTSTRAP": kafka.bootstrap, "TOPIC": name, "PARTITIONS": "3",
           "RETENTION_MS": "3600000"}
    try:
        for _ in range(2):      # again: nothing to do, still success
            r = subprocess.run(["bash", os.path.join(DOCKER,
                                                     "kafka-init-topics.sh")],
                               env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120)
            assert r.returncode == 0, r.stdout.decode()
        md = kafka.metadata().topics
        assert len(md[name].partitions) == 3
        assert len(md[name + "-dlq"].partitions) == 1
        from confluent_kafka.admin import ConfigResource
        admin = kafka.admin()
        want = {name: {"retention.ms": "3600000",
                       "cleanup.policy": "delete"},
                name + "-dlq": {"retention.ms": "1209600000",
                                "cleanup.policy": "delete",
                                "max.message.bytes": "4194304"}}
        for t, conf in want.items():
            res = ConfigResource(ConfigResource.Type.TOPIC, t)
            got = admin.describe_configs([res])[res].result(30)
            assert {k: got[k].value for k in conf} == conf
    finally:
        for t in (name, name + "-dlq"):
            if t in kafka.metadata().topics:
                kafka.delete_topic(t)


def test_generator_image_protoc_rule(tmp_path):
    """The generator image's first stage: Makefile and proto/ alone make
    dashstream_pb2.py, which the runtime stage copies."""
    st = stages("Dockerfile.generator")
    cmd = [c for c in runs(st[0]) if c.startswith("make ")]
    assert cmd == ["make build/gen/dashstream_pb2.py"]
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(os.path.join(REPO, "Makefile"), src)
    shutil.copytree(os.path.join(REPO, "proto"), src / "proto")
    r = subprocess.run(shlex.split(cmd[0]), cwd=src, env=plain_env(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    assert r.returncode == 0, r.stdout.decode()
    out = src / "build" / "gen" / "dashstream_pb2.py"
    r = subprocess.run([sys.executable, "-c",
                        "import dashstream_pb2 as p; "
                        "print(p.DashStreamMessage.DESCRIPTOR.full_name)"],
                       cwd=out.parent, stdout=subprocess.PIPE, timeout=60)
    assert r.stdout.decode().strip() == "dashstream.v1.DashStreamMessage"
    copies = [copy_parts(rest) for w, rest in st[-1]["steps"]
              if w == "COPY" and rest.startswith("--from")]
    assert any(s == ["/src/build/gen/dashstream_pb2.py"]
               for _, s, _ in copies)


# --- Dockerfile.upstream: nginx.org source, --with-compat --------------------

def nginx_version():
    r = subprocess.run(["nginx", "-v"], stderr=subprocess.PIPE, timeout=30)
    return re.search(r"nginx/([\d.]+)", r.stderr.decode()).group(1)


def upstream_tarball(version, cache):
    """nginx-VERSION.tar.gz from nginx.org as the Dockerfile fetches it,
    else Debian's orig tarball of the same release (the same upstream
    file), else a tarball of the source tree nginx-dev ships for module
    builds (the same release; a machine without deb-src lines, or without
    nginx.org); cached.  None when none can be had."""
    tarball = os.path.join(cache, "nginx-%s.tar.gz" % version)
    for have in (tarball, tarball + ".nginx-dev"):
        if os.path.exists(have):
            return have
    work = tempfile.mkdtemp(dir=cache)
    try:
        for cmd in (["curl", "-fsSLO", "--max-time", "120",
                     "https://nginx.org/download/nginx-%s.tar.gz" % version],
                    ["apt-get", "source", "--download-only", "nginx"]):
            subprocess.run(cmd, cwd=work, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300)
            for name in ("nginx-%s.tar.gz" % version,
                         "nginx_%s.orig.tar.gz" % version):
                if os.path.exists(os.path.join(work, name)):
                    os.rename(os.path.join(work, name), tarball)
                    return tarball
        tree = "/usr/share/nginx/src"
        if os.path.isfile(os.path.join(tree, "configure")):
            made = os.path.join(work, "nginx-%s.tar.gz" % version)
            subprocess.run(["tar", "-czf", made, "--transform",
                            "s,^src,nginx-%s," % version, "-C",
                            os.path.dirname(tree), "src"], check=True,
                           timeout=300)
            os.rename(made, tarball + ".nginx-dev")
            return tarball + ".nginx-dev"
        return None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_upstream_variant_builds_a_module_nginx_loads(module, tmp_path):
    """The upstream variant's build commands, run here against the upstream
    source of Debian's nginx version (Debian's nginx is built --with-compat
    too): the module they make loads into the nginx binary of that
    version.  The tarball comes from nginx.org, or Debian's archive (the
    same file), once; the test skips only when neither can be reached."""
    st = stages("Dockerfile.upstream")
    assert st[0]["base"] == "nginx:1.28.0" == st[-1]["base"]
    cmds = runs(st[0])
    fetch = [c for c in cmds if "nginx.org/download" in c]
    build = [c for c in cmds if "--with-compat" in c]
    assert len(fetch) == 1 and len(build) == 1
    assert "./configure --with-compat --add-dynamic-module=/src " in build[0]
    assert "--with-compat" in subprocess.run(
        ["nginx", "-V"], stderr=subprocess.PIPE, timeout=30).stderr.decode()

    version = nginx_version()
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.expanduser("~/.cache"), "ngx-dashstream")
    os.makedirs(cache, exist_ok=True)
    tarball = upstream_tarball(version, cache)
    if tarball is None:
        pytest.skip("no nginx source: nginx.org and Debian's archive "
                    "unreachable, no nginx-dev tree")
    work = tmp_path / "build"
    work.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(os.path.join(REPO, "config"), src)
    for d in ("proto", "src"):
        shutil.copytree(os.path.join(REPO, d), src / d)

    # the fetch step, its download already done, with the checksum checked
    shutil.copy(tarball, work / ("nginx-%s.tar.gz" % version))
    curl = 'curl -fsSLO "https://nginx.org/download/nginx-${NGINX_VERSION}' \
        '.tar.gz"'
    assert curl in fetch[0]
    fetch_cmd = fetch[0].replace(curl, "true")
    digest = subprocess.run(["sha256sum", tarball], stdout=subprocess.PIPE,
                            timeout=60, check=True).stdout.split()[0]
    env = {"PATH": os.environ["PATH"], "NGINX_VERSION": version}
    r = subprocess.run(["sh", "-c", fetch_cmd], cwd=work,
                       env=dict(env, NGINX_SHA256="0" * 64),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert r.returncode != 0, "a wrong NGINX_SHA256 must stop the build"
    r = subprocess.run(["sh", "-c", fetch_cmd], cwd=work,
                       env=dict(env, NGINX_SHA256=digest.decode()),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120)
    assert r.returncode == 0, r.stdout.decode()
    assert os.path.isfile(work / ("nginx-%s" % version) / "configure")

    out = tmp_path / "out"
    cmd = build[0]
    # /src first: the checkout itself may live below /src (fresh-machine)
    for old, new in ((r"(?<=[\s=])/src\b", str(src)),
                     (r"(?<=\s)/out\b", str(out)),
                     (r"/usr/local/bin/runtime-packages\.sh",
                      os.path.join(DOCKER, "runtime-packages.sh"))):
        cmd, n = re.subn(old, lambda m: new, cmd)
        assert n, old
    r = subprocess.run(["sh", "-c", cmd], cwd=work, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=900)
    assert r.returncode == 0, r.stdout.decode()[-3000:]
    so = str(out / "ngx_http_dashstream_module.so")
    assert read(out / "runtime-packages").split() == runtime_packages(module)

    check = load_check("Dockerfile").replace(IMAGE_MODULE, so)
    r = subprocess.run(["sh", "-c", check], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout.decode()
