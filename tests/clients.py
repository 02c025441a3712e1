"""Real, independent mail clients against facteur (issue 4): fetchmail,
mbsync (isync), mutt, and the IMAP helpers of tests/test_mail_clients.py.

Each client runs as a subprocess with a timeout, its configuration written
into a private HOME (a temporary directory, mode 0700) so that no real
user's files are read or written.  mutt needs a terminal: it runs under a
pseudo-terminal (pty module) and is killed by PID when it overruns.
"""
import email
import email.policy
import errno
import imaplib
import mailbox
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

FETCHMAIL = shutil.which("fetchmail")
MBSYNC = shutil.which("mbsync")
MUTT = shutil.which("mutt")
PROCMAIL = shutil.which("procmail") or "/usr/bin/procmail"


class ClientHome:
    """A private HOME for one client run (or several), removed by cleanup()."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="facteur-clients-", dir="/tmp")
        os.chmod(self.path, 0o700)

    def file(self, name, text, mode=0o600):
        path = os.path.join(self.path, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def env(self):
        e = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": self.path, "FETCHMAILHOME": self.path, "LANG": "C", "LC_ALL": "C",
             "TMPDIR": self.path, "USER": "root" if os.geteuid() == 0 else
             os.environ.get("USER", "nobody")}
        return e

    def run(self, cmd, timeout=60):
        p = subprocess.run(cmd, capture_output=True, env=self.env(), cwd=self.path,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        return subprocess.CompletedProcess(p.args, p.returncode,
                                           p.stdout.decode("utf-8", "replace"),
                                           p.stderr.decode("utf-8", "replace"))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def _quote(s):
    """A double-quoted string for fetchmailrc/mbsyncrc/muttrc."""
    assert '"' not in s and "\\" not in s and "\n" not in s, s
    return '"%s"' % s


# -- mbox files ------------------------------------------------------------

def mbox_parsed(path):
    """The messages of a local mbox, parsed with Python's mailbox module
    (an independent mbox reader); [] when the file does not exist."""
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(path, create=False)
    try:
        out = []
        for key in box.keys():
            raw = box.get_bytes(key)
            out.append(email.message_from_bytes(raw, policy=email.policy.default))
        return out
    finally:
        box.close()


def mbox_check_format(path):
    """Every message starts with a "From " line and is preceded by an empty
    line (mboxo/mboxrd as written by procmail or mutt)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data.startswith(b"From "), data[:200]
    starts = [m.start() for m in re.finditer(rb"^From ", data, re.M)]
    for s in starts[1:]:
        assert data[s - 2:s] == b"\n\n", data[max(0, s - 200):s + 50]
    return len(starts)


def subjects(msgs):
    return sorted(str(m["Subject"]) for m in msgs)


# -- fetchmail -------------------------------------------------------------

def fetchmail(home, port, user, password, mbox, protocol="POP3", keep=True,
              uidl=False, folder=None, timeout=90):
    """Run fetchmail once (no daemon) against 127.0.0.1:port, delivering
    each message through procmail into the local mbox `mbox` (procmail
    writes the From_ line and quotes body "From " lines).  Returns the
    CompletedProcess; fetchmail exits 0 when it fetched mail, 1 when there
    was none (man fetchmail, EXIT CODES)."""
    server = "poll 127.0.0.1 service %d protocol %s auth password" % (port, protocol)
    if uidl and protocol.upper() == "POP3":
        server += " uidl"  # a server option: before the user options
    lines = ["set no syslog",
             "set postmaster %s" % _quote("postmaster"),
             server,
             "  user %s there with password %s is %s here" % (
                 _quote(user), _quote(password), _quote("localuser")),
             "  mda %s" % _quote("%s -f- DEFAULT=%s /dev/null" % (PROCMAIL, mbox)),
             "  sslproto ''",  # no opportunistic STARTTLS: plain loopback test
             "  %s" % ("keep" if keep else "nokeep"),
             "  %s" % ("fetchall" if not uidl else "no fetchall"),
             ]
    if folder:
        lines.append("  folder %s" % _quote(folder))
    rc = home.file("fetchmailrc", "\n".join(lines) + "\n")
    cmd = [FETCHMAIL, "-f", rc, "--nosyslog", "--nodetach", "-v",
           "--pidfile", home.join("fetchmail.pid"), "--idfile", home.join(".fetchids")]
    return home.run(cmd, timeout=timeout)


def fetchmail_ok(result, fetched):
    """fetchmail exit code check with its output in the failure message:
    `fetched` True wants 0 (mail delivered), False wants 1 (no mail)."""
    want = 0 if fetched else 1
    assert result.returncode == want, "fetchmail exited %d (want %d):\n%s%s" % (
        result.returncode, want, result.stdout, result.stderr)


# -- mbsync ----------------------------------------------------------------

def mbsync_config(home, port, user, password, local):
    """An mbsyncrc syncing every folder of the account both ways with the
    local Maildir++-less tree `local` (one Maildir per folder)."""
    text = "\n".join([
        "IMAPAccount facteur",
        "Host 127.0.0.1",
        "Port %d" % port,
        "User %s" % _quote(user),
        "Pass %s" % _quote(password),
        "SSLType None",
        # isync refuses cleartext LOGIN unless told explicitly.
        "AuthMechs LOGIN",
        "Timeout 60",
        "",
        "IMAPStore far",
        "Account facteur",
        "",
        "MaildirStore near",
        "Path %s/" % local,
        "Inbox %s/INBOX" % local,
        "SubFolders Verbatim",
        "",
        "Channel all",
        "Far :far:",
        "Near :near:",
        "Patterns *",
        "Create Both",
        "Remove None",
        "Expunge Both",
        "Sync All",
        "SyncState *",
        "",
    ])
    return home.file("mbsyncrc", text)


def mbsync(home, rc, timeout=120):
    """Run `mbsync -V -a` on a pty (it prints its progress counters only to
    a terminal); returns a CompletedProcess with the output in stdout
    (asserts exit 0)."""
    cmd = [MBSYNC, "-c", rc, "-V", "-a"]
    status, raw = run_pty(cmd, home.env(), home.path, timeout)
    out = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    assert status == 0, "mbsync exited %d:\n%s" % (status, out)
    return subprocess.CompletedProcess(cmd, status, out, "")


def mbsync_counters(output):
    """The last progress line's totals ("F: +new *flags #expunged  N: ..."
    on the far and near sides: what mbsync propagated to that side), as
    {"far": (new, flags, expunged), "near": (...)}, or None when mbsync
    printed none."""
    found = None
    for m in re.finditer(r"F: \+\d+/(\d+) \*\d+/(\d+) #\d+/(\d+)\s+"
                         r"N: \+\d+/(\d+) \*\d+/(\d+) #\d+/(\d+)", output):
        found = m
    if found is None:
        return None
    v = [int(x) for x in found.groups()]
    return {"far": tuple(v[0:3]), "near": tuple(v[3:6])}


def maildir_snapshot(root):
    """{relative path: bytes} of every file under a local Maildir tree,
    mbsync's .mbsyncstate files included (it rewrites them identically
    when it has nothing to do), for "a second sync changes nothing"."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in filenames:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                snap[os.path.relpath(p, root)] = f.read()
    return snap


def maildir_folder_messages(folder):
    """[(path, flags, parsed message)] of one local Maildir folder."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(folder, sub)
        if not os.path.isdir(d):
            continue
        for n in sorted(os.listdir(d)):
            p = os.path.join(d, n)
            flags = n.split(":2,", 1)[1] if ":2," in n else ""
            with open(p, "rb") as f:
                out.append((p, flags, email.message_from_binary_file(
                    f, policy=email.policy.default)))
    return out


def maildir_set_flag(path, flag):
    """Add a Maildir info flag (e.g. "F") to a message file, moving it to
    cur/ as a Maildir reader would; returns the new path."""
    d, name = os.path.split(path)
    base, _, flags = name.partition(":2,")
    flags = "".join(sorted(set(flags) | {flag}))
    new = os.path.join(os.path.dirname(d), "cur", "%s:2,%s" % (base, flags))
    os.rename(path, new)
    return new


def maildir_add(folder, raw):
    """Store a message in a local Maildir folder (as a local mail client
    would when saving a copy), in cur/ with the Seen flag."""
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    name = "%d.P%dQ1.clienttest" % (time.time(), os.getpid())
    tmp = os.path.join(folder, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(raw)
    dst = os.path.join(folder, "cur", name + ":2,S")
    os.rename(tmp, dst)
    return dst


# -- mutt under a pseudo-terminal -------------------------------------------

def mutt_copy_all(home, url, user, password, out_mbox, timeout=60):
    """Open `url` (pop://... or imap://...) with mutt under a pty (mutt is a
    curses program; TERM=vt100) and copy every message into the local mbox
    `out_mbox`, typing the keys a user would: T~A (tag all), ;C (copy the
    tagged messages), ^U and the path, q.  Keys are typed only once the
    index is drawn - keys pushed with -e 'push ...' were partly lost while
    mutt opened a POP mailbox.  Returns (exit status, terminal output)."""
    proto = "pop" if url.startswith("pop") else "imap"
    rc = home.file("muttrc", "\n".join([
        "set %s_user=%s" % (proto, _quote(user)),
        "set %s_pass=%s" % (proto, _quote(password)),
        "set ssl_starttls=no",
        "set ssl_force_tls=no",
        "set mbox_type=mbox",
        "set noconfirmcreate",
        "set noconfirmappend",
        "set delete=no",
        "set move=no",
        "set mark_old=no",
        "set quit=yes",
        "set nowait_key",
        "set nobeep",
        "set record=''",
        "set postponed=%s" % _quote(home.join("postponed")),
        "set folder=%s" % _quote(home.join("Mail")),
        "set spoolfile=''",
        "set header_cache=''",
        "set message_cachedir=''",
        "set imap_passive=yes",
        "set imap_check_subscribed=no",
        "set timeout=10",
        # A status line the test waits for: message and tagged counts.
        "set status_format='=READY= msgs=%m tagged=%t ='",
        "",
    ]))
    os.makedirs(home.join("Mail"), exist_ok=True)
    cmd = [MUTT, "-n", "-F", rc, "-f", url]
    env = home.env()
    env.update(TERM="vt100", COLUMNS="120", LINES="40")
    # curses redraws only what changed: match the first full status line,
    # then type the rest as typeahead (mutt reads it in order).
    steps = [(re.compile(r"=READY= msgs=[1-9]\d* tagged=0 ="),
              b"T~A\r;C\x15" + out_mbox.encode() + b"\rq")]
    status, out = run_pty(cmd, env, home.path, timeout, steps)
    return status, _screen_text(out)


def run_pty(cmd, env, cwd, timeout, steps=()):
    """Run cmd on a pseudo-terminal, collecting its output; steps is a list
    of (compiled regex, bytes): when the regex matches the output that came
    since the previous step (escape sequences removed), the bytes are typed.
    Kills the process group (by PID) at the deadline.  Returns (exit
    status, raw output)."""
    steps = list(steps)
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=cwd, start_new_session=True)
    os.close(slave)
    out = bytearray()
    seen = 0  # output already matched by earlier steps
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if steps:
                text = _screen_text(bytes(out[seen:]))
                if steps[0][0].search(text):
                    seen = len(out)
                    os.write(master, steps.pop(0)[1])
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError as e:
                    if e.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        try:
            status = proc.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not finish in %ds (steps left: %d); output:\n%s" % (
                os.path.basename(cmd[0]), timeout, len(steps), _screen_text(bytes(out))))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        os.close(master)
    return status, bytes(out)


def _screen_text(raw):
    """Terminal output with escape sequences removed, for messages."""
    text = raw.decode("utf-8", "replace")
    return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-Za-z]|[=>78])", "", text)


# -- IMAP -------------------------------------------------------------------

def imap_greets(port, timeout=2):
    """True when 127.0.0.1:port answers with an IMAP "* OK" greeting."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(5)
            return s.recv(200).startswith(b"* OK")
    except OSError:
        return False


def imap_login(port, user, password, source=None):
    kw = {"timeout": 60}
    m = imaplib.IMAP4("127.0.0.1", port, **kw)
    typ, data = m.login(user, password)
    assert typ == "OK", data
    return m


def imap_list(m):
    """{mailbox name: set of attributes (lowercase)} from LIST "" "*"."""
    typ, data = m.list('""', "*")
    assert typ == "OK", data
    out = {}
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal
            head, name = item
            attrs = re.match(rb"\(([^)]*)\)", head).group(1)
            out[name.decode()] = set(a.lower() for a in attrs.decode().split())
            continue
        m2 = re.match(rb'\(([^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (.*)$', item)
        assert m2, item
        name = m2.group(2).decode()
        if name.startswith('"') and name.endswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name] = set(a.lower() for a in m2.group(1).decode().split())
    return out


def imap_state(port, user, password):
    """{folder: sorted [(subject, flags)]} of every folder, read with
    EXAMINE (no flag change), for comparing server state before/after."""
    m = imap_login(port, user, password)
    try:
        state = {}
        for name in sorted(imap_list(m)):
            typ, data = m.select('"%s"' % name, readonly=True)
            assert typ == "OK", (name, data)
            state[name] = imap_fetch_all(m)
        return state
    finally:
        m.logout()


def imap_fetch_all(m):
    """[(uid, subject, frozenset(flags))] of the selected mailbox, by UID."""
    typ, data = m.uid("SEARCH", None, "ALL")
    assert typ == "OK", data
    uids = data[0].split()
    if not uids:
        return []
    typ, data = m.uid("FETCH", b",".join(uids).decode(),
                      "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0]
        uid = int(re.search(rb"UID (\d+)", head).group(1))
        fl = re.search(rb"FLAGS \(([^)]*)\)", head)
        flags = frozenset(fl.group(1).decode().split()) if fl else None
        subj = email.message_from_bytes(item[1], policy=email.policy.default)["Subject"]
        out.append((uid, str(subj), flags))
    # FLAGS may come after the literal (in the closing part): fetch again.
    if any(f is None for _, _, f in out):
        typ, data = m.uid("FETCH", b",".join(uids).decode(), "(UID FLAGS)")
        flags_by_uid = {}
        for line in data:
            if isinstance(line, tuple):
                line = line[0]
            u = re.search(rb"UID (\d+)", line)
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            if u and f:
                flags_by_uid[int(u.group(1))] = frozenset(f.group(1).decode().split())
        out = [(u, s, flags_by_uid.get(u, frozenset())) for u, s, _ in out]
    return sorted(out)
