"""The SMTP client reaches a next hop that has only an IPv6 address
(AAAA record -> ::1), and the SMTP server listens on [::1]."""
import socket

import pytest

from conftest import send_mail, wait_for
from conftest_dns import dnsmasq_factory  # noqa: F401  (fixture)


def _free_port6():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_delivery_over_ipv6(facteur_factory, dnsmasq_factory):
    port6 = _free_port6()
    dns = dnsmasq_factory(hosts={"mx6.v6.test": "::1"})
    # B: the final destination for v6.test, listening on [::1] only.
    b = facteur_factory(start=False)
    b.write_file("vmailbox", "marc@v6.test v6.test/marc/\n")
    b.main_cf("virtual_mailbox_domains = v6.test\n"
              "smtpd_listen = [::1]:%d\n"
              "mynetworks = 127.0.0.0/8 [::1]/128" % port6)
    b.start(wait=False)
    def b_ready():
        try:
            with socket.create_connection(("::1", port6), timeout=2) as s:
                return s.recv(4).startswith(b"220")
        except OSError:
            return False
    wait_for(b_ready, timeout=30, what="the IPv6 listener")
    # A: routes v6.test to [mx6.v6.test] (no MX lookup; AAAA only).
    a = facteur_factory(start=False)
    a.write_file("transport", "v6.test smtp:[mx6.v6.test]:%d\n" % port6)
    a.main_cf("transport_maps = texthash:%s/transport\n"
              "dns_servers = %s" % (a.config_dir, dns.servers))
    a.start()
    send_mail(a.host, a.smtp_port, "fred@mail.example.test", "marc@v6.test", "over v6")
    a.wait_log(r"to=<marc@v6\.test>, relay=mx6\.v6\.test\[::1\]:%d, .*status=sent" % port6)
    msgs = wait_for(lambda: b.maildir_parsed(b.vmail_dir + "/v6.test/marc"),
                    what="the message in B's Maildir")
    assert msgs[0]["Subject"] == "over v6"
