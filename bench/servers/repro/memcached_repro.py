#!/usr/bin/env python3
"""Reproducers for the upstream memcached fixes in bench/servers/memcached-fixes.tsv.

    python3 bench/servers/repro/memcached_repro.py NAME BINARY
    python3 bench/servers/repro/memcached_repro.py --list

Starts BINARY (a memcached 1.6.18 build, with or without the fix NAME) on a free loopback port,
as user nobody when run as root, with the options the case needs, runs the case against it and
prints one line, "NAME: fixed|BUG|harness error: <what was seen>". Exit status: 0 when the server
behaves as the fixed upstream code does, 1 when it shows the bug, 2 when the case could not run
(the server did not start, the scenario the bug needs did not happen, an unexpected answer).
bench/servers/repro/run.sh is the entry point; this file holds the harness and one function per
case. Every case was checked both ways: see bench/servers/README.md.

For live patching, two environment variables change how the server runs:
  MEMCACHED_REPRO_PREFIX  words put before the server's command (split like a shell would), e.g.
                          "env LD_PRELOAD=$PWD/build/user/lib/preload/libatlas-preload.so"
  MEMCACHED_REPRO_HOOK    a shell command run once the server accepts connections and before
                          the case, with MEMCACHED_PID and MEMCACHED_PORT set, e.g.
                          'atlas apply $MEMCACHED_PID fix.patch.o'; failing is a harness error
"""

import os
import pwd
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 10.0


class HarnessError(Exception):
    """The case could not decide: a harness or scenario problem, not the bug."""


class Server:
    def __init__(self, binary, args, workdir, rlimit_as=None):
        self.binary = binary
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "server.log")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        prefix = shlex.split(os.environ.get("MEMCACHED_REPRO_PREFIX", ""))
        cmd = prefix + [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += args
        self.cmd = cmd

        def limit():
            if rlimit_as is not None:
                resource.setrlimit(resource.RLIMIT_AS, (rlimit_as, rlimit_as))

        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=limit)
        try:
            self._ready()
        except BaseException:
            self.stop()  # never leave a server behind
            raise

    def _ready(self):
        cmd = self.cmd
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise HarnessError("server exited at start (status %s): %s; command: %s"
                                   % (self.proc.returncode, self.log_tail(), " ".join(cmd)))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise HarnessError("server not accepting on port %d after %.0f s: %s"
                                       % (self.port, START_TIMEOUT, self.log_tail()))
                time.sleep(0.05)
        hook = os.environ.get("MEMCACHED_REPRO_HOOK")
        if hook:
            env = dict(os.environ, MEMCACHED_PID=str(self.proc.pid), MEMCACHED_PORT=str(self.port))
            r = subprocess.run(hook, shell=True, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                out = r.stdout.decode(errors="replace").strip().splitlines()
                raise HarnessError("MEMCACHED_REPRO_HOOK failed (status %d): %s"
                                   % (r.returncode, out[-1] if out else "no output"))
            if self.proc.poll() is not None:
                raise HarnessError("server %s during MEMCACHED_REPRO_HOOK" % self.death())

    def alive(self, grace=0.3):
        time.sleep(grace)
        return self.proc.poll() is None

    def death(self):
        rc = self.proc.returncode
        if rc is not None and rc < 0:
            return "killed by %s" % signal.Signals(-rc).name
        return "exited with status %s" % rc

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:]) if lines else "(no output)"
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def client(self, timeout=5.0, rcvbuf=None):
        return Client(self.port, timeout, rcvbuf)


class Client:
    def __init__(self, port, timeout, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        self.sock = s
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, data):
        self.send(data)
        return self.line()

    def expect(self, data, want):
        got = self.cmd(data)
        if got != want:
            raise HarnessError("%r answered %r, expected %r"
                               % (data[:60] if isinstance(data, str) else data[:60], got, want))

    def until_end(self, end="END"):
        lines = []
        while True:
            line = self.line()
            if line == end:
                return lines
            if line.startswith(("ERROR", "CLIENT_ERROR", "SERVER_ERROR")):
                return lines + [line]
            lines.append(line)

    def stats(self, sub=""):
        self.send("stats %s\r\n" % sub if sub else "stats\r\n")
        out = {}
        for line in self.until_end():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]
            else:
                raise HarnessError("stats %s: unexpected line %r" % (sub, line))
        return out

    def close(self):
        self.sock.close()


# --- binary protocol -----------------------------------------------------------------------------

BIN_REQ, BIN_RES = 0x80, 0x81
OP_SET, OP_NOOP = 0x01, 0x0A
ST_E2BIG, ST_EINVAL = 0x0003, 0x0004


def bin_request(opcode, key=b"", extras=b"", value=b"", opaque=0, bodylen=None):
    if bodylen is None:
        bodylen = len(extras) + len(key) + len(value)
    header = struct.pack(">BBHBBHIIQ", BIN_REQ, opcode, len(key), len(extras), 0, 0,
                         bodylen, opaque, 0)
    return header + extras + key + value


def bin_response(client):
    magic, opcode, keylen, extlen, _dt, status, bodylen, opaque, cas = struct.unpack(
        ">BBHBBHIIQ", client.exact(24))
    if magic != BIN_RES:
        raise HarnessError("binary response with magic 0x%02x" % magic)
    body = client.exact(bodylen)
    return {"opcode": opcode, "status": status, "opaque": opaque, "cas": cas, "body": body}


# --- the cases -----------------------------------------------------------------------------------
# Each returns (True, what) when the server behaves as fixed, (False, what) when it shows the bug,
# and raises HarnessError when it cannot tell.

def case_me_exptime(srv):
    c = srv.client()
    c.expect("set k 0 100 1\r\nx\r\n", "STORED")
    line = c.cmd("me k\r\n")
    fields = dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
    if not line.startswith("ME k ") or "exp" not in fields:
        raise HarnessError("me k answered %r" % line)
    exp = int(fields["exp"])
    if exp < 0:
        return False, "me reports exp=%d for an item set to expire in 100 s" % exp
    if 0 < exp <= 100:
        return True, "me reports exp=%d for an item set to expire in 100 s" % exp
    raise HarnessError("me reports exp=%d, expected about 100" % exp)


def case_bin_set_fail_watch(srv):
    w = srv.client()
    w.expect("watch mutations\r\n", "OK")
    time.sleep(0.2)
    c = srv.client()
    value = b"v" * (2 << 20)  # larger than the 1 MiB item size limit: the SET fails
    try:
        c.send(bin_request(OP_SET, b"k", struct.pack(">II", 0, 0), value))
        r = bin_response(c)
    except (OSError, EOFError) as e:
        r = e
    if not srv.alive():
        return False, "server %s on a failed binary SET while `watch mutations` ran (%s)" % (
            srv.death(), r)
    if isinstance(r, dict) and r["status"] == ST_E2BIG:
        return True, "failed binary SET answered E2BIG with `watch mutations` running, server up"
    raise HarnessError("server up but the oversized SET got %r" % (r,))


def case_bin_bodylen_overflow(srv):
    c = srv.client(timeout=3)
    extras = struct.pack(">II", 0, 0)
    # A SET announcing a body of 2^31 + 9 bytes, then (as part of that body, for a correct
    # server) bytes that look like a NOOP request.
    c.send(bin_request(OP_SET, b"k", extras, bodylen=0x80000000 + len(extras) + 1)
           + bin_request(OP_NOOP, opaque=0xDEADBEEF))
    seen = []
    try:
        while len(seen) < 4:
            seen.append(bin_response(c))
    except socket.timeout:
        pass
    except (EOFError, ConnectionResetError):
        seen.append("EOF")
    if not srv.alive():
        return False, "server %s" % srv.death()
    desc = ", ".join(r if isinstance(r, str) else "op 0x%02x status 0x%04x" % (
        r["opcode"], r["status"]) for r in seen)
    if any(isinstance(r, dict) and r["opcode"] == OP_NOOP and r["opaque"] == 0xDEADBEEF
           for r in seen):
        return False, "body bytes after a 2^31-byte SET header were run as a command (%s)" % desc
    if seen and isinstance(seen[0], dict) and seen[0]["status"] == ST_EINVAL and seen[-1] == "EOF":
        return True, "SET with a 2^31-byte body refused with EINVAL and the connection closed"
    raise HarnessError("unexpected answers: %s" % (desc or "none"))


def case_auth_huge_token(srv):
    c = srv.client(timeout=3)
    try:
        line = c.cmd("set auth 0 0 2147483646\r\n")
    except (OSError, EOFError) as e:
        line = "no answer (%s)" % e
    if not srv.alive():
        return False, "server %s on an ascii auth token of 2147483646 bytes (%s)" % (
            srv.death(), line)
    if not line.startswith("CLIENT_ERROR"):
        raise HarnessError("huge auth token answered %r" % line)
    ok = srv.client().cmd("set auth 0 0 10\r\nuser pass1\r\n")
    if ok != "STORED":
        raise HarnessError("a valid login answered %r (is the auth file readable?)" % ok)
    return True, "huge auth token refused (%s), valid login still works" % line


def case_incr_strtoull_scan(srv):
    c = srv.client()
    # Leave '-' bytes in the free chunks of the smallest class, then store a number above
    # 2^63 in one of them: the unfixed strtoull check scans past the value for a '-'.
    keys = ["d%05d" % i for i in range(200)]
    c.send("".join("set %s 0 0 30 noreply\r\n%s\r\n" % (k, "-" * 30) for k in keys))
    c.expect("mn\r\n", "MN")
    c.send("".join("delete %s noreply\r\n" % k for k in keys))
    c.expect("mn\r\n", "MN")
    c.expect("set n 0 0 20\r\n18446744073709551615\r\n", "STORED")
    cls = {k.split(":")[1] for k in c.stats("items") if k.endswith(":number")}
    if cls != {"1"}:
        raise HarnessError("the number is not in the class the '-' values used (%s)" % cls)
    line = c.cmd("incr n 0\r\n")
    if line == "18446744073709551615":
        return True, "incr by 0 of 18446744073709551615 answers the value"
    if line.startswith("CLIENT_ERROR cannot increment"):
        return False, "incr by 0 of 18446744073709551615 answers %r" % line
    raise HarnessError("incr answered %r" % line)


def case_slab_move_cas(srv):
    c = srv.client(timeout=10)
    value = "x" * 900
    n = 3000
    c.send("".join("set k%05d 0 0 %d noreply\r\n%s\r\n" % (i, len(value), value)
                   for i in range(n)))
    c.expect("mn\r\n", "MN")
    slabs = c.stats("slabs")
    cls = [k.split(":")[0] for k, v in slabs.items() if k.endswith(":used_chunks") and int(v) == n]
    if len(cls) != 1:
        raise HarnessError("the %d items are not all in one slab class" % n)
    cls = cls[0]
    perslab = int(slabs["%s:chunks_per_page" % cls])
    pages = int(slabs["%s:total_pages" % cls])
    if pages < 3:
        raise HarnessError("class %s has %d pages, need 3" % (cls, pages))

    def cas_of(keys):
        c.send("gets %s\r\n" % " ".join(keys))
        out = {}
        while True:
            line = c.line()
            if line == "END":
                return out
            parts = line.split()
            if len(parts) != 5 or parts[0] != "VALUE":
                raise HarnessError("gets: %r" % line)
            out[parts[1]] = int(parts[4])
            c.exact(int(parts[3]) + 2)

    first = ["k%05d" % i for i in range(perslab)]  # the items of the class's first page
    before = cas_of(first)
    # Free the chunks of the later pages, so that moving the first page rescues its items.
    c.send("".join("delete k%05d noreply\r\n" % i for i in range(perslab, n)))
    c.expect("mn\r\n", "MN")
    c.expect("slabs reassign %s 0\r\n" % cls, "OK")
    deadline = time.monotonic() + 20
    while True:
        st = c.stats()
        if st.get("slab_reassign_running") == "0" and int(st.get("slabs_moved", 0)) >= 1:
            break
        if time.monotonic() > deadline:
            raise HarnessError("the page move did not finish in 20 s")
        time.sleep(0.1)
    rescues = int(st.get("slab_reassign_rescues", 0))
    if rescues == 0:
        raise HarnessError("the page move rescued no item")
    after = cas_of(first)
    if set(after) != set(before):
        raise HarnessError("%d of %d items lost in the move" % (len(before) - len(after),
                                                                len(before)))
    changed = sum(1 for k in before if before[k] != after[k])
    if changed:
        return False, "%d of %d items rescued by a page move got a new CAS" % (changed, rescues)
    return True, "all %d items rescued by a page move kept their CAS" % rescues


def case_stats_detail_dump(srv):
    c = srv.client()
    on = c.cmd("stats detail on\r\n")
    c.expect("set secret:key 0 0 1\r\nx\r\n", "STORED")
    c.send("stats detail dump\r\n")
    lines = c.until_end()
    if any(l.startswith("PREFIX secret ") for l in lines):
        return False, "with -X (dumping disabled) `stats detail dump` lists key prefixes (%s)" % (
            lines[0])
    if on.startswith("CLIENT_ERROR") and lines and lines[-1].startswith("CLIENT_ERROR"):
        return True, "with -X `stats detail` is refused (%s)" % lines[-1]
    raise HarnessError("stats detail on: %r, dump: %r" % (on, lines[:3]))


def case_read_oom_crash(srv):
    c = srv.client(timeout=10)
    # An endless multiget line: the read buffer doubles until realloc fails under the address
    # space limit the server was started with.
    chunk = b"get " + b"k " * (1 << 19)
    answer = None
    sent = 0
    try:
        while sent < (2 << 30):
            c.send(chunk)
            sent += len(chunk)
    except (OSError, EOFError) as e:
        answer = "send stopped after %d MiB (%s)" % (sent >> 20, e.__class__.__name__)
    try:
        line = c.line()
        answer = (answer + "; " if answer else "") + "answered %r" % line
    except (OSError, EOFError) as e:
        answer = (answer + "; " if answer else "") + "no answer (%s)" % e.__class__.__name__
    if not srv.alive(1.0):
        return False, "server %s when its read buffer could not grow: %s" % (srv.death(), answer)
    if "SERVER_ERROR out of memory" in answer:
        return True, "server answered out of memory and lives: %s" % answer
    raise HarnessError("server up, but no out-of-memory answer: %s" % answer)


def case_stats_prefix_cap(srv):
    c = srv.client(timeout=20)
    c.expect("stats detail on\r\n", "OK")
    n = 70000
    for start in range(0, n, 10000):
        c.send("".join("set p%d:k 0 0 1 noreply\r\nx\r\n" % i
                       for i in range(start, min(n, start + 10000))))
    c.expect("mn\r\n", "MN")
    c.send("stats detail dump\r\n")
    count = sum(1 for l in c.until_end() if l.startswith("PREFIX "))
    if count > 65536:
        return False, "%d key prefixes tracked for %d distinct prefixes (no cap)" % (count, n)
    if 60000 <= count <= 65536:
        return True, "%d key prefixes tracked for %d distinct prefixes (capped)" % (count, n)
    raise HarnessError("%d prefixes in stats detail dump for %d sets" % (count, n))


EXT_OPTS = ("ext_page_size=8,ext_wbuf_size=2,ext_threads=1,ext_io_depth=2,ext_item_size=512,"
            "ext_item_age=100000,ext_recache_rate=100000,ext_max_frag=0.9,slab_automove=0,"
            "ext_max_sleep=100000,ext_path=%s:64m")


def ext_args(workdir):
    return ["-m", "64", "-o", EXT_OPTS % os.path.join(workdir, "extstore")]


def wait_ext_written(c, at_least, what):
    deadline = time.monotonic() + 20
    while True:
        st = c.stats()
        if int(st.get("extstore_objects_written", 0)) >= at_least:
            return
        if time.monotonic() > deadline:
            raise HarnessError("%s was not written to extstore in 20 s" % what)
        time.sleep(0.2)


def gets_cas(c, key):
    line = c.cmd("gets %s\r\n" % key)
    parts = line.split()
    if len(parts) != 5 or parts[0] != "VALUE":
        raise HarnessError("gets %s answered %r" % (key, line))
    c.exact(int(parts[3]) + 2)
    end = c.line()
    if end != "END":
        raise HarnessError("gets %s: %r after the value" % (key, end))
    return int(parts[4])


def case_ext_recache_cas(srv):
    c = srv.client(timeout=10)
    value = "v" * 20000
    for _ in range(3):  # a CAS above the first one
        c.expect("set foo 0 0 %d\r\n%s\r\n" % (len(value), value), "STORED")
    cas = [gets_cas(c, "foo")]
    c.expect("extstore item_age 1\r\n", "OK")
    wait_ext_written(c, 1, "the item")
    # Recache every read from disk from now on, and do not write the item out again. A read
    # from disk recaches once the item counts as fetched and active (two hits), so read until a
    # recache happened, then once more from memory.
    c.expect("extstore recache_rate 1\r\n", "OK")
    c.expect("extstore item_age 100000\r\n", "OK")
    recached = 0
    for _ in range(6):
        cas.append(gets_cas(c, "foo"))
        if recached:
            break
        recached = int(c.stats().get("recache_from_extstore", 0))
    if not recached:
        raise HarnessError("the item was read from extstore %d times but never recached"
                           % (len(cas) - 1))
    if any(x != cas[0] for x in cas):
        return False, "recache from extstore changed the item's CAS (gets: %s)" % (
            " ".join(map(str, cas)))
    return True, "recache from extstore kept the item's CAS (gets: %s)" % " ".join(map(str, cas))


def case_ext_flush_flags(srv):
    c = srv.client(timeout=10)
    value = "v" * 20000
    c.expect("ms itf %d\r\n%s\r\n" % (len(value), value), "HD")
    c.expect("mg itf\r\n", "HD")  # fetched
    c.expect("md itf I\r\n", "HD")  # stale
    first = c.cmd("mg itf h\r\n")  # hands out the win token: W
    before = c.cmd("mg itf h\r\n")  # token already sent: Z
    if first.split()[1:] != ["h1", "X", "W"] or sorted(before.split()[1:]) != ["X", "Z", "h1"]:
        raise HarnessError("before the write to extstore mg answered %r, then %r"
                           % (first, before))
    c.expect("extstore item_age 1\r\n", "OK")
    wait_ext_written(c, 1, "the item")
    after = c.cmd("mg itf h\r\n")
    if after == before:
        return True, "item flags survive the write to extstore (%r)" % after
    return False, "item flags lost on the write to extstore: %r, before %r" % (after, before)


def case_flush_all_no_cas(srv):
    c = srv.client()
    misses = 0
    tries = 5
    for i in range(tries):
        c.send("flush_all\r\nset k 0 0 1\r\nx\r\nget k\r\n")
        if c.line() != "OK" or c.line() != "STORED":
            raise HarnessError("flush_all/set did not answer OK/STORED")
        lines = c.until_end()
        if not lines:
            misses += 1
        time.sleep(0.3)
    if misses:
        return False, "%d of %d items set right after flush_all (-C, no CAS) were gone" % (
            misses, tries)
    return True, "all %d items set right after flush_all (-C, no CAS) were kept" % tries


def case_crawler_hash_lock(srv):
    c = srv.client(timeout=30)
    n = 100000
    keys = ["%064d" % i for i in range(n)]
    for start in range(0, n, 10000):
        c.send("".join("set %s 0 0 1 noreply\r\nx\r\n" % k for k in keys[start:start + 10000]))
    c.expect("mn\r\n", "MN")
    # A dump client that does not read: the crawler's output backs up.
    dump = srv.client(rcvbuf=4096)
    dump.send("lru_crawler metadump hash\r\n")
    time.sleep(2)
    b = srv.client(timeout=5)
    got = 0
    t0 = time.monotonic()
    try:
        for start in range(0, n, 1000):  # batches: the answers never fill the socket buffers
            batch = keys[start:start + 1000]
            b.send("".join("mg %s\r\n" % k for k in batch))
            for _ in batch:
                if b.line() != "HD":
                    raise HarnessError("mg answered something else than HD")
                got += 1
    except socket.timeout:
        pass
    took = time.monotonic() - t0
    if not srv.alive():
        return False, "server %s" % srv.death()
    if got < n:
        return False, ("with a metadump client not reading, %d of %d lookups answered, then "
                       "none for 5 s (the crawler waits for the client holding an item lock)" % (got, n))
    return True, "with a metadump client not reading, all %d lookups answered in %.1f s" % (
        n, took)


# name: (function, server options, address space limit or None)
CASES = {
    "me-exptime": (case_me_exptime, lambda d: [], None),
    "bin-set-fail-watch": (case_bin_set_fail_watch, lambda d: [], None),
    "bin-bodylen-overflow": (case_bin_bodylen_overflow, lambda d: [], None),
    "auth-huge-token": (case_auth_huge_token, lambda d: ["-Y", os.path.join(d, "authfile")],
                        None),
    "incr-strtoull-scan": (case_incr_strtoull_scan, lambda d: [], None),
    "slab-move-cas": (case_slab_move_cas,
                      lambda d: ["-m", "64", "-o", "slab_reassign,slab_automove=0"], None),
    "stats-detail-dump": (case_stats_detail_dump, lambda d: ["-X"], None),
    "read-oom-crash": (case_read_oom_crash, lambda d: ["-t", "1"], 512 << 20),
    "stats-prefix-cap": (case_stats_prefix_cap, lambda d: [], None),
    "ext-recache-cas": (case_ext_recache_cas, ext_args, None),
    "ext-flush-flags": (case_ext_flush_flags, ext_args, None),
    "flush-all-no-cas": (case_flush_all_no_cas, lambda d: ["-C"], None),
    "crawler-hash-lock": (case_crawler_hash_lock, lambda d: ["-m", "128"], None),
}


def prepare_workdir():
    d = tempfile.mkdtemp(prefix="memcached-repro-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "authfile"), "w") as f:
        f.write("user:pass1\n")
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for p in (d, os.path.join(d, "authfile")):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    return d


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        print("\n".join(CASES))
        return 0
    if len(argv) != 3 or argv[1] not in CASES:
        print(__doc__.strip(), file=sys.stderr)
        if len(argv) == 3:
            print("unknown case %r; cases: %s" % (argv[1], " ".join(CASES)), file=sys.stderr)
        return 2
    name, binary = argv[1], argv[2]

    def terminated(signum, _frame):
        raise HarnessError("interrupted by %s" % signal.Signals(signum).name)

    # A harness stopped by timeout(1) or ^C still stops its server and removes its files.
    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, terminated)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print("%s: harness error: %s is not an executable memcached (build it with "
              "bench/servers/memcached.sh or memcached-fix.sh)" % (name, binary))
        return 2
    fn, args, rlimit_as = CASES[name]
    workdir = prepare_workdir()
    srv = None
    try:
        srv = Server(os.path.abspath(binary), args(workdir), workdir, rlimit_as)
        fixed, what = fn(srv)
        print("%s: %s: %s" % (name, "fixed" if fixed else "BUG", what))
        return 0 if fixed else 1
    except HarnessError as e:
        print("%s: harness error: %s" % (name, e))
        return 2
    except Exception as e:  # noqa: BLE001 - any other failure is the harness's, said in one line
        dead = srv is not None and srv.proc.poll() is not None
        print("%s: harness error: %s: %s%s" % (name, e.__class__.__name__, e,
                                                " (server %s)" % srv.death() if dead else ""))
        return 2
    finally:
        if srv is not None:
            srv.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
