"""The SMTP client (src/smtp/): one facteur instance relaying through
transport_maps "smtp:[127.0.0.5]:PORT" to a tiny SMTP sink written with
Python's standard library (no DNS needed).

The sink records every session and transaction and can be told to answer
RCPT with 4xx/5xx per address, to announce SIZE, to omit PIPELINING, or to
drop the connection in the middle of a transaction.
"""
import os
import re
import shutil
import smtplib
import socket
import socketserver
import threading
import time

import pytest

from conftest import Instance, free_port, wait_for

try:
    from conftest_dns import dnsmasq_factory  # noqa: F401  (fixture)
except ImportError:
    pass

SINK_HOST = "127.0.0.5"
SINK2_HOST = "127.0.0.7"


class Sink:
    """A minimal ESMTP server: one thread per session."""

    def __init__(self, host=SINK_HOST, port=None, size=None, pipelining=True, dsn=False):
        self.host = host
        self.port = port or free_port(host)
        self.size = size
        self.pipelining = pipelining
        self.dsn = dsn
        self.rcpt_replies = {}   # address -> list of replies, used in turn
        self.sessions = []       # list of lists of commands
        self.transactions = []   # dicts: mail, rcpts, data, pipelined
        self.lock = threading.Lock()
        self.queued = 0
        # {"at": "DATA" | "content" | "dot", "left": N}: the next N sessions
        # reaching that point close the connection without a reply.  The
        # dict may be shared by several sinks (whichever is tried first).
        self.drop = None
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                sink._session(self.request)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((self.host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _session(self, sock):
        sock.settimeout(30)
        buf = b""
        cmds = []
        with self.lock:
            self.sessions.append(cmds)
        out = [b"220 sink.test ESMTP\r\n"]
        txn = None
        in_data = False
        data = bytearray()

        def drop_here(point):
            with self.lock:
                d = self.drop
                if d is None or d["at"] != point or d["left"] <= 0:
                    return False
                d["left"] -= 1
                return True

        def flush():
            if out:
                sock.sendall(b"".join(out))
                out.clear()

        while True:
            if b"\r\n" not in buf:
                flush()   # PIPELINING: answer when the input is drained
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                continue
            if in_data:
                # The end marker may be cut between two reads: search
                # from a little before the new bytes.
                start = max(0, len(data) - 4)
                data += buf
                buf = b""
                if data.startswith(b".\r\n"):
                    body, buf = b"", bytes(data[3:])
                else:
                    end = data.find(b"\r\n.\r\n", start)
                    if end == -1:
                        if len(data) > 100000 and drop_here("content"):
                            return
                        continue
                    body, buf = bytes(data[:end + 2]), bytes(data[end + 5:])
                if drop_here("dot"):
                    return
                txn["data"] = body
                data = bytearray()
                in_data = False
                with self.lock:
                    self.queued += 1
                    n = self.queued
                    self.transactions.append(txn)
                out.append(b"250 2.0.0 Ok: queued as SINK%d\r\n" % n)
                txn = None
                continue
            line, buf = buf.split(b"\r\n", 1)
            text = line.decode("utf-8", "replace")
            cmds.append(text)
            verb = text.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["sink.test"]
                if self.pipelining:
                    caps.append("PIPELINING")
                if self.size is not None:
                    caps.append("SIZE %d" % self.size)
                caps.append("8BITMIME")
                if self.dsn:
                    caps.append("DSN")
                lines = ["250-%s" % c for c in caps[:-1]] + ["250 %s" % caps[-1]]
                out.append(("\r\n".join(lines) + "\r\n").encode())
            elif verb == "HELO":
                out.append(b"250 sink.test\r\n")
            elif verb == "MAIL":
                # Pipelined when the RCPTs were already waiting.
                txn = {"mail": text, "rcpts": [], "data": None,
                       "pipelined": b"RCPT TO" in buf}
                out.append(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", text)
                addr = m.group(1) if m else ""
                with self.lock:
                    replies = self.rcpt_replies.get(addr)
                    reply = replies.pop(0) if replies else None
                if reply is None:
                    txn["rcpts"].append(addr)
                    out.append(b"250 2.1.5 Ok\r\n")
                else:
                    out.append(reply.encode() + b"\r\n")
            elif verb == "DATA":
                if drop_here("DATA"):
                    flush()   # the MAIL and RCPT replies, then close
                    return
                if txn is None or not txn["rcpts"]:
                    out.append(b"554 5.5.1 Error: no valid recipients\r\n")
                else:
                    out.append(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    in_data = True
            elif verb == "RSET":
                txn = None
                out.append(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                out.append(b"221 2.0.0 Bye\r\n")
                flush()
                return
            else:
                out.append(b"502 5.5.2 Error: command not recognized\r\n")


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


def relay_instance(sink_port, extra=""):
    inst = Instance()
    inst.write_file("transport", "machin.test smtp:[%s]:%d\n" % (SINK_HOST, sink_port))
    inst.main_cf("transport_maps = texthash:%s/transport\n"
                 "smtp_helo_name = truc.test\n%s" % (inst.config_dir, extra))
    return inst


@pytest.fixture
def relay(request):
    insts = []

    def make(sink_port, extra=""):
        inst = relay_instance(sink_port, extra)
        insts.append(inst)
        return inst.start()

    yield make
    for inst in insts:
        inst.cleanup()


def send(inst, rcpts, body="Subject: hello\n\nhi there\n", sender="fred@example.test"):
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as c:
        c.sendmail(sender, rcpts, body)


def test_delivered_with_relay_and_pipelining(sink, relay):
    inst = relay(sink.port)
    body = "Subject: dots\n\n.leading dot\nline\n..two\n"
    send(inst, ["marc@machin.test"], body)
    line = inst.wait_log(r"to=<marc@machin\.test>.*status=sent")[0]
    assert "facteur/smtp[" in line
    assert "relay=%s[%s]:%d" % (SINK_HOST, SINK_HOST, sink.port) in line
    assert "dsn=2.0.0" in line
    assert re.search(r"status=sent \(250 2\.0\.0 Ok: queued as SINK1\)", line)
    assert re.search(r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+", line)
    t = sink.transactions[0]
    assert t["mail"].startswith("MAIL FROM:<fred@example.test>")
    assert t["rcpts"] == ["marc@machin.test"]
    assert t["pipelined"], "MAIL and RCPT were not sent as one group"
    # Dot-stuffing on the wire: "." lines are doubled.
    assert b"\r\n..leading dot\r\nline\r\n...two\r\n" in t["data"]
    assert b"\n" not in t["data"].replace(b"\r\n", b"")
    assert "EHLO truc.test" in sink.sessions[0]
    inst.wait_log(r"removed")


def test_no_pipelining_when_not_offered():
    s = Sink(pipelining=False)
    inst = relay_instance(s.port)
    try:
        inst.start()
        send(inst, ["a@machin.test", "b@machin.test"])
        inst.wait_log(r"status=sent", count=2)
        t = s.transactions[0]
        assert not t["pipelined"]
        assert sorted(t["rcpts"]) == ["a@machin.test", "b@machin.test"]
        # One transaction for both recipients (one request per nexthop).
        assert len(s.transactions) == 1
    finally:
        inst.cleanup()
        s.close()


def test_rcpt_5xx_bounced_with_remote_reply(sink, relay):
    sink.rcpt_replies["nobody@machin.test"] = [
        "550 5.1.1 <nobody@machin.test>: Recipient address rejected: User unknown"]
    inst = relay(sink.port)
    send(inst, ["marc@machin.test", "nobody@machin.test"])
    bounced = inst.wait_log(r"to=<nobody@machin\.test>.*status=bounced")[0]
    assert ("status=bounced (host %s[%s] said: 550 5.1.1 <nobody@machin.test>: "
            "Recipient address rejected: User unknown (in reply to RCPT TO command))"
            % (SINK_HOST, SINK_HOST)) in bounced
    assert "dsn=5.1.1" in bounced
    inst.wait_log(r"to=<marc@machin\.test>.*status=sent")
    assert sink.transactions[0]["rcpts"] == ["marc@machin.test"]


def test_rcpt_4xx_deferred_then_delivered(sink, relay):
    sink.rcpt_replies["marc@machin.test"] = ["450 4.2.0 <marc@machin.test>: try later"]
    inst = relay(sink.port)
    send(inst, ["marc@machin.test"])
    d = inst.wait_log(r"to=<marc@machin\.test>.*status=deferred")[0]
    assert "dsn=4.2.0" in d
    assert "said: 450 4.2.0 <marc@machin.test>: try later (in reply to RCPT TO command)" in d
    inst.wait_log(r"to=<marc@machin\.test>.*status=sent", timeout=60)
    assert len(sink.transactions) == 1


def test_sink_down_deferred_connection_refused(relay):
    port = free_port(SINK_HOST)   # nothing listens there
    inst = relay(port)
    send(inst, ["marc@machin.test"])
    line = inst.wait_log(r"to=<marc@machin\.test>.*status=deferred")[0]
    assert "relay=none" in line
    assert ("(connect to %s[%s]:%d: Connection refused)" % (SINK_HOST, SINK_HOST, port)) in line
    out = inst.run("queue", check=True).stdout
    assert "Connection refused" in out


def test_size_limit_respected():
    s = Sink(size=1000)
    inst = relay_instance(s.port)
    try:
        inst.start()
        send(inst, ["marc@machin.test"], "Subject: big\n\n" + ("x" * 70 + "\n") * 100)
        line = inst.wait_log(r"to=<marc@machin\.test>.*status=bounced")[0]
        assert re.search(r"dsn=5\.3\.4, status=bounced \(message size \d+ exceeds size limit "
                         r"1000 of server 127\.0\.0\.5\[127\.0\.0\.5\]\)", line)
        assert s.transactions == []
        assert not any(c.upper().startswith("MAIL") for sess in s.sessions for c in sess)
    finally:
        inst.cleanup()
        s.close()


def test_connection_reused_for_next_message(sink, relay):
    inst = relay(sink.port, "smtp_connection_cache_time_limit = 10s\n")
    send(inst, ["marc@machin.test"])
    inst.wait_log(r"status=sent")
    send(inst, ["marc@machin.test"], "Subject: second\n\nagain\n")
    inst.wait_log(r"status=sent", count=2)
    assert len(sink.transactions) == 2
    assert len(sink.sessions) == 1, sink.sessions


def test_error_and_discard_routes(sink, relay):
    inst = relay_instance(sink.port)
    inst.write_file("transport", "machin.test smtp:[%s]:%d\n"
                    "gone.test error:5.1.2 this domain is gone\n"
                    "void.test discard:\n" % (SINK_HOST, sink.port))
    inst.start()
    try:
        send(inst, ["x@gone.test", "y@void.test"])
        b = inst.wait_log(r"to=<x@gone\.test>.*status=bounced")[0]
        assert "relay=none" in b and "dsn=5.1.2" in b and "this domain is gone" in b
        inst.wait_log(r"to=<y@void\.test>.*status=sent")
    finally:
        inst.cleanup()


def _smtp_pid(inst):
    """The facteur/smtp process of an instance (its process group)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        if comm == "facteur/smtp" and int(fields[2]) == inst.proc.pid:
            return int(d)
    return None


def _vm_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _stuffed(lines):
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def test_large_message_streamed_intact(sink, relay):
    """5 MB through the client: every byte arrives (dot-stuffed), and the
    smtp process does not hold the message: its peak RSS grows far less
    than the message size (the content is streamed from the queue file)."""
    # The default message_size_limit (10240000) admits it.
    inst = relay(sink.port)
    send(inst, ["marc@machin.test"], "Subject: warm-up\n\nsmall\n")
    inst.wait_log(r"status=sent")
    pid = wait_for(lambda: _smtp_pid(inst), what="the smtp process")
    hwm_before = _vm_kib(pid, "VmHWM")

    lines, size, i = [], 0, 0
    while size < 5 * 1024 * 1024:
        if i % 97 == 0:
            line = b"." * (1 + i % 3) + b"dotted line %d" % i
        elif i % 89 == 0:
            line = b""
        else:
            line = (b"%08d " % i) + bytes(33 + (i * 7 + k) % 90 for k in range(i % 200))
        lines.append(line)
        size += len(line) + 2
        i += 1
    body = b"Subject: big\r\n\r\n" + b"".join(l + b"\r\n" for l in lines)
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=60) as c:
        c.sendmail("fred@example.test", ["marc@machin.test"], body)
    inst.wait_log(r"status=sent", count=2, timeout=60)

    data = sink.transactions[1]["data"]
    wire_body = _stuffed(lines)
    assert len(data) > 5 * 1024 * 1024
    assert data.endswith(b"\r\n\r\n" + wire_body), "content changed on the way"
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert _smtp_pid(inst) == pid
    with open("/proc/%d/maps" % pid) as f:
        if "libasan" in f.read():
            return   # the sanitizer's allocator keeps freed memory: no RSS check
    growth = _vm_kib(pid, "VmHWM") - hwm_before
    assert growth < 3 * 1024, "smtp peak RSS grew by %d KiB for a 5 MB message" % growth


@pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq") and shutil.which("dnsmasq") is None,
                    reason="dnsmasq (package dnsmasq-base) is not installed")
@pytest.mark.parametrize("drop_at", ["DATA", "content", "dot"])
def test_dropped_mid_transaction_next_address(dnsmasq_factory, drop_at):
    """machin.test has two MX hosts.  The first server tried drops
    the connection during the transaction (at DATA, in the middle of the
    content, or after the final dot without a reply): in the same attempt
    the next address gets the recipients that have no final result yet;
    a recipient the first server refused with 5xx stays bounced."""
    for _ in range(20):
        port = free_port(SINK_HOST)
        try:
            s2 = Sink(host=SINK2_HOST, port=port)
            break
        except OSError:
            continue
    s1 = Sink(host=SINK_HOST, port=port)
    drop = {"at": drop_at, "left": 1}
    replies = {"nobody@machin.test": ["550 5.1.1 <nobody@machin.test>: User unknown"]}
    for s in (s1, s2):
        s.drop = drop
        s.rcpt_replies = replies   # shared: only the first session gets the 550
    dns = dnsmasq_factory(mx=[("machin.test", "mx1.machin.test", 10),
                              ("machin.test", "mx2.machin.test", 20)],
                          hosts={"mx1.machin.test": SINK_HOST, "mx2.machin.test": SINK2_HOST})
    inst = Instance()
    inst.write_file("transport", "machin.test smtp:machin.test:%d\n" % port)
    inst.main_cf("transport_maps = texthash:%s/transport\n"
                 "smtp_helo_name = truc.test\n"
                 "dns_servers = %s\n" % (inst.config_dir, dns.servers))
    try:
        inst.start()
        big = "Subject: retry\n\n" + ("y" * 70 + "\n") * 20000   # 1.4 MB
        send(inst, ["marc@machin.test", "nobody@machin.test"], big)
        sent = inst.wait_log(r"to=<marc@machin\.test>.*status=sent", timeout=60)[0]
        bounced = inst.wait_log(r"to=<nobody@machin\.test>.*status=bounced")[0]
        assert "User unknown (in reply to RCPT TO command)" in bounced
        assert "status=deferred" not in inst.log_text()
        assert drop["left"] == 0
        done = s1.transactions + s2.transactions
        assert len(done) == 1 and done[0]["rcpts"] == ["marc@machin.test"]
        # Both servers saw a session; the one that delivered is the other.
        assert s1.sessions and s2.sessions
        assert s2.transactions, "mx2 (preference 20) did not get the message"
        assert "relay=mx2.machin.test[%s]:%d" % (SINK2_HOST, port) in sent
        assert done[0]["data"].endswith(b"y" * 70 + b"\r\n")
    finally:
        inst.cleanup()
        s1.close()
        s2.close()
