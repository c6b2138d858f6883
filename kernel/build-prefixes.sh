#!/usr/bin/env bash
# Build every prefix of the views series in turn (docs/building.md):
#
#   kernel/build-prefixes.sh [--from N] [--to N] [--boot] [--stop] [--quick] DEVTREE [WORKDIR]
#
# DEVTREE is a development tree made by kernel/dev-tree.sh (tag atlas-base). Prefix 0 is
# atlas-base (the baseline), prefix K the K-th commit of atlas-base..HEAD (first parent). Every
# prefix is built in one source tree (a detached git worktree of DEVTREE, WORKDIR/linux) and one
# object directory (WORKDIR/kernel-obj-release), incrementally: git checkout changes only the
# files a commit changes, and ccache (set up as kernel/build.sh does, with WORKDIR as base
# directory, so the last prefix hits the cache of a release build) makes re-runs cheap.
#
# For each prefix:
#   - the release configuration (tinyconfig + kernel/configs/base.config, olddefconfig; the
#     config is installed only when it changed, so an unchanged config rebuilds nothing);
#   - `make bzImage`: ok or FAIL, and its warnings that prefix 0 does not have ("new");
#   - `make W=1` of every .c file the commit adds or changes (that the configuration builds):
#     warnings not present in that file before (at prefix 0, or the last time it was built
#     with W=1) are new. Line numbers are ignored when warnings are compared;
#   - with --boot, a boot of the image in the guest runner (guest/run ... -- true).
# A prefix passes when it builds with no new warnings (and boots, with --boot).
#
# --quick is a fast pre-check, not the real thing: instead of bzImage it compiles only the .c
# files the prefix adds or changes (those the configuration builds, with their generated headers),
# every warning counts as new, and W=1 and boots are skipped. Use its own WORKDIR.
#
# Results: WORKDIR/results.tsv, one line per prefix (a later run replaces a prefix's line),
# and WORKDIR/logs/NNNN.{build,w1,boot}. A prefix whose commit already has a result is skipped,
# so a second run continues where the first stopped. --stop ends at the first failing prefix.
# Every make runs under `nice -n 19`. docs/building.md, "Building every prefix".
set -euo pipefail

main() {
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	from=0 to='' boot=0 stop=0 quick=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--from) from=$2; shift 2 ;;
		--to) to=$2; shift 2 ;;
		--boot) boot=1; shift ;;
		--stop) stop=1; shift ;;
		--quick) quick=1; shift ;;
		-h | --help) sed -n '2,/^set -e/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
		-*) echo "kernel/build-prefixes.sh: unknown option $1" >&2; exit 2 ;;
		*) break ;;
		esac
	done
	dev=$(cd "${1:?usage: kernel/build-prefixes.sh [--from N] [--to N] [--boot] [--stop] DEVTREE [WORKDIR]}" && pwd)
	work=${2:-/tmp/atlas-prefixes}
	die() { echo "kernel/build-prefixes.sh: $*" >&2; exit 1; }
	git -C "$dev" rev-parse -q --verify atlas-base >/dev/null || die "$dev has no tag atlas-base (make it with kernel/dev-tree.sh)"
	[ -x /usr/lib/ccache/gcc ] || die "ccache is missing: run 'make deps'"

	mapfile -t commits < <(git -C "$dev" rev-parse atlas-base; git -C "$dev" rev-list --reverse --first-parent atlas-base..HEAD)
	last=$((${#commits[@]} - 1))
	to=${to:-$last}
	[ "$to" -le "$last" ] || die "the series has $last commits"

	mkdir -p "$work/logs" "$work/w1"
	work=$(cd "$work" && pwd)
	src=$work/linux
	obj=$work/kernel-obj-release
	cfg=$work/config-gen
	results=$work/results.tsv
	if [ ! -d "$src" ]; then
		git -C "$dev" worktree add -q --detach "$src" atlas-base
	fi
	[ -f "$results" ] || printf '#prefix\tcommit\tresult\tbuild_s\tnew_warnings\tw1_files\tnew_w1_warnings\tMMVIEW\tboot\tsubject\n' >"$results"

	export KBUILD_BUILD_TIMESTAMP="2024-01-01 00:00:00 UTC"
	export KBUILD_BUILD_USER=atlas KBUILD_BUILD_HOST=atlas
	export CCACHE_BASEDIR=$work CCACHE_NOHASHDIR=1 CCACHE_COMPILERCHECK=content
	export PATH=/usr/lib/ccache:$PATH
	kmake() { nice -n 19 make -C "$src" -j"$(nproc)" "$@"; }
	# Whether the configuration builds file F (--quick): its line in its directory's Makefile,
	# and each parent directory's line, is obj-y or obj-$(CONFIG_X) with X set (a file the
	# Makefile does not name is not built: it may be #included, as kernel/sched/*.c are).
	built() {
		python3 - "$src" "$obj/.config" "$1" <<'PY'
import os, re, sys
src, config, f = sys.argv[1:]
conf = set(re.findall(r'^(CONFIG_\w+)=[ym]$', open(config).read(), re.M))
def ok(makefile, entry):
    texts = [open(p).read() for p in (os.path.join(src, makefile, m) for m in ('Makefile', 'Kbuild'))
             if os.path.exists(p)]
    if not texts:
        return True
    for line in '\n'.join(texts).replace('\\\n', ' ').split('\n'):
        m = re.match(r'^\s*([\w-]+?)-(y|\$\((CONFIG_\w+)\))\s*[+:]?=(.*)$', line)
        if m and re.search(r'(^|\s)' + re.escape(entry) + r'(\s|$)', m.group(4)) and \
                (m.group(2) == 'y' or m.group(3) in conf):
            return True
    return False
d, name = os.path.split(f)
if not ok(d, name[:-2] + '.o'):
    sys.exit(1)
while os.path.dirname(d):
    parent, base = os.path.split(d)
    if not ok(parent, base + '/'):
        sys.exit(1)
    d = parent
PY
	}
	# "file:line:col: warning: text" -> "file: warning: text", sorted and unique.
	norm() { grep -E '(warning|error):' | sed -E 's/^([^:]+):[0-9]+(:[0-9]+)?:/\1:/' | sort -u; }

	# The .c files of the whole series, for the W=1 baseline at prefix 0.
	mapfile -t series_c < <(git -C "$dev" diff --name-only --diff-filter=M atlas-base HEAD -- '*.c' ':(exclude)tools/**' ':(exclude)Documentation/**')

	for ((k = from; k <= to; k++)); do
		c=${commits[$k]}
		short=$(git -C "$dev" rev-parse --short=12 "$c")
		subject=$(git -C "$dev" log -1 --format=%s "$c")
		if grep -q "^$k	$short	" "$results"; then
			echo "prefix $k ($short) has a result; skipped"
			continue
		fi
		n=$(printf '%04d' "$k")
		echo "prefix $k/$last: $short $subject"
		git -C "$src" checkout -q --detach "$c"

		# Configure in a separate directory; install the result only when it differs.
		mkdir -p "$cfg"
		kmake -s O="$cfg" tinyconfig >/dev/null
		(cd "$cfg" && "$src/scripts/kconfig/merge_config.sh" -m -O "$cfg" .config "$root/kernel/configs/base.config" >/dev/null)
		kmake -s O="$cfg" olddefconfig >/dev/null
		mkdir -p "$obj"
		if ! cmp -s "$cfg/.config" "$obj/.config"; then
			cp "$cfg/.config" "$obj/.config"
			kmake -s O="$obj" olddefconfig >/dev/null
		fi
		mmview=$(sed -n -e 's/^CONFIG_MMVIEW=//p' -e 's/^# CONFIG_MMVIEW is not set/n/p' "$obj/.config")
		mmview=${mmview:--}

		start=$SECONDS
		if [ "$quick" = 1 ]; then
			# The objects of the .c files this prefix touches that the configuration builds
			# (obj-y in their directory's Makefile, as the config has it).
			mapfile -t touched < <([ "$k" = 0 ] || git -C "$dev" diff --name-only --diff-filter=AM "$c^" "$c" -- '*.c' ':(exclude)tools/**' ':(exclude)Documentation/**')
			targets=()
			for f in "${touched[@]}"; do
				if built "$f"; then targets+=("${f%.c}.o"); fi
			done
			result=ok
			: >"$work/logs/$n.build"
			[ ${#targets[@]} = 0 ] || kmake -k -s O="$obj" "${targets[@]}" >"$work/logs/$n.build" 2>&1 || result=FAIL
		elif kmake -s O="$obj" bzImage >"$work/logs/$n.build" 2>&1; then result=ok; else result=FAIL; fi
		build_s=$((SECONDS - start))
		norm <"$work/logs/$n.build" >"$work/logs/$n.build.warnings" || true
		if [ "$k" = 0 ] || [ "$quick" = 1 ]; then : >"$work/baseline.warnings"; fi
		if [ "$k" = 0 ] && [ "$quick" = 0 ]; then cp "$work/logs/$n.build.warnings" "$work/baseline.warnings"; fi
		[ -f "$work/baseline.warnings" ] || : >"$work/baseline.warnings" # --from N without prefix 0
		new_warn=$(comm -23 "$work/logs/$n.build.warnings" "$work/baseline.warnings" | wc -l)

		# W=1 on the .c files this prefix touches (at prefix 0: every .c file of the series).
		if [ "$k" = 0 ]; then
			files=("${series_c[@]}")
		else
			mapfile -t files < <(git -C "$dev" diff --name-only --diff-filter=AM "$c^" "$c" -- '*.c' ':(exclude)tools/**' ':(exclude)Documentation/**')
		fi
		w1_files=0 new_w1=0
		: >"$work/logs/$n.w1"
		if [ "$result" = ok ] && [ "$quick" = 0 ]; then
			for f in "${files[@]}"; do
				o=${f%.c}.o
				[ -f "$obj/$o" ] || continue # not built in this configuration
				w1_files=$((w1_files + 1))
				key=$work/w1/${f//\//_}
				{ kmake -s O="$obj" W=1 "$o" 2>&1 || echo "$f:0: error: W=1 build of $o failed"; } | tee -a "$work/logs/$n.w1" | norm >"$key.now" || true
				if [ -f "$key" ]; then
					added=$(comm -23 "$key.now" "$key" | wc -l)
				elif [ "$k" = 0 ]; then
					added=0
				else
					added=$(wc -l <"$key.now") # a new file: every warning is new
				fi
				if [ "$added" != 0 ]; then
					echo "new W=1 warnings in $f:" >>"$work/logs/$n.w1.new"
					comm -23 "$key.now" "${key}" 2>/dev/null >>"$work/logs/$n.w1.new" || cat "$key.now" >>"$work/logs/$n.w1.new"
				fi
				new_w1=$((new_w1 + added))
				mv "$key.now" "$key"
			done
		fi

		booted=-
		if [ "$boot" = 1 ] && [ "$result" = ok ]; then
			if nice -n 19 "$root/guest/run" --kernel "$obj/arch/x86/boot/bzImage" --quiet --timeout 600 -- true >"$work/logs/$n.boot" 2>&1; then
				booted=ok
			else
				booted=FAIL
			fi
		fi

		pass=$result
		if [ "$result" = ok ] && { [ "$new_warn" != 0 ] || [ "$new_w1" != 0 ] || [ "$booted" = FAIL ]; }; then pass=FAIL; fi
		sed -i "/^$k	/d" "$results"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$short" "$pass" "$build_s" "$new_warn" "$w1_files" "$new_w1" "$mmview" "$booted" "$subject" >>"$results"
		sort -n -o "$results" "$results"
		echo "prefix $k: $pass (build $result in ${build_s} s, new warnings $new_warn, W=1: $w1_files files, $new_w1 new; MMVIEW=$mmview; boot $booted)"
		if [ "$pass" = FAIL ]; then
			grep -E 'error:|warning:' "$work/logs/$n.build" | head -5 || true
			[ "$stop" = 0 ] || break
		fi
	done

	total=$(grep -vc '^#' "$results" || true)
	failed=$(awk -F'\t' '!/^#/ && $3 != "ok"' "$results" | wc -l)
	echo "build-prefixes: $total of $((last + 1)) prefixes have a result, $failed failed ($results)"
	[ "$failed" = 0 ]
}

main "$@"
exit $?
