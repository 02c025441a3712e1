#!/usr/bin/python3
"""Benchmark measurements for bench/run.sh (not part of make test).

Two subcommands:

  measure.py run --name NAME --port PORT (--maildir DIR | --sink-out FILE)
                 --pid PID --messages N --sessions S --size BYTES
                 --timeout SEC --results FILE
      Sends N messages with Postfix's smtp-source to 127.0.0.1:PORT and
      measures, for the mail system whose top process is PID:
        accepted/s   N / wall time of smtp-source
        delivered/s  N / time from the start of smtp-source until DIR/new/
                     holds N files (polled every 50 ms); with --sink-out
                     (relay mode) until the smtp-sink whose -c output is
                     FILE counted N messages ("relayed/s")
        peak RSS     highest sum of VmRSS over PID and all its descendants
                     (sampled every 100 ms), also the sum of Pss
                     (/proc/PID/smaps_rollup), which does not count shared
                     pages once per process
        processes    highest number of processes in that tree
      Appends one JSON line to FILE.

  measure.py table FILE
      Prints the side-by-side table of every result line in FILE.

Only 127.0.0.1 is ever contacted.  Every wait is bounded by --timeout.
"""
import argparse
import json
import os
import subprocess
import sys
import time

SMTP_SOURCE = "/usr/sbin/smtp-source"
TICK = 0.05          # maildir polling period (s)
MEM_EVERY = 2        # memory sampled every MEM_EVERY ticks (100 ms)


def proc_tree(root):
    """PIDs of root and all its descendants (from /proc/*/stat)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the
        # fields after it start after the last ')'.
        rest = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(rest[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def kib_field(path, name):
    """Value in KiB of the line 'name: N kB' of a /proc file, 0 if absent."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory_sample(root):
    """(summed VmRSS KiB, summed Pss KiB, process count) of root's tree."""
    rss = pss = n = 0
    for pid in proc_tree(root):
        r = kib_field("/proc/%d/status" % pid, b"VmRSS:")
        if r == 0 and not os.path.exists("/proc/%d" % pid):
            continue            # exited between the listing and the read
        rss += r
        pss += kib_field("/proc/%d/smaps_rollup" % pid, b"Pss:")
        n += 1
    return rss, pss, n


def count_files(directory):
    try:
        with os.scandir(directory) as it:
            return sum(1 for e in it if not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def sink_count(path):
    """Messages an smtp-sink -c has received: the last "mesg=N" of its
    output (it rewrites "sess=S quit=Q mesg=M\\r" after every message)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256))
            tail = f.read()
    except FileNotFoundError:
        return 0
    i = tail.rfind(b"mesg=")
    if i < 0:
        return 0
    digits = tail[i + 5:].split(b"\r")[0].split()[0:1]
    try:
        return int(digits[0]) if digits else 0
    except ValueError:
        return 0


def cmd_run(args):
    if args.sink_out:
        where = "the sink %s" % args.sink_out
        def delivered_count():
            return sink_count(args.sink_out)
    else:
        where = os.path.join(args.maildir, "new")
        def delivered_count():
            return count_files(where)
    if not os.path.exists("/proc/%d" % args.pid):
        sys.exit("measure: %s: process %d is not running" % (args.name, args.pid))
    before = delivered_count()
    if before:
        sys.exit("measure: %s: %s already holds %d messages" % (args.name, where, before))
    base_rss, base_pss, base_n = memory_sample(args.pid)

    cmd = [SMTP_SOURCE, "-s", str(args.sessions), "-m", str(args.messages),
           "-l", str(args.size), "-f", args.sender, "-t", args.recipient,
           "127.0.0.1:%d" % args.port]
    err_path = os.path.join(os.path.dirname(os.path.abspath(args.results)),
                            "smtp-source-%s.err" % args.name)
    err = open(err_path, "wb")
    t0 = time.monotonic()
    src = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=err)
    deadline = t0 + args.timeout
    accept_time = deliver_time = None
    src_rc = None
    peak_rss, peak_pss, peak_n = base_rss, base_pss, base_n
    delivered = 0
    tick = 0
    errors = []
    while True:
        now = time.monotonic()
        if src_rc is None:
            src_rc = src.poll()
            if src_rc is not None:
                accept_time = now - t0
        if tick % MEM_EVERY == 0:
            if not os.path.exists("/proc/%d" % args.pid):
                errors.append("master process %d exited" % args.pid)
                break
            rss, pss, n = memory_sample(args.pid)
            peak_rss, peak_pss, peak_n = max(peak_rss, rss), max(peak_pss, pss), max(peak_n, n)
        delivered = delivered_count()
        if delivered >= args.messages and deliver_time is None:
            deliver_time = time.monotonic() - t0
        if deliver_time is not None and src_rc is not None:
            break
        if now > deadline:
            errors.append("timeout after %ds" % args.timeout)
            break
        tick += 1
        time.sleep(TICK)
    if src_rc is None:
        src.kill()
        src.wait(timeout=10)
        errors.append("smtp-source did not finish")
    elif src_rc != 0:
        errors.append("smtp-source exit status %d" % src_rc)
    err.close()
    with open(err_path, "rb") as f:
        text = f.read().decode("utf-8", "replace").strip()
    if text:
        lines = text.splitlines()
        errors.append("smtp-source: %s%s" % (
            lines[-1], " (%d lines, see %s)" % (len(lines), err_path) if len(lines) > 1 else ""))

    result = {
        "name": args.name,
        "mode": "relay" if args.sink_out else "local",
        "messages": args.messages,
        "sessions": args.sessions,
        "size": args.size,
        "accept_s": accept_time,
        "deliver_s": deliver_time,
        "delivered": delivered,
        "idle_rss_kib": base_rss,
        "peak_rss_kib": peak_rss,
        "peak_pss_kib": peak_pss,
        "idle_processes": base_n,
        "peak_processes": peak_n,
        "errors": errors,
    }
    with open(args.results, "a") as f:
        f.write(json.dumps(result) + "\n")
    status = "ok" if not errors else "; ".join(errors)
    print("bench: %s: accepted in %s, %s %d/%d in %s (%s)" % (
        args.name, fmt_s(accept_time), "relayed" if args.sink_out else "delivered",
        delivered, args.messages, fmt_s(deliver_time), status))
    return 0 if not errors else 1


def fmt_s(t):
    return "-" if t is None else "%.2fs" % t


def rate(n, t):
    return "-" if not t else "%.0f" % (n / t)


def cmd_table(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    relay = bool(rows) and all(r.get("mode") == "relay" for r in rows)
    head = ("system", "msgs", "accepted/s", "relayed/s" if relay else "delivered/s",
            "peak RSS MiB", "peak PSS MiB", "processes")
    table = [head]
    notes = []
    for r in rows:
        table.append((
            r["name"],
            str(r["messages"]),
            rate(r["messages"], r["accept_s"]),
            rate(r["messages"], r["deliver_s"]) if r["deliver_s"] else
            "- (%d)" % r["delivered"],
            "%.1f" % (r["peak_rss_kib"] / 1024.0),
            "%.1f" % (r["peak_pss_kib"] / 1024.0),
            "%d" % r["peak_processes"],
        ))
        for e in r["errors"]:
            notes.append("%s: %s" % (r["name"], e))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        print("  ".join(cells))
    if rows:
        r = rows[0]
        print("(%d sessions, %d-byte messages; %s; "
              "RSS summed over all processes, PSS counts shared pages once)" % (
                  r["sessions"], r["size"],
                  "relayed = all N received by smtp-sink over SMTP" if relay
                  else "delivered = all N in Maildir new/"))
    for n in notes:
        print("error: " + n)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--port", type=int, required=True)
    done = r.add_mutually_exclusive_group(required=True)
    done.add_argument("--maildir", help="local mode: count files in DIR/new")
    done.add_argument("--sink-out", help="relay mode: smtp-sink -c output file")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--messages", type=int, default=5000)
    r.add_argument("--sessions", type=int, default=20)
    r.add_argument("--size", type=int, default=4096)
    r.add_argument("--sender", default="a@x.test")
    r.add_argument("--recipient", default="u@bench.test")
    r.add_argument("--timeout", type=int, default=600)
    r.add_argument("--results", required=True)
    t = sub.add_parser("table")
    t.add_argument("results")
    args = p.parse_args()
    return cmd_run(args) if args.cmd == "run" else cmd_table(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)   # smtp-source, in the same process group, got it too
