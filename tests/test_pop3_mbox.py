"""POP3 on an mbox maildrop (a system user's spool file): RETR, DELE and
QUIT remove the message from the mbox; UIDLs stay the same across
sessions; deliveries after the session get new UIDLs.  The password comes
from an auth_passwd_file entry named like the system user, so no system
account is changed."""
import os
import re

from conftest import free_port, send_mail, wait_for
import conftest
from test_pop3 import PASSWORD, _port_open, login, pop3_factory  # noqa: F401


def _mbox_instance(pop3_factory):  # noqa: F811
    inst = pop3_factory(start=False)
    inst.pop3_port = free_port()
    path = inst.write_file("passwd", "%s:%s\n" % (inst.user, conftest.pw_hash(PASSWORD)), mode=0o600)
    inst.main_cf("pop3_listen = 127.0.0.1:%d\nauth_passwd_file = %s\n" % (inst.pop3_port, path))
    inst.start()
    wait_for(lambda: _port_open(inst), timeout=20, what="POP3 listener")
    return inst


def _subjects(inst):
    return [m["Subject"] for m in inst.mbox_messages()]


def test_mbox_retr_dele_quit_keeps_uidls(pop3_factory):  # noqa: F811
    inst = _mbox_instance(pop3_factory)
    # root's mail goes to the test user's mbox (default aliases).
    for i in range(3):
        send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
                  "mbox %d" % i, body="From the start of a line\nmessage %d\n" % i)
        wait_for(lambda: len(inst.mbox_messages()) == i + 1, timeout=30,
                 what="mbox delivery %d" % i)
    mbox = inst.mbox_path()
    ino = os.stat(mbox).st_ino

    p = login(inst, user=inst.user)
    assert p.stat()[0] == 3
    uidl1 = [u.split() for u in p.uidl()[1]]
    assert len({u for _, u in uidl1}) == 3
    resp, lines, _ = p.retr(2)
    assert b"Subject: mbox 1" in lines and b">From the start of a line" in lines
    assert p.dele(2).startswith(b"+OK")
    assert p.stat()[0] == 2
    p.quit()
    assert _subjects(inst) == ["mbox 0", "mbox 2"]
    assert os.stat(mbox).st_ino == ino  # rewritten in place
    # The surviving messages are byte-identical (>From quoting kept).
    with open(mbox, "rb") as f:
        data = f.read()
    assert data.count(b"\n>From the start of a line\n") == 2
    assert not os.path.exists(mbox + ".lock")

    # A new session: same UIDLs for the others, message 2 gone.
    p = login(inst, user=inst.user)
    uidl2 = [u.split() for u in p.uidl()[1]]
    assert [u for _, u in uidl2] == [uidl1[0][1], uidl1[2][1]]
    resp, lines, _ = p.retr(2)
    assert b"Subject: mbox 2" in lines
    p.quit()

    # A later delivery gets a new UIDL; the old ones stay.
    send_mail("127.0.0.1", inst.smtp_port, "someone@example.test", "root@example.test",
              "mbox 3", body="later\n")
    wait_for(lambda: len(inst.mbox_messages()) == 3, timeout=30, what="mbox delivery 3")
    p = login(inst, user=inst.user)
    uidl3 = [u.split()[1] for u in p.uidl()[1]]
    assert uidl3[:2] == [uidl1[0][1], uidl1[2][1]]
    assert uidl3[2] not in {u for _, u in uidl1}
    # RSET undoes DELE: nothing removed.
    p.dele(1)
    p.rset()
    p.quit()
    assert _subjects(inst) == ["mbox 0", "mbox 2", "mbox 3"]
    # Delete everything: the mbox is left empty, not removed.
    p = login(inst, user=inst.user)
    for i in (1, 2, 3):
        p.dele(i)
    p.quit()
    assert os.path.getsize(mbox) == 0
    assert not re.search(r"expunge .*message", inst.log_text())
