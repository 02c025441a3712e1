"""Black-box test harness: real `facteur start -f` instances.

Every instance lives in its own directory under /tmp (configuration, queue,
spool, virtual mailboxes, log file) and listens on its own loopback address
(127.0.0.1 unless `host` says otherwise) at a free port, or at a given one
(`port=25` for instances that other instances reach through DNS MX records).
It is stopped by the test, by its PID, at teardown.

Environment:
  FACTEUR_BUILD   build directory holding the facteur binary (default: build)

When the tests run as root (CI), facteur is started as root as in
production: it drops to the mail_owner account `facteur` and delivers as
the test user `fctest`; both accounts are created here when missing.
"""
import email
import email.policy
import getpass
import mailbox
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("FACTEUR_BUILD", "build"))
FACTEUR = os.path.join(BUILD, "facteur")
IS_ROOT = os.geteuid() == 0
TEST_USER = "fctest" if IS_ROOT else getpass.getuser()
MAIL_OWNER = "facteur" if IS_ROOT else getpass.getuser()


def _ensure_account(name, home=True):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    args = ["useradd", "--shell", "/bin/sh", "--comment", "Facteur Test"]
    if home:
        args += ["--create-home"]
    else:
        args += ["--system", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin"]
    subprocess.run(args + [name], check=True)
    return pwd.getpwnam(name)


if IS_ROOT:
    _ensure_account("facteur", home=False)
    _ensure_account("fctest", home=True)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


class Instance:
    """One facteur instance with its own files and ports."""

    def __init__(self, extra_main_cf="", aliases=None, host="127.0.0.1", port=None):
        self.tmp = tempfile.mkdtemp(prefix="facteur-test-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.host = host
        self.config_dir = os.path.join(self.tmp, "etc")
        self.queue_dir = os.path.join(self.tmp, "queue")
        self.data_dir = os.path.join(self.tmp, "data")
        self.spool_dir = os.path.join(self.tmp, "spool")
        self.vmail_dir = os.path.join(self.tmp, "vmail")
        self.log_path = os.path.join(self.tmp, "maillog")
        self.user = TEST_USER
        self.user_pw = pwd.getpwnam(TEST_USER)
        self.smtp_port = port if port is not None else free_port(host)
        self.proc = None
        self.start_prefix = []  # e.g. a valgrind command line
        self.stderr_path = os.path.join(self.tmp, "stderr")
        os.makedirs(self.config_dir)
        os.makedirs(self.spool_dir)
        os.chmod(self.spool_dir, 0o1777)
        os.makedirs(self.vmail_dir)
        # mbox users' IMAP folders and INBOX index: per instance, never in
        # a real home directory.
        self.mbox_folders_dir = os.path.join(self.tmp, "mbox-folders")
        os.makedirs(self.mbox_folders_dir)
        os.chmod(self.mbox_folders_dir, 0o1777)
        if IS_ROOT:
            os.chown(self.vmail_dir, self.user_pw.pw_uid, self.user_pw.pw_gid)
        self.write_file("vmailbox", "alice@virtual.test alice/\nbob@virtual.test bob/\n")
        if aliases is None:
            aliases = ("postmaster: root\nMAILER-DAEMON: postmaster\n"
                       "root: %s\n" % self.user)
        self.extra = ""
        self.base_main_cf = "\n".join([
            "myhostname = mail.example.test",
            "mydomain = example.test",
            "myorigin = $myhostname",
            "mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain",
            "queue_directory = %s" % self.queue_dir,
            "data_directory = %s" % self.data_dir,
            "mail_spool_directory = %s" % self.spool_dir,
            "alias_maps = hash:%s/aliases" % self.config_dir,
            "alias_database = hash:%s/aliases" % self.config_dir,
            "smtpd_listen = %s:%d" % (host, self.smtp_port),
            "maillog_file = %s" % self.log_path,
            "mynetworks = 127.0.0.0/8",
            "mail_owner = %s" % MAIL_OWNER,
            "virtual_mailbox_domains = virtual.test",
            "virtual_mailbox_base = %s" % self.vmail_dir,
            "virtual_mailbox_maps = texthash:%s/vmailbox" % self.config_dir,
            "virtual_uid_maps = static:%d" % self.user_pw.pw_uid,
            "virtual_gid_maps = static:%d" % self.user_pw.pw_gid,
            "imap_mbox_directory = %s" % self.mbox_folders_dir,
            # No DNS traffic off loopback: reverse lookups of 127.0.0.x
            # clients go to a closed loopback port and fail at once.
            "dns_servers = 127.0.0.1:1",
            "queue_run_delay = 1s",
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 4s",
            "",
        ])
        self.main_cf(extra_main_cf)
        self.set_aliases(aliases)

    # -- files and configuration -------------------------------------
    def write_file(self, name, text, mode=0o644):
        path = os.path.join(self.config_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def main_cf(self, extra=""):
        """Append lines to main.cf (later lines override earlier ones)."""
        if extra:
            self.extra += extra.rstrip("\n") + "\n"
        self.write_file("main.cf", self.base_main_cf + self.extra)

    def set_aliases(self, text):
        self.write_file("aliases", text)
        if os.path.exists(FACTEUR):
            self.run("aliases", check=True)

    # -- running ------------------------------------------------------
    def run(self, *args, input=None, check=False, user=None, env=None, timeout=60):
        """Run build/facteur -c CONFIG ARGS; returns CompletedProcess."""
        import conftest
        cmd = [conftest.FACTEUR, "-c", self.config_dir] + list(args)
        return run_cmd(cmd, input=input, check=check, user=user, env=env, timeout=timeout)

    def env(self):
        e = dict(os.environ)
        e["FACTEUR_CONFIG"] = self.config_dir
        return e

    def start(self, wait=True):
        assert self.proc is None
        self.stderr_file = open(self.stderr_path, "ab")
        import conftest  # tests may swap the binary (conftest.FACTEUR)
        self.proc = subprocess.Popen(self.start_prefix + [conftest.FACTEUR, "-c", self.config_dir,
                                                          "start", "-f"],
                                     stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                                     stderr=self.stderr_file, start_new_session=True)
        if wait:
            wait_for(self._ready, timeout=30, what="facteur to accept SMTP connections")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("facteur exited with %s: %s" % (
                self.proc.returncode, self.stderr_text() + self.log_text()))
        try:
            with socket.create_connection((self.host, self.smtp_port), timeout=2) as s:
                s.settimeout(10)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def stop(self):
        """Stop by PID (SIGTERM, then SIGKILL of the process group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._reap_group(signal.SIGKILL)
        self.proc = None
        self.stderr_file.close()

    def kill9(self):
        """kill -9 every process of the instance (master and roles)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._reap_group(signal.SIGKILL)
        self.proc = None
        self.stderr_file.close()

    def _reap_group(self, sig):
        pgid = self.proc.pid
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        wait_for(lambda: not _group_alive(pgid), timeout=10, what="process group to exit")

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- observing ----------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=30, count=1):
        """Wait until the log has `count` lines matching the regex."""
        rx = re.compile(pattern)
        def found():
            hits = [l for l in self.log_text().splitlines() if rx.search(l)]
            return hits if len(hits) >= count else None
        try:
            return wait_for(found, timeout=timeout, what="log line /%s/ x%d" % (pattern, count))
        except AssertionError as e:
            tail = "\n".join(self.log_text().splitlines()[-25:])
            raise AssertionError("%s\n--- last lines of %s:\n%s" % (e, self.log_path, tail)) from None

    def mbox_path(self, user=None):
        return os.path.join(self.spool_dir, user or self.user)

    def maildir_messages(self, path):
        new = os.path.join(path, "new")
        if not os.path.isdir(new):
            return []
        return sorted(os.path.join(new, n) for n in os.listdir(new))

    def mbox_messages(self, user=None):
        """The messages of a user's mbox, parsed (email.message.EmailMessage);
        [] when the mbox does not exist yet."""
        path = self.mbox_path(user)
        if not os.path.exists(path):
            return []
        box = mailbox.mbox(path, factory=None, create=False)
        try:
            return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
                    for k in box.keys()]
        finally:
            box.close()

    def maildir_parsed(self, path):
        """The messages in a Maildir's new/, parsed, oldest file name first."""
        out = []
        for name in self.maildir_messages(path):
            with open(name, "rb") as f:
                out.append(email.message_from_binary_file(f, policy=email.policy.default))
        return out

    def maildir_tags(self, path):
        """The X-Tag: header values of the messages in a Maildir (new/
        and cur/), for tests that count deliveries."""
        tags = []
        for sub in ("new", "cur"):
            d = os.path.join(path, sub)
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                    m = re.search(r"^X-Tag: (\S+)$", f.read(), re.M)
                    if m:
                        tags.append(m.group(1))
        return tags

    def queue_files(self, sub):
        d = os.path.join(self.queue_dir, sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run_cmd(cmd, input=None, check=False, user=None, env=None, timeout=60):
    """Run cmd (as `user` when running as root), capture output as text."""
    preexec = None
    if user is not None and IS_ROOT:
        pw = pwd.getpwnam(user)
        def preexec():
            os.initgroups(pw.pw_name, pw.pw_gid)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        env = dict(env or os.environ)
        env.update(HOME=pw.pw_dir, USER=pw.pw_name, LOGNAME=pw.pw_name)
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run(cmd, input=input, capture_output=True, preexec_fn=preexec,
                       env=env, timeout=timeout)
    out = subprocess.CompletedProcess(p.args, p.returncode,
                                      p.stdout.decode("utf-8", "replace"),
                                      p.stderr.decode("utf-8", "replace"))
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (cmd, p.returncode, out.stdout, out.stderr))
    return out


@pytest.fixture
def facteur_factory():
    """Make instances: facteur_factory(extra_main_cf="", aliases=None, start=True,
    host="127.0.0.1", port=None)."""
    made = []

    def make(extra_main_cf="", aliases=None, start=True, host="127.0.0.1", port=None):
        inst = Instance(extra_main_cf=extra_main_cf, aliases=aliases, host=host, port=port)
        made.append(inst)
        if start:
            inst.start()
        return inst

    yield make
    for inst in made:
        inst.cleanup()


@pytest.fixture
def checked_factory(facteur_factory):
    """facteur_factory, and after the test: no sanitizer report in the
    instances' stderr (ASan/UBSan builds)."""
    made = []

    def make(**kw):
        inst = facteur_factory(**kw)
        made.append(inst)
        return inst
    yield make
    for inst in made:
        text = inst.stderr_text()
        assert "Sanitizer" not in text and "runtime error" not in text, text


def pw_hash(password):
    """A password hash made by `facteur pw`, for auth_passwd_file."""
    out = subprocess.run([FACTEUR, "pw"], input=password + "\n", capture_output=True,
                         text=True, check=True, timeout=30)
    return out.stdout.strip()


def write_access_passwd(inst, password, extra_users=()):
    """etc/passwd for POP3/IMAP logins, all with password: alice and
    bob@virtual.test owning the virtual mailboxes (the test user's
    uid/gid), then extra_users without uid/gid (an entry named like a
    system user logs in to that user's own mailbox)."""
    h = pw_hash(password)
    pw = inst.user_pw
    lines = "".join("%s:%s:%d:%d::\n" % (u, h, pw.pw_uid, pw.pw_gid)
                    for u in ("alice@virtual.test", "bob@virtual.test"))
    lines += "".join("%s:%s\n" % (u, h) for u in extra_users)
    return inst.write_file("passwd", lines, mode=0o600)


@pytest.fixture
def facteur(facteur_factory):
    """A started instance with the default test configuration."""
    return facteur_factory()


# -- outbound mail: several instances, each a "host" of its own -----------

def send_mail(host, port, sender, recipients, subject, body="Bonjour\n", source="127.0.0.1"):
    """Submit one message with smtplib (from `source`, inside mynetworks);
    returns the queue ID of the 250 reply."""
    import smtplib
    from email.message import EmailMessage
    if isinstance(recipients, str):
        recipients = [recipients]
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg.set_content(body)
    with smtplib.SMTP(host, port, timeout=30, source_address=(source, 0)) as s:
        s.ehlo("client.test")
        s.mail(sender)
        for r in recipients:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg.as_bytes())
        assert code == 250, (code, text)
    m = re.search(rb"queued as ([0-9A-Za-z]+)", text)
    assert m, text
    return m.group(1).decode()


def serve_virtual(inst, domains, mailboxes):
    """Make `inst` the final destination of `domains` (virtual mailbox
    domains), with `mailboxes` = {address: "domain/user/"} Maildirs under
    inst.vmail_dir.  Call before start()."""
    inst.write_file("vmailbox", "".join("%s %s\n" % kv for kv in mailboxes.items()))
    inst.main_cf("virtual_mailbox_domains = %s" % ", ".join(domains))


def dsn_parts(msg):
    """Split an RFC 3464 report (RFC 6522 multipart/report) into
    (explanation part, [per-message fields, per-recipient fields...] as
    dicts, returned part), checking the structure on the way."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    assert parts[2].get_content_type() in ("message/rfc822", "text/rfc822-headers"), \
        parts[2].get_content_type()
    blocks = [dict((k.lower(), " ".join(str(v).split())) for k, v in b.items())
              for b in parts[1].get_payload()]
    assert len(blocks) >= 2, blocks
    return parts[0], blocks, parts[2]


def returned_headers(part):
    """The headers of the returned message (message/rfc822 or
    text/rfc822-headers part) as an email message."""
    if part.get_content_type() == "message/rfc822":
        return part.get_payload()[0]
    return email.message_from_string(part.get_content(), policy=email.policy.default)


# The seeds' two domains: truc.test (fred's provider, instance "A") and
# machin.test (marc's, MX hosts "B1", "B2"), each on its own address.
A_ADDR, B1_ADDR, B2_ADDR = "127.0.0.2", "127.0.0.3", "127.0.0.4"

FRED_ALIASES = ("postmaster: root\nMAILER-DAEMON: postmaster\nroot: %s\nfred: %s\n")


@pytest.fixture
def port25():
    """Hold an exclusive lock for the test's duration: tests that bind
    127.0.0.x:25 (fixed addresses and port) run one at a time, also across
    pytest processes sharing this machine."""
    import fcntl
    with open("/tmp/facteur-tests-port25.lock", "a") as f:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError("another test run holds port 25 for 900s")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def port25_free(addr):
    """Wait (bounded) until addr:25 can be bound: a previous instance may
    still be on its way out."""
    def free():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, 25))
                return True
            except OSError:
                return False
    wait_for(free, timeout=15, what="%s:25 to be free" % addr)


def truc_instance(factory, dns=None, extra="", host=A_ADDR, port=25, start=True):
    """A: smtp.truc.test, final destination of truc.test (fred is an alias
    of the test user: his mail lands in that user's mbox).  dns: the
    dnsmasq whose address goes into dns_servers."""
    if port == 25:
        port25_free(host)
    a = factory(host=host, port=port, start=False,
                aliases=FRED_ALIASES % (TEST_USER, TEST_USER),
                extra_main_cf="\n".join([
                    "myhostname = smtp.truc.test",
                    "mydomain = truc.test",
                    "myorigin = $mydomain",
                    "mydestination = $myhostname, localhost, $mydomain",
                    "dns_servers = %s" % (dns.servers if dns else "127.0.0.1:1"),
                    "smtp_connect_timeout = 5s",
                    extra]))
    if start:
        a.start()
    return a


def machin_instance(factory, addr, name, port=25):
    """B: one MX host of machin.test, marc's Maildir under its vmail."""
    if port == 25:
        port25_free(addr)
    b = factory(host=addr, port=port, start=False, extra_main_cf="\n".join([
        "myhostname = %s" % name,
        "mydomain = machin.test",
        "mydestination = $myhostname, localhost",
    ]))
    serve_virtual(b, ["machin.test"], {"marc@machin.test": "machin.test/marc/"})
    b.start()
    return b


def marc_maildir(b):
    return os.path.join(b.vmail_dir, "machin.test", "marc")


def fred_reports(a, count=1, timeout=60):
    """Wait until fred's mbox (the test user's, on A) holds `count` messages."""
    def enough():
        msgs = a.mbox_messages()
        return msgs if len(msgs) >= count else None
    return wait_for(enough, timeout=timeout, what="%d message(s) in fred's mbox" % count)
