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
)

missing=()
for p in "${packages[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then
		as_root=(sudo)
	else
		echo "deps: missing packages: ${missing[*]}" >&2
		echo "deps: run as root: apt-get update && apt-get install ${missing[*]}" >&2
		exit 1
	fi
else
	as_root=()
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
