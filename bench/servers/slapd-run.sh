#!/bin/sh
# Runs slapd (bench/servers/slapd.sh) the way Debian's package runs it: as the user and group
# openldap (created when absent, as the package's postinst does), daemonized, listening on
# ldap:// and ldapi:// (Debian's SLAPD_SERVICES), with an mdb database loaded by slapadd. POSIX
# sh: the evaluation runs it in the guest's busybox too.
#
#   slapd-run.sh start DIR SLAPD LOADGEN     prints the daemon's pid
#   slapd-run.sh stop DIR
#
# DIR (created) gets slapd.conf, the database (DIR/db), slapd.pid, the ldapi socket
# (DIR/ldapi) and slapd.log (what slapd wrote to stderr). SLAPD is the binary; its schema
# files are in SLAPD's directory (schema/). LOADGEN (atlas-loadgen) writes the directory's LDIF
# (`atlas-loadgen ldap --ldif`) and checks that the server answers.
# Settings (environment): SLAPD_THREADS (worker threads, the `threads` directive; 16, slapd's
# default), SLAPD_PORT (389), SLAPD_ENTRIES (5000), SLAPD_SUFFIX (dc=atlas,dc=test),
# SLAPD_CONF_EXTRA (lines added to the database section, e.g. a `limits` directive),
# SLAPD_PREFIX (words before the server command, e.g. `env LD_PRELOAD=.../libatlas-preload.so`),
# SLAPD_LOGLEVEL (none, Debian's default).
set -u
die() {
	echo "slapd-run.sh: $*" >&2
	exit 1
}
verb=${1:-}
dir=${2:-}
[ -n "$dir" ] || die "usage: slapd-run.sh start DIR SLAPD LOADGEN | stop DIR"
case $verb in
stop)
	pid=$(cat "$dir/slapd.pid" 2>/dev/null) || exit 0
	kill "$pid" 2>/dev/null || exit 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null
	exit 0
	;;
start) ;;
*) die "usage: slapd-run.sh start DIR SLAPD LOADGEN | stop DIR" ;;
esac
slapd=${3:-}
loadgen=${4:-}
[ -x "$slapd" ] || die "$slapd is not an executable: build it with bench/servers/slapd.sh"
[ -x "$loadgen" ] || die "$loadgen (atlas-loadgen) is not an executable: build user space (make)"
schema=$(dirname "$slapd")/schema
[ -r "$schema/inetorgperson.schema" ] || die "$schema/inetorgperson.schema missing: rebuild with bench/servers/slapd.sh"
threads=${SLAPD_THREADS:-16}
port=${SLAPD_PORT:-389}
entries=${SLAPD_ENTRIES:-5000}
suffix=${SLAPD_SUFFIX:-dc=atlas,dc=test}

# The package's system user and group (Debian's postinst: adduser --system --group openldap).
if ! grep -q '^openldap:' /etc/group; then
	if command -v groupadd >/dev/null; then
		groupadd --system openldap || die "cannot add the group openldap"
	else
		echo "openldap:x:$((60000 + $$ % 1000)):" >>/etc/group || die "cannot add the group openldap"
	fi
fi
if ! grep -q '^openldap:' /etc/passwd; then
	if command -v useradd >/dev/null; then
		useradd --system --gid openldap --home-dir /var/lib/ldap --shell /bin/false openldap ||
			die "cannot add the user openldap"
	else
		gid=$(grep '^openldap:' /etc/group | cut -d: -f3)
		echo "openldap:x:$gid:$gid:OpenLDAP Server Account:/var/lib/ldap:/bin/false" >>/etc/passwd ||
			die "cannot add the user openldap"
	fi
fi

mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/db" "$dir/slapd.pid" "$dir/ldapi"
mkdir -p "$dir/db"
cat >"$dir/slapd.conf" <<EOF
# written by bench/servers/slapd-run.sh
include $schema/core.schema
include $schema/cosine.schema
include $schema/inetorgperson.schema
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
loglevel ${SLAPD_LOGLEVEL:-none}
threads $threads

database mdb
maxsize 1073741824
suffix "$suffix"
rootdn "cn=admin,$suffix"
directory $dir/db
index objectClass eq
index uid eq
index cn eq
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
${SLAPD_CONF_EXTRA:-}
EOF
"$loadgen" ldap --ldif --entries "$entries" --suffix "$suffix" >"$dir/directory.ldif" ||
	die "$loadgen ldap --ldif failed"
# As the package's tools are run (by root), then handed to the server's user.
"$(dirname "$slapd")/slapadd" -q -f "$dir/slapd.conf" -l "$dir/directory.ldif" >"$dir/slapadd.log" 2>&1 ||
	die "slapadd failed: $(tail -n 3 "$dir/slapadd.log")"
chown -R openldap:openldap "$dir" || die "cannot hand $dir to openldap"
ldapi=$(echo "$dir/ldapi" | sed 's|/|%2F|g')
# Daemonized (slapd forks unless -d is given), privileges dropped to openldap after binding.
${SLAPD_PREFIX:-} "$slapd" -h "ldap://127.0.0.1:$port/ ldapi://$ldapi" -u openldap -g openldap \
	-f "$dir/slapd.conf" 2>"$dir/slapd.log" || die "slapd did not start: $(cat "$dir/slapd.log")"
i=0
while [ ! -s "$dir/slapd.pid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
pid=$(cat "$dir/slapd.pid" 2>/dev/null) || die "slapd wrote no pid file: $(cat "$dir/slapd.log")"
# Until it answers a search and a bind.
i=0
while ! "$loadgen" ldap --server "127.0.0.1:$port" --entries "$entries" --suffix "$suffix" \
	--rate 50 --duration 0.1 --connections 1 >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null ||
		die "slapd ($pid) does not answer on 127.0.0.1:$port: $(cat "$dir/slapd.log")"
	sleep 0.2
done
echo "$pid"
