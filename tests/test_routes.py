"""transport_maps results that need no next hop: error: and discard:."""
import smtplib


def test_error_with_4xx_status_defers(facteur_factory):
    inst = facteur_factory(start=False)
    inst.write_file("transport", "later.test error:4.3.2 closed for maintenance\n"
                                 "gone.test error:this domain is gone\n")
    inst.run("map", "hash:%s/transport" % inst.config_dir, check=True)
    inst.main_cf("transport_maps = hash:%s/transport" % inst.config_dir)
    inst.start()
    with smtplib.SMTP(inst.host, inst.smtp_port, timeout=30) as s:
        s.sendmail("fred@mail.example.test", ["x@later.test", "y@gone.test"],
                   b"Subject: r\r\n\r\nx\r\n")
    inst.wait_log(r"to=<x@later\.test>, relay=none, .*dsn=4\.3\.2, "
                  r"status=deferred \(closed for maintenance\)")
    inst.wait_log(r"to=<y@gone\.test>, relay=none, .*dsn=5\.0\.0, "
                  r"status=bounced \(this domain is gone\)")
