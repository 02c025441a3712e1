"""Issue 4: facteur's POP3 and IMAP servers driven by real, independent
clients - fetchmail (into a local mbox, through procmail), mbsync/isync
(two-way sync with a local Maildir tree), mutt in batch mode (under a pty),
Python's poplib and imaplib - for a Maildir user (the virtual user
alice@virtual.test, password from auth_passwd_file) and for an mbox user
(the system account `fcclient`, mail in mail_spool_directory/fcclient,
IMAP folders in ~fcclient/mail/, password set with chpasswd: these
cases need root and are skipped otherwise).
"""
import os
import poplib
import pwd
import shutil
import socket
import subprocess
import time

import pytest

import clients
import conftest
from conftest import IS_ROOT, free_port, send_mail, wait_for

PASSWORD = "s3cret-pass"
SYS_USER = "fcclient"
# mutt writes mbox messages with Content-Length and without quoting body
# lines that start with "From ", which Python's mbox reader would split on.
MUTT_BODY = "body of %s\nsecond line\n"

needs = pytest.mark.skipif(
    not (clients.FETCHMAIL and clients.MBSYNC and clients.MUTT),
    reason="fetchmail, mbsync (isync) and mutt are needed: scripts/install-deps.sh")


# -- accounts and instances -------------------------------------------------

def system_user():
    """The dedicated system account of these tests, its password set with
    chpasswd, its ~/mail and ~/Maildir emptied (they outlive instances)."""
    if not IS_ROOT:
        pytest.skip("an mbox system user needs root (useradd, chpasswd, shadow)")
    pw = conftest._ensure_account(SYS_USER, home=True)
    subprocess.run(["chpasswd"], input="%s:%s\n" % (SYS_USER, PASSWORD), text=True,
                   check=True, timeout=30)
    for sub in ("mail", "Maildir"):
        shutil.rmtree(os.path.join(pw.pw_dir, sub), ignore_errors=True)
    return pw


class Account:
    """Who logs in, where mail for them is sent, and how to count what the
    server holds for them."""

    def __init__(self, kind, inst):
        self.kind = kind
        self.inst = inst
        if kind == "maildir":
            self.login = "alice@virtual.test"
            self.address = "alice@virtual.test"
            self.maildir = os.path.join(inst.vmail_dir, "alice")
        else:
            self.login = SYS_USER
            self.address = "%s@example.test" % SYS_USER
            self.maildir = None

    def count(self):
        if self.maildir is not None:
            n = 0
            for sub in ("new", "cur"):
                d = os.path.join(self.maildir, sub)
                if os.path.isdir(d):
                    n += len(os.listdir(d))
            return n
        return len(self.inst.mbox_messages(SYS_USER))

    def deliver(self, subject, body=None):
        before = self.count()
        send_mail("127.0.0.1", self.inst.smtp_port, "sender@example.test", self.address,
                  subject, body=body or "body of %s\nFrom here, a line to quote\n" % subject)
        wait_for(lambda: self.count() > before, timeout=60,
                 what="delivery of %r to %s" % (subject, self.address))


def mail_instance(factory, imap=False, shadow=False):
    """A started instance with POP3 (and IMAP when asked): alice and bob
    in an auth_passwd_file; root's mail goes to the system user, who logs
    in with a passwd-file entry named like the account (its mailbox is the
    account's mbox), or with the shadow password when `shadow`."""
    aliases = None
    if IS_ROOT:
        aliases = "postmaster: root\nMAILER-DAEMON: postmaster\nroot: %s\n" % SYS_USER
    inst = factory(start=False, aliases=aliases)
    inst.pop3_port = free_port()
    inst.imap_port = free_port() if imap else None
    path = conftest.write_access_passwd(inst, PASSWORD,
                                        extra_users=(SYS_USER,) if IS_ROOT and not shadow else ())
    inst.main_cf("pop3_listen = 127.0.0.1:%d\nauth_passwd_file = %s\n" % (inst.pop3_port, path))
    if imap:
        inst.main_cf("imap_listen = 127.0.0.1:%d\n" % inst.imap_port)
    inst.start()
    wait_for(lambda: _pop3_ready(inst), timeout=20, what="POP3 listener")
    if imap:
        wait_for(lambda: clients.imap_greets(inst.imap_port), timeout=20,
                 what="IMAP greeting")
    return inst


def _pop3_ready(inst):
    try:
        with socket.create_connection(("127.0.0.1", inst.pop3_port), timeout=2) as s:
            s.settimeout(5)
            return s.recv(100).startswith(b"+OK")
    except OSError:
        return False


@pytest.fixture
def home():
    h = clients.ClientHome()
    yield h
    h.cleanup()


@pytest.fixture(params=["maildir", "mbox"])
def kind(request):
    if request.param == "mbox":
        system_user()
    return request.param


def account(factory, kind, imap=False):
    inst = mail_instance(factory, imap=imap)
    return inst, Account(kind, inst)


# -- POP3 -------------------------------------------------------------------

@needs
def test_fetchmail_pop3_keep_uidl(checked_factory, home, kind):
    """keep + uidl: the mail stays on the server, a second run fetches
    nothing, a later message alone is fetched by the third run."""
    inst, acc = account(checked_factory, kind)
    acc.deliver("pop one")
    acc.deliver("pop two")
    local = home.join("local.mbox")
    r = clients.fetchmail(home, inst.pop3_port, acc.login, PASSWORD, local, uidl=True)
    clients.fetchmail_ok(r, fetched=True)
    assert clients.mbox_check_format(local) == 2
    msgs = clients.mbox_parsed(local)
    assert clients.subjects(msgs) == ["pop one", "pop two"]
    body = msgs[0].get_body(("plain",)).get_content()
    assert "body of pop" in body and "From here" in body
    assert acc.count() == 2
    with open(home.join(".fetchids")) as f:
        assert f.read().strip(), "fetchmail kept no UIDL list"
    r = clients.fetchmail(home, inst.pop3_port, acc.login, PASSWORD, local, uidl=True)
    clients.fetchmail_ok(r, fetched=False)
    assert len(clients.mbox_parsed(local)) == 2
    acc.deliver("pop three")
    r = clients.fetchmail(home, inst.pop3_port, acc.login, PASSWORD, local, uidl=True)
    clients.fetchmail_ok(r, fetched=True)
    assert clients.subjects(clients.mbox_parsed(local)) == ["pop one", "pop three", "pop two"]
    assert acc.count() == 3
    inst.wait_log(r"pop3\(%s\)\[\d+\]: Disconnected" % acc.login.replace(".", r"\."), count=3)


@needs
def test_fetchmail_pop3_nokeep(checked_factory, home, kind):
    """nokeep: fetched mail is deleted on the server (DELE + QUIT)."""
    inst, acc = account(checked_factory, kind)
    acc.deliver("gone one")
    acc.deliver("gone two")
    local = home.join("local.mbox")
    r = clients.fetchmail(home, inst.pop3_port, acc.login, PASSWORD, local, keep=False)
    if kind == "mbox" and "deleting from mbox is not supported" in r.stdout + r.stderr:
        pytest.xfail("mbox DELE pending")
    clients.fetchmail_ok(r, fetched=True)
    assert clients.subjects(clients.mbox_parsed(local)) == ["gone one", "gone two"]
    wait_for(lambda: acc.count() == 0, timeout=20, what="the server mailbox to be emptied")
    r = clients.fetchmail(home, inst.pop3_port, acc.login, PASSWORD, local, keep=False)
    clients.fetchmail_ok(r, fetched=False)
    assert len(clients.mbox_parsed(local)) == 2


@needs
def test_mutt_pop3(checked_factory, home, kind):
    """mutt in batch mode reads the maildrop over pop:// and copies every
    message into a local mbox; the server keeps them."""
    inst, acc = account(checked_factory, kind)
    acc.deliver("mutt one", body=MUTT_BODY % "mutt one")
    acc.deliver("mutt two", body=MUTT_BODY % "mutt two")
    out = home.join("saved.mbox")
    status, screen = clients.mutt_copy_all(home, "pop://127.0.0.1:%d/" % inst.pop3_port,
                                           acc.login, PASSWORD, out)
    assert status == 0, screen
    assert os.path.exists(out), screen
    clients.mbox_check_format(out)
    msgs = clients.mbox_parsed(out)
    assert clients.subjects(msgs) == ["mutt one", "mutt two"], screen
    assert "body of mutt" in msgs[0].get_body(("plain",)).get_content()
    assert acc.count() == 2


class SourcePOP3(poplib.POP3):
    """poplib.POP3 connecting from a chosen loopback address."""

    def __init__(self, host, port, source, timeout=30):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def test_root_mail_to_system_user_over_pop3(checked_factory):
    """The seeds' scenario with a system account: mail to root lands in the
    mbox of the user the aliases name for root, who reads it over POP3
    from another loopback address with the password of the system account
    (shadow, set with chpasswd)."""
    system_user()
    inst = mail_instance(checked_factory, shadow=True)
    send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
              "for root", body="to root, via the aliases\n")
    wait_for(lambda: len(inst.mbox_messages(SYS_USER)) == 1, timeout=60,
             what="root's mail in %s's mbox" % SYS_USER)
    p = SourcePOP3("127.0.0.1", inst.pop3_port, "127.0.0.5")
    p.user(SYS_USER)
    with pytest.raises(poplib.error_proto):
        p.pass_(PASSWORD + "x")
    p.user(SYS_USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    assert p.stat()[0] == 1
    resp, lines, _ = p.retr(1)
    assert b"Subject: for root" in lines and b"to root, via the aliases" in lines
    assert any(l.startswith(b"Delivered-To: ") or l.startswith(b"Received: ") for l in lines)
    p.quit()
    inst.wait_log(r"Login: user=<%s>, rip=127\.0\.0\.5" % SYS_USER)


# -- IMAP -------------------------------------------------------------------

SPECIAL = {"Drafts": "\\drafts", "Sent": "\\sent", "Trash": "\\trash", "Junk": "\\junk"}


def _ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


def test_imaplib_session(checked_factory, kind):
    inst, acc = account(checked_factory, kind, imap=True)
    for s in ("imap one", "imap two", "imap three"):
        acc.deliver(s)
    m = clients.imap_login(inst.imap_port, acc.login, PASSWORD)
    boxes = clients.imap_list(m)
    for name in ("INBOX", "Drafts", "Sent", "Trash", "Junk"):
        assert name in boxes, boxes
    for name, attr in SPECIAL.items():
        assert attr in boxes[name], (name, boxes[name])
    assert _ok(m.select("INBOX")) == [b"3"]
    got = clients.imap_fetch_all(m)
    assert [s for _, s, _ in got] == ["imap one", "imap two", "imap three"]
    assert all("\\Seen" not in f for _, _, f in got), got
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    raws = [d[1] for d in data if isinstance(d, tuple)]
    assert len(raws) == 3 and b"body of imap one" in raws[0] and b"\r\n" in raws[0]
    # STORE \Seen, then SEARCH sees it.
    data = _ok(m.store("1", "+FLAGS", "(\\Seen)"))
    assert b"\\Seen" in b" ".join(x for x in data if isinstance(x, bytes)), data
    assert _ok(m.search(None, "SEEN")) == [b"1"]
    assert _ok(m.search(None, "UNSEEN")) == [b"2 3"]
    assert _ok(m.search(None, "SUBJECT", '"imap two"')) == [b"2"]
    # APPEND to Sent.
    raw = (b"From: %s\r\nTo: x@example.test\r\nSubject: appended\r\n\r\nsent copy\r\n"
           % acc.address.encode())
    _ok(m.append("Sent", "(\\Seen)", None, raw))
    # COPY 1 and MOVE 2 to Trash, EXPUNGE a \Deleted one.
    _ok(m.copy("1", "Trash"))
    if "MOVE" in m.capabilities:
        _ok(m._simple_command("MOVE", "2", "Trash"))
    else:
        _ok(m.copy("2", "Trash"))
        _ok(m.store("2", "+FLAGS", "(\\Deleted)"))
        _ok(m.expunge())
    assert [s for _, s, _ in clients.imap_fetch_all(m)] == ["imap one", "imap three"]
    _ok(m.store("1", "+FLAGS", "(\\Deleted)"))
    typ, data = m.expunge()
    assert typ == "OK" and data == [b"1"], data
    assert [s for _, s, _ in clients.imap_fetch_all(m)] == ["imap three"]
    _ok(m.close())
    assert m.logout()[0] == "BYE"
    # A new session sees the same state (and COPY kept \Seen).
    state = clients.imap_state(inst.imap_port, acc.login, PASSWORD)
    assert [s for _, s, _ in state["INBOX"]] == ["imap three"]
    assert sorted(s for _, s, _ in state["Trash"]) == ["imap one", "imap two"]
    seen = {s: "\\Seen" in f for _, s, f in state["Trash"]}
    assert seen == {"imap one": True, "imap two": False}, state["Trash"]
    assert [(s, "\\Seen" in f) for _, s, f in state["Sent"]] == [("appended", True)]
    assert acc.count() == 1
    if kind == "mbox":
        # imap_mbox_directory: <absolute dir>/<user> (conftest), else ~/mail.
        top = getattr(inst, "mbox_folders_dir", None)
        folders = (os.path.join(top, SYS_USER) if top else
                   os.path.join(pwd.getpwnam(SYS_USER).pw_dir, "mail"))
        assert os.path.exists(os.path.join(folders, "Sent")), folders
        assert [str(x["Subject"]) for x in inst.mbox_messages(SYS_USER)] == ["imap three"]


def test_imap_idle(checked_factory, kind):
    """IDLE (RFC 2177): a message delivered through SMTP meanwhile is
    announced with "* 1 EXISTS"."""
    inst, acc = account(checked_factory, kind, imap=True)
    m = clients.imap_login(inst.imap_port, acc.login, PASSWORD)
    assert "IDLE" in m.capabilities, m.capabilities
    assert _ok(m.select("INBOX")) == [b"0"]
    m.sock.settimeout(90)
    m.send(b"I1 IDLE\r\n")
    line = m.readline()
    assert line.startswith(b"+"), line
    send_mail("127.0.0.1", inst.smtp_port, "sender@example.test", acc.address, "while idling")
    deadline = time.monotonic() + 60
    seen = []
    while True:
        assert time.monotonic() < deadline, "no EXISTS within 60s: %r" % seen
        line = m.readline()
        assert line, "connection closed while idling: %r" % seen
        seen.append(line)
        if line.strip() == b"* 1 EXISTS":
            break
    m.send(b"DONE\r\n")
    while True:
        line = m.readline()
        assert line, seen
        seen.append(line)
        if line.startswith(b"I1 "):
            break
    assert line.startswith(b"I1 OK"), seen
    got = clients.imap_fetch_all(m)
    assert [s for _, s, _ in got] == ["while idling"]
    m.logout()


@needs
def test_mbsync_two_way(checked_factory, home, kind):
    """mbsync syncs every folder both ways with a local Maildir tree; a
    local flag reaches the server, a server flag reaches the local copy,
    a message stored locally in Sent is uploaded, and a further sync
    changes nothing on either side."""
    inst, acc = account(checked_factory, kind, imap=True)
    acc.deliver("sync one")
    acc.deliver("sync two")
    local = home.join("Mail")
    os.makedirs(local)
    rc = clients.mbsync_config(home, inst.imap_port, acc.login, PASSWORD, local)
    r = clients.mbsync(home, rc)
    assert clients.mbsync_counters(r.stdout) == {"far": (0, 0, 0), "near": (2, 0, 0)}, r.stdout
    for name in ("INBOX", "Drafts", "Sent", "Trash", "Junk"):
        assert os.path.isdir(os.path.join(local, name, "cur")), os.listdir(local)
    inbox = clients.maildir_folder_messages(os.path.join(local, "INBOX"))
    assert sorted(str(x[2]["Subject"]) for x in inbox) == ["sync one", "sync two"]
    # Local -> server: flag "sync one", save a message in Sent.
    one = [p for p, _, msg in inbox if msg["Subject"] == "sync one"][0]
    clients.maildir_set_flag(one, "F")
    clients.maildir_add(os.path.join(local, "Sent"),
                        b"From: %s\nTo: x@example.test\nSubject: written locally\n\nhello\n"
                        % acc.address.encode())
    # Server -> local: mark "sync two" seen.
    m = clients.imap_login(inst.imap_port, acc.login, PASSWORD)
    _ok(m.select("INBOX"))
    two_seq = _ok(m.search(None, "SUBJECT", '"sync two"'))[0].decode()
    _ok(m.store(two_seq, "+FLAGS", "(\\Seen)"))
    m.logout()
    r = clients.mbsync(home, rc)
    # One new message and one flag each way.
    assert clients.mbsync_counters(r.stdout) == {"far": (1, 1, 0), "near": (0, 1, 0)}, r.stdout
    state = clients.imap_state(inst.imap_port, acc.login, PASSWORD)
    flags = {s: f for _, s, f in state["INBOX"]}
    assert "\\Flagged" in flags["sync one"], state["INBOX"]
    assert [s for _, s, _ in state["Sent"]] == ["written locally"], state["Sent"]
    local_flags = {str(msg["Subject"]): fl for _, fl, msg in
                   clients.maildir_folder_messages(os.path.join(local, "INBOX"))}
    assert "F" in local_flags["sync one"] and "S" in local_flags["sync two"], local_flags
    # Nothing left to do: neither side changes.
    before_local = clients.maildir_snapshot(local)
    r = clients.mbsync(home, rc)
    assert clients.mbsync_counters(r.stdout) == {"far": (0, 0, 0), "near": (0, 0, 0)}, r.stdout
    assert clients.maildir_snapshot(local) == before_local
    assert clients.imap_state(inst.imap_port, acc.login, PASSWORD) == state


@needs
def test_fetchmail_imap(checked_factory, home, kind):
    """fetchmail over IMAP into a local mbox: keep leaves the mail (seen),
    a second run fetches nothing new, nokeep deletes what it fetched."""
    inst, acc = account(checked_factory, kind, imap=True)
    acc.deliver("fm one")
    acc.deliver("fm two")
    local = home.join("local.mbox")
    r = clients.fetchmail(home, inst.imap_port, acc.login, PASSWORD, local,
                          protocol="IMAP", uidl=True)
    clients.fetchmail_ok(r, fetched=True)
    assert clients.mbox_check_format(local) == 2
    assert clients.subjects(clients.mbox_parsed(local)) == ["fm one", "fm two"]
    state = clients.imap_state(inst.imap_port, acc.login, PASSWORD)
    assert all("\\Seen" in f for _, _, f in state["INBOX"]), state["INBOX"]
    r = clients.fetchmail(home, inst.imap_port, acc.login, PASSWORD, local,
                          protocol="IMAP", uidl=True)
    clients.fetchmail_ok(r, fetched=False)
    acc.deliver("fm three")
    r = clients.fetchmail(home, inst.imap_port, acc.login, PASSWORD, local,
                          protocol="IMAP", uidl=True, keep=False)
    clients.fetchmail_ok(r, fetched=True)
    assert clients.subjects(clients.mbox_parsed(local)) == ["fm one", "fm three", "fm two"]
    state = clients.imap_state(inst.imap_port, acc.login, PASSWORD)
    assert sorted(s for _, s, _ in state["INBOX"]) == ["fm one", "fm two"], state["INBOX"]


@needs
def test_mutt_imap(checked_factory, home, kind):
    """mutt in batch mode over imap:// copies INBOX into a local mbox."""
    inst, acc = account(checked_factory, kind, imap=True)
    acc.deliver("mutt imap one", body=MUTT_BODY % "mutt imap one")
    acc.deliver("mutt imap two", body=MUTT_BODY % "mutt imap two")
    out = home.join("saved.mbox")
    status, screen = clients.mutt_copy_all(home, "imap://127.0.0.1:%d/INBOX" % inst.imap_port,
                                           acc.login, PASSWORD, out)
    assert status == 0, screen
    assert os.path.exists(out), screen
    clients.mbox_check_format(out)
    msgs = clients.mbox_parsed(out)
    assert clients.subjects(msgs) == ["mutt imap one", "mutt imap two"], screen
    state = clients.imap_state(inst.imap_port, acc.login, PASSWORD)
    assert sorted(s for _, s, _ in state["INBOX"]) == ["mutt imap one", "mutt imap two"]
