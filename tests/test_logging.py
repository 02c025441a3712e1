"""Log lines: Postfix's shapes, and syslog_name for several instances."""
import re
import smtplib


def test_log_shapes(facteur):
    with smtplib.SMTP(facteur.host, facteur.smtp_port) as s:
        s.sendmail("a@example.net", ["alice@virtual.test"], b"Subject: x\r\n\r\ny\r\n")
    facteur.wait_log(r": removed")
    text = facteur.log_text()
    stamp = r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mail\.example\.test "
    qid = re.search(r"facteur/smtpd\[\d+\]: ([0-9A-F]+): client=localhost\[127\.0\.0\.1\]$",
                    text, re.M).group(1)
    for rx in [
        r"facteur/smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]$",
        r"facteur/smtpd\[\d+\]: %s: message-id=<[^>]+>$" % qid,
        r"facteur/qmgr\[\d+\]: %s: from=<a@example\.net>, size=\d+, nrcpt=1 \(queue active\)$" % qid,
        r"facteur/local\[\d+\]: %s: to=<alice@virtual\.test>, relay=virtual, delay=[\d.]+, "
        r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)$" % qid,
        r"facteur/qmgr\[\d+\]: %s: removed$" % qid,
        r"facteur/smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 "
        r"data=1 quit=1 commands=5$",
    ]:
        assert re.search(stamp + rx, text, re.M), rx


def test_syslog_name(facteur_factory):
    inst = facteur_factory(extra_main_cf="syslog_name = facteur-b")
    with smtplib.SMTP(inst.host, inst.smtp_port) as s:
        s.noop()
    inst.wait_log(r" facteur-b/smtpd\[\d+\]: connect from ")
    assert " facteur/smtpd[" not in inst.log_text()
