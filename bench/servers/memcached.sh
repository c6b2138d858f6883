#!/usr/bin/env bash
# memcached as Debian builds it, from Debian's source packages, for the evaluation: the build
# Debian 12 shipped (1.6.18-1) and its security update (1.6.18-1+deb12u1), each configured as
# debian/rules does (--enable-sasl --enable-tls) and compiled with the flags a patchable program
# needs (docs/live-patching.md, "Targets"), as a PIE with a build-id.
#
#   bench/servers/memcached.sh [OUT_DIR]     (default build/servers)
#
# MEMCACHED_VERSIONS limits the versions built (e.g. MEMCACHED_VERSIONS=1.6.18-1).
# MEMCACHED_MAKE replaces the make command (default: make -j<cpus> memcached; the proxy's
# Lua is built only by a plain make). MEMCACHED_CONFIGURE replaces Debian's configure options. With Debian's, the security update
# changes no object at all: its SASL fix is in code built only with --enable-sasl-pwdb, its two
# proxy fixes in code built only with --enable-proxy (measured: all 28 objects of the two builds
# are byte-identical). The binaries of other options go to memcached-<version>-<options>/.
#
# OUT_DIR/memcached-<version>/memcached is the binary, OUT_DIR/src/<version>/ the source tree
# (debian/patches applied). Sources come from `apt-get source`, which needs deb-src entries for
# bookworm and bookworm-security: `make deps` adds them (scripts/deps.sh). Nothing is rebuilt
# when the binary is newer than this script.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$(mkdir -p "${1:-$root/build/servers}" && cd "${1:-$root/build/servers}" && pwd)
read -r -a versions <<<"${MEMCACHED_VERSIONS:-1.6.18-1 1.6.18-1+deb12u1}"
configure_opts=${MEMCACHED_CONFIGURE:---enable-sasl --enable-tls}
variant=
[ "$configure_opts" = "--enable-sasl --enable-tls" ] ||
	variant=-$(echo "$configure_opts" | sed -e 's/--enable-//g' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
die() { echo "bench/servers/memcached.sh: $*" >&2; exit 1; }
command -v dpkg-source >/dev/null || die "dpkg-source missing: run 'make deps'"
# What a patchable program is built with (`atlas build-patch --print-flags`, docs/patch-builder.md):
# DWARF, a section per function and datum (the patch builder compares objects function by
# function), and GCC's -flive-patching=inline-clone (no interprocedural analysis that lets
# callers rely on a callee's body, such as IPA-RA's register use); frame pointers for unwinding.
patchable_cflags="-O2 -g -ffunction-sections -fdata-sections -flive-patching=inline-clone -fno-omit-frame-pointer"
for version in "${versions[@]}"; do
	bin=$out/memcached-$version$variant/memcached
	if [ -x "$bin" ] && [ "$bin" -nt "${BASH_SOURCE[0]}" ]; then
		echo "memcached $version: $bin (built)"
		continue
	fi
	fetch=$out/fetch/$version
	if [ ! -f "$fetch/memcached_$version.dsc" ]; then
		mkdir -p "$fetch"
		(cd "$fetch" && apt-get source --download-only "memcached=$version" >/dev/null 2>"$fetch/apt.log") ||
			die "apt-get source memcached=$version failed ($(tail -n1 "$fetch/apt.log")): run 'make deps', which adds the deb-src entries"
	fi
	src=$out/src/$version$variant
	rm -rf "$src"
	mkdir -p "$out/src"
	dpkg-source --no-check -x "$fetch/memcached_$version.dsc" "$src" >/dev/null
	echo "memcached $version: configuring and building in $src"
	start=$(date +%s)
	# -ffile-prefix-map: the objects do not name the directory they were built in, so that
	# builds of the two versions (and the patch builder's rebuilds) compare object by object.
	(cd "$src" &&
		./configure $configure_opts \
			CFLAGS="$patchable_cflags -ffile-prefix-map=$src=." \
			LDFLAGS="-pie -Wl,--build-id" >"$src/configure.log" 2>&1 &&
		${MEMCACHED_MAKE:-make -j"$(nproc)" memcached} >"$src/make.log" 2>&1) ||
		die "building memcached $version failed: see $src/configure.log and $src/make.log"
	mkdir -p "$(dirname "$bin")"
	cp "$src/memcached" "$bin"
	echo "memcached $version: $bin ($(($(date +%s) - start)) s)"
done
