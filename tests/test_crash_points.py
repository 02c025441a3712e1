"""Crash points of a new message's commit (ARCHITECTURE.md, "Durability").

The sanitizer build used by `make test` has test-only crash hooks: with
FACTEUR_CRASH_AT=POINT in its environment, smtpd kills itself with SIGKILL
at that point of the commit.  For each point we check what the client saw
and what the next start does with the files on disk.  A separate test
traces one session's system calls to prove the order: file fsync, rename,
directory fsync, then the 250 reply."""
import os
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import FACTEUR, run_cmd, wait_for


def _has_crash_hooks():
    r = run_cmd([FACTEUR, "version"])
    return "crash hooks" in r.stdout


needs_hooks = pytest.mark.skipif(not _has_crash_hooks(),
                                 reason="build without -Dcrash_hooks=true")


def _send(inst, tag):
    """Send one message; return the reply code of DATA or None if the
    connection died."""
    try:
        with smtplib.SMTP(inst.host, inst.smtp_port, timeout=20) as s:
            s.ehlo("crash.test")
            s.mail("c@crash.test")
            s.rcpt("alice@virtual.test")
            code, _ = s.data(("Subject: %s\r\nX-Tag: %s\r\n\r\nbody\r\n" % (tag, tag)).encode())
            return code
    except (OSError, smtplib.SMTPException):
        return None


def _maildir_tags(inst):
    return inst.maildir_tags(os.path.join(inst.vmail_dir, "alice"))


@needs_hooks
@pytest.mark.parametrize("point,published", [
    ("before-fsync", False),
    ("before-rename", False),
    ("before-dirsync", True),
    ("after-dirsync", True),
])
def test_crash_during_commit(facteur_factory, point, published):
    inst = facteur_factory(start=False)
    os.environ["FACTEUR_CRASH_AT"] = point
    try:
        inst.start()
    finally:
        del os.environ["FACTEUR_CRASH_AT"]
    code = _send(inst, point)
    # smtpd died inside the commit: the client never saw a 250.
    assert code is None or code >= 400, code
    inst.kill9()
    tmp = os.path.join(inst.queue_dir, "tmp")
    incoming = os.listdir(os.path.join(inst.queue_dir, "incoming"))
    if published:
        assert len(incoming) == 1
    else:
        assert incoming == []
        assert len(os.listdir(tmp)) == 1  # the unpublished file is still in tmp/
    inst.start()
    # The master empties tmp/ at start; a published file is delivered once.
    assert os.listdir(tmp) == []
    if published:
        wait_for(lambda: _maildir_tags(inst) == [point], timeout=60,
                 what="the published message to be delivered")
        inst.wait_log(r": removed")
    else:
        assert _send(inst, "after") == 250
        wait_for(lambda: _maildir_tags(inst) == ["after"], timeout=60,
                 what="the next message delivered")
        assert point not in _maildir_tags(inst)


def test_fsync_rename_dirsync_then_250(facteur):
    """strace one smtpd: fsync(file) < rename(tmp -> incoming) <
    fsync(incoming/) < write("250 2.0.0 Ok: queued")."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    # smtpd's pid, from its first log line.
    with smtplib.SMTP(facteur.host, facteur.smtp_port) as s:
        s.noop()
    line = facteur.wait_log(r"facteur/smtpd\[\d+\]: connect from")[0]
    pid = re.search(r"facteur/smtpd\[(\d+)\]", line).group(1)
    out = os.path.join(facteur.tmp, "strace.out")
    tracer = subprocess.Popen([strace, "-f", "-tt", "-e", "trace=openat,fsync,fdatasync,rename,renameat,renameat2,write,sendto,sendmsg,writev",
                               "-s", "80", "-o", out, "-p", pid],
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # strace attached
        with smtplib.SMTP(facteur.host, facteur.smtp_port) as s:
            s.sendmail("t@trace.test", ["alice@virtual.test"], b"Subject: trace\r\n\r\nx\r\n")
        wait_for(lambda: "Ok: queued" in open(out).read(), timeout=20, what="traced 250")
    finally:
        tracer.terminate()
        tracer.wait(timeout=10)
    calls = open(out).read().splitlines()
    fds = {}
    order = []
    for c in calls:
        m = re.search(r'openat\(AT_FDCWD, "([^"]+)", ([^)]*)\) = (\d+)', c)
        if m:
            fds[m.group(3)] = m.group(1)
        m = re.search(r"\bfsync\((\d+)\)", c)
        if m:
            order.append(("fsync", fds.get(m.group(1), "?")))
        m = re.search(r'rename(?:at2?)?\(.*"([^"]+/tmp/[^"]+)".*"([^"]+/incoming/[^"]+)"', c)
        if m:
            order.append(("rename", m.group(2)))
        if "250 2.0.0 Ok: queued as" in c:
            order.append(("reply", "250"))
    kinds = [k for k, _ in order]
    assert "rename" in kinds and "reply" in kinds, order
    i_rename = kinds.index("rename")
    i_reply = kinds.index("reply")
    file_syncs = [i for i, (k, p) in enumerate(order) if k == "fsync" and "/tmp/" in p]
    dir_syncs = [i for i, (k, p) in enumerate(order) if k == "fsync" and p.endswith("/incoming")]
    assert file_syncs and file_syncs[0] < i_rename, order
    assert dir_syncs and i_rename < dir_syncs[0] < i_reply, order
