"""Scheduler: a slow or dead destination never holds up the others.

One facteur instance routes two test domains to two next hops on loopback
through transport_maps: slow.test to a server that accepts connections but
never says a word (every delivery there hangs until smtp_helo_timeout), and
fast.test to a working SMTP sink.  Mail to fast.test sent after a batch of
mail to slow.test must be delivered while the slow deliveries still hang."""
import socket
import threading

from conftest import free_port, wait_for
from test_smtp_client import Sink, send


class Silent:
    """Accepts TCP connections and never answers."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                continue

    def close(self):
        self.stop = True
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_dead_destination_does_not_block_others(facteur_factory):
    silent = Silent("127.0.0.6")
    sink = Sink()
    try:
        inst = facteur_factory(start=False)
        inst.write_file("transport", "slow.test smtp:[127.0.0.6]:%d\n"
                                     "fast.test smtp:[%s]:%d\n" % (silent.port, sink.host, sink.port))
        inst.run("map", "hash:%s/transport" % inst.config_dir, check=True)
        inst.main_cf("transport_maps = hash:%s/transport\n"
                     "smtp_helo_timeout = 300s\n"
                     "smtp_destination_concurrency_limit = 5" % inst.config_dir)
        inst.start()
        # More slow mail than the slow destination's concurrency: its
        # queue is full and its sessions hang.
        for i in range(12):
            send(inst, ["u%d@slow.test" % i], body="Subject: slow%d\n\nx\n" % i)
        wait_for(lambda: len(silent.conns) >= 5, timeout=30,
                 what="the slow destination's connections")
        send(inst, ["someone@fast.test"], body="Subject: fast\n\nx\n")
        inst.wait_log(r"to=<someone@fast\.test>, relay=.*status=sent", timeout=30)
        # The slow ones are still hanging: nothing was delivered there.
        assert "@slow.test>, relay" not in inst.log_text()
        assert len(sink.transactions) == 1
    finally:
        silent.close()
        sink.close()
