"""The local delivery agent, end to end: mbox, Maildir, aliases, commands,
files, mailbox_command, and what mail readers make of the result."""
import os
import re
import shutil
import smtplib
import stat
import subprocess
import threading

import pytest

from conftest import IS_ROOT, wait_for


def send(inst, rcpts, body, sender="sender@remote.test", subject="test"):
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (
        sender, ", ".join(rcpts), subject, body))
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.sendmail(sender, rcpts, msg.encode())


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def shared_dir(inst, name):
    """A directory every identity may write (alias commands run as
    default_privs when facteur runs as root)."""
    d = os.path.join(inst.tmp, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o1777)
    return d


def test_mbox_system_user(facteur):
    body = "line one\r\nFrom the start of a line\r\n>From already quoted\r\nlast\r\n"
    send(facteur, "%s@mail.example.test" % facteur.user, body, subject="mbox test")
    facteur.wait_log(r"to=<%s@mail\.example\.test>, relay=local, .*dsn=2\.0\.0, "
                     r"status=sent \(delivered to mailbox\)" % facteur.user)
    path = facteur.mbox_path()
    text = read(path)
    # "From " line in asctime format, then the delivery headers.
    assert re.match(r"From sender@remote\.test (Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
                    r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", text), text[:200]
    lines = text.split("\n")
    assert lines[1] == "Return-Path: <sender@remote.test>"
    assert lines[2] == "X-Original-To: %s@mail.example.test" % facteur.user
    assert lines[3] == "Delivered-To: %s@mail.example.test" % facteur.user
    assert "\n>From the start of a line\n" in text
    assert "\n>From already quoted\n" in text  # Postfix's rule: only "From " is quoted
    assert text.endswith("last\n\n")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == facteur.user_pw.pw_uid
    assert not os.path.exists(path + ".lock")


def test_snail_reads_mbox(facteur):
    send(facteur, facteur.user + "@mail.example.test", "hello one\r\n", subject="first one")
    send(facteur, facteur.user + "@mail.example.test", "From me\r\nhello two\r\n",
         subject="second one")
    facteur.wait_log(r"status=sent \(delivered to mailbox\)", count=2)
    snail = shutil.which("s-nail")
    if snail is None:
        pytest.skip("s-nail is not installed")
    env = dict(os.environ, HOME=facteur.tmp, MAILRC="/dev/null")
    p = subprocess.run([snail, "-n", "-N", "-R", "-H", "-f", facteur.mbox_path()],
                       capture_output=True, env=env, timeout=30, stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    assert "first one" in out and "second one" in out, out + p.stderr.decode()
    assert len([l for l in out.splitlines() if "one" in l]) == 2, out


def test_alias_expansion_logs_orig_to(facteur):
    send(facteur, "root@mail.example.test", "to root\r\n")
    facteur.wait_log(r": to=<%s@mail\.example\.test>, orig_to=<root@mail\.example\.test>, "
                     r"relay=local, delay=[\d.]+, delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, "
                     r"dsn=2\.0\.0, status=sent \(delivered to mailbox\)" % facteur.user)
    text = read(facteur.mbox_path())
    assert "\nX-Original-To: root@mail.example.test\n" in text
    assert "\nDelivered-To: %s@mail.example.test\n" % facteur.user in text


def test_virtual_maildir(facteur):
    send(facteur, "alice@virtual.test", "to alice\r\nFrom here\r\n", subject="virt")
    facteur.wait_log(r"to=<alice@virtual\.test>, relay=virtual, .*status=sent "
                     r"\(delivered to maildir\)")
    md = os.path.join(facteur.vmail_dir, "alice")
    for sub in ("tmp", "new", "cur"):
        assert os.path.isdir(os.path.join(md, sub))
    assert os.listdir(os.path.join(md, "tmp")) == []
    msgs = facteur.maildir_messages(md)
    assert len(msgs) == 1
    name = os.path.basename(msgs[0])
    assert re.fullmatch(r"\d+\.M\d+P\d+Q\d+\.[^/:]+", name), name
    text = read(msgs[0])
    assert text.startswith("Return-Path: <sender@remote.test>\n")
    assert "Delivered-To: alice@virtual.test\n" in text
    assert "\nFrom here\n" in text  # no quoting in Maildir
    assert not text.startswith("From ")
    if IS_ROOT:
        assert os.stat(msgs[0]).st_uid == facteur.user_pw.pw_uid


def test_alias_command_and_file_targets(facteur_factory):
    inst = facteur_factory(start=False)
    out = shared_dir(inst, "out")
    inst.set_aliases("root: %s\n"
                     "runit: \"|cat > %s/cmd.out\"\n"
                     "tofile: %s/file.mbox\n"
                     "both: runit, tofile, %s\n" % (inst.user, out, out, inst.user))
    inst.start()
    send(inst, "both@mail.example.test", "payload for both\r\nFrom x\r\n")
    inst.wait_log(r"to=<runit@mail\.example\.test>, orig_to=<both@mail\.example\.test>, "
                  r"relay=local, .*status=sent \(delivered to command: cat > %s/cmd\.out\)"
                  % re.escape(out))
    inst.wait_log(r"to=<tofile@mail\.example\.test>, orig_to=<both@mail\.example\.test>, "
                  r".*status=sent \(delivered to file: %s/file\.mbox\)" % re.escape(out))
    inst.wait_log(r"to=<%s@mail\.example\.test>, orig_to=<both@mail\.example\.test>, "
                  r".*status=sent \(delivered to mailbox\)" % inst.user)
    cmd = read(os.path.join(out, "cmd.out"))
    assert cmd.startswith("From sender@remote.test ")
    assert "\nDelivered-To: runit@mail.example.test\n" in cmd
    assert "\nFrom x\n" in cmd  # commands get the message unquoted
    f = read(os.path.join(out, "file.mbox"))
    assert f.startswith("From sender@remote.test ")
    assert "\n>From x\n" in f and f.endswith("\n\n")
    assert "payload for both" in read(inst.mbox_path())


def test_unknown_user_in_alias_bounces(facteur_factory):
    inst = facteur_factory(start=False)
    inst.set_aliases("root: %s\nghost: nosuchuser4711\n" % inst.user)
    inst.start()
    send(inst, "ghost@mail.example.test", "nobody home\r\n")
    inst.wait_log(r"to=<nosuchuser4711@mail\.example\.test>, orig_to=<ghost@mail\.example\.test>,"
                  r" relay=local, .*dsn=5\.1\.1, status=bounced "
                  r"\(unknown user: \"nosuchuser4711\"\)")


def test_mailbox_command(facteur_factory):
    inst = facteur_factory(start=False)
    out = shared_dir(inst, "mc")
    inst.main_cf("mailbox_command = env > %s/env.txt; cat > %s/msg.txt" % (out, out))
    inst.start()
    send(inst, "%s@mail.example.test" % inst.user, "via command\r\n")
    inst.wait_log(r"to=<%s@mail\.example\.test>, relay=local, .*status=sent "
                  r"\(delivered to command: env > %s/env\.txt; cat > %s/msg\.txt\)"
                  % (inst.user, re.escape(out), re.escape(out)))
    env = dict(l.split("=", 1) for l in read(os.path.join(out, "env.txt")).splitlines()
               if "=" in l)
    assert env["USER"] == inst.user and env["LOGNAME"] == inst.user
    assert env["HOME"] == inst.user_pw.pw_dir
    assert env["RECIPIENT"] == "%s@mail.example.test" % inst.user
    assert env["SENDER"] == "sender@remote.test"
    assert env["LOCAL"] == inst.user
    assert env["DOMAIN"] == "mail.example.test"
    assert env["PATH"] == "/usr/bin:/bin"
    msg = read(os.path.join(out, "msg.txt"))
    assert msg.startswith("From sender@remote.test ") and "via command" in msg
    if IS_ROOT:
        assert os.stat(os.path.join(out, "msg.txt")).st_uid == inst.user_pw.pw_uid


def test_mailbox_command_tempfail_defers(facteur_factory):
    inst = facteur_factory(start=False)
    inst.main_cf("mailbox_command = exit 75")
    inst.start()
    send(inst, "%s@mail.example.test" % inst.user, "will defer\r\n")
    inst.wait_log(r"to=<%s@mail\.example\.test>, .*dsn=4\.3\.0, status=deferred "
                  r"\(Command died with status 75" % inst.user)


def test_concurrent_deliveries_to_one_mbox(facteur):
    n = 12
    errors = []

    def one(i):
        try:
            send(facteur, facteur.user + "@mail.example.test",
                 ("marker-%02d-begin\r\n" % i) + ("x" * 70 + "\r\n") * 200 +
                 ("marker-%02d-end\r\n" % i), subject="concurrent %d" % i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    facteur.wait_log(r"status=sent \(delivered to mailbox\)", count=n, timeout=60)
    text = read(facteur.mbox_path())
    parts = re.split(r"(?m)^From sender@remote\.test ", text)
    assert parts[0] == ""
    parts = parts[1:]
    assert len(parts) == n
    for p in parts:
        m = re.search(r"marker-(\d\d)-begin\n((?:x{70}\n){200})marker-(\d\d)-end\n\n\Z", p)
        assert m and m.group(1) == m.group(3), p[:300]
    assert sorted(re.findall(r"marker-(\d\d)-begin", text)) == ["%02d" % i for i in range(n)]
