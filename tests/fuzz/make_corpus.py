#!/usr/bin/python3
"""tests/fuzz/make_corpus.py — (re)writes the seed corpora in tests/fuzz/corpus/.

Run from anywhere: /usr/bin/python3 tests/fuzz/make_corpus.py
The server_session, client_session and pop3_session seeds come from the golden
transcripts (tests/smtp/transcripts, tests/smtp/client_transcripts,
tests/pop3/transcripts), converted to the byte streams the fuzz targets read:
[config byte][4 seed bytes][bytes...] (see the comment at the top of each fuzz_*.cpp). Plain stdlib only.
"""
import os
import re
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "corpus")


def unescape(s):
    """The C escapes of transcript_text.cpp: \\r \\n \\t \\0 \\\\ \\xHH."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in "rnt0\\":
                out += {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}[n]
                i += 2
                continue
            if n == "x" and i + 3 < len(s) + 1:
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
        out += c.encode()
        i += 1
    return bytes(out)


def expand(b):
    """{{N*c}} repetitions, capped so seeds stay small."""
    def rep(m):
        return m.group(2) * min(int(m.group(1)), 1100)
    return re.sub(rb"\{\{(\d+)\*(.)\}\}", rep, b)


def server_seed(text):
    cfg = 0
    stream = bytearray()
    for line in text.splitlines():
        if line.startswith("@config"):
            words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
            if words.get("starttls") == "1":
                cfg |= 0x01
            cfg |= {"never": 0, "tls_only": 2, "always": 4}.get(words.get("auth", "never"), 0)
            if words.get("submission") == "1":
                cfg |= 0x08
            if words.get("implicit_tls") == "1":
                cfg |= 0x10
            if int(words.get("max_recipients", "100")) <= 2 or int(words.get("max_message_size", "10000")) <= 200:
                cfg |= 0x20
        elif line.startswith("C: ") or line == "C:":
            stream += expand(line[3:].encode()) + b"\r\n"
        elif line.startswith("@raw "):
            stream += expand(unescape(line[5:]))
    return bytes([cfg]) + b"\0\0\0\0" + bytes(stream)


def pop3_seed(text):
    """tests/pop3/transcripts → fuzz_pop3_session's input (see its header)."""
    cfg = 0x02  # login tls_only, the session's default
    stream = bytearray()
    for line in text.splitlines():
        if line.startswith("@config"):
            words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
            if words.get("stls") == "1":
                cfg |= 0x01
            cfg = (cfg & ~0x06) | {"never": 0, "tls_only": 2, "always": 4}.get(words.get("auth", "tls_only"), 2)
            if words.get("implicit_tls") == "1":
                cfg |= 0x08
            if int(words.get("max_errors", "10")) <= 2 or int(words.get("max_auth_failures", "3")) <= 1:
                cfg |= 0x10
        elif line.startswith("C: ") or line == "C:":
            stream += line[3:].encode() + b"\r\n"
        elif line.startswith("@raw "):
            stream += unescape(line[5:])
    # A non-zero PRNG seed: the target draws the mailbox and its answers from it.
    return bytes([cfg]) + b"\x01\0\0\0" + bytes(stream)


def client_seed(text):
    cfg = 1  # tls=may
    messages = 0
    rich = False
    stream = bytearray()
    for line in text.splitlines():
        if line.startswith("@config"):
            words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
            cfg = (cfg & ~0x03) | {"none": 0, "may": 1, "encrypt": 2, "implicit": 3}[words.get("tls", "may")]
            if "user" in words:
                cfg |= 0x04
                if len(words["user"]) > 100:
                    cfg |= 0x08
        elif line.startswith("@message"):
            messages += 1
            if any(w in line for w in ("smtputf8", "8bit", "rcpt=", "mail=")):
                rich = True
        elif line.startswith("S: ") or line == "S:":
            stream += line[3:].encode() + b"\r\n"
        elif line.startswith("@sraw "):
            stream += unescape(line[6:])
        elif line.startswith("@flood "):
            _, n, rest = line.split(" ", 2)
            stream += (rest.encode() + b"\r\n") * min(int(n), 150)
    cfg |= min(messages, 3) << 4
    if rich:
        cfg |= 0x40
    return bytes([cfg]) + b"\0\0\0\0" + bytes(stream)


def dns_rr(rtype, rdata, ttl=300, name=b"\xc0\x0c"):
    return name + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def dns_name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".") if l) + b"\0"


def dns_spec(records, rcode_bits=0, aa=True, ns=()):
    flags = (rcode_bits << 4) | (1 if aa else 0)
    return bytes([flags, len(records), len(ns), 0]) + b"".join(records) + b"".join(ns)


def soa(ttl=60, minimum=60):
    rdata = dns_name("ns.example.test") + dns_name("hostmaster.example.test") + struct.pack(">IIIII", 1, 3600, 600, 86400, minimum)
    return dns_rr(6, rdata, ttl)


def fdp_string(s):
    """FuzzedDataProvider::ConsumeRandomLengthString: '\\\\' is a backslash,
    '\\' and any other octet ends the string."""
    return s.replace(b"\\", b"\\\\") + b"\\x"


def mime_seeds():
    """fuzz_mime's input is a message; its first line is also tried as a section-spec."""
    def crlf(b):
        return b.replace(b"\n", b"\r\n")
    nested = crlf(
        b"From: Alice <alice@example.org>\nTo: undisclosed-recipients:;\nCc: G: a@b.test, \"C, D\" <c@d.test>;\n"
        b"Subject: =?utf-8?B?4oKsIDEwMA==?= =?ISO-8859-1?Q?Andr=E9?=\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=outer\n\npreamble\n--outer\n"
        b"Content-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\n"
        b"Content-Type: text/plain; charset=utf-8\n\nHello.\n--outer is no boundary here\n--inner\n"
        b"Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<p>Hi</p>\n--inner--\n"
        b"--outer\nContent-Type: application/pdf; name*0*=utf-8''%E2%82%AC; name*1=\".pdf\"\n"
        b"Content-Disposition: attachment; filename*=iso-8859-1'de'M%FCller.pdf\nContent-Language: en, de\n"
        b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--outer\nContent-Type: message/rfc822\n\n"
        b"From: carol@example.com\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nx\n"
        b"--d\n\nSubject: two\n\ny\n--d--\n--outer--\nepilogue\n")
    deep = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(24))
    return [
        b"4.2.HEADER.FIELDS (From Subject)\n" + nested, nested, nested.replace(b"\r\n", b"\n"),
        b"HEADER\r\n\r\nbody", b"",
        b"Subject: only a header\r\nContent-Type: multipart/mixed; boundary=x\r\n",
        crlf(b"Content-Type: multipart/mixed\n\n--b\n\nno boundary parameter\n"),
        crlf(b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nunclosed\n--b\nContent-Type: message/rfc822\n\n"),
        crlf(b"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: in\n\nbody\n"),
        deep + b"leaf\r\n",
        crlf(b"Sender: <@a.test,@b.test:joe@c.test>\nReply-To: x (c) <\"q u\"@[192.0.2.1]>\nTo: a, b@, <>\n\n"),
        b"Subject: Gr\xc3\xbc\xc3\x9fe\r\nFrom: j\xc3\xb6rg@x.test\r\n\r\n\x00\xff",
    ]


def imapd_fetch_seeds():
    """fuzz_imapd_fetch's input is a message; its first line is also the search string."""
    def crlf(b):
        return b.replace(b"\n", b"\r\n")
    encodings = crlf(
        b"Subject: =?utf-8?q?caf=C3=A9?=\nDate: Wed, 17 Jul 96 02:23:25 EST\nFrom: a@b.test\n"
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: base64\n\nAGE=\n--b\nContent-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: quoted-printable\n\ncaf=E9 =\nsoft =ZZ =4\n--b\n"
        b"Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n--b\n"
        b"Content-Type: message/rfc822\n\nSubject: inner\nContent-Transfer-Encoding: base64\n\naGVsbG8\n--b--\n")
    return [
        b"caf\xc3\xa9\n" + encodings,
        encodings,
        b"Subject: x\r\nDate: (c) 1 Jan 49 00:00 Z\r\n\r\nx",
        b"hello\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 40 + b"=",
        b"",
        b"\x00\r\n\r\n\x00",
    ]


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    seeds = {}

    seeds["smtp_command"] = [
        b"EHLO client.example", b"helo x", b"MAIL FROM:<alice@example.org> SIZE=1000 BODY=8BITMIME",
        b"RCPT TO:<bob@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@x.test",
        b"MAIL FROM:<j\xc3\xbcrgen@example.org> SMTPUTF8", b"AUTH PLAIN AGFsaWNlAHMzY3JldA==",
        b"DATA", b"STARTTLS", b"NOOP  x", b"quit", b"SIZE=10  BODY=7BIT AUTH=<>", b"VRFY postmaster",
    ]
    seeds["address"] = [
        b"<alice@example.org>", b"<>", b"<Postmaster>", b"<@a.example,@b.example:user@c.example> SIZE=1",
        b'<"quoted \\"local\\""@[192.0.2.1]>', b"<j\xc3\xbcrgen@b\xc3\xbccher.example> SMTPUTF8",
        b"<x@[IPv6:2001:db8::1]>", b"<x@[IPv6:::ffff:192.0.2.1]>", b"<x@[tag:content]>",
        b"alice@example.test", b"<a.b.c%d!e@sub-1.example.test>",
    ]
    seeds["data_reader"] = [
        b"\x10From: a@b\r\nSubject: hi\r\n\r\nHello.\r\n..dot\r\n.\r\nQUIT\r\n",
        b"\x80.\r\n", b"\x05a\n.\nb\r\n.\r\n", b"\x85a\r.\rb\r\n.\r\n", b"\x8f" + b"x" * 1001 + b"\r\n.\r\n",
        b"\x03" + b"y" * 100 + b"\r\n.\r\n", b"\x81\r\n.\n\r\n.\r\n",
    ]
    seeds["server_session"] = []
    tdir = os.path.join(ROOT, "tests", "smtp", "transcripts")
    for f in sorted(os.listdir(tdir)):
        if f.endswith(".txt"):
            with open(os.path.join(tdir, f), encoding="utf-8") as fh:
                seeds["server_session"].append((f[:-4], server_seed(fh.read())))
    seeds["pop3_session"] = []
    pdir = os.path.join(ROOT, "tests", "pop3", "transcripts")
    for f in sorted(os.listdir(pdir)):
        if f.endswith(".txt"):
            with open(os.path.join(pdir, f), encoding="utf-8") as fh:
                seeds["pop3_session"].append((f[:-4], pop3_seed(fh.read())))
    seeds["client_session"] = []
    cdir = os.path.join(ROOT, "tests", "smtp", "client_transcripts")
    for f in sorted(os.listdir(cdir)):
        if f.endswith(".txt"):
            with open(os.path.join(cdir, f), encoding="utf-8") as fh:
                seeds["client_session"].append((f[:-4], client_seed(fh.read())))
    seeds["reply_parser"] = [
        b"\x00220 mx.test ESMTP postern\r\n250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 AUTH PLAIN LOGIN\r\n",
        b"\x00250 2.1.0 Ok\r\n550 5.1.1 <bob@x.test>: Recipient address rejected\r\n354 go\r\n",
        b"\x01421-4.4.2 bye\r\n421 4.4.2 really\r\n", b"\x00250-a\n250-b\r\n251 c\r\n", b"\x00hello\r\n",
        b"\x00334 VXNlcm5hbWU6\r\n235 2.7.0 ok\r\n",
    ]
    mx = lambda pref, host, ttl=300: dns_rr(15, struct.pack(">H", pref) + dns_name(host), ttl)
    a4 = lambda ip: dns_rr(1, bytes(int(x) for x in ip.split(".")))
    a6 = lambda last: dns_rr(28, b"\x20\x01\x0d\xb8" + b"\0" * 11 + bytes([last]))
    txt = lambda *ss: dns_rr(16, b"".join(bytes([len(s)]) + s for s in ss))
    addr_specs = lambda v6, v4: bytes([2]) + bytes([len(v6)]) + v6 + v4
    seeds["dns"] = [
        bytes([0]) + dns_spec([mx(10, "mx1.example.test"), mx(20, "MX2.example.test."), mx(10, "mx3.example.test")]),
        bytes([4]) + dns_spec([mx(0, "")]),
        bytes([8]) + dns_spec([mx(10, "mx.example.test"), mx(5, "backup.example.net")]),
        bytes([0]) + dns_spec([], rcode_bits=4, ns=[soa()]),
        bytes([0]) + dns_spec([], ns=[soa(30, 10)]),
        bytes([0]) + dns_spec([], rcode_bits=5),
        bytes([1]) + dns_spec([txt(b"v=spf1 ", b"-all"), txt(b"hello")]),
        addr_specs(dns_spec([a6(1), a6(2)]), dns_spec([a4("192.0.2.1")])),
        addr_specs(dns_spec([], ns=[soa()]), dns_spec([a4("192.0.2.7"), a4("198.51.100.1")])),
        addr_specs(dns_spec([], rcode_bits=4, ns=[soa()]), dns_spec([], rcode_bits=4, ns=[soa()])),
        # Found by the fuzzer: an MX target whose last label holds a '.', which
        # c-ares writes escaped ("mx\."); not a trailing dot.
        bytes.fromhex("08010200 00c00c00 0f00012a 00012c00 13020037 00000000 00000006 05687e6c"
                      "6c6f3c00 01020000 c00c000f 00012a00 012c0040 02003700 00000000 00000605"
                      "687e6c6c 6f3c000a 6d782e01 00000cc0 1c000001 00370000 000a0000 02"),
    ]
    with open(os.path.join(ROOT, "conf", "postern.json"), "rb") as fh:
        conf = fh.read()
    seeds["config"] = [
        conf, b"{}", b'{"hostname": "mx.test", "listeners": [{"address": "127.0.0.1:2525"}]}',
        b'{"limits": {"message_size": 1000, "recipients": 5}, /* c */ "relay_networks": ["::1/128"]}',
        b'{"aliases": {"postmaster@mx.test": ["a@mx.test"]}, "local_domains": ["mx.test"], "remote": {"tls_policies": {"x.test": "verify"}}}',
        b'{"relay": {"smarthost": "[::1]:587", "tls": "implicit", "username": "u", "password_file": "/dev/null"}}',
    ]
    env = (b'{"version":1,"id":"0123456789abcdef","sender":"alice@example.org","received_at":1700000000,'
           b'"size":42,"client_ip":"192.0.2.1","helo":"client.example","smtputf8":false,"eight_bit":false,'
           b'"delay_warned":false,"held":false,"recipients":[{"address":"bob@x.test","state":"pending",'
           b'"attempts":2,"next_attempt":1700000300,"last_error":"451 4.3.0 try later"},'
           b'{"address":"carol@x.test","state":"done","attempts":1,"next_attempt":0,"last_error":""}]}')
    seeds["envelope"] = [
        env, env.replace(b'"held":false,', b""), env.replace(b'"sender":"alice@example.org"', b'"sender":""'),
        b'{"version":2}', env.replace(b'"pending"', b'"bounced"').replace(b"false", b"true"),
    ]
    dsn = lambda mta, sender, rcpts, msg, tail: (
        fdp_string(mta) + fdp_string(sender) + fdp_string(b"0123456789abcdef") + fdp_string(b"env-1")
        + b"".join(fdp_string(r) + fdp_string(b"rfc822;" + r) + fdp_string(b"5.1.1") + fdp_string(b"dns; mx.x.test")
                   + fdp_string(b"550 5.1.1 <" + r + b">: user unknown") for r in rcpts)
        + fdp_string(b"bounce-id") + msg + tail)
    seeds["dsn"] = [
        dsn(b"mx.example.test", b"alice@example.org", [b"bob@x.test"],
            b"From: alice@example.org\r\nSubject: hi\r\n\r\nbody\r\n", b"\x01\x00\x01\x05\x00\x10"),
        dsn(b"mx.example.test", b"<j\xc3\xbcrgen@example.org>", [b"d\xc3\xa4ve@x.test", b"eve@x.test"],
            b"Subject: x\nX-Long: " + b"y" * 1200 + b"\n\nbody with =_postern-bounce-id-0. inside\r\n",
            b"\x03\x02\x01\x06\x01\x20"),
    ]
    seeds["mime"] = mime_seeds()
    seeds["imapd_fetch"] = imapd_fetch_seeds()
    # fuzz_imap_parser: [selector][4 seed bytes][client stream]; RFC 9051 section 8 and 6.x examples.
    imap_streams = [
        b"a001 login mrc secret\r\na002 select inbox\r\na003 fetch 12 full\r\na004 fetch 12 body[header]\r\n"
        b"a005 store 12 +flags \\deleted\r\na006 logout\r\n",
        b"a1 LOGIN {5}\r\nalice {6+}\r\nsecret\r\na2 ID (\"name\" \"x\" \"version\" NIL)\r\na3 ENABLE IMAP4rev2\r\n",
        b"A003 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {23}\r\nSubject: hi\r\n\r\nHello\r\n\r\n"
        b"A004 APPEND x ~{3+}\r\n\x00\x01\x02\r\nA005 APPEND x {99999999}\r\n",
        b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n"
        b"A285 SEARCH CHARSET UTF-8 TEXT {13+}\r\n\xd0\x9d\xd1\x8c\xd1\x8e \xd0\x99\xd0\xbe\xd1\x80\r\n"
        b"a UID SEARCH OR (FROM alice SUBJECT hi) NOT OR SEEN (DELETED) 1:5,7:* HEADER X-Y z LARGER 5 $\r\n",
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n"
        b"a UID FETCH 1:* (UID BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.1024> BINARY.PEEK[1]<5.10> BINARY.SIZE[2] "
        b"BODY[3.MIME] RFC822.SIZE ENVELOPE BODYSTRUCTURE) (CHANGEDSINCE 7)\r\n",
        b"A02 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"INBOX\" \"Sent/%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n"
        b"A03 LSUB \"#news.\" comp.mail.*\r\nA042 STATUS blurdybloop (UIDNEXT MESSAGES SIZE)\r\n"
        b"t CREATE Drafts (USE (\\Drafts))\r\nt RENAME a b\r\nt DELETE a\r\n",
        b"a1 IDLE\r\nDONE\r\na2 AUTHENTICATE PLAIN\r\nAGZyZWQAcGFzcw==\r\na3 AUTHENTICATE PLAIN =\r\n"
        b"a4 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\na5 UID MOVE 42:69 \"Old Stuff\"\r\n"
        b"a6 UID EXPUNGE 3000:3002\r\na7 COPY $ x\r\n",
        b"\r\n+bad\r\na1\r\na2 FROB\r\na3 SEARCH ((((((NOT NOT ALL))))))\r\na4 FETCH 0 FLAGS\r\n" + b"a5 X " + b"y" * 200 + b"\r\n",
    ]
    seeds["imap_parser"] = [bytes([sel]) + b"\x12\x34\x56\x78" + st for st in imap_streams for sel in (0, 7)]
    # fuzz_imap_session: the same streams behind a login, with and without STARTTLS / TLS / small limits.
    imap_login = b"c0 CAPABILITY\r\nl0 LOGIN alice secret\r\ns0 SELECT INBOX\r\n"
    seeds["imap_session"] = [bytes([sel]) + b"\x9a\xbc\xde\xf0" + imap_login + st
                             for st in imap_streams for sel in (0x05, 0x0c, 0x13, 0x23)]
    seeds["imap_session"].append(b"\x03\x01\x02\x03\x04t STARTTLS\r\nx LOGIN alice secret\r\n")
    # fuzz_mailbox_names: wire names (modified UTF-7), UTF-8 names, Maildir++ dirs, an index, pattern\0name.
    seeds["mailbox_names"] = [
        b"~peter/mail/&U,BTFw-/&ZeVnLIqe-", b"INBOX", b"Sent.2026.&AOk-t&AOk-", b".Trash", b"..", b"&-", b"&AAA-",
        b"Caf\xc3\xa9.Archiv", b"postern-uidlist 1\nuidvalidity 1795700000\nuidnext 4\n"
        b"1 1795708883.Q661300e1ac972000.mx.example.test $Forwarded\n3 1795708884.M1P2Q3.host\n",
        b"Sent.%\x00Sent.2026", b"*\x00a.b.c", b"INBOX.%.x\x00INBOX.y.x",
    ]
    pickup_head = (b'{"version":1,"sender":"alice@h.test","recipients":["bob@example.test","c@x.test"],'
                   b'"uid":1000,"login":"alice","time":1795000000,"full_name":"Alice"}\n')
    seeds["pickup"] = [
        pickup_head + b"Subject: s\r\nBcc: x@y.test,\r\n z@y.test\r\n\r\nbody\r\n",
        pickup_head.replace(b'"alice@h.test"', b'""') + b"",
        b'{"version":2}\n',
        b"\x01\x07To: \"Doe, J\" <j@x.test>, grp: a@b.test, c (comment);\nBcc: d@e\n\nline\r\n.\r\nafter\n",
        b"\x00\x03no header\rbare CR\n..\n.\nJ\xc3\xbcrgen\n",
    ]
    seeds["base64_sasl"] = [
        b"AGFsaWNlAHMzY3JldA==", b"YWxpY2UAYWxpY2UAcGFzcw==", b"YWxpY2U=", b"czNjcmV0LVBX", b"=", b"",
        b"\x00\x05alicepassword", b"\x03\x04bobbbobpass",
    ]

    for name, items in seeds.items():
        d = os.path.join(OUT, name)
        os.makedirs(d)
        for i, item in enumerate(items):
            fname, blob = item if isinstance(item, tuple) else ("seed-%02d" % i, item)
            with open(os.path.join(d, fname), "wb") as fh:
                fh.write(blob)
    print("wrote", sum(len(v) for v in seeds.values()), "seeds in", OUT)


if __name__ == "__main__":
    sys.exit(main())
