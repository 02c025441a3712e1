"""Delivery status notifications (RFC 3464), end to end: bounces come back
to the sender as multipart/report messages that Python's email package
parses, with Postfix's rules for NOTIFY, RET, the null sender, double
bounces, expiry, delay warnings and success notices."""
import re
import smtplib
import time

from conftest import dsn_parts, returned_headers, wait_for

GHOST_ALIASES = ("postmaster: root\nMAILER-DAEMON: postmaster\nroot: %s\n"
                 "ghost: nosuchuser4711\n")


def submit(inst, sender, rcpts, subject="test", mail_options=(), rcpt_options=(),
           body="Bonjour\r\n"):
    """Send one message; returns the queue id of the 250 reply."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (
        sender or "MAILER-DAEMON@remote.test", ", ".join(rcpts), subject, body)).encode()
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail(sender, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r, list(rcpt_options))
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
    return re.search(rb"queued as ([0-9A-Za-z]+)", text).group(1).decode()


def reports(inst, subject):
    return [m for m in inst.mbox_messages() if m["Subject"] == subject]


def wait_report(inst, subject, timeout=30):
    return wait_for(lambda: reports(inst, subject), timeout=timeout,
                    what="report %r in the sender's mailbox" % subject)[0]


def ghost_instance(facteur_factory, extra=""):
    inst = facteur_factory(extra_main_cf=extra, start=False)
    inst.set_aliases(GHOST_ALIASES % inst.user)
    inst.start()
    return inst


def test_alias_to_unknown_user_bounces_to_sender(facteur_factory):
    inst = ghost_instance(facteur_factory)
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "ghost@mail.example.test", subject="lost letter")
    lines = inst.wait_log(r"%s: sender non-delivery notification: ([0-9A-Z]+)" % qid)
    report_id = lines[0].rsplit(": ", 1)[1]
    msg = wait_report(inst, "Undelivered Mail Returned to Sender")
    assert msg["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.test"
    assert msg["To"] == sender
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_param("boundary").startswith(qid + ".")
    text, blocks, original = dsn_parts(msg)
    body = text.get_content()
    assert "This is the mail system at host mail.example.test." in body
    # The local agent reports the alias it was asked to deliver (the
    # queue file's recipient) with the reason of its target.
    assert "<ghost@mail.example.test>: unknown user: \"nosuchuser4711\"" in body
    assert blocks[0]["reporting-mta"] == "dns; mail.example.test"
    assert blocks[0]["x-facteur-queue-id"] == qid
    assert blocks[0]["x-facteur-sender"] == "rfc822; " + sender
    assert "arrival-date" in blocks[0]
    r = blocks[1]
    assert r["final-recipient"] == "rfc822; ghost@mail.example.test"
    assert r["action"] == "failed"
    assert r["status"] == "5.1.1"
    assert r["diagnostic-code"] == 'X-Facteur; unknown user: "nosuchuser4711"'
    assert original.get_content_type() == "message/rfc822"
    returned = returned_headers(original)
    assert returned["Subject"] == "lost letter"
    assert "Bonjour" in original.get_payload()[0].get_content()
    # The report travels with the null sender and is delivered; the
    # notification is logged before the original is removed.
    log = inst.log_text()
    assert re.search(r"%s: from=<>, size=\d+, nrcpt=1 \(queue active\)" % report_id, log)
    inst.wait_log(r"%s: to=<%s>, .*status=sent" % (report_id, re.escape(sender)))
    assert log.index("sender non-delivery notification: " + report_id) < \
        log.index("%s: removed" % qid)
    # One report, not one per attempt.
    time.sleep(1.5)
    assert len(reports(inst, "Undelivered Mail Returned to Sender")) == 1


def test_one_report_for_several_bounced_recipients(facteur_factory):
    inst = facteur_factory(start=False)
    inst.set_aliases(GHOST_ALIASES % inst.user + "ghost2: nosuchuser4712\n")
    inst.start()
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, ["ghost@mail.example.test", "ghost2@mail.example.test"])
    inst.wait_log(r"%s: sender non-delivery notification" % qid)
    msg = wait_report(inst, "Undelivered Mail Returned to Sender")
    _, blocks, _ = dsn_parts(msg)
    finals = sorted(b["final-recipient"] for b in blocks[1:])
    assert finals == ["rfc822; ghost2@mail.example.test", "rfc822; ghost@mail.example.test"]
    assert all(b["action"] == "failed" and b["status"] == "5.1.1" for b in blocks[1:])
    assert inst.log_text().count("%s: sender non-delivery notification" % qid) == 1


def test_ret_hdrs_and_orcpt(facteur_factory):
    inst = ghost_instance(facteur_factory)
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "ghost@mail.example.test", subject="headers only",
                 mail_options=["RET=HDRS", "ENVID=env-4711"],
                 rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;first@orcpt.test"],
                 body="secret body\r\n")
    inst.wait_log(r"%s: sender non-delivery notification" % qid)
    msg = wait_report(inst, "Undelivered Mail Returned to Sender")
    _, blocks, original = dsn_parts(msg)
    assert blocks[0]["original-envelope-id"] == "env-4711"
    assert blocks[1]["original-recipient"] == "rfc822; first@orcpt.test"
    assert original.get_content_type() == "text/rfc822-headers"
    assert returned_headers(original)["Subject"] == "headers only"
    assert "secret body" not in msg.as_string()


def test_notify_never_sends_no_report(facteur_factory):
    inst = ghost_instance(facteur_factory)
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "ghost@mail.example.test", rcpt_options=["NOTIFY=NEVER"])
    inst.wait_log(r"%s: to=<nosuchuser4711@mail\.example\.test>, .*status=bounced" % qid)
    inst.wait_log(r"%s: removed" % qid)
    time.sleep(1)
    assert "notification" not in inst.log_text()
    assert inst.mbox_messages() == []


def test_null_sender_gets_no_report(facteur_factory):
    inst = ghost_instance(facteur_factory)
    qid = submit(inst, "", "ghost@mail.example.test")
    inst.wait_log(r"%s: to=<nosuchuser4711@mail\.example\.test>, .*status=bounced" % qid)
    inst.wait_log(r"%s: removed" % qid)
    time.sleep(1)
    assert "notification" not in inst.log_text()
    assert inst.mbox_messages() == []


def test_double_bounce_goes_to_postmaster_with_2bounce(facteur_factory):
    # postmaster -> root -> the test user: the double bounce lands there.
    inst = ghost_instance(facteur_factory, "notify_classes = resource, software, 2bounce\n")
    qid = submit(inst, "", "ghost@mail.example.test", subject="bounce of a bounce")
    lines = inst.wait_log(r"%s: postmaster non-delivery notification: ([0-9A-Z]+)" % qid)
    report_id = lines[0].rsplit(": ", 1)[1]
    inst.wait_log(r"%s: from=<double-bounce@mail\.example\.test>" % report_id)
    msg = wait_report(inst, "Postmaster Copy: Undelivered Mail")
    assert msg["To"] == "postmaster@mail.example.test"
    _, blocks, original = dsn_parts(msg)
    assert blocks[0]["x-facteur-sender"] == "rfc822;"
    assert blocks[1]["action"] == "failed"
    assert original.get_content_type() == "text/rfc822-headers"
    assert "sender non-delivery notification" not in inst.log_text()


def test_expired_message_is_returned(facteur_factory):
    # Remote mail cannot leave (no DNS, or no SMTP client): deferred until
    # maximal_queue_lifetime, then returned.
    inst = facteur_factory(extra_main_cf="maximal_queue_lifetime = 2s\n")
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "someone@elsewhere.example.org", subject="too late")
    inst.wait_log(r"%s: from=<%s>, status=expired, returned to sender"
                  % (qid, re.escape(sender)), timeout=30)
    inst.wait_log(r"%s: sender non-delivery notification" % qid)
    msg = wait_report(inst, "Undelivered Mail Returned to Sender")
    _, blocks, original = dsn_parts(msg)
    r = blocks[1]
    assert r["final-recipient"] == "rfc822; someone@elsewhere.example.org"
    assert r["action"] == "failed"
    assert re.match(r"^4\.\d+\.\d+$", r["status"]), r["status"]
    assert "diagnostic-code" in r
    assert returned_headers(original)["Subject"] == "too late"
    wait_for(lambda: qid not in inst.queue_files("deferred") + inst.queue_files("active"),
             what="expired message gone")


def test_delay_warning_sent_once(facteur_factory):
    inst = facteur_factory(extra_main_cf="delay_warning_time = 1s\n")
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "someone@elsewhere.example.org", subject="slow one")
    inst.wait_log(r"%s: sender delay notification: [0-9A-Z]+" % qid, timeout=30)
    msg = wait_report(inst, "Delayed Mail (still being retried)")
    text, blocks, original = dsn_parts(msg)
    assert "THIS IS A WARNING ONLY" in text.get_content()
    r = blocks[1]
    assert r["action"] == "delayed"
    assert r["status"].startswith("4.")
    assert "will-retry-until" in r
    assert original.get_content_type() == "text/rfc822-headers"
    # Later deferrals send nothing more; the message stays queued.
    n = inst.log_text().count("%s: to=<someone@elsewhere.example.org>" % qid)
    inst.wait_log(r"%s: to=<someone@elsewhere\.example\.org>.*status=deferred" % qid,
                  count=n + 2, timeout=30)
    assert inst.log_text().count("%s: sender delay notification" % qid) == 1
    assert len(reports(inst, "Delayed Mail (still being retried)")) == 1


def test_notify_delay_absent_means_no_warning_when_never(facteur_factory):
    inst = facteur_factory(extra_main_cf="delay_warning_time = 1s\n")
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "someone@elsewhere.example.org",
                 rcpt_options=["NOTIFY=FAILURE"])
    inst.wait_log(r"%s: to=<someone@elsewhere\.example\.org>.*status=deferred" % qid, count=3,
                  timeout=30)
    assert "delay notification" not in inst.log_text()


def test_success_notice(facteur):
    sender = "%s@mail.example.test" % facteur.user
    qid = submit(facteur, sender, sender, subject="did it arrive",
                 rcpt_options=["NOTIFY=SUCCESS"])
    facteur.wait_log(r"%s: sender delivery status notification: [0-9A-Z]+" % qid)
    msg = wait_report(facteur, "Successful Mail Delivery Report")
    _, blocks, original = dsn_parts(msg)
    assert blocks[1]["action"] == "delivered"
    assert blocks[1]["status"].startswith("2.")
    assert original.get_content_type() == "text/rfc822-headers"
    assert [m for m in facteur.mbox_messages() if m["Subject"] == "did it arrive"]


def test_crash_between_report_and_final_state(facteur_factory):
    """kill -9 after the report is committed but before the bounced
    recipient's final state is written: after the restart the recipient
    bounces again and the sender gets a second report (at-least-once),
    never none; the original is then removed."""
    import os
    import pytest
    from conftest import run_cmd, FACTEUR
    if "crash hooks" not in run_cmd([FACTEUR, "version"]).stdout:
        pytest.skip("build without -Dcrash_hooks=true")
    inst = facteur_factory(start=False)
    inst.set_aliases(GHOST_ALIASES % inst.user)
    os.environ["FACTEUR_CRASH_AT"] = "qmgr-after-report"
    try:
        inst.start()
    finally:
        del os.environ["FACTEUR_CRASH_AT"]
    sender = "%s@mail.example.test" % inst.user
    qid = submit(inst, sender, "ghost@mail.example.test", subject="crash")
    inst.wait_log(r"%s: sender non-delivery notification" % qid)
    time.sleep(0.5)
    inst.kill9()
    assert qid in inst.queue_files("active")
    inst.start()
    inst.wait_log(r"%s: removed" % qid)
    wait_for(lambda: len(reports(inst, "Undelivered Mail Returned to Sender")) == 2,
             what="both reports delivered")
