#!/usr/bin/python3
"""bench/gen_maildir.py - the IMAP benchmark's mailbox: a Maildir of N
varied, realistic messages made from a fixed random seed (same seed, same
bytes), and a JSON manifest of what the searches of bench/imap_bench.py
must find.

    gen_maildir.py --dir DIR --messages N [--seed S] --manifest FILE

Messages: 1-20 KB (uniform), LF line ends as on disk, about 25 %
multipart (alternative text + HTML, or mixed with a base64 attachment),
plain text otherwise; From among ~4,000 addresses, Subject, Date, Message-ID,
To, sometimes Cc / In-Reply-To / List-Id.  About 70 % are \\Seen (cur/
with ":2,S"), the others are in cur/ with ":2," (unseen, no flag); a few
are also \\Flagged or \\Answered.  Exactly 1 % (at least one) come from
RARE_FROM, and another 1 % hold RARE_WORD in their text: the manifest
records those counts for the SEARCH checks.
"""
import argparse
import base64
import json
import os
import random
import sys

RARE_FROM = "alerts@rare-sender.test"
RARE_WORD = "zanzibarite"

FIRST = ("alice bob carol dave erin frank grace heidi ivan judy mallory "
         "niaj olivia peggy rupert sybil trent victor walter yolanda").split()
LAST = ("martin bernard dubois thomas robert richard petit durand leroy moreau "
        "simon laurent lefebvre michel garcia david bertrand roux vincent fournier").split()
DOMAINS = ("example.test mail.example.test lists.example.test corp.test "
           "univ.test shop.test bank.test news.test forum.test isp.test").split()
WORDS = ("the of and to in is that for it as with was on be by this are at from "
         "or have an they which one you had not but what all were when we there "
         "can been has more if will would about so its time only new some could "
         "these two may first then do any like my now over such our man me even "
         "most made after also did many before must through back years where "
         "much your way well down should because each just those people how too "
         "little state good very make world still own see men work long get here "
         "between both life being under never day same another know while last "
         "might us great old year off come since against go came right used take "
         "three meeting report budget server release invoice schedule project "
         "review deadline quarter network backup update ticket customer order "
         "delivery mailbox queue config kernel patch draft minutes agenda").split()
SUBJECT_PREFIX = ["", "", "", "Re: ", "Re: ", "Fwd: ", "[team] ", "[announce] "]


def sentence(rng):
    n = rng.randint(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + rng.choice(".....?!")


def paragraph(rng):
    """About 60-72 columns per line, like a mail client would wrap."""
    text = " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
    lines, line = [], ""
    for w in text.split():
        if line and len(line) + 1 + len(w) > 72:
            lines.append(line)
            line = w
        else:
            line = w if not line else line + " " + w
    lines.append(line)
    return "\n".join(lines)


def text_body(rng, size, rare):
    """Paragraphs until about `size` bytes; the rare word inside one of
    them when `rare`."""
    paras, total = [], 0
    while total < size:
        p = paragraph(rng)
        paras.append(p)
        total += len(p) + 2
    if rare:
        i = rng.randrange(len(paras))
        paras[i] = paras[i] + "\nThe " + RARE_WORD + " sample is attached."
    body = "\n\n".join(paras)
    return body[:max(size, 64)] if not rare else body


def html_of(text):
    paras = text.split("\n\n")
    return ("<html><body>\n" +
            "\n".join("<p>%s</p>" % p.replace("&", "&amp;").replace("<", "&lt;")
                      for p in paras) + "\n</body></html>")


def b64_lines(data):
    enc = base64.b64encode(data).decode()
    return "\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def person(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    return "%s %s" % (f.capitalize(), l.capitalize()), "%s.%s@%s" % (f, l, rng.choice(DOMAINS))


def make_message(rng, i, when, rare_from, rare_word):
    size = rng.randint(1024, 20000)
    if rare_from:
        from_hdr = "Rare Alerts <%s>" % RARE_FROM
    else:
        name, addr = person(rng)
        from_hdr = "%s <%s>" % (name, addr)
    to_hdr = "Bench User <bench@bench.test>"
    subject = rng.choice(SUBJECT_PREFIX) + " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize()
    hdr = [
        "Return-Path: <%s>" % from_hdr.split("<")[1].rstrip(">"),
        "Received: from mx%d.example.test (mx%d.example.test [127.0.%d.%d])\n"
        "\tby mail.bench.test (facteur) with ESMTP id %08X\n\tfor <bench@bench.test>; %s"
        % (i % 7, i % 7, i % 250, (i * 7) % 250, i, when),
        "Date: %s" % when,
        "From: %s" % from_hdr,
        "To: %s" % to_hdr,
    ]
    if rng.random() < 0.2:
        cc = person(rng)
        hdr.append("Cc: %s <%s>" % cc)
    hdr.append("Subject: %s" % subject)
    hdr.append("Message-ID: <%d.%08x@%s>" % (i, rng.getrandbits(32), rng.choice(DOMAINS)))
    if subject.startswith("Re: "):
        hdr.append("In-Reply-To: <%d.%08x@%s>" % (max(i - 3, 0), rng.getrandbits(32), rng.choice(DOMAINS)))
    if rng.random() < 0.15:
        hdr.append("List-Id: <team.lists.example.test>")
    hdr.append("MIME-Version: 1.0")

    kind = rng.random()
    head_len = sum(len(h) + 1 for h in hdr)
    if kind < 0.12:                                   # alternative text + HTML
        b = "=_alt_%08x" % rng.getrandbits(32)
        text = text_body(rng, max((size - head_len) // 2 - 200, 200), rare_word)
        hdr.append('Content-Type: multipart/alternative; boundary="%s"' % b)
        body = ("This is a multi-part message in MIME format.\n\n"
                "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n\n"
                "--%s\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n\n"
                "--%s--\n" % (b, text, b, html_of(text), b))
    elif kind < 0.25:                                 # mixed: text + attachment
        b = "=_mix_%08x" % rng.getrandbits(32)
        text_size = rng.randint(200, max(300, (size - head_len) // 3))
        text = text_body(rng, text_size, rare_word)
        att_size = max((size - head_len - text_size - 400) * 3 // 4, 64)
        data = rng.randbytes(att_size)
        name = "%s-%d.%s" % (rng.choice(["report", "invoice", "photo", "scan"]), i,
                             rng.choice(["pdf", "jpg", "zip"]))
        hdr.append('Content-Type: multipart/mixed; boundary="%s"' % b)
        body = ("This is a multi-part message in MIME format.\n\n"
                "--%s\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n\n"
                "--%s\nContent-Type: application/octet-stream; name=\"%s\"\n"
                "Content-Disposition: attachment; filename=\"%s\"\n"
                "Content-Transfer-Encoding: base64\n\n%s\n\n--%s--\n"
                % (b, text, b, name, name, b64_lines(data), b))
    else:                                             # plain text
        hdr.append("Content-Type: text/plain; charset=utf-8")
        hdr.append("Content-Transfer-Encoding: 8bit")
        body = text_body(rng, max(size - head_len, 200), rare_word) + "\n"
    return ("\n".join(hdr) + "\n\n" + body).encode()


DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def rfc5322_date(t):
    import time as _t
    tm = _t.gmtime(t)
    return "%s, %02d %s %04d %02d:%02d:%02d +0000" % (
        DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year,
        tm.tm_hour, tm.tm_min, tm.tm_sec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="Maildir to create (must not exist)")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--manifest", required=True)
    args = ap.parse_args()
    n = args.messages
    if n < 1:
        sys.exit("gen_maildir: --messages must be positive")
    rng = random.Random(args.seed)
    rare = max(1, n // 100)
    rare_from = set(rng.sample(range(n), rare))
    rare_word = set(rng.sample(range(n), rare))
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(args.dir, sub))
    t0 = 1735689600                                   # 2025-01-01, a year of mail
    step = 365 * 86400 // n
    unseen = total = total_crlf = 0
    for i in range(n):
        t = t0 + i * step + rng.randrange(max(step, 1))
        data = make_message(rng, i, rfc5322_date(t), i in rare_from, i in rare_word)
        r = rng.random()
        flags = "S" if r < 0.70 else ""
        if flags and rng.random() < 0.05:
            flags = "FS"
        elif flags and rng.random() < 0.10:
            flags = "RS"
        if "S" not in flags:
            unseen += 1
        # Postfix-like unique name; no ,S= or ,W= size hint, so neither
        # server gets sizes for free.  Sorted names = delivery order.
        name = "%d.V801I%06xM%06d.mail.bench.test:2,%s" % (t, i + 1, i, flags)
        path = os.path.join(args.dir, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (t, t))
        total += len(data)
        # RFC822.SIZE counts CRLF line ends (RFC 3501 section 2.3.4).
        total_crlf += len(data) + data.count(b"\n") - data.count(b"\r\n")
    manifest = {"messages": n, "seed": args.seed, "bytes": total, "bytes_crlf": total_crlf,
                "rare_from": RARE_FROM, "from_matches": len(rare_from),
                "rare_word": RARE_WORD, "body_matches": len(rare_word),
                "unseen": unseen}
    with open(args.manifest, "w") as f:
        json.dump(manifest, f)
    print("gen_maildir: %d messages, %.1f MiB, %d unseen, seed %d" %
          (n, total / 1048576, unseen, args.seed), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
