#!/usr/bin/env bash
# Runs one reproducer of bench/servers/slapd-fixes.tsv against a slapd binary: starts it with
# bench/servers/slapd-run.sh on a free loopback port (as user openldap, the case's settings),
# runs the case (repro/slapd_repro.py) and stops it.
#
#   bench/servers/repro/slapd.sh NAME BINARY
#
# Exit 0: behaves as fixed, 1: shows the bug, 2: could not run or decide. Needs root (slapd
# drops to openldap; the peercred case runs its client as uid 3000000000). BUILD names the
# user-space build whose atlas-loadgen loads the directory (default build/user).
# SLAPD_REPRO_PREFIX puts words before the server command (e.g. `env LD_PRELOAD=.../libatlas-preload.so`);
# SLAPD_REPRO_HOOK runs a shell command after the server started and before the case, with
# SLAPD_PID set (e.g. `atlas apply $SLAPD_PID fix.patch.o`): an unfixed server patched by the
# hook must then pass.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
name=${1:-}
binary=${2:-}
loadgen=${BUILD:-$root/build/user}/bench/loadgen/atlas-loadgen
[ -n "$name" ] && [ -x "$binary" ] || { echo "usage: bench/servers/repro/slapd.sh NAME BINARY" >&2; exit 2; }
[ -x "$loadgen" ] || { echo "repro/slapd.sh: $loadgen missing: build user space (make) or set BUILD" >&2; exit 2; }
case $name in
idl-intersection) export SLAPD_CONF_EXTRA="limits anonymous size.unchecked=1" ;;
peercred-format) ;;
*) echo "repro/slapd.sh: no reproducer for '$name' (bench/servers/slapd-fixes.tsv says why)" >&2; exit 2 ;;
esac
dir=$(mktemp -d /tmp/slapd-repro.XXXXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap '"$root/bench/servers/slapd-run.sh" stop "$dir/run"; rm -rf "$dir"' EXIT
pid=$(SLAPD_PORT=$port SLAPD_THREADS=4 SLAPD_PREFIX=${SLAPD_REPRO_PREFIX:-} \
	"$root/bench/servers/slapd-run.sh" start "$dir/run" "$binary" "$loadgen") || exit 2
if [ -n "${SLAPD_REPRO_HOOK:-}" ]; then
	SLAPD_PID=$pid sh -c "$SLAPD_REPRO_HOOK" || { echo "repro/slapd.sh: the hook failed" >&2; exit 2; }
fi
python3 "$here/slapd_repro.py" "$name" "$port" "$dir/run/ldapi"
