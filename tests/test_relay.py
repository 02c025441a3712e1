"""Issue 5, relay battery: the classic tricks to make a server relay, sent
from a client outside mynetworks, are refused in full (5xx, nothing
queued); the same destination is relayed from mynetworks.  Addresses that
only look tricky but name a local user after the source route is removed
(RFC 5321 4.1.2: a server may ignore the route) are delivered locally."""
import smtplib

import pytest

OUTSIDE = "127.0.0.7"

# Each trick names elsewhere.test (or an unknown destination) in some
# disguise.  mail.example.test and example.test are local.
TRICKS = [
    "victim@elsewhere.test",
    "victim@ELSEWHERE.TEST",
    "victim@Elsewhere.Test.",
    "victim@elsewhere.test.",
    "victim%elsewhere.test@mail.example.test",
    "victim%elsewhere.test@example.test",
    "victim%elsewhere.test@[127.0.0.1]",
    "victim%elsewhere.test",
    "elsewhere.test!victim@mail.example.test",
    "elsewhere.test!victim",
    "@mail.example.test:victim@elsewhere.test",
    "@mail.example.test,@example.test:victim@elsewhere.test",
    '"victim@elsewhere.test"@mail.example.test',
    '"victim%elsewhere.test"@mail.example.test',
    '"victim@elsewhere.test"',
    "victim@elsewhere.test@mail.example.test",
    "victim@elsewhere.test%mail.example.test",
    "victim@mail.example.test.elsewhere.test",
    "victim@[203.0.113.9]",
    "victim@[IPv6:2001:db8::1]",
    "victim@[127.0.0.1]",
    "victim@[mail.example.test]",
    "victim@.elsewhere.test",
    "victim@elsewhere..test",
    "<victim@elsewhere.test>",
    "victim@elsewhere.test> NOTIFY=NEVER",
]


def _sessions(inst, items, per_session=5):
    """RCPT answers for items, a few per session (smtpd_hard_error_limit)."""
    answers = {}
    for i in range(0, len(items), per_session):
        with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30,
                          source_address=(OUTSIDE, 0)) as s:
            s.ehlo("outside.test")
            for t in items[i:i + per_session]:
                s.rset()
                assert s.mail("spammer@outside.test")[0] == 250
                answers[t] = s.docmd("RCPT TO:<%s>" % t)
    return answers


def test_relay_tricks_refused_outside_mynetworks(facteur_factory):
    inst = facteur_factory(extra_main_cf="mynetworks = 127.0.0.1/32")
    answers = _sessions(inst, TRICKS)
    accepted = {t: a for t, a in answers.items() if a[0] < 500}
    assert not accepted, accepted
    # Nothing reached the queue.
    for sub in ("incoming", "active", "deferred"):
        assert inst.queue_files(sub) == [], sub
    # From mynetworks the plain relay is accepted.
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30,
                      source_address=("127.0.0.1", 0)) as s:
        s.ehlo("inside.test")
        assert s.mail("me@mail.example.test")[0] == 250
        assert s.rcpt("friend@elsewhere.test")[0] == 250
        assert s.rcpt("friend@ELSEWHERE.TEST")[0] == 250


@pytest.mark.parametrize("rcpt", ["@elsewhere.test:root@mail.example.test",
                                  "ROOT@Mail.Example.Test"])
def test_local_recipient_in_disguise_is_local(facteur_factory, rcpt):
    inst = facteur_factory(extra_main_cf="mynetworks = 127.0.0.1/32")
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30,
                      source_address=(OUTSIDE, 0)) as s:
        s.ehlo("outside.test")
        assert s.mail("someone@outside.test")[0] == 250
        code, msg = s.docmd("RCPT TO:<%s>" % rcpt)
        assert code == 250, msg
        assert s.data(b"Subject: disguised\r\n\r\nlocal\r\n")[0] == 250
    inst.wait_log(r"to=<%s@[^>]*>, orig_to=<[^>]*>, relay=local, .*status=sent" % inst.user)
    assert [str(m["Subject"]) for m in inst.mbox_messages()] == ["disguised"]
