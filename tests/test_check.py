"""facteur check: every problem as file:line: message; exit 1 on errors,
0 with warnings only."""
import os

from conftest import FACTEUR, run_cmd

SEEDS_MAIN_CF = """command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix
alias_maps = hash:{d}/aliases

mail_spool_directory = /var/spool/mail
mailbox_command = /usr/bin/procmail -Y -a $DOMAIN

smtpd_banner = ESMTP $mail_name
debug_peer_level = 2
debugger_command =
PATH=/usr/bin:/usr/X11R6/bin
xxgdb $daemon_directory/$process_name $process_id & sleep 5
delay_warning_time = 4
sendmail_path = /usr/sbin/sendmail.postfix
newaliases_path = /usr/bin/newaliases.postfix
mailq_path = /usr/bin/mailq.postfix
setgid_group = postdrop
manpage_directory = /usr/share/man
sample_directory = /usr/share/doc/postfix-1.1.11/samples
readme_directory = /usr/share/doc/postfix-1.1.11/README_FILES
alias_database = hash:{d}/aliases
transport_maps = hash:{d}/transport_maps
mydestination = gw1.maison.mrs, localhost.maison.mrs, maison.mrs
myorigin = gw1.maison.mrs
sender_canonical_maps = hash:{d}/sender-canonical
header_checks = regexp:{d}/header_checks
"""


def _confdir(tmp_path, main_cf, files=()):
    d = str(tmp_path)
    with open(os.path.join(d, "main.cf"), "w") as f:
        f.write(main_cf.format(d=d))
    for name, text in files:
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def test_seeds_main_cf_has_only_warnings(tmp_path):
    d = _confdir(tmp_path, SEEDS_MAIN_CF, [
        ("aliases", "root: chris\n"),
        ("transport_maps", "aol.com smtp:smtp.wanadoo.fr\n.aol.com smtp:smtp.wanadoo.fr\n"),
        ("sender-canonical", "root    christian.caleca@free.fr # L'administrateur (moi)\n"),
        ("header_checks", "/^Received:*/  IGNORE\n"),
    ])
    for table in ("aliases", "transport_maps", "sender-canonical"):
        run_cmd([FACTEUR, "map", "hash:%s/%s" % (d, table)], check=True)
    r = run_cmd([FACTEUR, "-c", d, "check"])
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    main_cf = os.path.join(d, "main.cf")
    assert "%s:1: warning: Postfix parameter 'command_directory' is not implemented by " \
           "facteur yet; ignored" % main_cf in lines
    assert "%s:11: warning: unknown parameter 'PATH'; ignored" % main_cf in lines
    assert any(l.startswith("%s:12: warning: line without '='" % main_cf) for l in lines)
    assert all(": warning: " in l for l in lines), lines


def test_errors_name_file_and_line(tmp_path):
    d = _confdir(tmp_path, "myhostname = mx.example.test\n"
                 "smtpd_helo_required = maybe\n"
                 "mydestinaton = example.test\n"
                 "message_size_limit = 10MB\n"
                 "alias_maps =\n")
    r = run_cmd([FACTEUR, "-c", d, "check"])
    assert r.returncode == 1
    main_cf = os.path.join(d, "main.cf")
    err = r.stderr
    assert "%s:2: " % main_cf in err and "smtpd_helo_required" in err
    assert "%s:3: unknown parameter 'mydestinaton' (did you mean 'mydestination'?)" % main_cf in err
    assert "%s:4: " % main_cf in err and "message_size_limit" in err
    # And start refuses such a configuration.
    r = run_cmd([FACTEUR, "-c", d, "start", "-f"], timeout=30)
    assert r.returncode != 0
    assert "has errors" in r.stderr
