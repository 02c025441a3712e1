#!/usr/bin/python3
"""bench/imap_bench.py - the IMAP benchmark's client (bench/imap.sh) and
its table.

    imap_bench.py run --name SYSTEM --port P --user U --password PW
                      --manifest FILE --pid PID --results FILE
                      [--timeout S] [--pop3-port P] [--unavailable REASON]
    imap_bench.py table --manifest FILE RESULTS

run: times, with imaplib, against 127.0.0.1:PORT

  session 1: LOGIN, SELECT INBOX (first: the server builds its index),
             FETCH 1:* (BODY.PEEK[HEADER]), FETCH 1:* (FLAGS UID RFC822.SIZE),
             SEARCH FROM, SEARCH BODY, SEARCH UNSEEN, LOGOUT
  session 2: LOGIN, SELECT INBOX (warm: the index exists), LOGOUT

and checks each answer against the manifest of bench/gen_maildir.py
(EXISTS, FETCH count, summed RFC822.SIZE, SEARCH counts).  Meanwhile a
thread samples the summed VmRSS / Pss of PID's process tree every 50 ms
(bench/measure.py's memory_sample).  One JSON line per system is appended
to RESULTS.  A server that does not answer IMAP (refused, no greeting,
LOGIN or SELECT rejected) is recorded as unavailable with the reason; a
single failing command is recorded as that command's error and the others
still run.  With --pop3-port, a POP3 STAT afterwards tells whether the
server sees the mailbox at all (facteur's POP3 works before its IMAP).
"""
import argparse
import imaplib
import json
import os
import poplib
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import memory_sample  # noqa: E402

# Untagged SEARCH answers of 10,000 numbers exceed imaplib's line limit.
imaplib._MAXLINE = 64 * 1024 * 1024

OPS = [  # (key, label)
    ("login", "LOGIN"),
    ("select_cold", "SELECT INBOX (first, index build)"),
    ("fetch_header", "FETCH 1:* (BODY.PEEK[HEADER])"),
    ("fetch_flags", "FETCH 1:* (FLAGS UID RFC822.SIZE)"),
    ("search_from", "SEARCH FROM (1 %)"),
    ("search_body", "SEARCH BODY (1 %)"),
    ("search_unseen", "SEARCH UNSEEN"),
    ("select_warm", "SELECT INBOX (new session, warm)"),
]


class Sampler(threading.Thread):
    """Peak of the summed VmRSS and Pss of a process tree, and of its size."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.rss = self.pss = self.procs = 0

    def sample(self):
        rss, pss, n = memory_sample(self.pid)
        self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
        self.procs = max(self.procs, n)

    def run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.05)


class Unavailable(Exception):
    pass


def short(exc):
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return text[:200]


def timed(fn):
    t0 = time.monotonic()
    value = fn()
    return time.monotonic() - t0, value


def check_ok(typ, data, what):
    if typ != "OK":
        raise imaplib.IMAP4.error("%s answered %s %s" % (what, typ, data))
    return data


def connect(args):
    try:
        return imaplib.IMAP4("127.0.0.1", args.port, timeout=args.timeout)
    except ConnectionRefusedError:
        raise Unavailable("connection refused on 127.0.0.1:%d" % args.port)
    except (OSError, imaplib.IMAP4.error, EOFError) as e:
        raise Unavailable("no greeting or CAPABILITY on 127.0.0.1:%d: %s" % (args.port, short(e)))


def login_select(args, res, login_key, select_key):
    imap = connect(args)
    try:
        t, _ = timed(lambda: check_ok(*imap.login(args.user, args.password), "LOGIN"))
    except (OSError, imaplib.IMAP4.error, EOFError) as e:
        raise Unavailable("LOGIN failed: %s" % short(e))
    if login_key:
        res["times"][login_key] = t
    try:
        t, data = timed(lambda: check_ok(*imap.select("INBOX", readonly=False), "SELECT"))
    except (OSError, imaplib.IMAP4.error, EOFError) as e:
        raise Unavailable("SELECT INBOX failed: %s" % short(e))
    res["times"][select_key] = t
    exists = int(data[0]) if data and data[0] and data[0].isdigit() else -1
    if exists != args.expect["messages"]:
        res["checks"].append("%s: EXISTS %d, expected %d" % (select_key, exists, args.expect["messages"]))
    return imap


SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


def run_ops(args, res):
    exp = args.expect
    imap = login_select(args, res, "login", "select_cold")
    n = exp["messages"]

    def op(key, fn, check):
        try:
            t, data = timed(fn)
        except (OSError, imaplib.IMAP4.error, EOFError) as e:
            res["errors"][key] = short(e)
            return False
        res["times"][key] = t
        problem = check(data)
        if problem:
            res["checks"].append("%s: %s" % (key, problem))
        return True

    def fetch_hdr():
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER])")
        return check_ok(typ, data, "FETCH")

    def fetch_hdr_check(data):
        got = sum(1 for d in data if isinstance(d, tuple))
        return None if got == n else "%d header literals, expected %d" % (got, n)

    def fetch_flags():
        typ, data = imap.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
        return check_ok(typ, data, "FETCH")

    def fetch_flags_check(data):
        sizes = [int(m.group(1)) for d in data if isinstance(d, bytes)
                 for m in [SIZE_RE.search(d)] if m]
        if len(sizes) != n:
            return "%d FETCH responses with RFC822.SIZE, expected %d" % (len(sizes), n)
        if "bytes_crlf" in exp and sum(sizes) != exp["bytes_crlf"]:
            return "summed RFC822.SIZE %d, expected %d" % (sum(sizes), exp["bytes_crlf"])
        return None

    def search(*criteria):
        def fn():
            typ, data = imap.search(None, *criteria)
            return check_ok(typ, data, "SEARCH")
        return fn

    def search_check(expected):
        def check(data):
            got = len(b" ".join(d for d in data if d).split())
            return None if got == expected else "%d matches, expected %d" % (got, expected)
        return check

    if not op("fetch_header", fetch_hdr, fetch_hdr_check):
        # imaplib may be out of step after a failed FETCH: new session.
        imap = reconnect(imap, args, res)
    if not op("fetch_flags", fetch_flags, fetch_flags_check):
        imap = reconnect(imap, args, res)
    domain = exp["rare_from"].split("@")[1]
    op("search_from", search("FROM", '"%s"' % domain), search_check(exp["from_matches"]))
    op("search_body", search("BODY", exp["rare_word"]), search_check(exp["body_matches"]))
    op("search_unseen", search("UNSEEN"), search_check(exp["unseen"]))
    logout(imap)

    imap = login_select(args, res, None, "select_warm")
    logout(imap)


def reconnect(imap, args, res):
    logout(imap)
    return login_select(args, res, None, "select_again")


def logout(imap):
    try:
        imap.logout()
    except (OSError, imaplib.IMAP4.error, EOFError):
        pass


def pop3_stat(args):
    """'STAT: N messages (T s with login)' or the reason it failed."""
    t0 = time.monotonic()
    try:
        p = poplib.POP3("127.0.0.1", args.pop3_port, timeout=args.timeout)
        try:
            p.user(args.user)
            p.pass_(args.password)
            count, size = p.stat()
        finally:
            try:
                p.quit()
            except (OSError, poplib.error_proto):
                pass
    except (OSError, poplib.error_proto) as e:
        return "POP3 check failed: %s" % short(e)
    exp = args.expect
    if count != exp["messages"]:
        ok = "expected %d messages" % exp["messages"]
    elif "bytes_crlf" in exp and size != exp["bytes_crlf"]:
        ok = "expected %d bytes" % exp["bytes_crlf"]
    else:
        ok = "ok"
    return "POP3 STAT: %d messages, %d bytes (%s), %.2f s with login" % (
        count, size, ok, time.monotonic() - t0)


def cmd_run(args):
    with open(args.manifest) as f:
        args.expect = json.load(f)
    res = {"name": args.name, "times": {}, "errors": {}, "checks": []}
    if args.unavailable:
        res["unavailable"] = args.unavailable
    else:
        sampler = Sampler(args.pid)
        if args.pid > 0:
            sampler.sample()
            sampler.start()
        t0 = time.monotonic()
        try:
            run_ops(args, res)
        except Unavailable as e:
            res["unavailable"] = str(e)
        res["wall"] = time.monotonic() - t0
        if sampler.is_alive():
            sampler.stop.set()
            sampler.join()
        res["rss_kib"], res["pss_kib"], res["procs"] = sampler.rss, sampler.pss, sampler.procs
        if args.pop3_port:
            res["pop3"] = pop3_stat(args)
    with open(args.results, "a") as f:
        f.write(json.dumps(res) + "\n")
    if "unavailable" in res:
        print("bench: %s: IMAP not available (%s)" % (args.name, res["unavailable"]), file=sys.stderr)
    return 0


def cmd_table(args):
    with open(args.manifest) as f:
        exp = json.load(f)
    rows = {}
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                rows[r["name"]] = r
    names = [n for n in ("facteur", "dovecot") if n in rows] + \
            [n for n in rows if n not in ("facteur", "dovecot")]
    print("IMAP: %d messages, %.1f MiB, %d unseen, seed %d; one client, 127.0.0.1" %
          (exp["messages"], exp["bytes"] / 1048576, exp["unseen"], exp["seed"]))
    w = max(len(label) for _, label in OPS) + 2
    print("%-*s" % (w, "operation") + "".join("%12s" % ("%s s" % n) for n in names))

    def cell(r, key):
        if "unavailable" in r and key not in r["times"]:
            return "-"
        if key in r["times"]:
            return "%.3f" % r["times"][key]
        return "error" if key in r["errors"] else "-"

    for key, label in OPS:
        print("%-*s" % (w, label) + "".join("%12s" % cell(rows[n], key) for n in names))

    def mem(r, field):
        # Without IMAP figures the memory of the whole instance means nothing.
        if "unavailable" in r and not r["times"]:
            return "-"
        return "%.1f" % (r[field] / 1024) if r.get(field) else "-"

    print("%-*s" % (w, "peak RSS MiB (server processes)") + "".join("%12s" % mem(rows[n], "rss_kib") for n in names))
    print("%-*s" % (w, "peak PSS MiB (server processes)") + "".join("%12s" % mem(rows[n], "pss_kib") for n in names))
    print("%-*s" % (w, "processes (peak)") + "".join(
        "%12s" % ("-" if "unavailable" in rows[n] and not rows[n]["times"] else rows[n].get("procs") or "-")
        for n in names))
    status = 0
    for n in names:
        r = rows[n]
        if "unavailable" in r:
            print("%s: IMAP not available (%s)" % (n, r["unavailable"]))
        order = [k for k, _ in OPS]
        for key, err in sorted(r["errors"].items(), key=lambda kv: order.index(kv[0])
                               if kv[0] in order else len(order)):
            print("%s: %s failed: %s" % (n, key, err))
        for c in r["checks"]:
            print("%s: wrong answer: %s" % (n, c))
        if r.get("pop3"):
            print("%s: %s" % (n, r["pop3"]))
        if "unavailable" not in r and not r["errors"] and not r["checks"]:
            print("%s: every answer checked (counts, sizes)" % n)
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--user", required=True)
    r.add_argument("--password", required=True)
    r.add_argument("--manifest", required=True)
    r.add_argument("--pid", type=int, default=0)
    r.add_argument("--results", required=True)
    r.add_argument("--timeout", type=float, default=120)
    r.add_argument("--pop3-port", type=int, default=0)
    r.add_argument("--unavailable", default="")
    t = sub.add_parser("table")
    t.add_argument("--manifest", required=True)
    t.add_argument("results")
    args = ap.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_table(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
