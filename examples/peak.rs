//! Compute peaks of this machine, to read kernel figures against (`cargo run --release
//! --example peak`): AVX-512 f32 FMA GFLOP/s and `vpdpbusd` int8 GOP/s with 1 and 2 threads
//! (the probes are in `examples/common/peaks.rs`, which `examples/bench.rs` runs too), and
//! the `vpdpbusd` rate left when every 8 of them carry block-wise dyn8's f32 scaling.

#[path = "common/peaks.rs"]
mod peaks;

fn main() {
    for threads in [1, 2] {
        let Some((f, v)) = peaks::peaks(threads) else {
            println!("this probe needs AVX-512 F and VNNI");
            return;
        };
        println!("threads={threads}: f32 FMA (AVX-512) {f:.0} GFLOP/s, int8 vpdpbusd {v:.0} GOP/s");
        if let Some((c, g)) = peaks::block_scaled_vnni(threads) {
            println!(
                "threads={threads}: vpdpbusd with dyn8 block scaling: per-channel weights \
                 {c:.0} GOP/s ({:.2} of peak), group-wise {g:.0} GOP/s ({:.2})",
                c / v,
                g / v
            );
        }
    }
}
