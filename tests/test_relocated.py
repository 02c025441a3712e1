"""relocated_maps (Postfix relocated(5)): RCPT TO a user who moved is
refused with Postfix's text, "550 5.1.6 <ADDR>: Recipient address rejected:
User has moved to NEWADDR"; lookup keys user@domain, user (local domains)
and @domain; other recipients of the same transaction are unaffected."""
import smtplib

from conftest import send_mail


RELOCATED = "\n".join([
    "old@mail.example.test    new@elsewhere.test",
    "gone                     gone@far.test",
    "@oldco.example.test      contact@newco.test",
    "",
])


def rcpt(inst, address, source="127.0.0.7"):
    with smtplib.SMTP(inst.host, inst.smtp_port, source_address=(source, 0), timeout=30) as s:
        s.ehlo("client.test")
        s.mail("sender@client.test")
        code, text = s.rcpt(address)
        s.rset()
        return code, text.decode()


def test_relocated_rcpt_rejected(facteur_factory):
    inst = facteur_factory(start=False)
    inst.write_file("relocated", RELOCATED)
    inst.main_cf("relocated_maps = texthash:%s/relocated\n"
                 "relay_domains = oldco.example.test" % inst.config_dir)
    inst.start()

    rows = [
        ("old@mail.example.test", "new@elsewhere.test"),
        ("Old@MAIL.example.test", "new@elsewhere.test"),
        ("gone@mail.example.test", "gone@far.test"),       # bare user, local domain
        ("gone@localhost", "gone@far.test"),
        ("anyone@oldco.example.test", "contact@newco.test"),  # @domain
    ]
    for address, new in rows:
        code, text = rcpt(inst, address)
        assert code == 550, (address, code, text)
        assert text == "5.1.6 <%s>: Recipient address rejected: User has moved to %s" % (
            address, new), text
    inst.wait_log(r"NOQUEUE: reject: RCPT from .*: 550 5\.1\.6 <old@mail\.example\.test>: "
                  r"Recipient address rejected: User has moved to new@elsewhere\.test;",
                  timeout=10)

    # Not relocated: accepted.
    code, _ = rcpt(inst, "root@mail.example.test")
    assert code == 250
    # The bare-user key applies to local domains only: "gone" at a relay
    # domain is someone else.
    code, text = rcpt(inst, "gone@oldco.example.test")
    assert code == 550 and "contact@newco.test" in text  # the @domain entry

    # Mixed transaction: the moved recipient is refused, the other one
    # gets the message.
    qid = send_mail(inst.host, inst.smtp_port, "sender@client.test",
                    ["root@mail.example.test"], "still here")
    assert qid
