#!/usr/bin/env python3
"""SASL PLAIN over memcached's binary protocol, for the security-update test
(bench/servers/memcached-security-update.sh): one authentication, or a checked load.

  sasl_client.py auth PORT USER PASSWORD      prints ok or refused (exit 0 or 1; 2: no answer)
  sasl_client.py load PORT USER PASSWORD SECONDS CONNECTIONS
      CONNECTIONS connections that authenticate once and then SET and GET their own keys,
      plus one that opens a new connection for each authentication (the patched function
      runs throughout), for SECONDS; every reply is checked. Prints one JSON line:
      {"requests", "authentications", "errors", "max_gap_ms", "messages"}; exit 0 when
      every request got its right reply.
"""
import json
import socket
import struct
import sys
import threading
import time

GET, SET, SASL_AUTH = 0x00, 0x01, 0x21
TIMEOUT = 5.0


def request(opcode, key=b"", value=b"", extras=b"", opaque=0):
    body = extras + key + value
    return struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0, len(body),
                       opaque, 0) + body


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        out += chunk
    return out


def response(sock):
    head = read_exact(sock, 24)
    magic, opcode, keylen, extlen, _, status, bodylen, opaque, _ = struct.unpack(
        ">BBHBBHIIQ", head)
    if magic != 0x81:
        raise ValueError(f"bad response magic {magic:#x}")
    body = read_exact(sock, bodylen)
    return opcode, status, opaque, body[extlen + keylen:]


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def authenticate(sock, user, password):
    """True: authenticated; False: refused (status 0x20)."""
    sock.sendall(request(SASL_AUTH, b"PLAIN", b"\0" + user.encode() + b"\0" +
                         password.encode()))
    _, status, _, _ = response(sock)
    if status == 0:
        return True
    if status == 0x20:
        return False
    raise ValueError(f"SASL auth answered status {status:#x}")


def cmd_auth(port, user, password):
    try:
        with connect(port) as s:
            ok = authenticate(s, user, password)
    except (OSError, ValueError) as e:
        print(f"no answer: {e}")
        return 2
    print("ok" if ok else "refused")
    return 0 if ok else 1


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.auths = 0
        self.errors = 0
        self.max_gap = 0.0
        self.messages = []

    def fail(self, what):
        with self.lock:
            self.errors += 1
            if len(self.messages) < 5:
                self.messages.append(what)


def data_worker(port, user, password, n, stop, stats):
    try:
        with connect(port) as s:
            if not authenticate(s, user, password):
                stats.fail(f"connection {n}: {user} refused")
                return
            i = 0
            while not stop.is_set():
                key = f"k{n}-{i % 100}".encode()
                value = f"v{n}-{i}".encode() * 4
                start = time.monotonic()
                s.sendall(request(SET, key, value, struct.pack(">II", 0, 0), opaque=i))
                _, status, opaque, _ = response(s)
                if status != 0 or opaque != i:
                    stats.fail(f"SET {key!r}: status {status:#x}, opaque {opaque}")
                    return
                s.sendall(request(GET, key, opaque=i))
                _, status, opaque, got = response(s)
                gap = time.monotonic() - start
                if status != 0 or opaque != i or got != value:
                    stats.fail(f"GET {key!r}: status {status:#x}, {got[:20]!r}")
                    return
                with stats.lock:
                    stats.requests += 2
                    stats.max_gap = max(stats.max_gap, gap)
                i += 1
    except (OSError, ValueError) as e:
        stats.fail(f"connection {n}: {e}")


def auth_worker(port, user, password, stop, stats):
    while not stop.is_set():
        start = time.monotonic()
        try:
            with connect(port) as s:
                if not authenticate(s, user, password):
                    stats.fail(f"{user} refused")
                    return
        except (OSError, ValueError) as e:
            stats.fail(f"authentication: {e}")
            return
        with stats.lock:
            stats.auths += 1
            stats.max_gap = max(stats.max_gap, time.monotonic() - start)


def cmd_load(port, user, password, seconds, connections):
    stats = Stats()
    stop = threading.Event()
    threads = [threading.Thread(target=data_worker, args=(port, user, password, n, stop, stats))
               for n in range(connections)]
    threads.append(threading.Thread(target=auth_worker, args=(port, user, password, stop, stats)))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    print(json.dumps({"requests": stats.requests, "authentications": stats.auths,
                      "errors": stats.errors, "max_gap_ms": round(stats.max_gap * 1000, 1),
                      "messages": stats.messages}))
    return 0 if stats.errors == 0 and stats.requests > 0 and stats.auths > 0 else 1


def main(argv):
    if len(argv) == 5 and argv[1] == "auth":
        return cmd_auth(int(argv[2]), argv[3], argv[4])
    if len(argv) == 7 and argv[1] == "load":
        return cmd_load(int(argv[2]), argv[3], argv[4], float(argv[5]), int(argv[6]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
