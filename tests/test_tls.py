"""Issue 5 item 1 (first part): STARTTLS in the SMTP server (RFC 3207),
driven with Python's smtplib and openssl s_client: TLS 1.3 negotiated,
TLS 1.1 refused, the Received: line and the log show the TLS version and
cipher, cleartext sent after STARTTLS is discarded, encrypt requires TLS."""
import os
import re
import smtplib
import ssl
import subprocess

import pytest

from conftest import wait_for


def make_cert(inst):
    """A self-signed certificate for mail.example.test in the instance's
    etc/ (the key readable by its owner only, as in production)."""
    key = os.path.join(inst.config_dir, "key.pem")
    cert = os.path.join(inst.config_dir, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=mail.example.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def tls_instance(factory, extra=""):
    inst = factory(start=False)
    cert, key = make_cert(inst)
    inst.main_cf("smtpd_tls_cert_file = %s\nsmtpd_tls_key_file = %s\n%s" % (cert, key, extra))
    inst.start()
    return inst


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_starttls_smtplib_received_and_log(facteur_factory):
    inst = tls_instance(facteur_factory)
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        code, msg = s.starttls(context=client_context())
        assert code == 220, msg
        assert s.sock.version() == "TLSv1.3"
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        code, msg = s.docmd("STARTTLS")
        assert code == 554, msg
        s.sendmail("someone@outside.test", ["root@mail.example.test"],
                   b"Subject: over tls\r\n\r\nsecret\r\n")
    inst.wait_log(r"Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: "
                  r"TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)")
    inst.wait_log(r"status=sent")
    [m] = inst.mbox_messages()
    received = str(m["Received"])
    assert re.search(r"\(using TLSv1\.3 with cipher TLS_\w+ \(\d+/\d+ bits\)\)", received), received
    assert "with ESMTPS id" in received, received
    assert re.search(r"disconnect from .* ehlo=2 starttls=1/2 mail=1 rcpt=1 data=1 quit=1",
                     inst.log_text())


def test_openssl_s_client_versions(facteur_factory):
    inst = tls_instance(facteur_factory)
    base = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % inst.smtp_port,
            "-starttls", "smtp", "-brief"]
    r = subprocess.run(base + ["-tls1_3"], input="QUIT\n", capture_output=True, text=True,
                       timeout=60)
    assert "Protocol version: TLSv1.3" in r.stderr + r.stdout, r.stderr
    r = subprocess.run(base + ["-tls1_2"], input="QUIT\n", capture_output=True, text=True,
                       timeout=60)
    assert "Protocol version: TLSv1.2" in r.stderr + r.stdout, r.stderr
    assert re.search(r"Ciphersuite: ECDHE-\w+-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)",
                     r.stderr + r.stdout), r.stderr
    r = subprocess.run(base + ["-tls1_1"], input="QUIT\n", capture_output=True, text=True,
                       timeout=60)
    assert "Protocol version: TLSv1.1" not in r.stderr + r.stdout
    assert r.returncode != 0


def test_cleartext_after_starttls_is_discarded(facteur_factory):
    inst = tls_instance(facteur_factory)
    import socket
    with socket.create_connection((inst.host, inst.smtp_port), timeout=30) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")
        raw.sendall(b"EHLO client.test\r\n")
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        # An attacker's injected command rides along with STARTTLS.
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        assert f.readline().startswith(b"220 2.0.0")
        tls = client_context().wrap_socket(raw, server_hostname="mail.example.test")
        tf = tls.makefile("rb")
        tls.sendall(b"RCPT TO:<root@mail.example.test>\r\n")
        # The injected MAIL was dropped, and the session starts over.
        assert tf.readline().startswith(b"503")
        tls.sendall(b"QUIT\r\n")
        assert tf.readline().startswith(b"221")
    inst.wait_log(r"bytes after STARTTLS discarded")


def test_encrypt_requires_starttls(facteur_factory):
    inst = tls_instance(facteur_factory, "smtpd_tls_security_level = encrypt\n")
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.test")
        code, msg = s.mail("someone@outside.test")
        assert code == 530 and b"STARTTLS" in msg
        s.starttls(context=client_context())
        s.ehlo("client.test")
        assert s.mail("someone@outside.test")[0] == 250


def test_no_certificate_no_starttls(facteur_factory):
    inst = facteur_factory()
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        assert s.docmd("STARTTLS")[0] == 502


def test_smtps_implicit_tls(facteur_factory):
    from conftest import free_port
    port = free_port()
    inst = tls_instance(facteur_factory, "smtps_listen = 127.0.0.1:%d\n" % port)
    wait_for(lambda: _connects(port), timeout=30, what="smtps listener")
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief", "-ign_eof",
                        "-tls1_3"], input="QUIT\n", capture_output=True, text=True, timeout=60)
    assert "Protocol version: TLSv1.3" in r.stderr + r.stdout, r.stderr
    assert "220 mail.example.test" in r.stdout, r.stdout
    with smtplib.SMTP_SSL(inst.host, port, timeout=30, context=client_context()) as s:
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        s.sendmail("someone@outside.test", ["root@mail.example.test"],
                   b"Subject: over smtps\r\n\r\nsecret\r\n")
    inst.wait_log(r"status=sent")
    [m] = inst.mbox_messages()
    assert "with ESMTPS id" in str(m["Received"])
    assert "(using TLSv1.3 with cipher" in str(m["Received"])


def test_smtps_without_certificate_not_served(facteur_factory):
    from conftest import free_port
    port = free_port()
    inst = facteur_factory(extra_main_cf="smtps_listen = 127.0.0.1:%d\n" % port)
    inst.wait_log(r"smtps_listen 127\.0\.0\.1:%d: no usable TLS certificate" % port)


def _connects(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
