"""`facteur queue` list/show/hold/release/delete/flush on real deferred
mail, and mailq (sendmail -bp) printing the same listing as Postfix."""
import os
import re

import pytest

from conftest import IS_ROOT, run_cmd, wait_for, free_port

# Remote mail goes to a relay that refuses connections (nothing listens),
# so it stays deferred; long backoffs keep it in deferred/ while we work.
def remote_cf():
    return ("relayhost = [127.0.0.1]:%d\nminimal_backoff_time = 1h\n"
            "maximal_backoff_time = 2h\nqueue_run_delay = 1h\n" % free_port())


def submit_remote(inst, subject, rcpt="someone@elsewhere.example.org"):
    r = inst.run("sendmail", "-f", "chris@example.test", rcpt,
                 input="Subject: %s\n\nbody of %s\n" % (subject, subject), user=inst.user)
    assert r.returncode == 0, r.stderr
    line = inst.wait_log(r"facteur/pickup\[\d+\]: [0-9A-Z]+: uid=\d+ "
                         r"from=<chris@example\.test>", count=1)
    return line


def deferred_ids(inst, n):
    return wait_for(lambda: inst.queue_files("deferred") if len(inst.queue_files("deferred")) >= n
                    else None, timeout=30, what="%d deferred messages" % n)


@pytest.fixture
def queued(facteur_factory):
    inst = facteur_factory(extra_main_cf=remote_cf())
    submit_remote(inst, "first")
    inst.wait_log(r"status=deferred", count=1)
    submit_remote(inst, "second", rcpt="other@elsewhere.example.org")
    inst.wait_log(r"status=deferred", count=2)
    ids = deferred_ids(inst, 2)
    return inst, ids


def test_list_format(queued):
    inst, ids = queued
    r = inst.run("queue")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------"
    for qid in ids:
        m = re.search(r"^%s +(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)  "
                      r"chris@example\.test\n\((.+)\)\n +(\S+)\n\n" % qid, r.stdout, re.M)
        assert m, r.stdout
        assert int(m.group(1)) > 0
        assert m.group(4) in ("someone@elsewhere.example.org", "other@elsewhere.example.org")
    assert re.search(r"\n-- \d+ Kbytes in 2 Requests\.\n$", r.stdout), r.stdout
    # The same listing under the other names.
    assert inst.run("queue", "list").stdout == r.stdout
    assert inst.run("sendmail", "-bp").stdout == r.stdout


def test_show(queued):
    inst, ids = queued
    r = inst.run("queue", "show", ids[0])
    assert r.returncode == 0, r.stderr
    assert "*** ENVELOPE RECORDS deferred/%s ***\n" % ids[0] in r.stdout
    assert "\nsender: chris@example.test\n" in r.stdout
    assert re.search(r"\nrecipient: (someone|other)@elsewhere\.example\.org\n", r.stdout)
    assert "*** MESSAGE CONTENTS deferred/%s ***\n" % ids[0] in r.stdout
    assert re.search(r"\nSubject: (first|second)\n", r.stdout)
    assert r.stdout.endswith("*** MESSAGE FILE END deferred/%s ***\n" % ids[0])
    r = inst.run("queue", "show", "NOSUCHID")
    assert r.returncode != 0 and "no such message" in r.stderr


def test_hold_and_release(queued):
    inst, ids = queued
    r = inst.run("queue", "hold", ids[0])
    assert r.returncode == 0, r.stderr
    assert "Placed on hold: 1 message" in r.stdout
    assert ids[0] in inst.queue_files("hold")
    assert ids[0] not in inst.queue_files("deferred")
    assert re.search(r"^%s!" % ids[0], inst.run("queue").stdout, re.M)
    r = inst.run("queue", "release", ids[0])
    assert r.returncode == 0, r.stderr
    assert "Released from hold: 1 message" in r.stdout
    assert ids[0] not in inst.queue_files("hold")
    # Released mail is tried at once, and deferred again by the relay.
    inst.wait_log(r"%s: to=<.*status=deferred" % ids[0], count=2)
    wait_for(lambda: ids[0] in inst.queue_files("deferred"), what="deferred again")
    r = inst.run("queue", "release", ids[0])
    assert r.returncode == 1 and "no such message" in r.stderr


def test_delete(queued):
    inst, ids = queued
    r = inst.run("queue", "delete", ids[0])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "facteur: Deleted: 1 message\n"
    assert ids[0] not in inst.queue_files("deferred")
    inst.wait_log(r"facteur/postsuper\[\d+\]: %s: removed" % ids[0])
    r = inst.run("queue", "delete", "ALL")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "facteur: Deleted: 1 message\n"
    inst.wait_log(r"facteur/postsuper\[\d+\]: %s: removed" % ids[1])
    assert inst.run("queue").stdout == "Mail queue is empty\n"
    r = inst.run("queue", "delete", ids[0])
    assert r.returncode == 1 and "no such message" in r.stderr


def test_flush(queued):
    inst, ids = queued
    r = inst.run("queue", "flush")
    assert r.returncode == 0, r.stderr
    # Both are retried now despite the 1h backoff.
    for qid in ids:
        inst.wait_log(r"%s: to=<.*status=deferred" % qid, count=2)
    inst.stop()
    r = inst.run("queue", "flush")
    assert r.returncode == 1 and "mail system is down" in r.stderr


def test_active_message_is_not_deleted_while_running(queued):
    """A file in active/ belongs to the queue manager: refused while
    facteur runs, removed once it is stopped."""
    inst, ids = queued
    inst.stop()
    os.rename(os.path.join(inst.queue_dir, "deferred", ids[0]),
              os.path.join(inst.queue_dir, "active", ids[0]))
    assert re.search(r"^%s\*" % ids[0], inst.run("queue").stdout, re.M)
    # Pretend the master runs: a live pid in the pid file.
    pid_path = os.path.join(inst.queue_dir, "pid", "master.pid")
    saved = open(pid_path).read() if os.path.exists(pid_path) else None
    with open(pid_path, "w") as f:
        f.write("%d\n" % os.getpid())
    r = inst.run("queue", "delete", ids[0])
    assert r.returncode == 1 and "being delivered" in r.stderr
    assert ids[0] in inst.queue_files("active")
    os.unlink(pid_path)
    if saved is not None:
        with open(pid_path, "w") as f:
            f.write(saved)
    r = inst.run("queue", "delete", ids[0])
    assert r.returncode == 0 and "Deleted: 1 message" in r.stdout
    assert ids[0] not in inst.queue_files("active")


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run as another user")
def test_ordinary_user_cannot_read_queue(facteur):
    r = facteur.run("queue", user=facteur.user)
    assert r.returncode != 0
    assert "cannot access the mail queue" in r.stderr
    assert "root or as mail_owner" in r.stderr
