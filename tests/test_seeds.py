"""The journeys of the seeds (shared/seeds), end to end."""
import os
import re
import shutil
import smtplib
import socket
import subprocess

import pytest

from conftest import BUILD, IS_ROOT, run_cmd, wait_for


def smtp_dialogue(host, port, lines):
    """Send each line, return the list of replies (multi-line joined)."""
    replies = []
    with socket.create_connection((host, port), timeout=30) as s:
        f = s.makefile("rb")

        def reply():
            text = []
            while True:
                line = f.readline().decode()
                assert line, "connection closed"
                text.append(line.rstrip("\r\n"))
                if len(line) < 4 or line[3] != "-":
                    return "\n".join(text)

        replies.append(reply())
        for line in lines:
            s.sendall(line.encode() + b"\r\n")
            if line in ("Bonjour", "Comment ca va ?"):
                continue
            replies.append(reply())
    return replies


def test_seeds_manual_session(facteur):
    """The telnet session of seeds/000: EHLO, MAIL FROM, RCPT TO, DATA, QUIT."""
    r = smtp_dialogue(facteur.host, facteur.smtp_port, [
        "ehlo toto.com", "MAIL FROM: <toto@toto.com>", "RCPT TO: <root>", "DATA",
        "Bonjour", "Comment ca va ?", ".", "QUIT"])
    assert r[0].startswith("220 ")
    ehlo = r[1].split("\n")
    assert ehlo[0] == "250-mail.example.test"
    assert [l[4:] for l in ehlo[1:]] == [
        "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN"]
    assert ehlo[-1] == "250 DSN"
    assert r[2] == "250 2.1.0 Ok"
    assert r[3] == "250 2.1.5 Ok"
    assert r[4] == "354 End data with <CR><LF>.<CR><LF>"
    m = re.fullmatch(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]+)", r[5])
    assert m, r[5]
    assert r[6] == "221 2.0.0 Bye"
    qid = m.group(1)
    # root is an alias of the test user: the mail lands in the user's mbox.
    facteur.wait_log(r"%s: to=<%s@mail\.example\.test>, orig_to=<root(@mail\.example\.test)?>, "
                     r"relay=local, .*status=sent" % (qid, facteur.user))
    with open(facteur.mbox_path(), encoding="utf-8") as f:
        mbox = f.read()
    assert "Bonjour\nComment ca va ?\n" in mbox
    assert re.search(r"^From toto@toto\.com ", mbox, re.M)
    assert re.search(r"^X-Original-To: root(@mail\.example\.test)?$", mbox, re.M)


def _mail_command():
    for c in ("s-nail", "mail", "bsd-mailx"):
        p = shutil.which(c)
        if p:
            return p
    pytest.skip("no mail(1) program (s-nail) installed")


def test_seeds_first_local_test(facteur):
    """seeds/002 'Premier test': as an ordinary user, mail to root reaches
    the user the aliases name for root; mail(1) reads it from the mbox;
    the log shows orig_to=<root>."""
    mail = _mail_command()
    sendmail = os.path.join(BUILD, "sendmail")
    env = facteur.env()
    env["MAIL"] = facteur.mbox_path()
    r = run_cmd([mail, "-S", "mta=" + sendmail, "-S", "DEAD=/dev/null", "-S", "nosave",
                 "-s", "test interne", "root"], input="coucou\n", user=facteur.user, env=env)
    assert r.returncode == 0, r.stderr
    line = facteur.wait_log(r"to=<%s@mail\.example\.test>, orig_to=<root>, relay=local, "
                            r".*status=sent" % facteur.user)[0]
    qid = line.split("]: ")[1].split(":")[0]
    assert re.search(r"facteur/pickup\[\d+\]: %s: uid=%d from=<%s>"
                     % (qid, facteur.user_pw.pw_uid, facteur.user), facteur.log_text())
    # mail(1) lists and reads it from the mbox, as the seeds show.
    r = run_cmd([mail, "-R", "-H", "-f", facteur.mbox_path()], user=facteur.user, env=env)
    assert "test interne" in r.stdout, r.stdout + r.stderr
    r = run_cmd([mail, "-R", "-S", "DEAD=/dev/null", "-f", facteur.mbox_path()], input="Print 1\nq\n",
                user=facteur.user, env=env)
    assert "coucou" in r.stdout
    assert "X-Original-To: root" in r.stdout
    assert "Delivered-To: %s@mail.example.test" % facteur.user in r.stdout
    assert re.search(r"From: %s@mail\.example\.test \(" % facteur.user, r.stdout)


def test_relay_refused_outside_mynetworks(facteur_factory):
    """A client outside mynetworks cannot relay; local recipients work."""
    inst = facteur_factory(extra_main_cf="mynetworks = 127.0.0.1/32")
    with smtplib.SMTP(inst.host, inst.smtp_port, source_address=("127.0.0.7", 0)) as s:
        s.ehlo("outside.test")
        s.mail("spammer@outside.test")
        code, msg = s.rcpt("victim@elsewhere.test")
        assert code == 554, msg
        assert b"5.7.1" in msg and b"Relay access denied" in msg
        code, msg = s.rcpt("root@mail.example.test")
        assert code == 250
        code, msg = s.data(b"Subject: from outside\r\n\r\nhello\r\n")
        assert code == 250
    assert re.search(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.7\]: 554 5\.7\.1 "
                     r"<victim@elsewhere\.test>: Relay access denied; from=<spammer@outside\.test> "
                     r"to=<victim@elsewhere\.test> proto=ESMTP helo=<outside\.test>", inst.log_text())
    inst.wait_log(r"orig_to=<root@mail\.example\.test>, relay=local, .*status=sent")
    # The same relay from mynetworks is accepted (and waits in the queue).
    with smtplib.SMTP(inst.host, inst.smtp_port, source_address=("127.0.0.1", 0)) as s:
        s.ehlo("inside.test")
        s.mail("me@mail.example.test")
        code, _ = s.rcpt("friend@elsewhere.test")
        assert code == 250


def test_swaks_to_virtual_maildir(facteur):
    """The demo's check: swaks to a virtual user lands in the Maildir."""
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks not installed")
    r = run_cmd([swaks, "--server", "%s:%d" % (facteur.host, facteur.smtp_port),
                 "--from", "someone@example.net", "--to", "alice@virtual.test",
                 "--header", "Subject: swaks test", "--body", "via swaks"])
    assert r.returncode == 0, r.stdout + r.stderr
    facteur.wait_log(r"to=<alice@virtual\.test>, relay=virtual, .*status=sent")
    maildir = os.path.join(facteur.vmail_dir, "alice")
    msgs = wait_for(lambda: facteur.maildir_messages(maildir), what="maildir message")
    with open(msgs[0], encoding="utf-8") as f:
        text = f.read()
    assert "Subject: swaks test" in text and "via swaks" in text
    assert text.startswith("Return-Path: <someone@example.net>\n")
