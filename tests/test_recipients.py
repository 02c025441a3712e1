"""Recipient validation follows Postfix's local_recipient_maps."""
import smtplib


def _rcpt(inst, addr):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=15) as s:
        s.ehlo("client.test")
        s.mail("a@example.net")
        return s.rcpt(addr)[0]


def test_default_rejects_unknown_local_user(facteur):
    assert _rcpt(facteur, "no-such-user@mail.example.test") == 550
    assert _rcpt(facteur, "%s@mail.example.test" % facteur.user) == 250
    assert _rcpt(facteur, "root@mail.example.test") == 250  # an alias


def test_empty_local_recipient_maps_accepts_any(facteur_factory):
    inst = facteur_factory(extra_main_cf="local_recipient_maps =")
    assert _rcpt(inst, "no-such-user@mail.example.test") == 250


def test_local_recipient_maps_table(facteur_factory):
    inst = facteur_factory(start=False)
    inst.main_cf("local_recipient_maps = inline:{ only-me=yes }")
    inst.start()
    assert _rcpt(inst, "only-me@mail.example.test") == 250
    assert _rcpt(inst, "%s@mail.example.test" % inst.user) == 550


def _data(inst, body):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=60) as s:
        s.ehlo("client.test")
        s.mail("a@example.net")
        s.rcpt("alice@virtual.test")
        return s.data(body)[0]


def test_message_size_limit_counts_each_byte_once(facteur_factory):
    """Content bytes after dot-unstuffing and CRLF -> LF, compared with
    message_size_limit: a message of several write chunks just under the
    limit passes, one just over it does not."""
    inst = facteur_factory(extra_main_cf="message_size_limit = 3000000")
    line = b"x" * 98 + b"\r\n"              # 99 bytes stored per line (LF)
    header = b"Subject: big\r\n\r\n"         # 15 bytes stored
    n = (3000000 - 15) // 99                 # the most lines that fit
    assert _data(inst, header + line * n) == 250
    assert _data(inst, header + line * (n + 1)) == 552
