"""pytest plugin: a real DNS server (dnsmasq, package dnsmasq-base) on
loopback for the test domains.

Use it from a test module with
    from conftest_dns import dnsmasq_factory  # noqa: F401  (fixture)
or `pytest_plugins = ["conftest_dns"]` (in the top-level conftest.py).

    dns = dnsmasq_factory(
        mx=[("machin.test", "mx1.machin.test", 10)],     # (domain, host, preference)
        hosts={"mx1.machin.test": "127.0.0.3",            # one address or a list
               "dual.test": ["127.0.0.4", "::1"]},        #   (IPv4 and IPv6)
        null_mx=["nomail.test"],                          # RFC 7505 "MX 0 ."
        txt={"2.0.0.127.zen.example.test": "listed"},
        records=["--cname=alias.test,mx1.machin.test"])  # raw dnsmasq options
    dns.addr, dns.port      # where it listens (127.0.0.9, a free UDP port)
    dns.servers             # "127.0.0.9:PORT", for main.cf's dns_servers
    dns.stop()              # also done at teardown

Only names under .test (and those given) are answered: --local=/test/ with
--no-resolv makes anything unknown under .test NXDOMAIN and forwards
nothing anywhere.  Nothing leaves 127.0.0.0/8.  Each server has its own
temporary directory (pid file, log) and is stopped by its PID.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DEFAULT_ADDR = "127.0.0.9"


def _free_udp_port(addr):
    """A UDP port on addr that is free now, and whose TCP twin is free
    too (dnsmasq binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((addr, 0))
            port = u.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind((addr, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port on %s" % addr)


def _udp_busy(addr, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        try:
            u.bind((addr, port))
        except OSError:
            return True
    return False


class Dnsmasq:
    """One dnsmasq process serving the given records."""

    def __init__(self, mx=(), hosts=None, null_mx=(), txt=None, records=(),
                 addr=DEFAULT_ADDR, port=None):
        if not os.path.exists(DNSMASQ):
            pytest.skip("dnsmasq (package dnsmasq-base) is not installed")
        self.addr = addr
        self.port = port if port is not None else _free_udp_port(addr)
        self.servers = "%s:%d" % (addr, self.port)
        self.tmp = tempfile.mkdtemp(prefix="facteur-dnsmasq-", dir="/tmp")
        self.pid_file = os.path.join(self.tmp, "dnsmasq.pid")
        self.log_path = os.path.join(self.tmp, "dnsmasq.log")
        args = [DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                "--listen-address=%s" % addr, "--port=%d" % self.port,
                "--local=/test/", "--pid-file=%s" % self.pid_file,
                "--log-facility=%s" % self.log_path, "--log-queries"]
        for domain, host, pref in mx:
            args.append("--mx-host=%s,%s,%d" % (domain, host, pref))
        for domain in null_mx:
            args.append("--mx-host=%s,.,0" % domain)
        for name, addrs in (hosts or {}).items():
            if isinstance(addrs, str):
                addrs = [addrs]
            args.append("--host-record=%s,%s" % (name, ",".join(addrs)))
        for name, text in (txt or {}).items():
            args.append("--txt-record=%s,%s" % (name, text))  # no shell: no quotes
        args.extend(records)
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _udp_busy(addr, self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                self._cleanup_dir()
                raise RuntimeError("dnsmasq exited (%d): %s" % (self.proc.returncode, err))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dnsmasq did not bind %s" % self.servers)
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def log(self):
        """The queries dnsmasq saw (--log-queries), as text."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()          # by PID (Popen.terminate)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        self._cleanup_dir()

    def _cleanup_dir(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def dnsmasq_factory():
    """Start dnsmasq servers: dnsmasq_factory(mx=..., hosts=..., null_mx=...,
    txt=..., records=..., addr="127.0.0.9", port=None) -> Dnsmasq.  A first
    positional argument is taken as `records` (raw dnsmasq options).  All
    are stopped at teardown."""
    made = []

    def make(records=(), **kw):
        d = Dnsmasq(records=records, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
