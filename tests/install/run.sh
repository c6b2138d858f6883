#!/usr/bin/env bash
# install.consumers: `cmake --install` of the build tree BUILD into a temporary prefix, then a C
# and a C++ program built against that prefix through pkg-config (libatlas.so) and through
# find_package(atlas) (C: atlas::atlas, C++: atlas::atlas_static), each run. Also checks the
# layout (public headers only), the exported symbols and atlas.pc's relocation.
# Usage: run.sh BUILD   (docs/live-patching.md, "Installing libatlas")
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/atlas-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
	echo "install.consumers: $*" >&2
	exit 1
}
uses() { # uses PROGRAM TEXT: whether PROGRAM's libraries (ldd) mention TEXT
	local libs
	libs=$(ldd "$1")
	[[ $libs == *"$2"* ]]
}
run() { # run LOG COMMAND...: quiet unless it fails
	local log=$1
	shift
	"$@" >"$log" 2>&1 || { cat "$log" >&2; fail "failed: $*"; }
}

run "$work/install.log" cmake --install "$build" --prefix "$prefix"
libdir=$prefix/lib
for f in include/atlas/atlas.h include/atlas/runtime.hpp include/atlas/mmview.h \
	include/atlas/patch/loader.hpp lib/libatlas.so.0 lib/libatlas.a lib/pkgconfig/atlas.pc \
	lib/cmake/atlas/atlasConfig.cmake lib/cmake/atlas/atlasConfigVersion.cmake \
	lib/cmake/atlas/atlasTargets.cmake lib/libatlas-preload.so bin/atlas bin/atlas-mkpatch; do
	[[ -e $prefix/$f ]] || fail "cmake --install put no $f under the prefix"
done
internal=$(cd "$prefix/include" && find . -name reloc.hpp -o -name target.hpp -o -name writer.hpp \
	-o -name runtime_json.hpp)
[[ -z $internal ]] || fail "internal headers installed: $internal"

# Exported: the C API, namespace atlas and its typeinfo, every symbol versioned ATLAS_0.
others=$(nm -D --defined-only "$libdir/libatlas.so" | c++filt | awk '{$1 = ""; $2 = ""; print}' |
	grep -vE '^  (atlas_[a-z_]+|atlas::.*|typeinfo (name )?for atlas::.*|vtable for atlas::.*)@@ATLAS_0$' |
	grep -v '^  ATLAS_0$' || true)
[[ -z $others ]] || fail "libatlas.so exports symbols outside its API: $others"
core=$(nm -D --defined-only "$libdir/libatlas.so" | c++filt | grep 'atlas::detail::Core::' || true)
[[ -z $core ]] || fail "libatlas.so exports the runtime's internals: $core"

# Moved after installing: atlas.pc and the CMake package find their prefix from where they are.
mv "$prefix" "$work/moved"
prefix=$work/moved
libdir=$prefix/lib
export PKG_CONFIG_PATH=$libdir/pkgconfig
[[ $(pkg-config --modversion atlas) == 0.1 ]] || fail "pkg-config --modversion atlas: $(pkg-config --modversion atlas)"
read -r -a flags <<<"$(pkg-config --cflags --libs atlas)"
cd "$work"
run cc.log cc -std=c11 -Wall -Wextra -Werror -pedantic-errors "$here/consumer/hello.c" -o hello_c_pc \
	"${flags[@]}" -pthread -Wl,-rpath,"$libdir"
run cxx.log c++ -std=c++20 -Wall -Wextra -Werror "$here/consumer/hello.cpp" -o hello_cpp_pc \
	"${flags[@]}" -pthread -Wl,-rpath,"$libdir"
for p in hello_c_pc hello_cpp_pc; do
	uses "./$p" "$libdir/libatlas.so.0" || fail "$p does not use the installed libatlas.so.0"
	"./$p" || fail "$p (built through pkg-config) failed"
done

run cmake.log cmake -S "$here/consumer" -B "$work/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix"
run build.log cmake --build "$work/cmake"
uses "$work/cmake/hello_c" "$libdir/libatlas.so.0" ||
	fail "hello_c (atlas::atlas) does not use the installed libatlas.so.0"
if uses "$work/cmake/hello_cpp" libatlas; then
	fail "hello_cpp (atlas::atlas_static) uses a shared libatlas"
fi
"$work/cmake/hello_c" || fail "hello_c (built through find_package) failed"
"$work/cmake/hello_cpp" || fail "hello_cpp (built through find_package) failed"
echo "install.consumers: installed, 4 programs built against the prefix and run"
