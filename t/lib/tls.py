"""A throwaway test CA, made with the openssl command line: a broker
certificate for 127.0.0.1 and a client certificate, and the broker's SSL
listener using them as PEM (Kafka 4: ssl.keystore.type=PEM with the chain
and key inline, ssl.truststore.type=PEM)."""

import os
import subprocess

from . import kafka as kafka_lib


def _run(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s"
                           % (" ".join(args), r.stdout.decode()))


def _cert(d, name, cn, san=None):
    """name.key (PKCS#8) and name.pem signed by the CA in d."""
    _run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
         "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    _run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
         "-CAkey", "ca.key", "-CAcreateserial", "-days", "7",
         "-out", name + ".pem", "-extfile", ext, cwd=d)


def make_ca(d):
    """CA, broker and client certificates in d; returns their paths."""
    os.makedirs(d, exist_ok=True)
    _run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         "ca.key", "-out", "ca.pem", "-days", "7",
         "-subj", "/CN=dashstream test CA", cwd=d)
    _cert(d, "broker", "localhost", "IP:127.0.0.1,DNS:localhost")
    _cert(d, "client", "dashstream-client")
    for name in os.listdir(d):      # nginx workers run as nobody
        os.chmod(os.path.join(d, name), 0o644)
    os.chmod(d, 0o755)
    return {k: os.path.join(d, v) for k, v in (
        ("ca", "ca.pem"), ("cert", "client.pem"), ("key", "client.key"),
        ("broker_cert", "broker.pem"), ("broker_key", "broker.key"))}


def _inline(path):
    """A PEM file as one properties-file value (\\n escapes)."""
    with open(path) as f:
        return f.read().strip().replace("\n", "\\n")


def ssl_listener(paths):
    """An SSL listener that requires a client certificate of the CA."""
    p = "listener.name.ssl."
    props = {
        p + "ssl.keystore.type": "PEM",
        p + "ssl.keystore.certificate.chain": _inline(paths["broker_cert"]),
        p + "ssl.keystore.key": _inline(paths["broker_key"]),
        p + "ssl.truststore.type": "PEM",
        p + "ssl.truststore.certificates": _inline(paths["ca"]),
        p + "ssl.client.auth": "required",
    }
    return kafka_lib.Listener("SSL", props=props, client={
        "security.protocol": "SSL", "ssl.ca.location": paths["ca"],
        "ssl.certificate.location": paths["cert"],
        "ssl.key.location": paths["key"]})
