#!/usr/bin/env bash
# Builds qlinear for aarch64 with Debian's cross toolchain (../shared/PLATFORMS.md) and runs,
# in a full-system qemu VM (user-mode qemu hangs on threads on this host), statically linked:
# the library's unit tests (every kernel against the scalar oracle), the core and file-format
# integration tests (with the CLI) and the C harness (against libqlinear.a). On `-cpu max`
# (dotprod and i8mm: all three kernel families are tested) all of them; on `-cpu neoverse-n1`
# (dotprod only) and `-cpu cortex-a53` (neither: plain neon) the core tests and the harness. Checks that the
# aarch64 libqlinear.so exports only qlinear_* with the same SONAME, and that each CPU
# dispatches its own ISA. Timings under emulation mean nothing and are not taken.
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
    --lib --test core --test format --no-run --message-format=json 2> "$vm/build.log" |
    sed -n 's/.*"executable":"\([^"]*\/deps\/[^"]*\)".*/\1/p' > "$vm/tests.txt" || { cat "$vm/build.log"; exit 1; }
rm -rf "$vm/root"
mkdir -p "$vm/root/tests" "$vm/root/tmp" "$vm/root/dev" "$vm/root/bin"
# A shell: one format test runs the CLI under `sh -c 'ulimit -f …'`.
if [ ! -x "$vm/busybox/bin/busybox" ]; then
    (cd "$vm" && rm -f busybox-static_*.deb && apt-get download busybox-static:arm64 > /dev/null 2>&1 &&
        dpkg-deb -x busybox-static_*.deb busybox)
fi
cp "$vm/busybox/bin/busybox" "$vm/root/bin/busybox"
ln -s busybox "$vm/root/bin/sh"
i=0
while read -r exe; do # run in this order: the unit tests, core, format
    i=$((i + 1))
    name=$(basename "$exe" | sed 's/-[0-9a-f]*$//')
    case $name in qlinear) n=1 ;; core) n=2 ;; *) n=3 ;; esac
    cp "$exe" "$vm/root/tests/$n-$name"
done < "$vm/tests.txt"
[ "$i" = 3 ] || { echo "expected 3 test binaries, got $i"; exit 1; }
# The format tests find the CLI, the fixtures and their scratch directory by build-time paths.
cli=$CARGO_TARGET_DIR/$target/release/qlinear
mkdir -p "$vm/root$(dirname "$cli")" "$vm/root$CARGO_TARGET_DIR/tmp" "$vm/root$root/tests"
cp "$cli" "$vm/root$cli"
cp -r tests/fixtures "$vm/root$root/tests/"
RUSTFLAGS="-C target-feature=+crt-static" /usr/bin/cargo build --release --target $target \
    --lib 2>&1 | tail -n 1
aarch64-linux-gnu-gcc -std=c99 -Wall -Wextra -Werror -O1 -static -Iinclude \
    bindings/c/test_qlinear.c "$CARGO_TARGET_DIR/$target/release/libqlinear.a" \
    -lpthread -lm -ldl -o "$vm/root/tests/4-c_harness"
/usr/bin/rustc --edition 2021 -O --target $target -C linker=aarch64-linux-gnu-gcc \
    -C target-feature=+crt-static .ci/aarch64-init.rs -o "$vm/root/init"

echo "== aarch64: kernel and initramfs"
if ! ls "$vm"/kernel/boot/vmlinuz-* > /dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-cloud-arm64:arm64 | awk '/Depends:/ {print $2; exit}')
    (cd "$vm" && rm -f "${pkg%%:*}"_*.deb && apt-get download "$pkg" > /dev/null 2>&1 &&
        dpkg-deb -x "${pkg%%:*}"_*.deb kernel)
fi
kernel=$(ls "$vm"/kernel/boot/vmlinuz-* | head -n 1)
(cd "$vm/root" && find . | cpio -o -H newc 2> /dev/null | gzip -1 > "$vm/initrd.gz")

boot() { # $1 = qemu CPU model, $2 = programs not to run; prints the console
    timeout 1500 qemu-system-aarch64 -M virt -cpu "$1" -smp 2 -m 2048 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$vm/initrd.gz" \
        -append "console=ttyAMA0 quiet panic=-1 qlinear_vm_skip=$2 -- --test-threads=2" \
        < /dev/null 2>&1 | tr -d '\r'
}
# `-cpu max` has every extension, so the unit tests there check all three kernel families
# against the scalar oracle; the other two CPUs run the programs that use the default device,
# which proves detection picks a family whose instructions the CPU has.
status=0
for run in max: neoverse-n1:1-qlinear,3-format cortex-a53:1-qlinear,3-format; do
    cpu=${run%%:*} skip=${run#*:}
    echo "== aarch64 VM, -cpu $cpu"
    boot "$cpu" "$skip" > "$vm/console-$cpu.txt" || true
    grep -aE "QLINEAR-VM|test result|FAILED|panicked|passed, .* failed" "$vm/console-$cpu.txt" |
        head -n 60
    grep -aq "QLINEAR-VM done" "$vm/console-$cpu.txt" || { echo "the VM did not finish"; status=1; }
    for t in "$vm"/root/tests/*; do
        n=$(basename "$t")
        case ",$skip," in *",$n,"*) continue ;; esac
        grep -aq "QLINEAR-VM exit $n 0$" "$vm/console-$cpu.txt" ||
            { echo "FAIL: $n on -cpu $cpu"; status=1; }
    done
done
# The harness prints the device's ISA: each CPU must dispatch its own kernel family.
for pair in max:neon-i8mm neoverse-n1:neon-dotprod cortex-a53:neon; do
    cpu=${pair%%:*} want=${pair#*:}
    got=$(grep -ao "device isa: [a-z0-9-]*" "$vm/console-$cpu.txt" | head -n 1 | cut -d' ' -f3)
    echo "-cpu $cpu dispatches ${got:-nothing} (expected $want)"
    [ "$got" = "$want" ] || status=1
done
[ "$status" = 0 ] && echo "aarch64 passed"
exit "$status"
