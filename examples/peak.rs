//! Compute peaks of this machine, to read kernel figures against (`cargo run --release
//! --example peak`): f32 FMA GFLOP/s and int8 dot-product GOP/s with 1 and 2 threads, for
//! AVX-512 (`vpdpbusd`), for AVX2 (`vpmaddubsw` + `vpmaddwd` + `vpaddd`), for AVX-VNNI
//! (`vpdpbusd` on ymm) and for AMX-INT8 (`tdpbsud`), and the `vpdpbusd` rate left when every
//! 8 of them carry block-wise dyn8's f32 scaling. The probes are in
//! `examples/common/peaks.rs`, which `examples/bench.rs` runs too.

#[path = "common/peaks.rs"]
mod peaks;

fn main() {
    for threads in [1, 2] {
        let vnni = peaks::peaks(threads);
        match vnni {
            Some((f, v)) => println!(
                "threads={threads}: AVX-512 f32 FMA {f:.0} GFLOP/s, int8 vpdpbusd {v:.0} GOP/s"
            ),
            None => println!("threads={threads}: no AVX-512 F + VNNI on this CPU"),
        }
        match peaks::peaks_avx2(threads) {
            Some((f, v)) => println!(
                "threads={threads}: AVX2 f32 FMA {f:.0} GFLOP/s, int8 vpmaddubsw+vpmaddwd {v:.0} GOP/s"
            ),
            None => println!("threads={threads}: no AVX2 + FMA on this CPU"),
        }
        match peaks::peaks_avx_vnni(threads) {
            Some((_, v)) => println!("threads={threads}: AVX-VNNI int8 ymm vpdpbusd {v:.0} GOP/s"),
            None => println!("threads={threads}: no AVX-VNNI on this CPU"),
        }
        match peaks::amx_peaks(threads) {
            Some((k32, k64)) => println!(
                "threads={threads}: AMX-INT8 tdpbsud {k32:.0} GOP/s with 32-byte A tiles (dyn8's), {k64:.0} with 64"
            ),
            None => println!("threads={threads}: no AMX-INT8 (or no permission to use it) here"),
        }
        if let (Some((_, v)), Some((c, g))) = (vnni, peaks::block_scaled_vnni(threads)) {
            println!(
                "threads={threads}: vpdpbusd with dyn8 block scaling: per-channel weights \
                 {c:.0} GOP/s ({:.2} of peak), group-wise {g:.0} GOP/s ({:.2})",
                c / v,
                g / v
            );
        }
    }
}
