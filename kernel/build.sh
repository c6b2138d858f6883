#!/usr/bin/env bash
# Build the atlas guest kernel from Debian's linux-source-6.12.
#
#   kernel/build.sh release   ->  build/kernel/bzImage
#   kernel/build.sh debug     ->  build/kernel-debug/bzImage
#   kernel/build.sh stock     ->  build/kernel-stock/bzImage: the release configuration without
#                                 the series (no patches, no CONFIG_MMVIEW), the baseline of the
#                                 benchmarks (bench/README.md)
#
# Steps (docs/building.md explains each):
#   1. extract /usr/src/linux-source-6.12.tar.xz to build/linux (a fixed path, so ccache hits
#      from any clone) and apply kernel/patches/series (the patches add the new files too;
#      kernel/src/ only keeps a copy of the new uapi headers for user space);
#   2. configure: tinyconfig + kernel/configs/base.config (+ debug.config), and check that every
#      requested option survived;
#   3. build bzImage out of tree (build/kernel-obj-<variant>) through ccache.
# Each step is skipped when its inputs are unchanged (stamp files hold a hash of them).
set -euo pipefail

# Everything runs inside main(), which bash parses completely before running it: editing this
# file while a build runs cannot derail that build.
main() {

	variant=${1:-}
	stock=0
	case "$variant" in
	release) image_dir=kernel; fragments=(base.config) ;;
	debug) image_dir=kernel-debug; fragments=(base.config debug.config) ;;
	stock) image_dir=kernel-stock; fragments=(base.config); stock=1 ;;
	*)
		echo "usage: kernel/build.sh release|debug|stock" >&2
		exit 2
		;;
	esac

	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	kdir=$root/kernel
	build=$root/build
	src_tar=/usr/src/linux-source-6.12.tar.xz
	srcdir=$build/linux
	[ "$stock" = 0 ] || srcdir=$build/linux-stock
	objdir=$build/kernel-obj-$variant
	outdir=$build/$image_dir

	die() {
		echo "kernel/build.sh: $*" >&2
		exit 1
	}

	[ -r "$src_tar" ] || die "$src_tar is missing: run 'make deps' (installs linux-source-6.12)"
	pkg_version=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
		die "cannot read the version of package linux-source-6.12: run 'make deps'"
	# The version the series was exported on and is tested on (kernel/export-series.sh writes it).
	tested_version=$(<"$kdir/linux-source.version")

	# The patch series: kernel/patches/series lists patch files in order; '#' starts a comment.
	mapfile -t series < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$kdir/patches/series")
	[ "$stock" = 0 ] || series=()

	# Hash of everything that determines the patched source tree.
	source_inputs() {
		echo "linux-source-6.12 $pkg_version"
		sha256sum "$kdir/patches/series" | cut -d' ' -f1
		for p in "${series[@]}"; do sha256sum "$kdir/patches/$p"; done
	}
	source_hash=$(source_inputs | sha256sum | cut -d' ' -f1)

	prepare_source() {
		if [ -f "$srcdir/.atlas-source" ] && [ "$(cat "$srcdir/.atlas-source")" = "$source_hash" ]; then
			return
		fi
		echo "kernel: extracting linux-source-6.12 $pkg_version to ${srcdir#$root/}"
		if [ "$pkg_version" != "$tested_version" ] && [ "$stock" = 0 ]; then
			echo "kernel: note: the series is tested on linux-source-6.12 $tested_version (kernel/linux-source.version), not $pkg_version"
		fi
		rm -rf "$srcdir" "$srcdir.tmp"
		mkdir -p "$srcdir.tmp"
		tar -xf "$src_tar" -C "$srcdir.tmp" --strip-components=1
		for p in "${series[@]}"; do
			echo "kernel: applying $p"
			# No fuzz: a hunk that only applies with fuzz may be applied in the wrong place.
			if ! patch -d "$srcdir.tmp" -p1 --batch --forward --fuzz=0 --quiet <"$kdir/patches/$p"; then
				die "patch $p does not apply to linux-source-6.12 $pkg_version.
The series is tested on $tested_version (kernel/linux-source.version); 'make deps' installs that
version while Debian's archive has it, and this machine has $pkg_version. Rebase the series onto
$pkg_version: kernel/dev-tree.sh --rebase DIR, review the commits it lists, build and test, then
kernel/export-series.sh DIR (docs/building.md, 'When the series stops applying')."
			fi
		done
		echo "$source_hash" >"$srcdir.tmp/.atlas-source"
		mv "$srcdir.tmp" "$srcdir"
	}

	# Fixed build identity and a cache keyed on relative paths, so that a fresh clone anywhere
	# reuses the objects of an earlier build (docs/building.md, "ccache").
	export KBUILD_BUILD_TIMESTAMP="2024-01-01 00:00:00 UTC"
	export KBUILD_BUILD_USER=atlas KBUILD_BUILD_HOST=atlas
	export CCACHE_BASEDIR=$build CCACHE_NOHASHDIR=1 CCACHE_COMPILERCHECK=content
	export PATH=/usr/lib/ccache:$PATH
	[ -x /usr/lib/ccache/gcc ] || die "ccache is missing: run 'make deps'"
	kmake() { make -C "$srcdir" O="$objdir" -j"$(nproc)" "$@"; }

	build_hash=$( {
		echo "$source_hash"
		for f in "${fragments[@]}"; do sha256sum "$kdir/configs/$f" | cut -d' ' -f1; done
		sha256sum "$kdir/build.sh" | cut -d' ' -f1
		gcc --version | head -n1
	} | sha256sum | cut -d' ' -f1)

	if [ -f "$outdir/bzImage" ] && [ -f "$outdir/stamp" ] && [ "$(cat "$outdir/stamp")" = "$build_hash" ]; then
		echo "kernel: build/$image_dir/bzImage is up to date"
		exit 0
	fi

	prepare_source

	echo "kernel: configuring $variant (tinyconfig + ${fragments[*]})"
	mkdir -p "$objdir"
	kmake -s tinyconfig >/dev/null
	frag_paths=()
	for f in "${fragments[@]}"; do frag_paths+=("$kdir/configs/$f"); done
	if [ "$stock" = 1 ]; then
		# Without the series CONFIG_MMVIEW does not exist.
		grep -v 'CONFIG_MMVIEW' "$kdir/configs/base.config" >"$objdir/stock.config"
		frag_paths=("$objdir/stock.config")
	fi
	(cd "$objdir" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$objdir" .config "${frag_paths[@]}" >/dev/null)
	kmake -s olddefconfig
	missing=$(cat "${frag_paths[@]}" | grep -E '^(CONFIG_|# CONFIG_)' | while IFS= read -r line; do
		grep -qxF "$line" "$objdir/.config" || echo "  $line"
	done)
	[ -z "$missing" ] || die "these config lines did not survive olddefconfig (renamed option or unmet dependency):
	$missing"

	echo "kernel: building $variant bzImage with $(nproc) jobs (ccache)"
	start=$SECONDS
	kmake -s bzImage headers
	# The uapi headers as `make headers_install` exports them; user space of a views kernel finds
	# the syscall number and the op codes there.
	unistd=$objdir/usr/include/asm/unistd_64.h
	if [ "$stock" = 0 ]; then
		grep -q '^#define __NR_mmview 1000$' "$unistd" || die "$unistd lacks '#define __NR_mmview 1000'"
		[ -f "$objdir/usr/include/linux/mmview.h" ] || die "linux/mmview.h is not among the exported uapi headers"
	fi
	mkdir -p "$outdir"
	rm -rf "$outdir/headers"
	cp -r "$objdir/usr/include" "$outdir/headers"
	cp "$objdir/arch/x86/boot/bzImage" "$outdir/bzImage"
	cp "$objdir/.config" "$outdir/config"
	cp "$objdir/System.map" "$outdir/System.map"
	echo "$build_hash" >"$outdir/stamp"
	echo "kernel: build/$image_dir/bzImage built in $((SECONDS - start)) s"
}

main "$@"
exit $?  # never read past here: the file may change while a build runs
