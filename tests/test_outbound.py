"""Mail to other domains (issue 3): a destination that is down (deferral,
retries with backoff, delay warning, expiry and bounce), and the seeds'
routing: relayhost and transport_maps (the aol domains through the
provider's relay, everything else direct by MX).

Each "host" is a real facteur instance on its own loopback address; the
DNS is a dnsmasq on loopback.  Nothing leaves 127.0.0.0/8.
"""
import os
import re
import shutil
import time

import pytest

from conftest import (A_ADDR, B1_ADDR, IS_ROOT, dsn_parts, free_port, fred_reports,
                      machin_instance, marc_maildir, returned_headers, send_mail,
                      serve_virtual, truc_instance, wait_for, port25_free)

try:
    from conftest_dns import dnsmasq_factory  # noqa: F401,F811  (fixture)
except ImportError:  # the routing tests then report the missing fixture
    pass

FAI_ADDR = "127.0.0.6"          # smtp.fai.test, the provider's relay

# Short times so that a test sees several attempts (docs/configuration.md:
# a unit suffix is allowed on every time parameter).
FAST_RETRY = "\n".join([
    "queue_run_delay = 1s",
    "minimal_backoff_time = 1s",
    "maximal_backoff_time = 2s",
])

needs_root = pytest.mark.skipif(not IS_ROOT, reason="MX and relay hosts are reached at "
                                "port 25 (127.0.0.3, 127.0.0.6): needs root, as in CI")
uses_port25 = pytest.mark.usefixtures("port25")
needs_dnsmasq = pytest.mark.skipif(
    shutil.which("dnsmasq") is None and not os.path.exists("/usr/sbin/dnsmasq"),
    reason="dnsmasq (package dnsmasq-base) is not installed")


def deferrals(a, qid):
    return [l for l in a.log_text().splitlines()
            if re.search(r"%s: to=<marc@machin\.test>, .*status=deferred" % qid, l)]


# ---------------------------------------------------------------- down

def down_destination(facteur_factory, extra):
    """A routes machin.test to [127.0.0.3]:PORT, where nothing listens yet.
    Returns (A, PORT).  Runs unprivileged too: no DNS, no port 25."""
    port = free_port(B1_ADDR)
    a = truc_instance(facteur_factory, host=A_ADDR, port=free_port(A_ADDR), start=False,
                      extra="\n".join([FAST_RETRY, extra]))
    a.main_cf("transport_maps = texthash:%s/transport" % a.config_dir)
    a.write_file("transport", "machin.test smtp:[%s]:%d\n" % (B1_ADDR, port))
    a.start()
    return a, port


def test_down_deferred_warned_then_delivered(facteur_factory):
    """Destination down: the message is deferred with the reason in
    `facteur queue`, retried with backoff; the sender gets a delay warning
    after delay_warning_time; once the destination is back it is delivered."""
    a, port = down_destination(facteur_factory, "delay_warning_time = 2s")
    t0 = time.monotonic()
    qid = send_mail(a.host, a.smtp_port, "fred@truc.test", "marc@machin.test", "En attente")
    # Postfix: "relay=none, ... status=deferred (connect to H[A]:P: Connection refused)"
    line = a.wait_log(r"%s: to=<marc@machin\.test>, relay=\S+, .*dsn=4\.\d\.\d, "
                      r"status=deferred \(connect to \S*127\.0\.0\.3\S*:%d: Connection refused\)"
                      % (qid, port), timeout=30)[0]
    assert "dsn=4.4.1" in line, line
    # `facteur queue` shows why (polled: between two attempts the message
    # is briefly in active/, where Postfix's mailq shows no reason either).
    reason = re.compile(r"\(connect to \S*127\.0\.0\.3\S*:%d: Connection refused\)" % port)
    q = wait_for(lambda: (lambda out: out if reason.search(out) else None)(
        a.run("queue", check=True).stdout), timeout=10, what="the reason in facteur queue")
    assert qid in q, q
    assert "marc@machin.test" in q

    # Retried, with backoff: several attempts, never more than one per
    # minimal_backoff_time (1s) -- plus the first one.
    wait_for(lambda: len(deferrals(a, qid)) >= 3, timeout=30, what="three attempts")
    # The delay warning (delay_warning_time = 2s) reaches fred meanwhile.
    warning = fred_reports(a, timeout=30)[0]
    assert warning["Subject"].startswith("Delayed Mail"), (
        warning.as_string()[:2000] + "\n--- log:\n" + a.log_text())
    text, blocks, original = dsn_parts(warning)
    rcpt = blocks[1]
    assert rcpt["final-recipient"].lower() == "rfc822; marc@machin.test"
    assert rcpt["action"] == "delayed", rcpt
    assert rcpt["status"].startswith("4."), rcpt
    assert "Connection refused" in rcpt.get("diagnostic-code", "") + text.get_content()
    assert returned_headers(original)["Subject"] == "En attente"
    elapsed = time.monotonic() - t0
    n = len(deferrals(a, qid))
    assert n <= elapsed / 1.0 + 1, "%d attempts in %.1fs: no backoff" % (n, elapsed)

    # The destination comes back: the next retry delivers.
    b = machin_instance(facteur_factory, B1_ADDR, "mx1.machin.test", port=port)
    a.wait_log(r"%s: to=<marc@machin\.test>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:%d, "
               r".*status=sent \(250 " % (qid, port), timeout=30)
    got = wait_for(lambda: b.maildir_parsed(marc_maildir(b)), timeout=30,
                   what="the message in marc's Maildir")
    assert [m["Subject"] for m in got] == ["En attente"]
    wait_for(lambda: "Mail queue is empty" in a.run("queue").stdout, timeout=10,
             what="A's queue to be empty")
    # One warning, no bounce.
    assert len(a.mbox_messages()) == 1


def test_down_expires_and_bounces(facteur_factory):
    """After maximal_queue_lifetime the message is given up and returned to
    the sender as a delivery status notification that says why."""
    a, port = down_destination(facteur_factory, "maximal_queue_lifetime = 5s")
    t0 = time.monotonic()
    qid = send_mail(a.host, a.smtp_port, "fred@truc.test", "marc@machin.test", "Trop tard")
    a.wait_log(r"%s: to=<marc@machin\.test>, .*status=deferred \(connect to .*Connection refused"
               % qid, timeout=30)
    # Postfix: "QID: from=<sender>, status=expired, returned to sender"
    a.wait_log(r"%s: from=<fred@truc\.test>, status=expired, returned to sender" % qid,
               timeout=60)
    expired_after = time.monotonic() - t0
    # Not before maximal_queue_lifetime (5s; the log has whole seconds).
    assert expired_after >= 4.0, "expired %.1fs after arrival" % expired_after
    report = fred_reports(a, timeout=30)[0]
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    text, blocks, original = dsn_parts(report)
    rcpt = blocks[1]
    assert rcpt["final-recipient"].lower() == "rfc822; marc@machin.test"
    assert rcpt["action"] == "failed", rcpt
    assert re.fullmatch(r"[45]\.4\.1", rcpt["status"]), rcpt
    assert "Connection refused" in rcpt.get("diagnostic-code", "") + text.get_content()
    assert returned_headers(original)["Subject"] == "Trop tard"
    wait_for(lambda: "Mail queue is empty" in a.run("queue").stdout, timeout=10,
             what="A's queue to be empty")
    assert len(a.mbox_messages()) == 1


# ---------------------------------------------------------------- routing

def routing_dns(dnsmasq_factory):
    """machin.test by MX (mx1 -> 127.0.0.3); the provider's relay
    smtp.fai.test has only an address record (implicit MX).  The aol
    domains have no record at all: only transport_maps or relayhost can
    route them."""
    return dnsmasq_factory(
        mx=[("machin.test", "mx1.machin.test", 10)],
        hosts={"mx1.machin.test": B1_ADDR, "smtp.fai.test": FAI_ADDR})


def fai_relay(factory):
    """The provider's relay, smtp.fai.test: the final stop of the aol
    domains here, and of machin.test when everything goes through it (a
    Maildir of its own for marc, to tell where the mail went)."""
    port25_free(FAI_ADDR)
    r = factory(host=FAI_ADDR, port=25, start=False, extra_main_cf="\n".join([
        "myhostname = smtp.fai.test",
        "mydomain = fai.test",
        "mydestination = $myhostname, localhost",
    ]))
    serve_virtual(r, ["aol.test", "sub.aol.test", "machin.test"], {
        "u@aol.test": "aol.test/u/",
        "v@sub.aol.test": "sub.aol.test/v/",
        "marc@machin.test": "machin.test/marc/",
    })
    r.start()
    return r


def maildir_subjects(inst, rel):
    return sorted(m["Subject"] for m in inst.maildir_parsed(os.path.join(inst.vmail_dir, rel)))


@needs_root
@needs_dnsmasq
@uses_port25
def test_transport_maps_aol_through_provider(facteur_factory, dnsmasq_factory):
    """The seeds' transport table: aol.test and its subdomains go to the
    provider's relay smtp.fai.test; everything else directly by MX."""
    dns = routing_dns(dnsmasq_factory)
    b = machin_instance(facteur_factory, B1_ADDR, "mx1.machin.test")
    r = fai_relay(facteur_factory)
    a = truc_instance(facteur_factory, dns, port=free_port(A_ADDR), start=False)
    a.main_cf("transport_maps = texthash:%s/transport" % a.config_dir)
    a.write_file("transport", "aol.test smtp:smtp.fai.test\n"
                              ".aol.test smtp:smtp.fai.test\n")
    a.start()
    qid = send_mail(a.host, a.smtp_port, "fred@truc.test",
                    ["u@aol.test", "v@sub.aol.test", "marc@machin.test"], "Tri selectif")
    a.wait_log(r"%s: to=<u@aol\.test>, relay=smtp\.fai\.test\[127\.0\.0\.6\]:25, .*status=sent"
               % qid, timeout=60)
    a.wait_log(r"%s: to=<v@sub\.aol\.test>, relay=smtp\.fai\.test\[127\.0\.0\.6\]:25, "
               r".*status=sent" % qid, timeout=60)
    a.wait_log(r"%s: to=<marc@machin\.test>, relay=mx1\.machin\.test\[127\.0\.0\.3\]:25, "
               r".*status=sent" % qid, timeout=60)
    wait_for(lambda: maildir_subjects(r, "aol.test/u") == ["Tri selectif"], timeout=30,
             what="u@aol.test's copy at the provider's relay")
    wait_for(lambda: maildir_subjects(r, "sub.aol.test/v") == ["Tri selectif"], timeout=30,
             what="v@sub.aol.test's copy at the provider's relay")
    wait_for(lambda: maildir_subjects(b, "machin.test/marc") == ["Tri selectif"], timeout=30,
             what="marc's copy at mx1.machin.test")
    assert maildir_subjects(r, "machin.test/marc") == []


@pytest.mark.parametrize("relayhost,relay", [
    ("smtp.fai.test", r"smtp\.fai\.test\[127\.0\.0\.6\]:25"),       # the seeds' form
    ("[smtp.fai.test]", r"smtp\.fai\.test\[127\.0\.0\.6\]:25"),     # no MX lookup
    ("[127.0.0.6]:25", r"127\.0\.0\.6\[127\.0\.0\.6\]:25"),
])
@needs_root
@needs_dnsmasq
@uses_port25
def test_relayhost_takes_everything_remote(facteur_factory, dnsmasq_factory, relayhost, relay):
    """relayhost: all mail for other domains goes to the provider's relay,
    even where an MX exists (machin.test); local mail stays local."""
    dns = routing_dns(dnsmasq_factory)
    b = machin_instance(facteur_factory, B1_ADDR, "mx1.machin.test")
    r = fai_relay(facteur_factory)
    a = truc_instance(facteur_factory, dns, port=free_port(A_ADDR),
                      extra="relayhost = %s" % relayhost)
    qid = send_mail(a.host, a.smtp_port, "fred@truc.test",
                    ["marc@machin.test", "u@aol.test", "fred@truc.test"], "Tout au FAI")
    for rcpt in ("marc@machin.test", "u@aol.test"):
        a.wait_log(r"%s: to=<%s>, relay=%s, .*status=sent" % (qid, re.escape(rcpt), relay),
                   timeout=60)
    a.wait_log(r"%s: to=<\S+@truc\.test>, orig_to=<fred@truc\.test>, relay=local, .*status=sent"
               % qid, timeout=30)
    wait_for(lambda: maildir_subjects(r, "machin.test/marc") == ["Tout au FAI"], timeout=30,
             what="marc's copy at the provider's relay")
    wait_for(lambda: maildir_subjects(r, "aol.test/u") == ["Tout au FAI"], timeout=30,
             what="u@aol.test's copy at the provider's relay")
    assert maildir_subjects(b, "machin.test/marc") == []
    assert [m["Subject"] for m in a.mbox_messages()] == ["Tout au FAI"]
