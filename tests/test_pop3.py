"""POP3 (issue 4 item 3): pop3-login + pop3 roles driven with poplib
against a real `facteur start -f` instance.  Virtual users authenticate
through an auth_passwd_file whose hashes come from `facteur pw`."""
import base64
import glob
import os
import signal
import poplib
import socket
import time

import pytest

import conftest
from conftest import free_port, send_mail, wait_for

PASSWORD = "s3cret pass"


@pytest.fixture
def pop3_factory(checked_factory):
    """facteur_factory, and after the test: no sanitizer report."""
    return checked_factory


def pop3_instance(factory, aliases=None, extra=""):
    inst = factory(start=False, aliases=aliases)
    inst.pop3_port = free_port()
    path = conftest.write_access_passwd(inst, PASSWORD)
    inst.main_cf("pop3_listen = 127.0.0.1:%d\nauth_passwd_file = %s\n%s" %
                 (inst.pop3_port, path, extra))
    inst.start()
    wait_for(lambda: _port_open(inst), timeout=20, what="POP3 listener")
    return inst


def _port_open(inst):
    try:
        with socket.create_connection(("127.0.0.1", inst.pop3_port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"+OK")
    except OSError:
        return False


def connect(inst, source=None):
    if source is None:
        return poplib.POP3("127.0.0.1", inst.pop3_port, timeout=30)
    # poplib has no source_address: build the socket ourselves.
    orig = poplib.POP3._create_socket

    def create(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(source, 0))
    poplib.POP3._create_socket = create
    try:
        return poplib.POP3("127.0.0.1", inst.pop3_port, timeout=30)
    finally:
        poplib.POP3._create_socket = orig


def login(inst, user="alice@virtual.test", source=None):
    p = connect(inst, source)
    p.user(user)
    p.pass_(PASSWORD)
    return p


def alice_dir(inst):
    return os.path.join(inst.vmail_dir, "alice")


def maildir_files(path):
    return sorted(glob.glob(os.path.join(path, "new", "*")) +
                  glob.glob(os.path.join(path, "cur", "*")))


def deliver(inst, rcpt, subject, body="Bonjour\n.leading dot\n", count=1):
    send_mail("127.0.0.1", inst.smtp_port, "sender@example.test", rcpt, subject, body=body)


def wait_messages(path, n):
    wait_for(lambda: len(maildir_files(path)) >= n, timeout=30, what="%d message(s)" % n)


def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_greeting_capa_and_user_pass(pop3_factory):
    inst = pop3_instance(pop3_factory)
    deliver(inst, "alice@virtual.test", "first")
    wait_messages(alice_dir(inst), 1)
    p = connect(inst)
    assert p.getwelcome() == b"+OK facteur POP3 ready."
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"):
        assert c in caps, caps
    assert caps["SASL"] == ["PLAIN", "LOGIN"]
    p.user("alice@virtual.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    [path] = maildir_files(alice_dir(inst))
    with open(path, "rb") as f:
        raw = f.read()
    expected = crlf(raw)
    count, size = p.stat()
    assert (count, size) == (1, len(expected))
    resp, listing, _ = p.list()
    assert listing == [b"1 %d" % len(expected)]
    resp, lines, octets = p.retr(1)
    assert resp == b"+OK %d octets" % len(expected)
    # poplib removed the dot-stuffing and the CRLFs.
    assert b"\r\n".join(lines) + b"\r\n" == expected
    assert b".leading dot" in lines
    resp, top, _ = p.top(1, 0)
    head = expected.split(b"\r\n\r\n", 1)[0]
    assert b"\r\n".join(top) == head + b"\r\n"
    resp, top1, _ = p.top(1, 1)
    assert top1[-1] == b"Bonjour"
    assert p.quit().startswith(b"+OK Logging out.")
    # retr counts the bytes sent: one more for the stuffed dot.
    inst.wait_log(r"pop3\(alice@virtual\.test\)\[\d+\]: Disconnected: Logged out top=2/\d+, "
                  r"retr=1/%d, del=0/1, size=%d" % (len(expected) + 1, len(expected)))
    assert len(maildir_files(alice_dir(inst))) == 1


def test_auth_plain_login_and_wrong_password(pop3_factory):
    inst = pop3_instance(pop3_factory)
    p = connect(inst)
    ir = base64.b64encode(b"\0alice@virtual.test\0" + PASSWORD.encode()).decode()
    assert p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK Logged in")
    assert p.stat() == (0, 0)  # Maildir created on first login
    assert os.path.isdir(os.path.join(alice_dir(inst), "cur"))
    p.quit()
    # AUTH LOGIN without initial response.
    p = connect(inst)
    p._putcmd("AUTH LOGIN")
    assert p._getline()[0].startswith(b"+ ")
    p._putcmd(base64.b64encode(b"bob@virtual.test").decode())
    assert p._getline()[0].startswith(b"+ ")
    assert p._shortcmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(b"+OK")
    p.quit()
    # Wrong password: refused, logged, session kept.
    p = connect(inst)
    p.user("alice@virtual.test")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_("wrong")
    assert b"[AUTH] Authentication failed." in e.value.args[0]
    inst.wait_log(r"pop3-login.*auth failed: user=<alice@virtual.test>, rip=127\.0\.0\.1")
    p.user("alice@virtual.test")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_dele_quit_uidl_stable_and_in_use(pop3_factory):
    inst = pop3_instance(pop3_factory)
    for i in range(3):
        deliver(inst, "alice@virtual.test", "m%d" % i)
    wait_messages(alice_dir(inst), 3)
    p = login(inst)
    uidl1 = p.uidl()[1]
    assert len(uidl1) == 3
    # A second concurrent session: IN-USE.
    q = connect(inst)
    q.user("alice@virtual.test")
    with pytest.raises(poplib.error_proto) as e:
        q.pass_(PASSWORD)
    assert b"[IN-USE]" in e.value.args[0]
    assert p.dele(2).startswith(b"+OK")
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(2)
    p.quit()
    wait_for(lambda: len(maildir_files(alice_dir(inst))) == 2, timeout=10, what="expunge")
    p = login(inst)
    uidl2 = p.uidl()[1]
    assert [u.split()[1] for u in uidl2] == [uidl1[0].split()[1], uidl1[2].split()[1]]
    p.quit()
    inst.stop()
    inst.proc = None
    inst.start()
    wait_for(lambda: _port_open(inst), timeout=20, what="POP3 listener")
    p = login(inst)
    assert p.uidl()[1] == uidl2
    p.quit()


def test_root_mail_read_from_other_loopback(pop3_factory):
    # The seeds' scenario.  The alias target is a virtual user so that the
    # test needs no system password (system accounts are not modified).
    inst = pop3_instance(pop3_factory,
                         aliases="postmaster: root\nroot: alice@virtual.test\n")
    send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
              "for root", body="to root\n")
    wait_messages(alice_dir(inst), 1)
    p = login(inst, source="127.0.0.7")
    resp, lines, _ = p.retr(1)
    assert b"Subject: for root" in lines and b"to root" in lines
    p.quit()
    inst.wait_log(r"Login: user=<alice@virtual.test>, rip=127\.0\.0\.7")


def test_system_user_mbox(pop3_factory):
    # root's mail goes to the system user's mbox (default aliases); the
    # password comes from a passwd-file entry named like the system user
    # (no system account is changed).  DELE + QUIT rewrite the mbox.
    inst = pop3_factory(start=False)
    inst.pop3_port = free_port()
    path = inst.write_file("passwd", "%s:%s\n" % (inst.user, conftest.pw_hash(PASSWORD)), mode=0o600)
    inst.main_cf("pop3_listen = 127.0.0.1:%d\nauth_passwd_file = %s\n" % (inst.pop3_port, path))
    inst.start()
    wait_for(lambda: _port_open(inst), timeout=20, what="POP3 listener")
    for subject in ("mbox mail", "second"):
        send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
                  subject, body="in the mbox\n")
    wait_for(lambda: len(inst.mbox_messages()) == 2, timeout=30, what="mbox delivery")
    p = login(inst, user=inst.user, source="127.0.0.7")
    assert p.stat()[0] == 2
    resp, lines, _ = p.retr(1)
    assert b"Subject: mbox mail" in lines and b"in the mbox" in lines
    uidl = p.uidl()[1]
    assert p.dele(1).startswith(b"+OK")
    p.quit()
    assert [str(m["Subject"]) for m in inst.mbox_messages()] == ["second"]
    # The UIDL of the message kept does not change.
    p = login(inst, user=inst.user)
    assert [u.split()[1] for u in p.uidl()[1]] == [uidl[1].split()[1]]
    p.quit()


def test_protocol_errors(pop3_factory):
    inst = pop3_instance(pop3_factory)
    p = connect(inst)
    for cmd, text in (("STAT", b"-ERR [AUTH] Log in first."),
                      ("PASS x", b"-ERR No username given."),
                      ("AUTH CRAM-MD5", b"-ERR Unsupported authentication mechanism."),
                      ("XYZZY", b"-ERR Unknown command.")):
        p._putcmd(cmd)
        assert p._getline()[0] == text, cmd
    # AUTH cancelled with "*" (RFC 5034 section 4).
    p._putcmd("AUTH PLAIN")
    assert p._getline()[0].startswith(b"+")
    p._putcmd("*")
    assert p._getline()[0].startswith(b"-ERR")
    # A line of 3000 octets closes the session.
    p._putcmd("NOOP " + "x" * 3000)
    assert p._getline()[0].startswith(b"-ERR")
    p.close()
    # Pipelined login and commands in one write reach the user's session.
    with socket.create_connection(("127.0.0.1", inst.pop3_port), timeout=10) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"USER alice@virtual.test\r\nPASS %s\r\nSTAT\r\nQUIT\r\n" % PASSWORD.encode())
        got = [f.readline() for _ in range(4)]
        assert got[0].startswith(b"+OK") and got[1].startswith(b"+OK Logged in")
        assert got[2] == b"+OK 0 0\r\n" and got[3] == b"+OK Logging out.\r\n"


def test_reload_keeps_pop3(pop3_factory):
    # SIGHUP: the listeners are kept (not rebound while the old processes
    # still hold them) and new pop3/pop3-login processes take over.
    inst = pop3_instance(pop3_factory)
    p = login(inst)
    p.quit()
    os.kill(inst.proc.pid, signal.SIGHUP)
    inst.wait_log(r"master.*reload -- version")

    def works():
        try:
            q = login(inst)
            q.quit()
            return True
        except (OSError, poplib.error_proto):
            return False
    wait_for(works, timeout=20, what="POP3 login after reload")
    assert "could not be bound" not in inst.log_text()
