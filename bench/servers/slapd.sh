#!/usr/bin/env bash
# OpenLDAP's slapd from Debian 12's source package (openldap 2.5.13+dfsg-5, debian/patches
# applied), for the evaluation: compiled with the flags a patchable program needs
# (docs/live-patching.md, "Targets"; `atlas build-patch --print-flags`) as a PIE with a
# build-id, unstripped, and configured for what the evaluation runs: multi-threaded (POSIX
# threads), the mdb backend built in, no overlays, no loadable modules, no TLS, Cyrus SASL as
# Debian has it (Debian's sasl-default-path patch does not build without it; it gives SASL
# EXTERNAL over ldapi://). Only slapd and the libraries it links are built (about 2 minutes on
# 2 cores). libldap, liblber and liblmdb are linked statically (--disable-shared): their code is
# the executable's, so fixes in them patch like slapd's own (the runtime patches the main
# executable: docs/live-patching.md); slapd needs libsasl2.so.2, libuuid.so.1 and libc.
#
#   bench/servers/slapd.sh [OUT_DIR]     (default build/servers)
#
# OUT_DIR/slapd-<version>/slapd is the binary (slapadd, slapcat, ... are the same program under
# those names: links beside it), OUT_DIR/slapd-<version>/schema/ the schema files the run needs
# (core, cosine, inetorgperson), OUT_DIR/src/openldap-<version>/ the source tree. The sources come
# from `apt-get source`, which needs the deb-src entries `make deps` adds (scripts/deps.sh).
# Nothing is rebuilt when the binary is newer than this script. SLAPD_SRC=DIR builds an
# existing tree instead (bench/servers/slapd-fix.sh: a tree with a fix applied) into
# OUT_DIR/slapd-<version><SLAPD_SUFFIX>/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build/servers}" && cd "${1:-$root/build/servers}" && pwd)
version=2.5.13+dfsg-5
die() { echo "bench/servers/slapd.sh: $*" >&2; exit 1; }
command -v dpkg-source >/dev/null || die "dpkg-source missing: run 'make deps'"
[ -e /usr/include/sasl/sasl.h ] || die "sasl/sasl.h missing (libsasl2-dev): run 'make deps'"
# What a patchable program is built with (`atlas build-patch --print-flags`): DWARF, a section
# per function and datum (the builder compares objects function by function), GCC's
# -flive-patching=inline-clone, frame pointers for unwinding; -fPIE for the static libraries'
# objects, which libtool compiles without PIC when shared libraries are off.
patchable_cflags="-O2 -g -ffunction-sections -fdata-sections -flive-patching=inline-clone -fno-omit-frame-pointer -fPIE"
# Debian's debian/configure.options, reduced to what slapd with mdb needs.
configure_opts=(--prefix=/usr --sysconfdir=/etc --localstatedir=/var --libexecdir=/usr/lib
	--enable-debug --enable-syslog --enable-ipv6 --enable-local --enable-slapd --enable-cleartext
	--disable-modules --disable-dynamic --disable-shared --enable-static
	--enable-backends=no --enable-mdb=yes --enable-overlays=no --disable-balancer
	--with-cyrus-sasl --without-tls --without-systemd --without-fetch --with-threads=posix)

dest=$out/slapd-$version${SLAPD_SUFFIX:-}
bin=$dest/slapd
if [ -z "${SLAPD_SRC:-}" ]; then
	if [ -x "$bin" ] && [ "$bin" -nt "${BASH_SOURCE[0]}" ]; then
		echo "slapd $version: $bin (built)"
		exit 0
	fi
	fetch=$out/fetch/openldap-$version
	if [ ! -f "$fetch/openldap_$version.dsc" ]; then
		mkdir -p "$fetch"
		(cd "$fetch" && apt-get source --download-only "openldap=$version" >/dev/null 2>"$fetch/apt.log") ||
			die "apt-get source openldap=$version failed ($(tail -n1 "$fetch/apt.log")): run 'make deps', which adds the deb-src entries"
	fi
	src=$out/src/openldap-$version
	rm -rf "$src"
	mkdir -p "$out/src"
	dpkg-source --no-check -x "$fetch/openldap_$version.dsc" "$src" >/dev/null
else
	src=$(cd "$SLAPD_SRC" && pwd)
fi
# slapd's version.c is regenerated at every link and prints __DATE__ and __TIME__ into
# Versionstr: without a fixed date every rebuild (the patch builder's too) changes that datum,
# and the builder refuses the patch ("read-only global 'Versionstr': its initial value
# changed"). Debian's package builds fix the date to the changelog's (SOURCE_DATE_EPOCH, which
# gcc uses for __DATE__ and __TIME__); so does this build.
export SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$src/debian/changelog" -STimestamp) ||
	die "cannot read the date of $src/debian/changelog"
echo "slapd $version: configuring and building in $src"
start=$(date +%s)
# -ffile-prefix-map: the objects do not name the directory they were built in, so that the
# unfixed build and a fixed one (and the patch builder's rebuilds) compare object by object.
(cd "$src" &&
	./configure "${configure_opts[@]}" \
		CFLAGS="$patchable_cflags -ffile-prefix-map=$src=." \
		LDFLAGS="-pie -Wl,--build-id" >"$src/configure.log" 2>&1 &&
	make depend >"$src/depend.log" 2>&1 &&
	{
		make -j"$(nproc)" -C include &&
			make -j"$(nproc)" -C libraries &&
			make -j"$(nproc)" -C servers/slapd
	} >"$src/make.log" 2>&1) ||
	die "building slapd $version failed: see $src/configure.log, $src/depend.log and $src/make.log"
rm -rf "$dest"
mkdir -p "$dest/schema"
cp "$src/servers/slapd/slapd" "$bin"
for tool in slapadd slapcat slapindex slaptest; do
	ln -s slapd "$dest/$tool"
done
# The +dfsg source has no core, cosine and inetorgperson schema upstream (their RFC text is not
# DFSG-free): debian/rules installs Debian's stripped versions from debian/schema/, as here.
for schema in core cosine inetorgperson; do
	cp "$src/debian/schema/$schema.schema" "$dest/schema/"
done
echo "slapd $version: $bin ($(($(date +%s) - start)) s)"
