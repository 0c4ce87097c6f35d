//! Compute peaks of this machine, to read kernel figures against (`cargo run --release
//! --example peak`): AVX-512 f32 FMA GFLOP/s and `vpdpbusd` int8 GOP/s with 1 and 2 threads
//! (the probes are in `examples/common/peaks.rs`, which `examples/bench.rs` runs too).

#[path = "common/peaks.rs"]
mod peaks;

fn main() {
    for threads in [1, 2] {
        match peaks::peaks(threads) {
            Some((f, v)) => println!(
                "threads={threads}: f32 FMA (AVX-512) {f:.0} GFLOP/s, int8 vpdpbusd {v:.0} GOP/s"
            ),
            None => {
                println!("this probe needs AVX-512 F and VNNI");
                return;
            }
        }
    }
}
