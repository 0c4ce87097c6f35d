#!/usr/bin/env bash
# Installs qlinear into a temporary prefix and builds and runs every consumer against that
# prefix only (C shared and static via pkg-config, CMake shared and static via find_package,
# Go via pkg-config from a module of its own, the C++ engine host under ASan); checks the
# version checks, DESTDIR staging and uninstall; then packs the release archive, extracts it
# elsewhere and runs the same consumers against it, and checks the archive's library is
# built for baseline x86-64 with AVX only inside its run-time-dispatched kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/^version = "\([^"]*\)"/\1/p' Cargo.toml | head -n 1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { printf '== %s\n' "$*"; }

# Builds and runs every consumer against the qlinear tree at $1 ($2 names it).
consumers() {
    local prefix=$1 label=$2 out=$work/build-$2
    mkdir -p "$out"
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    unset PKG_CONFIG_LIBDIR
    local got
    got=$(pkg-config --modversion qlinear)
    [ "$got" = "$version" ] || { echo "pkg-config --modversion: $got, Cargo.toml: $version"; exit 1; }

    say "$label: C, shared, pkg-config"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Werror bindings/consumers/c/main.c \
        $(pkg-config --cflags --libs qlinear) -lm -o "$out/c_shared"
    local resolved
    resolved=$(ldd "$out/c_shared" | awk '/libqlinear.so.0/ {print $3}')
    [ "$(realpath "$resolved")" = "$(realpath "$prefix/lib/libqlinear.so.$version")" ] ||
        { echo "libqlinear.so.0 resolves to '$resolved', not the prefix"; ldd "$out/c_shared"; exit 1; }
    "$out/c_shared"

    say "$label: C, static, pkg-config --static"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Werror bindings/consumers/c/main.c \
        $(pkg-config --cflags --static --libs qlinear) -static -lm -o "$out/c_static" 2> "$out/static.log" ||
        { cat "$out/static.log"; exit 1; }
    if ldd "$out/c_static" > /dev/null 2>&1; then echo "c_static is dynamic"; exit 1; fi
    "$out/c_static"

    say "$label: C++, CMake find_package, qlinear::qlinear and qlinear::qlinear_static"
    cmake -S bindings/consumers/cmake -B "$out/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log" || { cat "$out/cmake.log"; exit 1; }
    grep -q "found qlinear $version in $prefix/lib/cmake/qlinear" "$out/cmake.log" ||
        { cat "$out/cmake.log"; echo "find_package found another qlinear"; exit 1; }
    cmake --build "$out/cmake" > /dev/null
    "$out/cmake/app_shared"
    "$out/cmake/app_static"
    if ldd "$out/cmake/app_static" | grep -q libqlinear; then echo "app_static links libqlinear.so"; exit 1; fi

    say "$label: CMake asking for qlinear 9.0 fails"
    if cmake -S bindings/consumers/cmake -B "$out/cmake9" -DCMAKE_PREFIX_PATH="$prefix" \
        -DQLINEAR_WANT=9.0 > "$out/cmake9.log" 2>&1; then
        echo "find_package(qlinear 9.0) succeeded"; exit 1
    fi
    grep -q "$version" "$out/cmake9.log" || { cat "$out/cmake9.log"; exit 1; }

    say "$label: Go module outside the package, #cgo pkg-config"
    cp -r bindings/consumers/go "$out/go"
    (cd "$out/go" &&
        go mod edit -replace "github.com/qlinear/qlinear-go=$prefix/share/qlinear/go" &&
        CGO_ENABLED=1 GOFLAGS=-mod=mod GOTOOLCHAIN=local go run .)

    say "$label: engine host example under AddressSanitizer"
    cmake -S bindings/cpp/examples/engine_host -B "$out/engine" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
        -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
    cmake --build "$out/engine" > /dev/null
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 "$out/engine/engine_host"
}

say "make install into a temporary prefix"
make --no-print-directory install PREFIX="$work/prefix" > "$work/install.log"
consumers "$work/prefix" installed

say "DESTDIR staging writes under DESTDIR only"
make --no-print-directory install PREFIX=/opt/qlinear DESTDIR="$work/stage" > /dev/null
[ -f "$work/stage/opt/qlinear/lib/pkgconfig/qlinear.pc" ] && [ ! -e /opt/qlinear ]
[ "$(find "$work/stage" -type f -o -type l | wc -l)" = "$(wc -l < "$work/stage/opt/qlinear/share/qlinear/install-manifest.txt")" ]

say "make uninstall removes every installed file"
make --no-print-directory uninstall PREFIX="$work/prefix" > /dev/null
[ ! -e "$work/prefix" ] || [ -z "$(find "$work/prefix" -mindepth 1)" ] ||
    { find "$work/prefix"; echo "uninstall left files"; exit 1; }

say "make dist, extracted elsewhere"
make --no-print-directory dist > "$work/dist.log"
archive=target/qlinear-$version-$(uname -m)-linux.tar.gz
mkdir -p "$work/elsewhere"
tar -C "$work/elsewhere" -xzf "$archive"
extracted=$work/elsewhere/qlinear-$version-$(uname -m)-linux
for f in README.md LICENSE-MIT LICENSE-APACHE lib/libqlinear.a include/qlinear.hpp include/qlinear_base.hpp; do
    [ -e "$extracted/$f" ] || { echo "archive lacks $f"; exit 1; }
done
consumers "$extracted" archive

say "the archive's library: baseline x86-64, AVX only in run-time-dispatched kernels"
# Every function with a VEX/EVEX-encoded instruction (an AVX mnemonic, `v...`) or a ymm/zmm/
# mask register must be a #[target_feature] kernel reached through run-time detection:
# qlinear's kernels, the half crate's F16C paths, or compiler_builtins' fmaf (f32::mul_add on
# baseline x86-64 picks FMA/FMA4 at run time).
objdump -d --no-show-raw-insn -C "$extracted/lib/libqlinear.so.$version" | awk '
    /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
    $2 ~ /^v/ || /%[yz]mm[0-9]|%k[1-7]/ { if (!(fn in seen)) { seen[fn] = 1; print fn } }' \
    > "$work/avx-functions.txt"
grep -v -e 'qlinear::kernels::x86::' -e 'half::binary16::arch::x86' \
    -e 'compiler_builtins::math::libm_math::arch::x86::fma::fmaf_with_fma' "$work/avx-functions.txt" \
    > "$work/avx-outside.txt" || true
if [ -s "$work/avx-outside.txt" ]; then
    echo "AVX code outside the dispatched kernels:"; cat "$work/avx-outside.txt"; exit 1
fi
echo "$(wc -l < "$work/avx-functions.txt") functions use AVX registers, all in dispatched kernels"
QLINEAR_ISA=scalar "$work/build-archive/c_shared"
echo "consumers passed"
