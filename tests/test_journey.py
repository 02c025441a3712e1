"""The seeds' journey between two domains (issue 3), end to end.

    fred@truc.test --smtplib--> A (smtp.truc.test, 127.0.0.2:25)
        A asks the DNS (dnsmasq on loopback) for the MX of machin.test:
            mx1.machin.test  preference 10 -> 127.0.0.3  (instance B1)
            mx2.machin.test  preference 20 -> 127.0.0.4  (instance B2)
        and hands the message to the best MX that answers.

Every "host" is a real facteur instance on its own loopback address at
port 25, as in production: the SMTP client of A reaches MX hosts at port
25, so these tests need root (CI runs as root).  Nothing leaves 127.0.0.0/8.
"""
import os
import re
import shutil

import pytest

from conftest import (A_ADDR, B1_ADDR, B2_ADDR, IS_ROOT, dsn_parts, fred_reports, machin_instance, marc_maildir,
                      returned_headers, send_mail, truc_instance, wait_for)
from conftest_dns import dnsmasq_factory  # noqa: F401,F811  (fixture)

pytestmark = [
    pytest.mark.usefixtures("port25"),
    pytest.mark.skipif(not IS_ROOT, reason="binds 127.0.0.2-4 at port 25 (MX hosts are "
                       "reached at port 25): needs root, as in CI"),
    pytest.mark.skipif(shutil.which("dnsmasq") is None and not os.path.exists("/usr/sbin/dnsmasq"),
                       reason="dnsmasq (package dnsmasq-base) is not installed"),
]


def machin_dns(dnsmasq_factory):
    """dnsmasq publishing the seeds' picture: two MX of different
    preference for machin.test, truc.test's own server."""
    return dnsmasq_factory(
        mx=[("machin.test", "mx1.machin.test", 10), ("machin.test", "mx2.machin.test", 20),
            ("truc.test", "smtp.truc.test", 10)],
        hosts={"mx1.machin.test": B1_ADDR, "mx2.machin.test": B2_ADDR,
               "smtp.truc.test": A_ADDR})


def test_journey_preferred_mx_then_backup(facteur_factory, dnsmasq_factory):
    """fred@truc.test -> A -> best MX of machin.test (B1); with B1 stopped,
    the next message goes to the backup MX (B2).  Marc's mailbox holds the
    message with A's and B's Received: lines, the newest (B's) on top."""
    dns = machin_dns(dnsmasq_factory)
    b1 = machin_instance(facteur_factory, B1_ADDR, "mx1.machin.test")
    b2 = machin_instance(facteur_factory, B2_ADDR, "mx2.machin.test")
    a = truc_instance(facteur_factory, dns)

    qid = send_mail(A_ADDR, 25, "fred@truc.test", "marc@machin.test", "Bonjour Marc")
    a.wait_log(r"%s: to=<marc@machin\.test>, relay=mx1\.machin\.test\[127\.0\.0\.3\]:25, "
               r".*dsn=2\.\d\.\d, status=sent \(250 " % qid, timeout=60)
    got = wait_for(lambda: b1.maildir_parsed(marc_maildir(b1)), timeout=30,
                   what="the message in marc's Maildir on mx1")
    assert len(got) == 1
    assert b2.maildir_parsed(marc_maildir(b2)) == []
    msg = got[0]
    assert msg["Subject"] == "Bonjour Marc"
    received = [" ".join(str(r).split()) for r in msg.get_all("Received")]
    assert len(received) == 2, received
    # Newest on top: B1 received it from A (A greets as smtp.truc.test) ...
    assert re.match(r"from smtp\.truc\.test \(.*\[127\.0\.0\.\d+\]\) by mx1\.machin\.test "
                    r"\(.*\) with E?SMTP id \w+ for <marc@machin\.test>;", received[0]), received[0]
    # ... and below it A's line for fred's submission.
    assert re.match(r"from client\.test \(.*\[127\.0\.0\.1\]\) by smtp\.truc\.test ",
                    received[1]), received[1]
    # B1 logged where the message came from and delivered it to Marc.
    b1.wait_log(r"to=<marc@machin\.test>, relay=virtual, .*status=sent")

    # The preferred MX is down: A falls back to the next one.
    b1.stop()
    qid2 = send_mail(A_ADDR, 25, "fred@truc.test", "marc@machin.test", "Bonjour encore")
    a.wait_log(r"%s: to=<marc@machin\.test>, relay=mx2\.machin\.test\[127\.0\.0\.4\]:25, "
               r".*status=sent \(250 " % qid2, timeout=60)
    got2 = wait_for(lambda: b2.maildir_parsed(marc_maildir(b2)), timeout=30,
                    what="the message in marc's Maildir on mx2")
    assert [m["Subject"] for m in got2] == ["Bonjour encore"]
    received = [" ".join(str(r).split()) for r in got2[0].get_all("Received")]
    assert len(received) == 2, received
    assert "by mx2.machin.test " in received[0], received
    assert "by smtp.truc.test " in received[1], received
    # Nothing more reached mx1, nothing waits in A's queue, fred got no report.
    assert len(b1.maildir_messages(marc_maildir(b1))) == 1
    wait_for(lambda: "Mail queue is empty" in a.run("queue").stdout,
             timeout=10, what="A's queue to be empty")
    assert a.mbox_messages() == []


def test_journey_unknown_user_bounces_to_fred(facteur_factory, dnsmasq_factory):
    """Mail to an unknown user at machin.test: B refuses the recipient at
    RCPT (550 5.1.1), A logs status=bounced with B's reply and returns an
    RFC 3464 report to fred that Python's email package takes apart."""
    dns = machin_dns(dnsmasq_factory)
    machin_instance(facteur_factory, B1_ADDR, "mx1.machin.test")
    a = truc_instance(facteur_factory, dns)

    qid = send_mail(A_ADDR, 25, "fred@truc.test", "nobody@machin.test", "Pour personne",
                    body="Y a-t-il quelqu'un ?\n")
    line = a.wait_log(r"%s: to=<nobody@machin\.test>, relay=mx1\.machin\.test\[127\.0\.0\.3\]:25, "
                      r".*dsn=5\.1\.1, status=bounced \(" % qid, timeout=60)[0]
    # The remote reply is in the log (Postfix: "host H[A] said: 550 ...").
    assert "550" in line and "nobody@machin.test" in line, line
    assert re.search(r"host mx1\.machin\.test\[127\.0\.0\.3\] said: 550 5\.1\.1 ", line), line

    report = fred_reports(a)[0]
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert report["From"].addresses[0].username == "MAILER-DAEMON"
    assert report["To"].addresses[0].addr_spec == "fred@truc.test"
    text, blocks, original = dsn_parts(report)
    assert "nobody@machin.test" in text.get_content()
    per_msg, per_rcpt = blocks[0], blocks[1]
    assert re.fullmatch(r"dns; smtp\.truc\.test", per_msg["reporting-mta"]), per_msg
    assert "arrival-date" in per_msg
    assert per_rcpt["final-recipient"].lower() == "rfc822; nobody@machin.test"
    assert per_rcpt["action"] == "failed"
    assert per_rcpt["status"] == "5.1.1"
    assert per_rcpt["remote-mta"] == "dns; mx1.machin.test", per_rcpt
    diag = per_rcpt["diagnostic-code"]
    assert re.match(r"smtp; 550 5\.1\.1 .*nobody@machin\.test", diag), diag
    headers = returned_headers(original)
    assert headers["Subject"] == "Pour personne"
    assert headers["From"] == "fred@truc.test"
    # The report has the null sender (a report is never answered by one).
    assert report["Return-Path"] == "<>", report["Return-Path"]
    assert len(a.mbox_messages()) == 1
