"""The SMTP client (src/smtp/): one facteur instance relaying through
transport_maps "smtp:[127.0.0.5]:PORT" to a tiny SMTP sink written with
Python's standard library (no DNS needed).

The sink records every session and transaction and can be told to answer
RCPT with 4xx/5xx per address, to announce SIZE, or to omit PIPELINING.
"""
import re
import smtplib
import socket
import socketserver
import threading
import time

import pytest

from conftest import Instance, free_port, wait_for

SINK_HOST = "127.0.0.5"


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
        data = b""

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
                end = buf.find(b"\r\n.\r\n")
                if not data and buf.startswith(b".\r\n"):
                    end, skip = -2, 3
                else:
                    skip = 5
                if end == -1:
                    data += buf
                    buf = b""
                    continue
                if end == -2:
                    body, buf = b"", buf[3:]
                else:
                    body, buf = buf[:end + 2], buf[end + skip:]
                txn["data"] = data + body
                data = b""
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
