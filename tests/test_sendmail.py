"""`facteur sendmail` (and the sendmail/mailq names): local submission
through the maildrop directory, picked up by the running facteur.

Run as root, the commands are run as the ordinary test user (no setuid or
setgid binary is involved): the pickup learns the user from the maildrop
file's owner."""
import os
import re
import stat
import subprocess

from conftest import BUILD, FACTEUR, IS_ROOT, run_cmd, wait_for


def sendmail(inst, args, text, user=None):
    return inst.run("sendmail", *args, input=text, user=user or inst.user)


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def pickup_qid(inst, uid, sender):
    line = inst.wait_log(r"facteur/pickup\[\d+\]: [0-9A-Z]+: uid=%d from=<%s>"
                         % (uid, re.escape(sender)))[-1]
    return line.split("]: ")[1].split(":")[0]


def test_sendmail_root_through_aliases(facteur):
    """echo coucou | facteur sendmail root: the aliases send it to the
    test user; the log keeps orig_to=<root>, pickup logs uid= and from=."""
    r = sendmail(facteur, ["root"], "Subject: test interne\n\ncoucou\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    uid = facteur.user_pw.pw_uid
    qid = pickup_qid(facteur, uid, facteur.user)
    facteur.wait_log(r"%s: message-id=<[^>]+@mail\.example\.test>" % qid)
    facteur.wait_log(r"%s: to=<%s@mail\.example\.test>, orig_to=<root>, relay=local, .*"
                     r"status=sent" % (qid, facteur.user))
    text = read(facteur.mbox_path())
    assert "\ncoucou\n" in text
    assert re.search(r"\nReceived: by mail\.example\.test \(facteur, from userid %d\)\n"
                     r"\tid %s; " % (uid, qid), text), text
    assert "\nSubject: test interne\n" in text
    assert re.search(r"\nMessage-Id: <\d{14}\.%s@mail\.example\.test>\n" % qid, text)
    assert re.search(r"\nDate: \w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", text)
    assert re.search(r"\nFrom: %s@mail\.example\.test" % facteur.user, text)
    # The maildrop file is gone once picked up.
    wait_for(lambda: not os.listdir(os.path.join(facteur.queue_dir, "maildrop")),
             what="maildrop/ empty")


def test_maildrop_directory_protects_users(facteur_factory):
    """While facteur is stopped the message waits in maildrop/: a file
    owned by the user, not listable by others; it is delivered at start."""
    inst = facteur_factory(start=False)
    inst.start()
    inst.stop()
    r = sendmail(inst, ["root"], "Subject: waits\n\nwhile stopped\n")
    assert r.returncode == 0, r.stderr
    md = os.path.join(inst.queue_dir, "maildrop")
    st = os.stat(md)
    assert stat.S_IMODE(st.st_mode) == 0o1733
    names = os.listdir(md)
    assert len(names) == 1 and re.match(r"^[0-9a-f]{32}$", names[0])
    fst = os.stat(os.path.join(md, names[0]))
    assert stat.S_IMODE(fst.st_mode) == 0o644
    assert fst.st_uid == inst.user_pw.pw_uid
    if IS_ROOT:
        r = run_cmd(["ls", md], user=inst.user)
        assert r.returncode != 0
    inst.start()
    inst.wait_log(r"to=<%s@mail\.example\.test>, orig_to=<root>, .*status=sent" % inst.user)
    assert "while stopped" in read(inst.mbox_path())


def test_sendmail_t_extracts_and_removes_bcc(facteur):
    msg = ("To: root\nCc: Someone <%s@mail.example.test>\nBcc: alice@virtual.test\n"
           "Subject: extract\n\nbody -t\n" % facteur.user)
    r = sendmail(facteur, ["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    facteur.wait_log(r"to=<alice@virtual\.test>, .*status=sent")
    facteur.wait_log(r"to=<%s@mail\.example\.test>, .*status=sent" % facteur.user)
    maildir = os.path.join(facteur.vmail_dir, "alice", "new")
    wait_for(lambda: os.path.isdir(maildir) and os.listdir(maildir), what="maildir message")
    for text in (read(os.path.join(maildir, os.listdir(maildir)[0])), read(facteur.mbox_path())):
        assert "body -t" in text
        assert "Bcc:" not in text and "alice@virtual.test" not in text.split("\n\n")[0] \
            .replace("Delivered-To: alice@virtual.test", "") \
            .replace("X-Original-To: alice@virtual.test", "")


def test_sendmail_t_without_recipients_fails(facteur):
    r = sendmail(facteur, ["-t"], "Subject: nobody\n\nx\n")
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "sendmail: fatal: %s(%d): No recipient addresses found in message header" % (
        facteur.user, facteur.user_pw.pw_uid) in r.stderr
    assert os.listdir(os.path.join(facteur.queue_dir, "maildrop")) == []


def test_sendmail_f_and_F(facteur):
    r = sendmail(facteur, ["-f", "chris@example.test", "-F", "Christian Caléca", "root"],
                 "Subject: sender\n\nfrom -f\n")
    assert r.returncode == 0, r.stderr
    qid = pickup_qid(facteur, facteur.user_pw.pw_uid, "chris@example.test")
    facteur.wait_log(r"%s: from=<chris@example\.test>, size=\d+, nrcpt=1" % qid)
    facteur.wait_log(r"%s: to=<%s@mail\.example\.test>, orig_to=<root>.*status=sent"
                     % (qid, facteur.user))
    text = read(facteur.mbox_path())
    assert "\nFrom: chris@example.test (Christian Caléca)\n" in text


def test_sendmail_dot_and_crlf(facteur):
    r = sendmail(facteur, ["root"], "Subject: dot\r\n\r\nline1\r\n.\r\nafter the dot\r\n")
    assert r.returncode == 0, r.stderr
    facteur.wait_log(r"orig_to=<root>.*status=sent")
    text = read(facteur.mbox_path())
    assert "\nline1\n" in text and "after the dot" not in text and "\r" not in text
    r = sendmail(facteur, ["-oi", "root"], "Subject: dot2\n\nline1\n.\nafter the dot\n")
    assert r.returncode == 0, r.stderr
    facteur.wait_log(r"orig_to=<root>.*status=sent", count=2)
    assert "\n.\nafter the dot\n" in read(facteur.mbox_path())


def test_sendmail_usage_errors(facteur):
    r = sendmail(facteur, ["-y", "root"], "x\n")
    assert r.returncode == 64 and r.stderr.startswith("sendmail: fatal: "), r.stderr
    r = sendmail(facteur, ["-bz"], "x\n")
    assert r.returncode == 64 and "unsupported: -bz" in r.stderr
    r = sendmail(facteur, ["-N", "sometimes", "root"], "x\n")
    assert r.returncode == 64


def test_sendmail_size_limit(facteur_factory):
    inst = facteur_factory(extra_main_cf="message_size_limit = 1000\n")
    r = sendmail(inst, ["root"], "Subject: big\n\n" + "x" * 2000 + "\n")
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "sendmail: fatal: %s(%d): message file too big" % (
        inst.user, inst.user_pw.pw_uid) in r.stderr
    assert os.listdir(os.path.join(inst.queue_dir, "maildrop")) == []


def test_sendmail_bs_session(facteur):
    p = subprocess.Popen([FACTEUR, "-c", facteur.config_dir, "sendmail", "-bs"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    dialogue = (b"EHLO client.test\r\nMAIL FROM:<bs@example.test>\r\n"
                b"RCPT TO:<root>\r\nDATA\r\nSubject: bs\r\n\r\n..dot stuffed\r\nend\r\n.\r\n"
                b"RSET\r\nNOOP\r\nRCPT TO:<x>\r\nDATA\r\nFOO\r\nQUIT\r\n")
    out, _ = p.communicate(dialogue, timeout=30)
    assert p.returncode == 0
    codes = [l[:4] for l in out.decode().split("\r\n") if l]
    assert codes[0] == "220 "
    assert "250 " in codes[1:8]
    replies = [l for l in out.decode().split("\r\n") if l and not l.startswith("250-")]
    assert [r[:3] for r in replies] == ["220", "250", "250", "250", "354", "250", "250",
                                        "250", "503", "503", "502", "221"], replies
    facteur.wait_log(r"uid=\d+ from=<bs@example\.test>")
    facteur.wait_log(r"orig_to=<root>.*status=sent")
    text = read(facteur.mbox_path())
    assert "\n.dot stuffed\nend\n" in text


def test_sendmail_bp_is_mailq(facteur):
    r = facteur.run("sendmail", "-bp")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Mail queue is empty\n"
    mailq = os.path.join(BUILD, "mailq")
    if os.path.exists(mailq):
        r = run_cmd([mailq], env=facteur.env())
        assert r.stdout == "Mail queue is empty\n", r.stderr


def test_sendmail_name_and_mail_command(facteur):
    """Through the build/sendmail link, as mail(1) calls it."""
    sm = os.path.join(BUILD, "sendmail")
    if not os.path.exists(sm):
        import pytest
        pytest.skip("no build/sendmail link")
    r = run_cmd([sm, "-oi", "-t"], input="To: root\nSubject: via link\n\nlinked\n",
                user=facteur.user, env=facteur.env())
    assert r.returncode == 0, r.stderr
    facteur.wait_log(r"orig_to=<root>.*status=sent")
    assert "linked" in read(facteur.mbox_path())
    for mail in ("s-nail", "mail"):
        path = subprocess.run(["sh", "-c", "command -v " + mail], capture_output=True,
                              text=True).stdout.strip()
        if path:
            env = facteur.env()
            r = run_cmd([path, "-S", "mta=" + sm, "-S", "DEAD=/dev/null", "-S", "nosave",
                         "-s", "via s-nail", "root"], input="from s-nail\n", user=facteur.user,
                        env=env)
            assert r.returncode == 0, r.stderr
            facteur.wait_log(r"orig_to=<root>.*status=sent", count=2)
            assert "from s-nail" in read(facteur.mbox_path())
            break
