"""Issue 5 item 4: header_checks and body_checks, with the seeds'
examples as written: drop the Received: lines (our own included, which is
the point: "the step through your MTA is erased"), reject a sender by its
From: header, log a header with WARN; body_checks REJECT and WARN."""
import smtplib


def _instance(factory, header_rules="", body_rules=""):
    inst = factory(start=False)
    extra = ""
    if header_rules:
        extra += "header_checks = regexp:%s\n" % inst.write_file("header_checks", header_rules)
    if body_rules:
        extra += "body_checks = regexp:%s\n" % inst.write_file("body_checks", body_rules)
    inst.main_cf(extra)
    inst.start()
    return inst


def _data(inst, message, sender="someone@outside.test"):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail(sender)[0] == 250
        assert s.rcpt("root@mail.example.test")[0] == 250
        code, msg = s.docmd("DATA")
        assert code == 354
        s.send(message.replace(b"\n", b"\r\n") + b"\r\n.\r\n")
        return s.getreply()


def test_seeds_ignore_received(facteur_factory):
    inst = _instance(facteur_factory, "/^Received:*/  IGNORE\n")
    code, _ = _data(inst, b"Received: from chris (chris.maison.mrs [192.168.0.10])\n"
                          b"\tby gw1.maison.mrs (Postfix) with SMTP id A38181105F\n"
                          b"Subject: erased\n\nbody\n")
    assert code == 250
    inst.wait_log(r"status=sent")
    [msg] = inst.mbox_messages()
    assert msg["Subject"] == "erased"
    assert msg.get_all("Received") is None, msg.get_all("Received")


def test_seeds_reject_from_and_warn(facteur_factory):
    inst = _instance(facteur_factory,
                     "/^from: * chose@public\\.com$/ REJECT\n"
                     "/^Subject:.*promo/ WARN promotion seen\n")
    code, msg = _data(inst, b"From: chose@public.com\nSubject: hello\n\nbody\n")
    assert code == 550 and msg.startswith(b"5.7.1"), msg
    inst.wait_log(r"reject: header From: chose@public\.com from localhost\[127\.0\.0\.1\]; "
                  r"from=<someone@outside\.test> to=<root@mail\.example\.test> proto=ESMTP "
                  r"helo=<client\.test>: 5\.7\.1")
    assert inst.mbox_messages() == []
    code, _ = _data(inst, b"From: ami@public.com\nSubject: big promo\n\nbody\n")
    assert code == 250
    inst.wait_log(r"warning: header Subject: big promo from localhost\[127\.0\.0\.1\]; "
                  r"from=<someone@outside\.test> to=<root@mail\.example\.test> proto=ESMTP "
                  r"helo=<client\.test>: promotion seen")
    inst.wait_log(r"status=sent")
    assert [m["Subject"] for m in inst.mbox_messages()] == ["big promo"]


def test_header_prepend_replace_and_body_checks(facteur_factory):
    inst = _instance(facteur_factory,
                     "/^X-Mailer: (.*)/ REPLACE X-Old-Mailer: $1\n"
                     "/^Subject:/ PREPEND X-Checked: yes\n",
                     "/cheap pills/ REJECT 5.7.1 No pills here\n"
                     "/^unsubscribe/ WARN\n")
    code, msg = _data(inst, b"Subject: s\nX-Mailer: old 1.0\n\nfirst line\ncheap pills today\n")
    assert code == 550 and b"No pills here" in msg, msg
    inst.wait_log(r"reject: body cheap pills today from localhost")
    code, _ = _data(inst, b"Subject: s\nX-Mailer: old 1.0\n\nunsubscribe me\n")
    assert code == 250
    inst.wait_log(r"warning: body unsubscribe me from localhost")
    inst.wait_log(r"status=sent")
    [m] = inst.mbox_messages()
    assert m["X-Old-Mailer"] == "old 1.0" and m["X-Mailer"] is None
    assert m["X-Checked"] == "yes"


def test_discard_and_hold(facteur_factory):
    inst = _instance(facteur_factory,
                     "/^Subject: drop me/ DISCARD spam\n"
                     "/^Subject: keep me/ HOLD for review\n")
    code, msg = _data(inst, b"Subject: drop me\n\nbody\n")
    assert code == 250 and b"queued as" in msg
    inst.wait_log(r"discard: header Subject: drop me from localhost\[127\.0\.0\.1\];.*: spam")
    code, msg = _data(inst, b"Subject: keep me\n\nbody\n")
    assert code == 250
    inst.wait_log(r"hold: header Subject: keep me from localhost\[127\.0\.0\.1\];.*: for review")
    assert len(inst.queue_files("hold")) == 1
    assert inst.queue_files("incoming") == [] and inst.queue_files("active") == []
    assert inst.mbox_messages() == []
    # Released by the administrator, it is delivered.
    qid = inst.queue_files("hold")[0]
    inst.run("queue", "release", qid, check=True)
    inst.wait_log(r"status=sent")
    assert [m["Subject"] for m in inst.mbox_messages()] == ["keep me"]


def test_redirect(facteur_factory):
    inst = _instance(facteur_factory, "/^Subject: for alice/ REDIRECT alice@virtual.test\n")
    code, _ = _data(inst, b"Subject: for alice\n\nredirected body\n")
    assert code == 250
    inst.wait_log(r"redirect: header Subject: for alice from localhost\[127\.0\.0\.1\];"
                  r".*: alice@virtual\.test")
    inst.wait_log(r"to=<alice@virtual\.test>, orig_to=<root@mail\.example\.test>, "
                  r"relay=virtual, .*status=sent")
    assert inst.mbox_messages() == []  # root's mailbox: nothing
    [m] = inst.maildir_parsed(inst.vmail_dir + "/alice")
    assert m["Subject"] == "for alice"
