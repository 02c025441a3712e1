"""The 250 is a promise: kill -9 of every facteur process in the middle of
many concurrent SMTP sessions; after restart every message that got a 250
is delivered (counted in the mailbox).  Messages in flight at the kill may
arrive too (no 250 was seen) or twice (at-least-once), never be lost."""
import os
import re
import shutil
import smtplib
import subprocess
import threading
import time

import pytest

from conftest import wait_for


def _sender(inst, worker, stop, accepted, lock):
    n = 0
    while not stop.is_set():
        n += 1
        tag = "w%d-m%d" % (worker, n)
        try:
            with smtplib.SMTP(inst.host, inst.smtp_port, timeout=10) as s:
                s.ehlo("load.test")
                s.mail("load@load.test")
                s.rcpt("alice@virtual.test")
                code, msg = s.data(("Subject: %s\r\nX-Tag: %s\r\n\r\nbody %s\r\n"
                                    % (tag, tag, tag)).encode())
                if code == 250:
                    with lock:
                        accepted.add(tag)
        except (OSError, smtplib.SMTPException):
            # The server died under us: no 250, no promise.
            time.sleep(0.05)


def test_kill9_during_concurrent_sessions(facteur):
    accepted = set()
    lock = threading.Lock()
    stop = threading.Event()
    workers = [threading.Thread(target=_sender, args=(facteur, i, stop, accepted, lock))
               for i in range(8)]
    for w in workers:
        w.start()
    wait_for(lambda: len(accepted) >= 40, timeout=120, what="40 accepted messages")
    facteur.kill9()          # every process of the instance, mid-session
    time.sleep(0.3)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    with lock:
        promised = set(accepted)
    assert len(promised) >= 40
    facteur.start()
    maildir = os.path.join(facteur.vmail_dir, "alice")

    def all_delivered():
        got = set(facteur.maildir_tags(maildir))
        return promised <= got
    wait_for(all_delivered, timeout=120, what="every accepted message delivered")
    # The queue drains: nothing stays stuck after recovery.
    wait_for(lambda: not facteur.queue_files("incoming") and not facteur.queue_files("active"),
             timeout=60, what="queue to drain")


def test_pflogsumm_counts(facteur):
    """pflogsumm reads facteur's log and counts received and delivered mail."""
    pflogsumm = shutil.which("pflogsumm")
    if pflogsumm is None:
        pytest.skip("pflogsumm not installed")
    for i in range(3):
        with smtplib.SMTP(facteur.host, facteur.smtp_port) as s:
            s.sendmail("a@example.net", ["alice@virtual.test", "bob@virtual.test"],
                       b"Subject: %d\r\n\r\nhello\r\n" % i)
    facteur.wait_log(r"status=sent", count=6)
    facteur.wait_log(r": removed", count=3)
    r = subprocess.run([pflogsumm, "--syslog-name=facteur", "-e", facteur.log_path],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    received = re.search(r"^\s*(\d+)\s+received", r.stdout, re.M)
    delivered = re.search(r"^\s*(\d+)\s+delivered", r.stdout, re.M)
    assert received and delivered, r.stdout
    assert int(received.group(1)) == 3
    assert int(delivered.group(1)) == 6
