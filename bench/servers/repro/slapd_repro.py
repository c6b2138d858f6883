#!/usr/bin/env python3
"""Reproducers of bench/servers/slapd-fixes.tsv against a running slapd (slapd-repro.sh starts
it). One function per case; exit 0: behaves as fixed, 1: shows the bug, 2: could not decide.
A minimal LDAP client (RFC 4511 in BER), no dependency beyond python3."""
import os
import socket
import sys


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + head + content


def integer(tag, v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return tlv(tag, b)


def octets(s, tag=0x04):
    return tlv(tag, s.encode() if isinstance(s, str) else s)


def message(msgid, op):
    return tlv(0x30, integer(0x02, msgid) + op)


def equality(attr, value):
    return tlv(0xA3, octets(attr) + octets(value))


def search(msgid, base, flt, attrs=("1.1",)):
    body = (octets(base) + integer(0x0A, 2) + integer(0x0A, 0) + integer(0x02, 0) +
            integer(0x02, 0) + tlv(0x01, b"\x00") + flt +
            tlv(0x30, b"".join(octets(a) for a in attrs)))
    return message(msgid, tlv(0x63, body))


def read_element(data):
    """(tag, content, rest) of the first element of data, or None when incomplete."""
    if len(data) < 2:
        return None
    tag, first = data[0], data[1]
    if first < 0x80:
        hdr, n = 2, first
    else:
        k = first & 0x7F
        if len(data) < 2 + k:
            return None
        hdr, n = 2 + k, int.from_bytes(data[2:2 + k], "big")
    if len(data) < hdr + n:
        return None
    return tag, data[hdr:hdr + n], data[hdr + n:]


class Client:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.sock.settimeout(10)

    def messages(self):
        """Yields (msgid, op tag, op content) as they arrive."""
        while True:
            el = read_element(self.buf)
            if el is None:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                self.buf += chunk
                continue
            _, body, self.buf = el
            _, mid, rest = read_element(body)
            optag, op, rest = read_element(rest)
            yield int.from_bytes(mid, "big", signed=True), optag, op

    def request(self, data):
        """Sends one request; returns (entries, resultCode, diagnostic, op content)."""
        self.sock.sendall(data)
        entries = 0
        for _, optag, op in self.messages():
            if optag == 0x64:
                entries += 1
                continue
            _, code, rest = read_element(op)
            _, _, rest = read_element(rest)
            _, diag, rest = read_element(rest)
            return entries, int.from_bytes(code, "big"), diag.decode(errors="replace"), rest


def case_idl_intersection(args):
    # Entry ids follow slapadd's order: u00000000 is 3, u00000001 4, u00000002 5. In
    # (&(|(uid=u00000000)(uid=u00000002))(uid=u00000001)) the OR's candidates [3, 5] and the
    # uid's [4] meet in 4 without sharing it; OR-ed with (uid=u00000010) the search has one
    # candidate, or two with the bug. The server runs with `limits anonymous
    # size.unchecked=1`: a search with more than one candidate is refused.
    s = socket.create_connection(("127.0.0.1", args["port"]))
    c = Client(s)
    disjoint = tlv(0xA0, tlv(0xA1, equality("uid", "u00000000") + equality("uid", "u00000002")) +
                   equality("uid", "u00000001"))
    flt = tlv(0xA1, equality("uid", "u00000010") + disjoint)
    entries, code, diag, _ = c.request(search(1, "ou=people,dc=atlas,dc=test", flt))
    if code == 11:
        print(f"idl-intersection: adminLimitExceeded ({diag!r}): the disjoint lists left a candidate")
        return 1
    if code == 0 and entries == 1:
        print("idl-intersection: success, 1 entry: one candidate")
        return 0
    print(f"idl-intersection: resultCode {code} with {entries} entries: cannot decide")
    return 2


def case_peercred_format(args):
    # A client with uid and gid 3000000000 (no account needed) connects over ldapi://, binds
    # with SASL EXTERNAL (the identity slapd made from its peer credentials) and asks WhoAmI
    # (RFC 4532).
    uid = 3000000000
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(args["ldapi"])
            c = Client(s)
            bind = tlv(0x60, integer(0x02, 3) + octets("") +
                       tlv(0xA3, octets("EXTERNAL") + octets("")))
            _, code, diag, _ = c.request(message(1, bind))
            if code != 0:
                os.write(w, f"bind:{code}:{diag}".encode())
                os._exit(0)
            whoami = tlv(0x77, octets("1.3.6.1.4.1.4203.1.11.3", 0x80))
            _, code, diag, rest = c.request(message(2, whoami))
            value = b""
            while rest:
                tag, content, rest = read_element(rest)
                if tag == 0x8B:
                    value = content
            os.write(w, f"whoami:{code}:{value.decode(errors='replace')}".encode())
        except Exception as e:  # reported to the parent, which cannot decide
            os.write(w, f"error:{e}".encode())
        os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.waitpid(pid, 0)
    text = out.decode()
    if text.startswith("error:"):
        # The identity's text is longer than its buffer: slapd's assertion aborts it.
        try:
            socket.create_connection(("127.0.0.1", args["port"]), timeout=5).close()
        except ConnectionRefusedError:
            print(f"peercred-format: slapd died when a client with uid {uid} connected ({text})")
            return 1
    if not text.startswith("whoami:0:"):
        print(f"peercred-format: {text}: cannot decide")
        return 2
    authz = text[len("whoami:0:"):]
    if f"uidNumber={uid}" in authz and f"gidNumber={uid}" in authz:
        print(f"peercred-format: {authz}")
        return 0
    if f"uidNumber={uid - 2**32}" in authz:
        print(f"peercred-format: {authz} (negative numbers)")
        return 1
    print(f"peercred-format: {authz}: cannot decide")
    return 2


CASES = {
    "idl-intersection": case_idl_intersection,
    "peercred-format": case_peercred_format,
}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in CASES:
        print(f"usage: slapd_repro.py {'|'.join(CASES)} PORT LDAPI_PATH", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(CASES[sys.argv[1]]({"port": int(sys.argv[2]), "ldapi": sys.argv[3]}))
    except (OSError, ConnectionError) as e:
        print(f"{sys.argv[1]}: {e}: cannot decide")
        sys.exit(2)
