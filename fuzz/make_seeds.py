#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/make_seeds.py. The seeds are small, readable where the
target reads plain bytes, and for `server_session` encoded the way the `arbitrary` crate
(1.x, derive) decodes `Input`, so each seed is a meaningful session (see `session()` below).
libFuzzer adds what it finds to the same directories; only these files are committed.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# RFC 1939 §3 and §7-9 example traffic, RFC 2449 §5 CAPA, RFC 5034 §6 AUTH.
COMMANDS = {
    "user": b"USER mrose\r\n",
    "pass": b"PASS secret\r\n",
    "pass_spaces": b"PASS pass word \r\n",
    "apop": b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
    "stat": b"STAT\r\n",
    "list": b"LIST\r\n",
    "list_2": b"LIST 2\r\n",
    "retr": b"RETR 1\r\n",
    "dele": b"DELE 1\r\n",
    "top": b"TOP 1 10\r\n",
    "uidl_2": b"uidl 2\r\n",
    "auth_plain_ir": b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "auth_external_empty": b"AUTH EXTERNAL =\r\n",
    "lang": b"LANG es\r\n",
    "session": b"CAPA\r\nUSER mrose\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n",
}

RESPONSES = {
    "greeting_apop": b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
    "maildrop": b"+OK mrose's maildrop has 2 messages (320 octets)",
    "stat": b"+OK 2 320",
    "in_use": b"-ERR [IN-USE] mailbox locked",
    "sys_temp": b"-ERR [SYS/TEMP/DISKFULL] try later",
    "auth_failed": b"-ERR [AUTH] Authentication failed.",
    "challenge": b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+",
    "capa": b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL CRAM-MD5 KERBEROS_V4\r\n"
    b"RESP-CODES\r\nLOGIN-DELAY 900\r\nPIPELINING\r\nEXPIRE 60\r\nUIDL\r\n"
    b"IMPLEMENTATION Shlemazle-Plotz-v302\r\n.\r\n",
    "capa_more": b"STLS\r\nAUTH-RESP-CODE\r\nUTF8 USER\r\nLANG\r\nEXPIRE NEVER USER\r\n"
    b"LOGIN-DELAY 0 USER\r\nX-EXTENSION a b\r\n",
    "listing": b"+OK 2 messages (320 octets)\r\n1 120\r\n2\t200\r\n.\r\n",
}

M1 = b"From: a@example.com\r\nSubject: one\r\n\r\nline1\r\nline2\r\nline3\r\n"
M2 = b"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\nend\r\n"
M3 = b"Subject: lf\n\nbody1\nbody2"
M4 = b"Subject: nobody\r\n"
ROB11 = b"a\r.b\r\n"
M2_WIRE = b"Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\nend\r\n.\r\n"


def lengths(*lens):
    """The chunk-length header read by pop3_fuzz::take_lengths."""
    return bytes([len(lens)]) + b"".join(struct.pack("<H", n) for n in lens)


UNSTUFF = {
    "m2_wire_then_next_reply": lengths() + M2_WIRE + b"+OK next\r\n",
    "m2_wire_split": lengths(5, 1, 0, 2) + M2_WIRE,
    "bare_lf": lengths(3) + b"a\n..b\n.\n+OK",
    "dot_cr": lengths(1, 1) + b".\rX\r\n.\r\n",
    "dot_dot_cr": lengths() + b"..\r\n.\r\r\n.\r\n",
    "unterminated": lengths(2) + b"a\r\n.\r",
}

ROUNDTRIP = {
    "m1": b"\x03" + lengths() + lengths() + M1,
    "m2_dots": b"\x01" + lengths(7) + lengths(3, 3) + M2,
    "m3_bare_lf": b"\x02" + lengths(1, 1, 1) + lengths() + M3,
    "m4_no_body": b"\x00" + lengths() + lengths() + M4,
    "bare_cr": b"\x01" + lengths(2) + lengths(1) + ROB11,
    "terminator_inside": b"\x04" + lengths(4) + lengths() + b"x\r\n.\r\n+OK\r\n.\n..\r",
}


# ---- server_session: the `arbitrary` encoding of `Input { setup, ops }` ----


def variant(index, count):
    """A u32 (LE) that derive(Arbitrary) maps to variant `index` of `count`."""
    return struct.pack("<I", -(-(index << 32) // count))


def byte_vec(data):
    """Vec<u8> not in last position: a continue byte before each element, then a stop."""
    return b"".join(b"\x01" + bytes([b]) for b in data) + b"\x00"


OPS = ["Receive", "Line", "Eof", "AdvanceTime", "Respond", "Call"]
CALLS = [
    "AcceptLogin",
    "RejectLogin",
    "AuthChallenge",
    "BodyChunk",
    "BodyEnd",
    "MessageUnavailable",
    "BodyAbort",
    "CommitDone",
    "TlsEstablished",
]
# Must match LINES in fuzz_targets/server_session.rs.
LINES = [
    b"USER alice", b"PASS secret", b"PASS wrong password",
    b"APOP alice c4c9334bac560ecc979e58001b3e22fb", b"AUTH", b"AUTH PLAIN",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", b"AUTH LOGIN", b"AUTH LOGIN YWxpY2U=",
    b"AUTH CRAM-MD5", b"AUTH SCRAM-SHA-256", b"AUTH EXTERNAL =", b"AUTH XOAUTH2", b"*", b"=",
    b"", b"c2VjcmV0", b"STAT", b"LIST", b"LIST 1", b"LIST 9", b"UIDL", b"UIDL 2", b"RETR 1",
    b"RETR 2", b"RETR 3", b"TOP 1 0", b"TOP 2 1", b"TOP 3 99999999999", b"DELE 1", b"DELE 2",
    b"RSET", b"NOOP", b"QUIT", b"CAPA", b"STLS", b"UTF8", b"LANG", b"LANG en", b"LANG fr",
]


def op(name, arg=b""):
    return variant(OPS.index(name), len(OPS)) + arg


def line(text):
    return op("Line", bytes([LINES.index(text)]))


def receive(data):
    return op("Receive", byte_vec(data))


def respond(pick):
    return op("Respond", bytes([pick]))


def call(name, arg=b""):
    return op("Call", variant(CALLS.index(name), len(CALLS)) + arg)


def advance(seconds):
    return op("AdvanceTime", struct.pack("<H", seconds))


def setup(tls=0, plaintext=1, user_pass=1, mechanisms=0xFF, max_failures=3, small=0, apop=1,
          announce=0):
    return bytes([tls, plaintext, user_pass, mechanisms, max_failures, small, apop, announce])


def session(setup_bytes, ops):
    """`ops` is the last field: each element is preceded by a continue byte."""
    return setup_bytes + b"".join(b"\x01" + o for o in ops)


ACCEPT_5 = respond(40)  # pick % 5 == 0: accept, listing of 40 / 8 % 6 = 5 messages
BODY_BY_4 = respond(24)  # pick % 8 == 0: whole message, chunks of 24 / 8 % 16 + 1 = 4
COMMIT = respond(1)  # commit_done(Committed)

SESSIONS = {
    "rfc1939_user_pass": session(setup(), [
        line(b"CAPA"), line(b"USER alice"), line(b"PASS secret"), ACCEPT_5, line(b"STAT"),
        line(b"LIST"), line(b"UIDL"), line(b"RETR 2"), BODY_BY_4, line(b"TOP 1 0"), BODY_BY_4,
        line(b"DELE 1"), line(b"LIST"), line(b"RSET"), line(b"QUIT"), COMMIT,
    ]),
    "apop_pipelined": session(setup(), [
        receive(b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\nSTAT\r\nRETR 3\r\nQUIT\r\n"),
        ACCEPT_5, BODY_BY_4, COMMIT,
    ]),
    "sasl_plain_empty_challenge": session(setup(), [
        line(b"AUTH"), line(b"AUTH PLAIN"), receive(b"AGFsaWNlAHNlY3JldA==\r\n"), ACCEPT_5,
        line(b"UIDL 2"), line(b"QUIT"), COMMIT,
    ]),
    "sasl_login_challenges": session(setup(), [
        # 13, 18, 28: pick % 5 == 3 is a challenge, CHALLENGES[pick / 8] ("Username:",
        # "Password:", a CRAM-MD5 timestamp).
        line(b"AUTH LOGIN"), respond(13), line(b"c2VjcmV0"), respond(18), receive(b"*\r\n"),
        line(b"AUTH CRAM-MD5"), respond(28), receive(b"YWxpY2UgZGlnZXN0\r\n"), ACCEPT_5,
    ]),
    "stls_then_login": session(setup(tls=1, plaintext=0), [
        line(b"CAPA"), line(b"USER alice"), line(b"STLS"), respond(0), line(b"CAPA"),
        line(b"USER alice"), line(b"PASS secret"), ACCEPT_5, line(b"QUIT"), COMMIT,
    ]),
    "misuse_and_abort": session(setup(small=1), [
        call("BodyEnd"), call("CommitDone", b"\x01"), call("TlsEstablished"),
        line(b"USER alice"), line(b"PASS secret"), call("AuthChallenge", byte_vec(b"x")),
        call("AcceptLogin", b"\x03"), line(b"RETR 1"), call("BodyChunk", byte_vec(b".a\nb")),
        call("MessageUnavailable", b"\x00"), call("BodyAbort"), receive(b"NOOP\r\n"),
    ]),
    "bad_logins_and_timeout": session(setup(max_failures=2), [
        # 4: pick % 5 == 4 rejects with BadCredentials.
        line(b"PASS secret"), line(b"USER alice"), line(b"PASS wrong password"), respond(4),
        receive(b"LIST 1 2 3\r\nFOO\r\n" + b"X" * 300 + b"\r\n"), advance(599), advance(1),
    ]),
    "eof_mid_session": session(setup(), [
        receive(b"USER alice\r\nPASS secret\r\nLIST\r\nRE"), ACCEPT_5, receive(b"TR 1\r\n"),
        op("Eof"), BODY_BY_4,
    ]),
}


def write(target, seeds):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


write("command_decode", COMMANDS)
write("response_decode", RESPONSES)
write("dot_unstuff_chunked", UNSTUFF)
write("dot_roundtrip", ROUNDTRIP)
write("server_session", SESSIONS)
