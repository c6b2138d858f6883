#!/usr/bin/env bash
# Install every build and test dependency of atlas with apt (Debian 12). Idempotent and quiet
# when everything is present; `make deps` runs it, and every other make target runs it first.
set -euo pipefail

packages=(
	# user space
	g++ gcc make cmake ninja-build pkg-config git
	libgtest-dev libgmock-dev libbenchmark-dev
	clang-format clang-tidy
	# live-patching runtime, loader and tools (ELF/DWARF, unwinding, x86 decoding, CLI, JSON)
	libelf-dev libdw-dev libunwind-dev libzydis-dev libcli11-dev libfmt-dev nlohmann-json3-dev
	# fuzzing the patch parser (libFuzzer)
	clang libclang-rt-14-dev
	# kernel build (kernel/build.sh)
	linux-source-6.12 ccache bc bison flex libelf-dev libssl-dev xz-utils patch binutils
	# upstream mm selftests of the same source (tests/guest/mm-selftests)
	libcap-dev libnuma-dev
	python3 python3-ply python3-git  # checkpatch.pl (spdxcheck)
	# guest runner (guest/run)
	qemu-system-x86 busybox-static cpio
	# benchmark scripts (bench/); the evaluation's servers built from Debian source
	# (bench/servers/: apt-get source, dpkg-source, and what memcached's build needs; SASL's PLAIN
	# mechanism for the security update's live check)
	jq dpkg-dev libevent-dev libsasl2-dev libsasl2-modules
	# the evaluation's plots (bench/eval/report.sh)
	gnuplot-nox
	# the test corpus's GLib server (tests/unit/preload/corpus)
	libglib2.0-dev
)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The kernel series is tested on one version of linux-source-6.12 (kernel/linux-source.version);
# Debian's point releases replace the package, so that version is installed while the archive
# has it, and the newest otherwise (kernel/build.sh then says whether the series applies).
source_pkg=linux-source-6.12
source_version=$(<"$root/kernel/linux-source.version")
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		echo "deps: installing needs root: run as root: apt-get update && apt-get install ${missing[*]}" >&2
		exit 1
	fi
}
# Source packages (bench/servers/ fetches the evaluation's servers with apt-get source): a
# deb-src entry for the releases they come from, added once.
deb_src=/etc/apt/sources.list.d/atlas-deb-src.sources
lists_updated=0
if [ ! -e "$deb_src" ]; then
	echo "deps: adding deb-src entries for bookworm and bookworm-security ($deb_src)"
	printf '%s\n' "Types: deb-src" "URIs: http://deb.debian.org/debian" "Suites: bookworm" \
		"Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
		"Types: deb-src" "URIs: http://deb.debian.org/debian-security" \
		"Suites: bookworm-security" "Components: main" \
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
		as_root tee "$deb_src" >/dev/null
	# Not fatal: only bench/servers/ needs it, and it says so when apt-get source fails.
	if as_root apt-get update -qq; then
		lists_updated=1
	else
		echo "deps: apt-get update failed; bench/servers/ cannot fetch sources until it works" >&2
	fi
fi

source_installed=$(dpkg-query -W -f='${Version}' "$source_pkg" 2>/dev/null || true)
[ "$(installed "$source_pkg")" = installed ] || source_installed=

missing=()
for p in "${packages[@]}"; do
	[ "$p" != "$source_pkg" ] || continue
	[ "$(installed "$p")" = installed ] || missing+=("$p")
done

available() { # is $source_version in the package lists?
	apt-cache madison "$source_pkg" 2>/dev/null |
		awk -F'|' -v v="$source_version" '{ gsub(/ /, "", $2) } $2 == v { found = 1 } END { exit !found }'
}
if [ "$source_installed" != "$source_version" ]; then
	if [ -z "$source_installed" ] && ! available; then
		# Not installed and perhaps stale lists: read the archive's index once.
		as_root apt-get update -qq
		lists_updated=1
	fi
	if available; then
		missing+=("$source_pkg=$source_version")
	else
		[ -n "$source_installed" ] || missing+=("$source_pkg")
		echo "deps: $source_pkg $source_version, the version the kernel series is tested on (kernel/linux-source.version), is not in the archive; using ${source_installed:-the newest}" >&2
	fi
fi
[ ${#missing[@]} -gt 0 ] || exit 0

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
[ $lists_updated = 1 ] || as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends --allow-downgrades "${missing[@]}" >/dev/null
echo "deps: done"
