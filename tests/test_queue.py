"""The queue manager seen from outside: deferral of mail for other domains,
quarantine of corrupt queue files, and recovery of active/ after kill -9.

Queue files are written here in facteur's format (mail/qfile.h): records of
one type byte, a 4-byte big-endian length and the payload."""
import os
import re
import smtplib
import struct
import time

from conftest import IS_ROOT, MAIL_OWNER, wait_for

REMOTE_REASON = ("Host or domain name not found. Name service error for "
                 "name=elsewhere.example.org type=MX: Host not found, try again")


def _record(rtype, payload):
    return rtype.encode() + struct.pack(">I", len(payload)) + payload


def queue_file_bytes(sender, rcpts, content, arrival=None):
    arrival = time.time() if arrival is None else arrival
    data = _record("V", b"facteur-queue 1")
    data += _record("T", b"%d.000000" % int(arrival))
    data += _record("S", sender.encode())
    for r in rcpts:
        data += _record("R", r.encode() + b"\0\0\0")
    data += _record("X", b"")
    data += _record("C", content)
    data += _record("E", b"")
    return data


def put_queue_file(inst, sub, queue_id, data):
    """Write a file into QDIR/sub the way a crash would leave it: complete,
    owned by the mail owner."""
    d = os.path.join(inst.queue_dir, sub)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, queue_id)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    if IS_ROOT:
        import pwd
        pw = pwd.getpwnam(MAIL_OWNER)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.rename(tmp, path)
    return path


def send(inst, rcpts, sender="sender@example.test", body="hello\r\n", subject="t"):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.example.test")
        msg = "Subject: %s\r\nX-Tag: %s\r\n\r\n%s" % (subject, subject, body)
        refused = s.sendmail(sender, rcpts, msg.encode())
        assert not refused


def test_remote_mail_is_deferred(facteur):
    # 127.0.0.1 is in mynetworks: relaying is allowed.  The test
    # configuration's DNS server (a closed loopback port) never answers: the
    # SMTP client defers with a temporary DNS failure and the mail waits.
    send(facteur, ["someone@elsewhere.example.org"], subject="remote1")
    lines = facteur.wait_log(r"to=<someone@elsewhere\.example\.org>, relay=none, "
                             r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/0/0, dsn=4\.4\.3, "
                             r"status=deferred \(" + re.escape(REMOTE_REASON) + r"\)")
    queue_id = lines[0].split(": ")[1].strip()
    assert re.match(r"^[0-9A-Z]+$", queue_id)
    wait_for(lambda: queue_id in facteur.queue_files("deferred"),
             what="message in deferred/")
    log = facteur.log_text()
    assert re.search(r"facteur/qmgr\[\d+\]: %s: from=<sender@example\.test>, size=\d+, "
                     r"nrcpt=1 \(queue active\)" % queue_id, log)
    assert "%s: removed" % queue_id not in log
    # It is retried with the backoff (1s..4s in the test configuration)
    # and stays queued.
    facteur.wait_log(r"%s: to=<someone@elsewhere\.example\.org>.*status=deferred" % queue_id,
                     count=2, timeout=30)
    wait_for(lambda: queue_id in facteur.queue_files("deferred"), what="still deferred")


def test_corrupt_active_file_goes_to_corrupt(facteur_factory):
    inst = facteur_factory(start=False)
    put_queue_file(inst, "active", "0BADF11E0001", b"garbage, not a queue file\n")
    # A complete envelope without its end record (torn write).
    good = queue_file_bytes("a@example.test", ["alice@virtual.test"], b"Subject: x\n\nx\n")
    put_queue_file(inst, "active", "0BADF11E0002", good[:-5])
    inst.start()
    wait_for(lambda: {"0BADF11E0001", "0BADF11E0002"} <= set(inst.queue_files("corrupt")),
             what="files moved to corrupt/")
    assert "0BADF11E0001" not in inst.queue_files("active")
    inst.wait_log(r"warning: 0BADF11E0001: corrupt queue file: .*; moved to corrupt/")
    inst.wait_log(r"warning: 0BADF11E0002: corrupt queue file: no end record; moved to corrupt/")


def test_kill9_then_restart_delivers_active(facteur):
    maildir = os.path.join(facteur.vmail_dir, "alice")
    tags = ["k9-%d" % i for i in range(20)]
    for t in tags:
        send(facteur, ["alice@virtual.test"], subject=t)
    # Kill every process while the queue manager and the local agent are
    # busy with these messages.
    facteur.kill9()
    # Also what a crash between "queue active" and delivery leaves: a
    # complete file in active/.
    crafted = queue_file_bytes("a@example.test", ["alice@virtual.test"],
                               b"Subject: crafted\nX-Tag: crafted-active\n\nbody\n")
    put_queue_file(facteur, "active", "0C4A5E0000A1", crafted)
    facteur.start()
    want = set(tags) | {"crafted-active"}
    wait_for(lambda: want <= set(facteur.maildir_tags(maildir)), timeout=60,
             what="every message delivered after restart")
    wait_for(lambda: not facteur.queue_files("active") and not facteur.queue_files("incoming"),
             timeout=30, what="active/ and incoming/ empty")
    facteur.wait_log(r"0C4A5E0000A1: removed")
