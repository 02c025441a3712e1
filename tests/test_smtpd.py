"""Black-box tests of the SMTP server (facteur/smtpd) against a real
`facteur start -f`: the seeds' manual session, sequence and syntax errors,
relay refusal, PIPELINING, limits (size, line length, errors, recipients),
the end-of-data rule against SMTP smuggling, and the log lines.

Raw sockets are used where the exact bytes matter (the seeds' session,
malformed input, pipelining); smtplib elsewhere.
"""
import re
import smtplib
import socket

import pytest

# No DNS server outside loopback: PTR lookups of test clients fail fast.
NO_DNS = "dns_servers = 127.0.0.1:1\n"
ALIASES = ("postmaster: root\nMAILER-DAEMON: postmaster\nroot: %s\ntoto: root\n")


class Session:
    """A raw SMTP conversation: send lines, read whole (multi-line) replies."""

    def __init__(self, inst, source="127.0.0.1"):
        self.sock = socket.create_connection((inst.host, inst.smtp_port), timeout=15,
                                             source_address=(source, 0))
        self.buf = b""

    def read_line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed; partial %r" % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), "reply line without CRLF: %r" % line
        return line[:-1].decode("latin-1")

    def reply(self):
        """One reply: list of lines (the last one has a space after the code)."""
        lines = [self.read_line()]
        while re.match(r"^\d{3}-", lines[-1]):
            lines.append(self.read_line())
        return lines

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        """True when the server closed the connection (after what was read)."""
        try:
            self.sock.settimeout(10)
            return self.buf == b"" and self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


@pytest.fixture
def mta(facteur_factory):
    from conftest import TEST_USER
    return facteur_factory(extra_main_cf=NO_DNS, aliases=ALIASES % TEST_USER)


def make(facteur_factory, extra=""):
    from conftest import TEST_USER
    return facteur_factory(extra_main_cf=NO_DNS + extra, aliases=ALIASES % TEST_USER)


def test_seeds_session(mta):
    """The seeds' telnet session, reply for reply (host name and id aside)."""
    s = Session(mta)
    assert re.fullmatch(r"220 mail\.example\.test ESMTP .*", s.reply()[0])
    assert s.cmd("ehlo toto.com") == [
        "250-mail.example.test", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY",
        "250-ETRN", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 DSN"]
    assert s.cmd("MAIL FROM: <toto@toto.com>") == ["250 2.1.0 Ok"]
    assert s.cmd("RCPT TO: <toto>") == ["250 2.1.5 Ok"]
    assert s.cmd("DATA") == ["354 End data with <CR><LF>.<CR><LF>"]
    s.send("Bonjour\r\nComment ca va ?\r\n")
    r = s.cmd(".")
    m = re.fullmatch(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]+)", r[0])
    assert m, r
    qid = m.group(1)
    # The seeds' typo: an unknown command, then the real QUIT.
    assert s.cmd("OUIT") == ["502 5.5.2 Error: command not recognized"]
    assert s.cmd("QUIT") == ["221 2.0.0 Bye"]
    assert s.closed()
    s.close()
    mta.wait_log(r"smtpd\[\d+\]: %s: client=localhost\[127\.0\.0\.1\]" % qid)
    mta.wait_log(r"smtpd\[\d+\]: %s: message-id=<" % qid)
    mta.wait_log(r"smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]")
    mta.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                 r"quit=1 unknown=0/1 commands=5/6")


def test_helo_and_vrfy_disabled(facteur_factory):
    inst = make(facteur_factory, "disable_vrfy_command = yes\nmessage_size_limit = 5000\n")
    s = Session(inst)
    s.reply()
    assert s.cmd("HELO client.test") == ["250 mail.example.test"]
    assert s.cmd("EHLO client.test") == [
        "250-mail.example.test", "250-PIPELINING", "250-SIZE 5000",
        "250-ETRN", "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250 DSN"]
    assert s.cmd("VRFY root") == ["502 5.5.1 VRFY command is disabled"]
    s.close()


SEQUENCE_ERRORS = [
    ("rcpt without mail", ["EHLO x"], "RCPT TO:<toto>", "503 5.5.1 Error: need MAIL command"),
    ("data without mail", ["EHLO x"], "DATA", "503 5.5.1 Error: need RCPT command"),
    ("data without rcpt", ["EHLO x", "MAIL FROM:<a@b.test>"], "DATA",
     "554 5.5.1 Error: no valid recipients"),
    ("nested mail", ["EHLO x", "MAIL FROM:<a@b.test>"], "MAIL FROM:<c@d.test>",
     "503 5.5.1 Error: nested MAIL command"),
    ("rcpt after rset", ["EHLO x", "MAIL FROM:<a@b.test>", "RSET"], "RCPT TO:<toto>",
     "503 5.5.1 Error: need MAIL command"),
    ("etrn before helo", [], "ETRN example.test", "503 5.5.1 Error: send HELO/EHLO first"),
    ("etrn in transaction", ["EHLO x", "MAIL FROM:<a@b.test>"], "ETRN example.test",
     "503 5.5.1 Error: MAIL transaction in progress"),
]


@pytest.mark.parametrize("name,before,command,expected", SEQUENCE_ERRORS,
                         ids=[r[0] for r in SEQUENCE_ERRORS])
def test_bad_sequence(mta, name, before, command, expected):
    s = Session(mta)
    s.reply()
    for c in before:
        assert s.cmd(c)[-1][0] == "2", c
    assert s.cmd(command) == [expected]
    # The session goes on after a refusal.
    assert s.cmd("NOOP") == ["250 2.0.0 Ok"]
    s.close()


def test_helo_required(facteur_factory):
    inst = make(facteur_factory, "smtpd_helo_required = yes\n")
    s = Session(inst)
    s.reply()
    assert s.cmd("MAIL FROM:<a@b.test>") == ["503 5.5.1 Error: send HELO/EHLO first"]
    assert s.cmd("HELO x") == ["250 mail.example.test"]
    assert s.cmd("MAIL FROM:<a@b.test>") == ["250 2.1.0 Ok"]
    s.close()


def test_mail_without_helo_allowed_by_default(mta):
    s = Session(mta)
    s.reply()
    assert s.cmd("MAIL FROM:<a@b.test>") == ["250 2.1.0 Ok"]
    assert s.cmd("RCPT TO:<toto>") == ["250 2.1.5 Ok"]
    s.close()


SYNTAX_ERRORS = [
    ("mail no from", "MAIL <a@b.test>", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    ("mail empty", "MAIL FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    ("mail bad address", "MAIL FROM:<a@b.test", "501 5.1.7 Bad sender address syntax"),
    ("mail unknown param", "MAIL FROM:<a@b.test> FOO=BAR", "555 5.5.4 Unsupported option: FOO=BAR"),
    ("mail bad size", "MAIL FROM:<a@b.test> SIZE=abc", "501 5.5.4 Bad message size syntax"),
    ("unknown verb", "BLAH", "502 5.5.2 Error: command not recognized"),
    ("empty line", "", "500 5.5.2 Error: bad syntax"),
    ("helo no arg", "HELO", "501 5.5.4 Syntax: HELO hostname"),
    ("ehlo no arg", "EHLO", "501 5.5.4 Syntax: EHLO hostname"),
    ("rset arg", "RSET x", "501 5.5.4 Syntax: RSET"),
    ("vrfy no arg", "VRFY", "501 5.5.4 Syntax: VRFY address"),
]


@pytest.mark.parametrize("name,command,expected", SYNTAX_ERRORS,
                         ids=[r[0] for r in SYNTAX_ERRORS])
def test_syntax_error(mta, name, command, expected):
    s = Session(mta)
    s.reply()
    assert s.cmd(command) == [expected]
    s.close()


RCPT_SYNTAX = [
    ("rcpt no to", "RCPT <toto>", "501 5.5.4 Syntax: RCPT TO:<address>"),
    ("rcpt bad address", "RCPT TO:<to to>", "501 5.1.3 Bad recipient address syntax"),
    ("rcpt null", "RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
    ("rcpt unknown param", "RCPT TO:<toto> FOO", "555 5.5.4 Unsupported option: FOO"),
]


@pytest.mark.parametrize("name,command,expected", RCPT_SYNTAX, ids=[r[0] for r in RCPT_SYNTAX])
def test_rcpt_syntax_error(mta, name, command, expected):
    s = Session(mta)
    s.reply()
    assert s.cmd("MAIL FROM:<a@b.test>")[0].startswith("250")
    assert s.cmd(command) == [expected]
    s.close()


def test_recipients_checked(mta):
    s = Session(mta)
    s.reply()
    s.cmd("EHLO client.test")
    s.cmd("MAIL FROM:<a@b.test>")
    assert s.cmd("RCPT TO:<no-such-user@mail.example.test>") == [
        "550 5.1.1 <no-such-user@mail.example.test>: Recipient address rejected: "
        "User unknown in local recipient table"]
    assert s.cmd("RCPT TO:<carol@virtual.test>") == [
        "550 5.1.1 <carol@virtual.test>: Recipient address rejected: "
        "User unknown in virtual mailbox table"]
    assert s.cmd("RCPT TO:<alice@virtual.test>") == ["250 2.1.5 Ok"]
    assert s.cmd("RCPT TO:<postmaster>") == ["250 2.1.5 Ok"]
    assert s.cmd("RCPT TO:<root@localhost>") == ["250 2.1.5 Ok"]
    assert s.cmd("VRFY toto") == ["252 2.0.0 toto"]
    s.close()
    mta.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 "
                 r"<carol@virtual\.test>: Recipient address rejected: User unknown in virtual "
                 r"mailbox table; from=<a@b\.test> to=<carol@virtual\.test> proto=ESMTP "
                 r"helo=<client\.test>")


def test_relay_denied_outside_mynetworks(facteur_factory):
    inst = make(facteur_factory, "mynetworks = 127.0.0.1/32\n"
                "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n")
    with smtplib.SMTP(inst.host, inst.smtp_port, source_address=("127.0.0.7", 0),
                      timeout=15) as c:
        c.ehlo("outside.test")
        c.mail("s@outside.test")
        code, msg = c.rcpt("victim@elsewhere.test")
        assert (code, msg) == (554, b"5.7.1 <victim@elsewhere.test>: Relay access denied")
        # Local recipients are still accepted from anywhere.
        assert c.rcpt("toto")[0] == 250
    inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.7\]: 554 5\.7\.1 "
                  r"<victim@elsewhere\.test>: Relay access denied; from=<s@outside\.test> "
                  r"to=<victim@elsewhere\.test> proto=ESMTP helo=<outside\.test>")
    # From mynetworks the same recipient is accepted for relaying.
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=15) as c:
        c.ehlo("inside.test")
        c.mail("s@inside.test")
        assert c.rcpt("victim@elsewhere.test")[0] == 250


def test_relay_defer_unauth_destination_is_temporary(facteur_factory):
    """facteur's default ends in reject_unauth_destination (554, tested in
    test_seeds); Postfix's default, defer_unauth_destination, gives a 4xx."""
    inst = make(facteur_factory, "mynetworks = 127.0.0.1/32\n"
                "smtpd_relay_restrictions = permit_mynetworks, defer_unauth_destination\n")
    with smtplib.SMTP(inst.host, inst.smtp_port, source_address=("127.0.0.7", 0),
                      timeout=15) as c:
        c.ehlo("outside.test")
        c.mail("s@outside.test")
        assert c.rcpt("victim@elsewhere.test") == (
            454, b"4.7.1 <victim@elsewhere.test>: Relay access denied")


def test_pipelining_one_write(mta):
    s = Session(mta)
    s.reply()
    s.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<toto>\r\n"
           "RCPT TO:<nobody-at-all@mail.example.test>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n"
           "Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
    replies = [s.reply()[-1] for _ in range(9)]
    assert replies[0] == "250 DSN"
    assert replies[1:4] == ["250 2.1.0 Ok", "250 2.1.5 Ok",
                            "550 5.1.1 <nobody-at-all@mail.example.test>: Recipient address "
                            "rejected: User unknown in local recipient table"]
    assert replies[4:6] == ["250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>"]
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-Z]+", replies[6])
    assert replies[7:] == ["250 2.0.0 Ok", "221 2.0.0 Bye"]
    assert s.closed()


def test_size_limits(facteur_factory):
    inst = make(facteur_factory, "message_size_limit = 1000\n")
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=15) as c:
        c.ehlo("client.test")
        assert c.mail("a@b.test", ["SIZE=2000"]) == (
            552, b"5.3.4 Message size exceeds fixed limit")
        assert c.mail("a@b.test", ["SIZE=500"])[0] == 250
        assert c.rcpt("toto")[0] == 250
        code, msg = c.data(b"Subject: big\r\n\r\n" + b"x" * 70 * 30 + b"\r\n")
        assert (code, msg) == (552, b"5.3.4 Error: message file too big")
        # The session goes on: a small message is accepted.
        c.mail("a@b.test")
        c.rcpt("toto")
        assert c.data(b"Subject: small\r\n\r\nok\r\n")[0] == 250


def test_line_too_long(mta):
    s = Session(mta)
    s.reply()
    s.send("NOOP " + "x" * 5000 + "\r\n")
    assert s.reply() == ["500 5.5.0 Error: line too long"]
    assert s.cmd("NOOP") == ["250 2.0.0 Ok"]
    s.close()


def test_too_many_errors(facteur_factory):
    inst = make(facteur_factory, "smtpd_hard_error_limit = 5\nsmtpd_soft_error_limit = 100\n")
    s = Session(inst)
    s.reply()
    for _ in range(5):
        assert s.cmd("BOGUS") == ["502 5.5.2 Error: command not recognized"]
    assert s.reply() == ["421 4.7.0 mail.example.test Error: too many errors"]
    assert s.closed()
    inst.wait_log(r"too many errors after UNKNOWN from localhost\[127\.0\.0\.1\]")


def test_error_delay_does_not_block_others(facteur_factory):
    """Past the soft limit error replies are delayed, but other sessions
    are served meanwhile (the delay is a timer, not a sleep).  The delay is
    long (60 s) so that a slow machine cannot make the check pass or fail
    by accident: the other session is served long before it ends."""
    inst = make(facteur_factory, "smtpd_soft_error_limit = 1\nsmtpd_error_sleep_time = 60s\n")
    slow = Session(inst)
    slow.reply()
    slow.cmd("BOGUS")
    slow.send("BOGUS\r\n")  # this reply is delayed 60 s
    fast = Session(inst)
    fast.sock.settimeout(45)
    assert fast.reply()[0].startswith("220")
    assert fast.cmd("NOOP") == ["250 2.0.0 Ok"]
    # The slow session's reply is still being held back.
    slow.sock.settimeout(0.5)
    try:
        data = slow.sock.recv(512)
    except OSError:
        data = b""
    assert not data.startswith(b"502"), data
    slow.close()
    fast.close()


def test_recipient_limit(facteur_factory):
    inst = make(facteur_factory, "smtpd_recipient_limit = 2\n")
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=15) as c:
        c.ehlo("client.test")
        c.mail("a@b.test")
        assert c.rcpt("toto")[0] == 250
        assert c.rcpt("root@localhost")[0] == 250
        assert c.rcpt("postmaster") == (452, b"4.5.3 Error: too many recipients")


def test_dsn_params_and_etrn(mta):
    with smtplib.SMTP(mta.host, mta.smtp_port, timeout=15) as c:
        c.ehlo("client.test")
        assert c.mail("a@b.test", ["RET=HDRS", "ENVID=QQ+2B1", "BODY=8BITMIME"])[0] == 250
        assert c.rcpt("toto", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;toto@x.test"])[0] == 250
        assert c.mail("x@y.test")[0] == 503
        c.rset()
        assert c.docmd("ETRN", "example.test") == (250, b"Queuing started")


def test_bare_lf_dot_does_not_end_data(mta):
    """SMTP smuggling: "<LF>.<LF>" is content; only <CR><LF>.<CR><LF> ends."""
    s = Session(mta)
    s.reply()
    s.cmd("EHLO client.test")
    s.cmd("MAIL FROM:<a@b.test>")
    s.cmd("RCPT TO:<toto>")
    assert s.cmd("DATA")[0].startswith("354")
    s.send("Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<toto>\r\n")
    s.send(".\r\nQUIT\r\n")
    r = s.reply()
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-Z]+", r[0]), r
    assert s.reply() == ["221 2.0.0 Bye"]
    s.close()
    # One message, one transaction: the smuggled MAIL was content.
    mta.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 "
                 r"quit=1 commands=5$")


def test_lost_connection_logged(mta):
    s = Session(mta)
    s.reply()
    s.cmd("EHLO client.test")
    s.send("MAIL FROM:<a@b.test>\r\n")
    s.reply()
    s.close()
    mta.wait_log(r"lost connection after MAIL from localhost\[127\.0\.0\.1\]")
