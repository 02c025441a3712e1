"""valgrind on the daemons: one instance of the plain build runs under
memcheck (which follows the roles the master forks) through a session that
touches every role; every process must end with no memory errors and no
definitely lost blocks."""
import glob
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import subprocess

import pytest

import conftest
import test_tls
from conftest import ROOT, free_port, run_cmd, wait_for

PLAIN = os.path.join(ROOT, "build", "facteur")


@pytest.mark.skipif(shutil.which("valgrind") is None or not os.path.exists(PLAIN),
                    reason="valgrind or the plain build (build/facteur) missing")
def test_daemons_valgrind_clean(facteur_factory, monkeypatch):
    inst = facteur_factory(start=False)
    # POP3 and IMAP too: login processes, the privileged services and a
    # session of each, which run as forked children as well.
    pop3_port, imap_port = free_port(), free_port()
    h = subprocess.run([PLAIN, "pw"], input="vg pass\n", capture_output=True, text=True,
                       check=True, timeout=60).stdout.strip()
    pw = inst.user_pw
    passwd = inst.write_file("passwd", "alice@virtual.test:%s:%d:%d::\n"
                             % (h, pw.pw_uid, pw.pw_gid), mode=0o600)
    cert, key = test_tls.make_cert(inst)
    inst.main_cf("pop3_listen = 127.0.0.1:%d\nimap_listen = 127.0.0.1:%d\n"
                 "auth_passwd_file = %s\nsmtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n"
                 % (pop3_port, imap_port, passwd, cert, key))
    vgdir = os.path.join(inst.tmp, "valgrind")
    os.makedirs(vgdir)
    os.chmod(vgdir, 0o1777)
    monkeypatch.setattr(conftest, "FACTEUR", PLAIN)
    inst.start_prefix = ["valgrind", "--leak-check=full",
                         "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                         "--track-fds=no", "--log-file=%s/vg.%%p" % vgdir]
    inst.start()
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=60) as s:
        s.starttls(context=test_tls.client_context())  # STARTTLS under memcheck too
        # A virtual mailbox, an alias to a system user, and another domain
        # (the SMTP client's DNS lookup fails: deferred).
        s.sendmail("v@example.net", ["alice@virtual.test", "root@mail.example.test",
                                     "far@elsewhere.test"],
                   b"Subject: valgrind\r\n\r\nunder memcheck\r\n")
    r = inst.run("sendmail", "root", input="Subject: local\n\nvia sendmail\n", user=inst.user)
    assert r.returncode == 0, r.stderr
    inst.wait_log(r"status=sent", count=3, timeout=120)
    inst.wait_log(r"to=<far@elsewhere\.test>.*status=deferred", timeout=120)
    inst.wait_log(r": removed", count=1, timeout=120)
    _access_session(pop3_port, imap_port)
    inst.stop()
    reports = glob.glob(os.path.join(vgdir, "vg.*"))
    assert reports, "valgrind wrote no report"
    bad = []
    for path in reports:
        with open(path, errors="replace") as f:
            text = f.read()
        # Every process valgrind followed ends its report with a summary.
        if ("ERROR SUMMARY: 0 errors" not in text
                or re.search(r"definitely lost: [1-9]", text)
                or re.search(r"Invalid (read|write)|uninitialised", text)):
            bad.append("%s:\n%s" % (path, text[-3000:]))
    assert not bad, "\n".join(bad)
    # The master, smtpd, qmgr, pickup, local and its workers, the access
    # services and their sessions: several processes were followed.
    assert len(reports) >= 9, reports


def _greets(port, prefix):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(60)
            return s.recv(100).startswith(prefix)
    except OSError:
        return False


def _access_session(pop3_port, imap_port):
    wait_for(lambda: _greets(imap_port, b"* OK"), timeout=120, what="IMAP under valgrind")
    m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=120)
    assert m.login("alice@virtual.test", "vg pass")[0] == "OK"
    assert m.select("INBOX") == ("OK", [b"1"])
    typ, data = m.fetch("1", "(FLAGS ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER] BODY[])")
    assert typ == "OK" and b"valgrind" in data[0][0], data
    assert m.search("UTF-8", "TEXT", "memcheck") == ("OK", [b"1"])
    assert m.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert m.copy("1", "Trash")[0] == "OK"
    assert m.list()[0] == "OK"
    m.logout()
    wait_for(lambda: _greets(pop3_port, b"+OK"), timeout=120, what="POP3 under valgrind")
    p = poplib.POP3("127.0.0.1", pop3_port, timeout=120)
    p.user("alice@virtual.test")
    p.pass_("vg pass")
    assert p.stat()[0] == 1
    assert b"under memcheck" in p.retr(1)[1]
    p.quit()
