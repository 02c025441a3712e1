"""valgrind on the daemons: one instance of the plain build runs under
memcheck (which follows the roles the master forks) through a session that
touches every role; every process must end with no memory errors and no
definitely lost blocks."""
import glob
import os
import re
import shutil
import smtplib

import pytest

import conftest
from conftest import ROOT, run_cmd, wait_for

PLAIN = os.path.join(ROOT, "build", "facteur")


@pytest.mark.skipif(shutil.which("valgrind") is None or not os.path.exists(PLAIN),
                    reason="valgrind or the plain build (build/facteur) missing")
def test_daemons_valgrind_clean(facteur_factory, monkeypatch):
    inst = facteur_factory(start=False)
    vgdir = os.path.join(inst.tmp, "valgrind")
    os.makedirs(vgdir)
    os.chmod(vgdir, 0o1777)
    monkeypatch.setattr(conftest, "FACTEUR", PLAIN)
    inst.start_prefix = ["valgrind", "--leak-check=full",
                         "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                         "--track-fds=no", "--log-file=%s/vg.%%p" % vgdir]
    inst.start()
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=60) as s:
        # A virtual mailbox, an alias to a system user, and another domain
        # (the SMTP client's DNS lookup fails: deferred).
        s.sendmail("v@example.net", ["alice@virtual.test", "root@mail.example.test",
                                     "far@elsewhere.test"],
                   b"Subject: valgrind\r\n\r\nunder memcheck\r\n")
    r = inst.run("sendmail", "root", input="Subject: local\n\nvia sendmail\n", user=inst.user)
    assert r.returncode == 0, r.stderr
    inst.wait_log(r"status=sent", count=3, timeout=120)
    inst.wait_log(r"to=<far@elsewhere\.test>.*status=deferred", timeout=120)
    inst.wait_log(r": removed", count=1, timeout=120)
    inst.stop()
    reports = glob.glob(os.path.join(vgdir, "vg.*"))
    assert reports, "valgrind wrote no report"
    bad = []
    for path in reports:
        with open(path, errors="replace") as f:
            text = f.read()
        # Every process valgrind followed ends its report with a summary.
        if ("ERROR SUMMARY: 0 errors" not in text
                or re.search(r"definitely lost: [1-9]", text)
                or re.search(r"Invalid (read|write)|uninitialised", text)):
            bad.append("%s:\n%s" % (path, text[-3000:]))
    assert not bad, "\n".join(bad)
    # The master, smtpd, qmgr, pickup, local and its workers: several
    # processes were followed.
    assert len(reports) >= 5, reports
