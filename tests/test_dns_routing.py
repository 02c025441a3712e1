"""The SMTP client's answers to what the DNS says (RFC 5321 5.1, RFC 7505),
against a real dnsmasq; no SMTP server is needed for these outcomes."""
import smtplib

from conftest_dns import dnsmasq_factory  # noqa: F401  (fixture)


def _send(inst, rcpt):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.sendmail("fred@mail.example.test", [rcpt], b"Subject: dns\r\n\r\nx\r\n")


def test_null_mx_bounces_at_once(facteur_factory, dnsmasq_factory):
    dns = dnsmasq_factory(null_mx=["nomail.test"])
    inst = facteur_factory(extra_main_cf="dns_servers = %s" % dns.servers)
    _send(inst, "someone@nomail.test")
    inst.wait_log(r"to=<someone@nomail\.test>, relay=none, .*dsn=5\.1\.10, status=bounced "
                  r"\(Domain nomail\.test does not accept mail \(nullMX\)\)")


def test_nonexistent_domain_bounces(facteur_factory, dnsmasq_factory):
    dns = dnsmasq_factory(mx=[("machin.test", "mx1.machin.test", 10)],
                          hosts={"mx1.machin.test": "127.0.0.3"})
    inst = facteur_factory(extra_main_cf="dns_servers = %s" % dns.servers)
    _send(inst, "someone@no-such-domain.test")
    inst.wait_log(r"to=<someone@no-such-domain\.test>, relay=none, .*dsn=5\.4\.4, "
                  r"status=bounced \(Host or domain name not found\. Name service error "
                  r"for name=no-such-domain\.test type=A: Host not found\)")


def test_unreachable_dns_defers(facteur):
    # The test configuration's DNS server is a closed loopback port.
    _send(facteur, "someone@elsewhere.test")
    facteur.wait_log(r"to=<someone@elsewhere\.test>, relay=none, .*dsn=4\.4\.3, "
                     r"status=deferred \(Host or domain name not found\. Name service error "
                     r"for name=elsewhere\.test type=MX: Host not found, try again\)")
