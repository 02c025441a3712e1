"""The dnsmasq fixture (tests/conftest_dns.py) publishes what the tests ask
for, checked with an independent client, dig (package bind9-dnsutils).
The resolver itself (src/mail/dns.c) is tested against dnsmasq by the unit
test src/mail/dns_test.c."""
import os
import shutil
import subprocess

import pytest

from conftest_dns import dnsmasq_factory  # noqa: F401  (fixture)

DIG = shutil.which("dig")

pytestmark = pytest.mark.skipif(DIG is None, reason="dig (package bind9-dnsutils) is missing")


def dig(dns, qtype, name):
    out = subprocess.run([DIG, "@%s" % dns.addr, "-p", str(dns.port), "+time=2",
                          "+tries=1", qtype, name],
                         capture_output=True, text=True, timeout=20)
    status = None
    for line in out.stdout.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
    short = subprocess.run([DIG, "@%s" % dns.addr, "-p", str(dns.port), "+time=2",
                            "+tries=1", "+short", qtype, name],
                           capture_output=True, text=True, timeout=20).stdout.split("\n")
    return status, sorted(line for line in short if line)


def test_fixture_publishes_records(dnsmasq_factory):
    dns = dnsmasq_factory(
        mx=[("machin.test", "mx1.machin.test", 10), ("machin.test", "mx2.machin.test", 20)],
        hosts={"mx1.machin.test": "127.0.0.3", "dual.test": ["127.0.0.4", "::1"]},
        null_mx=["nomail.test"],
        txt={"2.0.0.127.zen.example.test": "listed"})
    assert dns.addr == "127.0.0.9"
    assert dns.servers == "127.0.0.9:%d" % dns.port
    assert dig(dns, "MX", "machin.test") == ("NOERROR", ["10 mx1.machin.test.",
                                                         "20 mx2.machin.test."])
    assert dig(dns, "A", "mx1.machin.test") == ("NOERROR", ["127.0.0.3"])
    assert dig(dns, "A", "dual.test") == ("NOERROR", ["127.0.0.4"])
    assert dig(dns, "AAAA", "dual.test") == ("NOERROR", ["::1"])
    assert dig(dns, "MX", "nomail.test") == ("NOERROR", ["0 ."])
    assert dig(dns, "TXT", "2.0.0.127.zen.example.test") == ("NOERROR", ['"listed"'])
    # Unknown under .test: NXDOMAIN, answered locally.
    assert dig(dns, "MX", "nowhere.test")[0] == "NXDOMAIN"
    assert "nowhere.test" in dns.log()


def test_raw_records_and_stop(dnsmasq_factory):
    dns = dnsmasq_factory(["--host-record=raw.test,127.0.0.5",
                           "--mx-host=raw.test,raw.test,5"])
    assert dig(dns, "MX", "raw.test") == ("NOERROR", ["5 raw.test."])
    pid = dns.pid
    tmp = dns.tmp
    dns.stop()
    assert not os.path.exists(tmp)
    with pytest.raises(ProcessLookupError):
        # stopped and reaped: the PID is gone
        os.kill(pid, 0)
    dns.stop()  # twice is harmless


def test_two_servers_side_by_side(dnsmasq_factory):
    a = dnsmasq_factory(hosts={"a.test": "127.0.0.11"})
    b = dnsmasq_factory(hosts={"a.test": "127.0.0.12"})
    assert a.port != b.port
    assert dig(a, "A", "a.test") == ("NOERROR", ["127.0.0.11"])
    assert dig(b, "A", "a.test") == ("NOERROR", ["127.0.0.12"])
