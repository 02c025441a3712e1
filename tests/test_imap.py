"""IMAP (issue 4 item 4): the imap-login and imap roles of a real
`facteur start -f` instance, driven with imaplib and raw sockets.  These
tests cover what is around the session: greeting and capabilities, LOGIN
and AUTHENTICATE (SASL-IR, continuation, cancel), failures logged and
throttled, pipelined commands handed over with the login, the identity of
the processes, limits, reload.  The commands of the logged-in state are
covered by the cmocka session tests (src/imapd/) and by real clients in
test_mail_clients.py."""
import base64
import email
import imaplib
import os
import re
import socket
import subprocess

import pytest

import conftest
from conftest import IS_ROOT, free_port, send_mail, wait_for

PASSWORD = "s3cret pass"


@pytest.fixture
def imap_factory(checked_factory):
    """facteur_factory, and after the test: no sanitizer report."""
    return checked_factory


def imap_instance(factory, aliases=None, extra="", system_user=False):
    inst = factory(start=False, aliases=aliases)
    inst.imap_port = free_port()
    # With system_user, a passwd-file entry named like the system user:
    # its mailbox is the system user's mbox (no system account is changed).
    path = conftest.write_access_passwd(inst, PASSWORD,
                                        extra_users=(inst.user,) if system_user else ())
    inst.main_cf("imap_listen = 127.0.0.1:%d\nauth_passwd_file = %s\n%s" %
                 (inst.imap_port, path, extra))
    inst.start()
    wait_for(lambda: _port_open(inst), timeout=20, what="IMAP listener")
    return inst


def _port_open(inst):
    try:
        with socket.create_connection(("127.0.0.1", inst.imap_port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(200).startswith(b"* OK")
    except OSError:
        return False


def connect(inst, source=None):
    if source is None:
        return imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=30)
    orig = imaplib.IMAP4._create_socket

    def create(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(source, 0))
    imaplib.IMAP4._create_socket = create
    try:
        return imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=30)
    finally:
        imaplib.IMAP4._create_socket = orig


def login(inst, user="alice@virtual.test", source=None):
    m = connect(inst, source)
    typ, _ = m.login(user, PASSWORD)
    assert typ == "OK"
    return m


def alice_dir(inst):
    return os.path.join(inst.vmail_dir, "alice")


def list_name(line):
    """The mailbox name of a LIST answer: an atom or a quoted string."""
    m = re.match(rb'\([^)]*\) (?:"[^"]*"|NIL) (.*)$', line)
    name = m.group(1)
    return name[1:-1] if name.startswith(b'"') else name


class Raw:
    """A line-oriented raw IMAP connection."""

    def __init__(self, inst):
        self.s = socket.create_connection(("127.0.0.1", inst.imap_port), timeout=30)
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()

    def send(self, data):
        self.s.sendall(data)

    def tagged(self, tag):
        """Lines up to and including the tagged answer."""
        lines = []
        while True:
            line = self.f.readline()
            assert line, "connection closed; got %r" % lines
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def close(self):
        self.f.close()
        self.s.close()


def test_greeting_capabilities_login_logout(imap_factory):
    inst = imap_instance(imap_factory)
    send_mail("127.0.0.1", inst.smtp_port, "sender@example.test", "alice@virtual.test",
              "hello imap", body="first message\n")
    wait_for(lambda: len(os.listdir(os.path.join(alice_dir(inst), "new"))) == 1
             if os.path.isdir(os.path.join(alice_dir(inst), "new")) else False,
             timeout=30, what="delivery")
    m = connect(inst)
    assert m.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1")
    for cap in ("IMAP4REV1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "AUTH=PLAIN"):
        assert cap in m.capabilities, m.capabilities
    typ, data = m.login("alice@virtual.test", PASSWORD)
    assert typ == "OK" and b"Logged in" in data[0]
    typ, caps = m.capability()
    for cap in (b"UIDPLUS", b"MOVE", b"NAMESPACE", b"SPECIAL-USE", b"UNSELECT", b"CHILDREN"):
        assert cap in caps[0], caps
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject: hello imap" in data[0][1]
    typ, data = m.list()
    names = [list_name(d) for d in data]
    assert names[0] == b"INBOX"
    for special, attr in ((b"Drafts", b"\\Drafts"), (b"Sent", b"\\Sent"),
                          (b"Trash", b"\\Trash"), (b"Junk", b"\\Junk")):
        [line] = [d for d in data if list_name(d) == special]
        assert attr in line, line
    assert m.logout()[0] == "BYE"
    inst.wait_log(r"imap\[\d+\]: Login: user=<alice@virtual.test>, rip=127\.0\.0\.1")
    inst.wait_log(r"imap\(alice@virtual\.test\)\[\d+\]: Logged out in=\d+ out=\d+ rip=127\.0\.0\.1")
    # The Maildir++ folders exist on disk, as Dovecot lays them out.
    for name in (".Drafts", ".Sent", ".Trash", ".Junk"):
        assert os.path.isdir(os.path.join(alice_dir(inst), name, "cur")), name


def test_authenticate_plain_login_and_failures(imap_factory):
    inst = imap_instance(imap_factory)
    # SASL-IR (RFC 4959).
    r = Raw(inst)
    ir = base64.b64encode(b"\0alice@virtual.test\0" + PASSWORD.encode())
    r.send(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert r.tagged("a1")[-1].startswith(b"a1 OK")
    r.send(b"a2 LOGOUT\r\n")
    assert r.tagged("a2")[-1].startswith(b"a2 OK")
    r.close()
    # AUTHENTICATE LOGIN with continuations.
    r = Raw(inst)
    r.send(b"b1 AUTHENTICATE LOGIN\r\n")
    assert r.f.readline().startswith(b"+ ")
    r.send(base64.b64encode(b"bob@virtual.test") + b"\r\n")
    assert r.f.readline().startswith(b"+ ")
    r.send(base64.b64encode(PASSWORD.encode()) + b"\r\n")
    assert r.tagged("b1")[-1].startswith(b"b1 OK")
    r.close()
    # Cancelled exchange (RFC 3501 6.2.2: "*").
    r = Raw(inst)
    r.send(b"c1 AUTHENTICATE PLAIN\r\n")
    assert r.f.readline().startswith(b"+")
    r.send(b"*\r\n")
    assert r.tagged("c1")[-1].startswith(b"c1 BAD")
    # Wrong password: NO, logged; the session goes on and a right one works.
    r.send(b'c2 LOGIN "alice@virtual.test" "wrong"\r\n')
    assert r.tagged("c2")[-1] == b"c2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    inst.wait_log(r"imap-login.*auth failed: user=<alice@virtual.test>, rip=127\.0\.0\.1")
    # A literal password (LITERAL+ and synchronizing).
    pw = PASSWORD.encode()
    r.send(b"c3 LOGIN {18+}\r\nalice@virtual.test {%d}\r\n" % len(pw))
    assert r.f.readline().startswith(b"+ ")
    r.send(pw + b"\r\n")
    assert r.tagged("c3")[-1].startswith(b"c3 OK")
    r.close()


def test_prelogin_errors_and_limits(imap_factory):
    inst = imap_instance(imap_factory)
    r = Raw(inst)
    for cmd, answer in ((b"d1 SELECT INBOX", b"d1 BAD Please log in first."),
                        (b"d2 XYZZY", b"d2 BAD Unknown command."),
                        (b"d3 AUTHENTICATE CRAM-MD5", b"d3 NO Unsupported authentication mechanism."),
                        (b"d4 LOGIN onlyone", b"d4 BAD LOGIN expects a user name and a password.")):
        r.send(cmd + b"\r\n")
        assert r.tagged(cmd.split()[0].decode())[-1].rstrip(b"\r\n") == answer, cmd
    r.send(b"d5 ID (\"name\" \"pytest\")\r\n")
    lines = r.tagged("d5")
    assert lines[0].startswith(b"* ID (") and lines[-1].startswith(b"d5 OK")
    # A line longer than the login limit closes the connection.
    # (all of it read by the server before it closes: no reset)
    r.send(b"d6 NOOP " + b"x" * 9000 + b"\r\n")
    rest = r.f.read()
    assert b"* BYE" in rest
    r.close()
    # Too many invalid commands in a row.
    r = Raw(inst)
    r.send(b"".join(b"e%d XYZZY\r\n" % i for i in range(12)))
    rest = r.f.read()
    assert b"* BYE Too many invalid IMAP commands." in rest
    r.close()


def test_pipelined_commands_follow_the_login(imap_factory):
    inst = imap_instance(imap_factory)
    r = Raw(inst)
    r.send(b'p1 LOGIN "alice@virtual.test" "%s"\r\np2 SELECT INBOX\r\np3 LOGOUT\r\n'
           % PASSWORD.encode())
    lines = r.tagged("p1")
    assert lines[-1].startswith(b"p1 OK [CAPABILITY IMAP4rev1")
    lines = r.tagged("p2")
    assert b"* 0 EXISTS\r\n" in lines and lines[-1].startswith(b"p2 OK [READ-WRITE]")
    lines = r.tagged("p3")
    assert lines[0].startswith(b"* BYE")
    r.close()


def _proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return fields["Name"].strip(), int(fields["Uid"].split()[1])


def _facteur_procs(name):
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.mark.skipif(not IS_ROOT, reason="process identities differ only when run as root")
def test_processes_run_as_mail_owner_and_mailbox_owner(imap_factory):
    import pwd
    inst = imap_instance(imap_factory)
    owner = pwd.getpwnam(conftest.MAIL_OWNER).pw_uid
    m = login(inst)
    m.select("INBOX")
    # The instance's imap-login runs as mail_owner; the session process as
    # the mailbox owner (virtual_uid_maps).
    mine = set(_group_pids(inst))
    logins = [p for p in _facteur_procs("facteur/imap-lo") if p in mine]
    assert logins and all(_proc_status(p)[1] == owner for p in logins)
    sessions = [p for p in _facteur_procs("facteur/imap") if p in mine]
    uids = sorted(_proc_status(p)[1] for p in sessions)
    # The imap service itself (root) and one session (the user).
    assert 0 in uids and inst.user_pw.pw_uid in uids, uids
    m.logout()


def _group_pids(inst):
    pgid = os.getpgid(inst.proc.pid)
    out = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_mbox_user_inbox_and_folders(imap_factory):
    # root's mail goes to the system user's mbox; its folders go to
    # imap_mbox_directory (per instance in the tests).
    inst = imap_instance(imap_factory, system_user=True)
    send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
              "mbox over imap", body="in the mbox\n")
    wait_for(lambda: len(inst.mbox_messages()) == 1, timeout=30, what="mbox delivery")
    m = login(inst, user=inst.user, source="127.0.0.7")
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = m.fetch("1", "(BODY[])")
    msg = email.message_from_bytes(data[0][1])
    assert msg["Subject"] == "mbox over imap"
    typ, data = m.list()
    assert any(list_name(d) == b"Sent" and b"\\Sent" in d for d in data), data
    typ, data = m.copy("1", "Sent")
    assert typ == "OK"
    m.store("1", "+FLAGS", "\\Deleted")
    m.expunge()
    m.logout()
    assert len(inst.mbox_messages()) == 0
    folder = os.path.join(inst.mbox_folders_dir, inst.user, "Sent")
    with open(folder, "rb") as f:
        assert b"Subject: mbox over imap" in f.read()


def test_idle_sees_delivery(imap_factory):
    inst = imap_instance(imap_factory)
    m = login(inst)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+ ")
    send_mail("127.0.0.1", inst.smtp_port, "sender@example.test", "alice@virtual.test",
              "while idling", body="wake up\n")
    m.sock.settimeout(90)  # generous: the test must not depend on speed
    line = m.readline()
    while line.startswith(b"* ") and b"EXISTS" not in line:
        line = m.readline()
    assert line == b"* 1 EXISTS\r\n"
    m.send(b"DONE\r\n")
    line = m.readline()
    while not line.startswith(tag):
        line = m.readline()
    assert line.startswith(tag + b" OK")
    m.logout()


def test_reload_keeps_imap(imap_factory):
    inst = imap_instance(imap_factory)
    m = login(inst)
    m.select("INBOX")
    inst.run("reload", check=True)
    inst.wait_log(r"reload -- version")
    # The session in progress goes on; new logins work.
    assert m.noop()[0] == "OK"
    wait_for(lambda: _port_open(inst), timeout=20, what="IMAP listener after reload")
    n = login(inst, user="bob@virtual.test")
    assert n.select("INBOX")[0] == "OK"
    n.logout()
    m.logout()


def test_session_limits(imap_factory):
    # imap_max_sessions = 1: one connection waiting to log in, one
    # logged-in session.
    inst = imap_instance(imap_factory, extra="imap_max_sessions = 1\n")

    def first():
        # The listener probe of imap_instance may still count until the
        # login process has seen it close.
        r = Raw(inst)
        if r.greeting.startswith(b"* OK"):
            return r
        r.close()
        return None
    waiting = wait_for(first, timeout=30, what="a free connection slot")
    second = socket.create_connection(("127.0.0.1", inst.imap_port), timeout=30)
    assert second.makefile("rb").readline() == b"* BYE [UNAVAILABLE] Too many connections.\r\n"
    second.close()
    # Logged in, the session leaves the login process: the next connection
    # is served, but a second session is refused.
    waiting.send(b'l1 LOGIN "alice@virtual.test" "%s"\r\n' % PASSWORD.encode())
    assert waiting.tagged("l1")[-1].startswith(b"l1 OK")
    r = wait_for(first, timeout=30, what="the login slot freed by the hand-off")
    r.send(b'l2 LOGIN "bob@virtual.test" "%s"\r\n' % PASSWORD.encode())
    assert r.tagged("l2")[-1].startswith(b"l2 NO [UNAVAILABLE]")
    inst.wait_log(r"too many imap sessions \(imap_max_sessions = 1\)")
    r.close()
    waiting.send(b"l3 LOGOUT\r\n")
    assert waiting.tagged("l3")[-1].startswith(b"l3 OK")
    waiting.close()
