#!/usr/bin/env bash
# Builds qlinear for aarch64 with Debian's cross toolchain (../shared/PLATFORMS.md) and runs,
# in a full-system qemu VM (user-mode qemu hangs on threads on this host), the library's unit
# tests (every kernel against the scalar oracle), the core integration tests and the C
# harness (linked statically against libqlinear.a): once on `-cpu max` (dotprod and i8mm:
# the neon-i8mm path) and once on `-cpu cortex-a53` (neither: the plain neon path). Checks
# that the aarch64 libqlinear.so exports only qlinear_* with the same SONAME, and that the two
# CPUs dispatch different ISAs. Timings under emulation mean nothing and are not taken.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=aarch64-unknown-linux-gnu
export RUSTC=/usr/bin/rustc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR=$root/target/cross
vm=$root/target/aarch64-vm
mkdir -p "$vm"

if ! command -v aarch64-linux-gnu-gcc > /dev/null || [ ! -d /usr/lib/rustlib/$target ] ||
    ! command -v qemu-system-aarch64 > /dev/null; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc-web cargo-web \
        libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        qemu-system-arm cpio > /dev/null
fi

echo "== aarch64: the shared library (exports, SONAME)"
/usr/bin/cargo build --release --target $target --lib 2>&1 | tail -n 1
so=$CARGO_TARGET_DIR/$target/release/libqlinear.so
others=$(aarch64-linux-gnu-nm -D --defined-only "$so" | awk '$2 == "T" && $3 !~ /^qlinear_/' | wc -l)
[ "$others" = 0 ] || { aarch64-linux-gnu-nm -D --defined-only "$so" | grep -v qlinear_; exit 1; }
aarch64-linux-gnu-readelf -d "$so" | grep -q 'SONAME.*libqlinear.so.0'

echo "== aarch64: static test programs"
RUSTFLAGS="-C target-feature=+crt-static" /usr/bin/cargo test --release --target $target \
    --lib --test core --no-run --message-format=json 2> "$vm/build.log" |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' > "$vm/tests.txt" || { cat "$vm/build.log"; exit 1; }
rm -rf "$vm/root"
mkdir -p "$vm/root/tests" "$vm/root/tmp"
i=0
while read -r exe; do
    i=$((i + 1))
    cp "$exe" "$vm/root/tests/$i-$(basename "$exe" | sed 's/-[0-9a-f]*$//')"
done < "$vm/tests.txt"
[ "$i" = 2 ] || { echo "expected 2 test binaries, got $i"; exit 1; }
RUSTFLAGS="-C target-feature=+crt-static" /usr/bin/cargo build --release --target $target \
    --lib 2>&1 | tail -n 1
aarch64-linux-gnu-gcc -std=c99 -Wall -Wextra -Werror -O1 -static -Iinclude \
    bindings/c/test_qlinear.c "$CARGO_TARGET_DIR/$target/release/libqlinear.a" \
    -lpthread -lm -ldl -o "$vm/root/tests/3-c_harness"
/usr/bin/rustc --edition 2021 -O --target $target -C linker=aarch64-linux-gnu-gcc \
    -C target-feature=+crt-static .ci/aarch64-init.rs -o "$vm/root/init"

echo "== aarch64: kernel and initramfs"
if ! ls "$vm"/kernel/boot/vmlinuz-* > /dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-cloud-arm64:arm64 | awk '/Depends:/ {print $2; exit}')
    (cd "$vm" && apt-get download "$pkg" > /dev/null && dpkg-deb -x ./*.deb kernel)
fi
kernel=$(ls "$vm"/kernel/boot/vmlinuz-* | head -n 1)
(cd "$vm/root" && find . | cpio -o -H newc 2> /dev/null | gzip -1 > "$vm/initrd.gz")

boot() { # $1 = qemu CPU model; prints the console
    timeout 1500 qemu-system-aarch64 -M virt -cpu "$1" -smp 2 -m 2048 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$vm/initrd.gz" \
        -append "console=ttyAMA0 quiet panic=-1 -- --test-threads=2" < /dev/null 2>&1 |
        tr -d '\r'
}
status=0
for cpu in max cortex-a53; do
    echo "== aarch64 VM, -cpu $cpu"
    boot "$cpu" > "$vm/console-$cpu.txt" || true
    grep -E "QLINEAR-VM|test result|FAILED|panicked|passed, .* failed|isa " "$vm/console-$cpu.txt" | head -n 60
    grep -q "QLINEAR-VM done" "$vm/console-$cpu.txt" || { echo "the VM did not finish"; status=1; }
    for t in "$vm"/root/tests/*; do
        n=$(basename "$t")
        grep -q "QLINEAR-VM exit $n 0$" "$vm/console-$cpu.txt" || { echo "FAIL: $n on -cpu $cpu"; status=1; }
    done
done
# The harness prints the device's ISA: the two CPUs must dispatch differently.
isa_max=$(grep -o "device isa: [a-z0-9-]*" "$vm/console-max.txt" | head -n 1)
isa_a53=$(grep -o "device isa: [a-z0-9-]*" "$vm/console-cortex-a53.txt" | head -n 1)
echo "-cpu max: $isa_max; -cpu cortex-a53: $isa_a53"
[ "$isa_max" = "device isa: neon-i8mm" ] && [ "$isa_a53" = "device isa: neon" ] || status=1
[ "$status" = 0 ] && echo "aarch64 passed"
exit "$status"
