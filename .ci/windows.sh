#!/usr/bin/env bash
# Builds qlinear.dll for x86_64-pc-windows-gnu from Debian's packages alone and runs the C
# harness against it under wine. Debian ships no prebuilt Rust standard library for Windows
# that matches its rustc-web (libstd-rust-dev-windows is 1.63), so the standard library is
# built from Debian's rust-web-src with cargo's build-std (RUSTC_BOOTSTRAP lets the stable
# compiler take the flag). Checks that the DLL exports only qlinear_* and that the harness
# passes; wine 8 lacks bcryptprimitives.dll, so a stand-in (bindings/c/windows/) is built
# beside the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=x86_64-pc-windows-gnu
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$root/target/win
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
wine=/usr/lib/wine/wine64

if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/lib/rustlib/src/rust/library ] ||
    ! command -v x86_64-w64-mingw32-gcc > /dev/null || [ ! -x $wine ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web rust-web-src \
        gcc-mingw-w64-x86-64 wine64 > /dev/null
fi

echo "== windows: qlinear.dll"
/usr/bin/cargo build -Zbuild-std=std,panic_abort --release --target $target --lib 2>&1 | tail -n 1
out=$CARGO_TARGET_DIR/$target/release
exports=$(x86_64-w64-mingw32-objdump -p "$out/qlinear.dll" |
    sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | awk 'NR > 1 && NF { print $NF }')
n=$(echo "$exports" | grep -c '^qlinear_')
others=$(echo "$exports" | grep -vc '^qlinear_' || true)
echo "exports: $n qlinear_* functions, $others others"
[ "$others" = 0 ] && [ "$n" -gt 0 ]

echo "== windows: the C harness under wine"
run=$CARGO_TARGET_DIR/harness
mkdir -p "$run"
x86_64-w64-mingw32-gcc -std=c99 -Wall -Wextra -Werror -O1 -static -Iinclude \
    bindings/c/test_qlinear.c "$out/libqlinear.dll.a" -lpthread -o "$run/test_qlinear.exe"
x86_64-w64-mingw32-gcc -O1 -shared bindings/c/windows/bcryptprimitives.c -ladvapi32 \
    -o "$run/bcryptprimitives.dll"
cp "$out/qlinear.dll" "$run/"
export WINEPREFIX=$CARGO_TARGET_DIR/wineprefix WINEDEBUG=-all
(cd "$run" && timeout 900 $wine ./test_qlinear.exe > harness.txt 2>&1) ||
    { grep -a FAIL "$run/harness.txt" | head -n 40; tail -n 5 "$run/harness.txt"; exit 1; }
grep -a "device isa\|passed, .* failed" "$run/harness.txt"
echo "windows passed"
