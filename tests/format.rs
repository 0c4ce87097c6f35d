//! The qlinear file format (`docs/FORMAT.md`), safetensors import and the `qlinear` CLI:
//! round trips are bit-identical, every corrupted field is a clean `Error::Corrupt`, seeded
//! random mutations never panic, and the CLI's outputs and exit codes.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

use qlinear::io::checkpoint::Checkpoint;
use qlinear::io::checksum::crc32;
use qlinear::io::import::{glob_match, plan, quantize_checkpoint, ImportOptions, Planned};
use qlinear::io::{self, format};
use qlinear::rng::SplitMix64;
use qlinear::{
    ActivationMode, CpuDevice, DType, Error, Granularity, Linear, QuantConfig, QuantizedLinear,
    QuantizedModel, ScaleDType, WeightFormat,
};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("format")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dev() -> CpuDevice {
    CpuDevice::with_threads(1).unwrap()
}

fn layer(
    dev: &CpuDevice,
    out: usize,
    inp: usize,
    bias: bool,
    config: QuantConfig,
    seed: u64,
) -> QuantizedLinear<qlinear::Cpu> {
    let lin = Linear::new_seeded(inp, out, bias, DType::F32, dev, seed).unwrap();
    QuantizedLinear::from_linear(&lin, &config).unwrap()
}

fn forward(l: &QuantizedLinear<qlinear::Cpu>, rows: usize) -> Vec<f32> {
    let x: Vec<f32> = (0..rows * l.in_features)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let mut y = vec![0f32; rows * l.out_features];
    l.forward_f32(&x, rows, &mut y).unwrap();
    y
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Every recipe the format can describe.
fn recipes() -> Vec<(String, QuantConfig, bool)> {
    let mut v = Vec::new();
    for g in [
        Granularity::PerChannel,
        Granularity::Group(32),
        Granularity::Group(128),
    ] {
        for (sd, act) in [
            (ScaleDType::F16, ActivationMode::Dyn8),
            (ScaleDType::F32, ActivationMode::Dyn8PerRow),
        ] {
            let c = QuantConfig::builder()
                .format(WeightFormat::Cb4)
                .granularity(g)
                .scale_dtype(sd)
                .activations(act)
                .build()
                .unwrap();
            v.push((format!("{}-{sd:?}-{}", c.label(), act.name()), c, true));
        }
    }
    for bits in [4u8, 8] {
        for g in [
            Granularity::PerTensor,
            Granularity::PerChannel,
            Granularity::Group(32),
            Granularity::Group(64),
        ] {
            for sym in [true, false] {
                for sd in [ScaleDType::F16, ScaleDType::F32] {
                    for bias in [true, false] {
                        let act = if bits == 8 && bias {
                            ActivationMode::Dyn8
                        } else {
                            ActivationMode::Exact
                        };
                        let c = QuantConfig::builder()
                            .bits(bits)
                            .granularity(g)
                            .symmetric(sym)
                            .scale_dtype(sd)
                            .activations(act)
                            .build()
                            .unwrap();
                        v.push((
                            format!("{}-{sd:?}-bias{bias}-{}", c.label(), act.name()),
                            c,
                            bias,
                        ));
                    }
                }
            }
        }
    }
    v
}

#[test]
fn round_trip_every_recipe_is_bit_identical() {
    let dev = dev();
    let recipes = recipes();
    // Odd in_features exercises the int4 padding nibble and a short last group.
    let layers: Vec<_> = recipes
        .iter()
        .enumerate()
        .map(|(i, (_, c, bias))| layer(&dev, 19, 67, *bias, *c, i as u64))
        .collect();
    let named: Vec<(&str, &QuantizedLinear<qlinear::Cpu>)> = recipes
        .iter()
        .zip(&layers)
        .map(|((n, _, _), l)| (n.as_str(), l))
        .collect();
    let mut bytes = Vec::new();
    io::write_model(&mut bytes, &named).unwrap();
    let dir = scratch("round_trip");
    let path = dir.join("all.qlin");
    io::save(&path, &named).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "Write and path give the same bytes"
    );

    for model in [
        QuantizedModel::from_bytes(&bytes, &dev).unwrap(),
        QuantizedModel::load(&path, &dev).unwrap(),
    ] {
        assert_eq!(model.len(), named.len());
        for (i, ((name, orig), (got_name, got))) in named.iter().zip(model.iter()).enumerate() {
            assert_eq!(*name, got_name, "file order");
            assert_eq!(model.name(i), Some(*name));
            assert_eq!(orig.weight_quantized(), got.weight_quantized(), "{name}");
            assert_eq!(orig.activation_mode(), got.activation_mode(), "{name}");
            assert_eq!(
                orig.bias().map(|b| b.to_f32_vec()),
                got.bias().map(|b| b.to_f32_vec()),
                "{name}"
            );
            for rows in [1, 3] {
                assert!(
                    same_bits(&forward(orig, rows), &forward(got, rows)),
                    "{name}"
                );
            }
            assert!(std::ptr::eq(model.get(name).unwrap(), got));
        }
        assert!(model.get("missing").is_none());
    }

    // One layer, and saving a loaded model again gives the same bytes.
    let single = dir.join("one.qlin");
    io::save_layer(&single, &layers[0]).unwrap();
    let m = QuantizedModel::load(&single, &dev).unwrap();
    assert_eq!(m.name(0), Some("layer"));
    let again = dir.join("again.qlin");
    QuantizedModel::from_bytes(&bytes, &dev)
        .unwrap()
        .save(&again)
        .unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn payloads_are_aligned_and_checksummed() {
    let dev = dev();
    let l = layer(&dev, 5, 40, true, QuantConfig::int4(), 1);
    let mut bytes = Vec::new();
    io::write_model(&mut bytes, &[("a", &l)]).unwrap();
    let r = &bytes[32..160];
    for s in 0..4 {
        let off = u64::from_le_bytes(r[40 + 16 * s..48 + 16 * s].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(r[48 + 16 * s..56 + 16 * s].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(r[104 + 4 * s..108 + 4 * s].try_into().unwrap());
        assert_eq!(off % 64, 0);
        assert_eq!(crc32(&bytes[off..off + len]), crc);
    }
    assert_eq!(&bytes[0..8], b"QLINEAR\0");
}

/// A small valid two-layer file: "first" (int4 g32 asym, bias) and "second" (int8 channel).
fn sample(dev: &CpuDevice) -> Vec<u8> {
    let a = layer(
        dev,
        6,
        70,
        true,
        QuantConfig::builder()
            .bits(4)
            .symmetric(false)
            .build()
            .unwrap(),
        7,
    );
    let b = layer(
        dev,
        4,
        33,
        false,
        QuantConfig::builder()
            .granularity(Granularity::PerChannel)
            .scale_dtype(ScaleDType::F32)
            .build()
            .unwrap(),
        8,
    );
    let mut bytes = Vec::new();
    io::write_model(&mut bytes, &[("first", &a), ("second", &b)]).unwrap();
    bytes
}

fn fix_header_crc(b: &mut [u8]) {
    let hl = u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize;
    if hl <= b.len() && hl >= 32 {
        let c = crc32(&b[32..hl]);
        b[24..28].copy_from_slice(&c.to_le_bytes());
    }
}

/// Rewrites every section checksum a record can reach, so mutations get past them.
fn fix_section_crcs(b: &mut [u8]) {
    let count = u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize;
    for i in 0..count.min(64) {
        let r = 32 + i * 128;
        if r + 128 > b.len() {
            return;
        }
        for s in 0..4 {
            let off = u64::from_le_bytes(b[r + 40 + 16 * s..r + 48 + 16 * s].try_into().unwrap());
            let len = u64::from_le_bytes(b[r + 48 + 16 * s..r + 56 + 16 * s].try_into().unwrap());
            if let Some(end) = off.checked_add(len).filter(|&e| e <= b.len() as u64) {
                let c = crc32(&b[off as usize..end as usize]);
                b[r + 104 + 4 * s..r + 108 + 4 * s].copy_from_slice(&c.to_le_bytes());
            }
        }
    }
}

fn expect_corrupt(bytes: &[u8], dev: &CpuDevice, what: &str) -> String {
    match QuantizedModel::from_bytes(bytes, dev) {
        Err(Error::Corrupt(m)) => m,
        Err(e) => panic!("{what}: expected Corrupt, got {e:?}"),
        Ok(_) => panic!("{what}: loaded"),
    }
}

#[test]
fn every_corrupted_field_is_a_clean_error() {
    let dev = dev();
    let good = sample(&dev);
    QuantizedModel::from_bytes(&good, &dev).unwrap();

    // Truncation at every length.
    for len in 0..good.len() {
        expect_corrupt(&good[..len], &dev, &format!("truncated to {len}"));
    }

    // (description, byte offset, new bytes, fix the header checksum?, expected message part)
    let r0 = 32usize; // record of "first"
    let r1 = 32 + 128; // record of "second"
    let hl = u64::from_le_bytes(good[16..24].try_into().unwrap()) as usize;
    let codes0 = u64::from_le_bytes(good[r0 + 40..r0 + 48].try_into().unwrap()) as usize;
    let scales0 = u64::from_le_bytes(good[r0 + 56..r0 + 64].try_into().unwrap()) as usize;
    let cases: Vec<(&str, usize, Vec<u8>, bool, &str)> = vec![
        ("magic", 0, b"QLINEAX\0".to_vec(), false, "magic"),
        ("version", 8, 3u32.to_le_bytes().to_vec(), false, "version"),
        (
            "count huge",
            12,
            u32::MAX.to_le_bytes().to_vec(),
            false,
            "records",
        ),
        ("count 3", 12, 3u32.to_le_bytes().to_vec(), true, ""),
        (
            "header_len huge",
            16,
            u64::MAX.to_le_bytes().to_vec(),
            false,
            "",
        ),
        (
            "header_len short",
            16,
            40u64.to_le_bytes().to_vec(),
            false,
            "records",
        ),
        ("header crc", 24, vec![0, 0, 0, 0], false, "header checksum"),
        ("reserved", 28, vec![1], false, "reserved"),
        (
            "record byte without crc fix",
            r0 + 12,
            vec![8],
            false,
            "header checksum",
        ),
        (
            "name offset into records",
            r0,
            40u64.to_le_bytes().to_vec(),
            true,
            "name",
        ),
        (
            "name offset past header",
            r0,
            (hl as u64).to_le_bytes().to_vec(),
            true,
            "name",
        ),
        (
            "name length huge",
            r0 + 8,
            u32::MAX.to_le_bytes().to_vec(),
            true,
            "name",
        ),
        ("bits 5", r0 + 12, vec![5], true, "bits"),
        (
            "bits 8 (sizes no longer match)",
            r0 + 12,
            vec![8],
            true,
            "length",
        ),
        ("granularity 3", r0 + 13, vec![3], true, "granularity"),
        ("symmetric 2", r0 + 14, vec![2], true, "symmetric"),
        (
            "symmetric 1 with zero points",
            r0 + 14,
            vec![1],
            true,
            "zero points",
        ),
        ("scale dtype 2", r0 + 15, vec![2], true, "scale dtype"),
        ("activation 2", r0 + 16, vec![2], true, "activation"),
        ("has_bias 0 with bias", r0 + 17, vec![0], true, "bias"),
        ("has_bias 7", r0 + 17, vec![7], true, "has_bias"),
        ("reserved record bytes", r0 + 18, vec![1], true, "reserved"),
        (
            "group size 48",
            r0 + 20,
            48u32.to_le_bytes().to_vec(),
            true,
            "group size",
        ),
        (
            "group size 0",
            r0 + 20,
            0u32.to_le_bytes().to_vec(),
            true,
            "group size",
        ),
        (
            "group size set per-channel",
            r1 + 20,
            32u32.to_le_bytes().to_vec(),
            true,
            "group size",
        ),
        (
            "group size 64 (sizes)",
            r0 + 20,
            64u32.to_le_bytes().to_vec(),
            true,
            "length",
        ),
        (
            "out_features 0",
            r0 + 24,
            0u64.to_le_bytes().to_vec(),
            true,
            "empty",
        ),
        (
            "out_features huge",
            r0 + 24,
            u64::MAX.to_le_bytes().to_vec(),
            true,
            "",
        ),
        (
            "in_features overflow",
            r0 + 32,
            (u64::MAX / 3).to_le_bytes().to_vec(),
            true,
            "overflow",
        ),
        (
            "in_features +1",
            r0 + 32,
            71u64.to_le_bytes().to_vec(),
            true,
            "length",
        ),
        (
            "codes offset misaligned",
            r0 + 40,
            (codes0 as u64 + 1).to_le_bytes().to_vec(),
            true,
            "multiple of 64",
        ),
        (
            "codes offset into header",
            r0 + 40,
            0u64.to_le_bytes().to_vec(),
            true,
            "header",
        ),
        (
            "codes offset past end",
            r0 + 40,
            (good.len() as u64 + 64)
                .next_multiple_of(64)
                .to_le_bytes()
                .to_vec(),
            true,
            "outside",
        ),
        (
            "codes offset overflow",
            r0 + 40,
            (u64::MAX - 63).to_le_bytes().to_vec(),
            true,
            "outside",
        ),
        (
            "codes length",
            r0 + 48,
            1u64.to_le_bytes().to_vec(),
            true,
            "length",
        ),
        (
            "codes length huge",
            r0 + 48,
            u64::MAX.to_le_bytes().to_vec(),
            true,
            "length",
        ),
        (
            "codes offset moved to scales",
            r0 + 40,
            (scales0 as u64).to_le_bytes().to_vec(),
            true,
            "checksum",
        ),
        (
            "bias section empty but offset set",
            r1 + 88,
            64u64.to_le_bytes().to_vec(),
            true,
            "empty",
        ),
        ("codes crc", r0 + 104, vec![0, 0, 0, 0], true, "checksum"),
        ("scales crc", r0 + 108, vec![1], true, "checksum"),
        ("reserved record tail", r1 + 120, vec![1], true, "reserved"),
        (
            "payload byte",
            codes0 + 3,
            vec![good[codes0 + 3] ^ 0x10],
            false,
            "checksum",
        ),
        ("non-UTF-8 name", hl - 6, vec![0xFF], true, "UTF-8"),
        ("NUL in name", hl - 6, vec![0], true, "NUL"),
        ("duplicate name", hl - 6, b"first\0".to_vec(), true, ""),
    ];
    for (what, at, new, fix, want) in cases {
        let mut b = good.clone();
        b[at..at + new.len()].copy_from_slice(&new);
        if fix {
            fix_header_crc(&mut b);
        }
        let msg = expect_corrupt(&b, &dev, what);
        assert!(msg.contains(want), "{what}: message {msg:?} lacks {want:?}");
    }

    // Duplicate names: rename "second" to "first" needs equal lengths, so write one.
    let dev1 = dev.clone();
    let l = layer(&dev1, 2, 32, false, QuantConfig::int8(), 3);
    let mut b = Vec::new();
    io::write_model(&mut b, &[("ab", &l), ("ac", &l)]).unwrap();
    let hl = u64::from_le_bytes(b[16..24].try_into().unwrap()) as usize;
    b[hl - 1] = b'b';
    fix_header_crc(&mut b);
    assert!(expect_corrupt(&b, &dev, "dup").contains("duplicate"));

    // Values the core rejects, behind valid checksums: a NaN scale, a non-finite bias, a
    // set padding nibble.
    let scales1 = u64::from_le_bytes(good[r1 + 56..r1 + 64].try_into().unwrap()) as usize;
    let mut b = good.clone();
    b[scales1..scales1 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fix_section_crcs(&mut b);
    fix_header_crc(&mut b);
    assert!(expect_corrupt(&b, &dev, "NaN scale").contains("second"));
    let bias0 = u64::from_le_bytes(good[r0 + 88..r0 + 96].try_into().unwrap()) as usize;
    let mut b = good.clone();
    b[bias0..bias0 + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    fix_section_crcs(&mut b);
    fix_header_crc(&mut b);
    expect_corrupt(&b, &dev, "inf bias");
    let l = layer(&dev, 3, 33, false, QuantConfig::int4(), 4);
    let mut b = Vec::new();
    io::write_model(&mut b, &[("odd", &l)]).unwrap();
    let codes = u64::from_le_bytes(b[72..80].try_into().unwrap()) as usize;
    b[codes + 16] |= 0x80; // row 0 is 17 bytes; byte 16 holds the padding nibble
    fix_section_crcs(&mut b);
    fix_header_crc(&mut b);
    assert!(expect_corrupt(&b, &dev, "nibble").contains("nibble"));

    // Every single-bit flip of the header region is caught.
    for i in 0..hl {
        let mut b = good.clone();
        b[i] ^= 1 << (i % 8);
        expect_corrupt(&b, &dev, &format!("bit flip at {i}"));
    }
}

#[test]
fn io_errors_are_io() {
    let dev = dev();
    let dir = scratch("io");
    match QuantizedModel::load(dir.join("missing.qlin"), &dev) {
        Err(Error::Io(m)) => assert!(m.contains("missing.qlin"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        QuantizedModel::load(&dir, &dev),
        Err(Error::Io(_))
    ));
    let empty = dir.join("empty.qlin");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        QuantizedModel::load(&empty, &dev),
        Err(Error::Corrupt(_))
    ));
    let l = layer(&dev, 2, 32, false, QuantConfig::int8(), 3);
    assert!(matches!(
        io::save(dir.join("no/such/dir/x.qlin"), &[("a", &l)]),
        Err(Error::Io(_))
    ));
    assert!(matches!(
        io::save(dir.join("dup.qlin"), &[("a", &l), ("a", &l)]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        io::save(dir.join("nul.qlin"), &[("a\0", &l)]),
        Err(Error::InvalidArgument(_))
    ));
}

/// Loads `bytes` and runs every layer's forward, turning a panic into a test failure.
fn load_and_run(bytes: &[u8], dev: &CpuDevice, what: &dyn Fn() -> String) -> bool {
    let r = catch_unwind(AssertUnwindSafe(|| {
        match QuantizedModel::from_bytes(bytes, dev) {
            Ok(m) => {
                for (_, l) in m.iter() {
                    forward(l, 2);
                }
                true
            }
            Err(e) => {
                assert!(
                    matches!(e, Error::Corrupt(_) | Error::OutOfMemory { .. }),
                    "{}: {e:?}",
                    what()
                );
                false
            }
        }
    }));
    match r {
        Ok(ok) => ok,
        Err(_) => panic!("{}: load or forward panicked", what()),
    }
}

#[test]
fn mutation_smoke_never_panics() {
    let dev = dev();
    let good = sample(&dev);
    let mut loaded = 0;
    let iterations = 4000u64;
    for seed in 0..iterations {
        let mut rng = SplitMix64::new(seed);
        let mut b = good.clone();
        let hl = u64::from_le_bytes(good[16..24].try_into().unwrap()) as usize;
        for _ in 0..1 + rng.next_u64() % 4 {
            let kind = rng.next_u64() % 6;
            // Mostly the header region: that is where the parser's decisions are.
            let at = if rng.next_u64().is_multiple_of(4) {
                (rng.next_u64() % b.len().max(1) as u64) as usize
            } else {
                (rng.next_u64() % hl as u64) as usize
            };
            let last = b.len() - 1;
            match kind {
                0 => b[at.min(last)] ^= 1 << (rng.next_u64() % 8),
                1 => b[at.min(last)] = rng.next_u64() as u8,
                2 => {
                    let at = at.min(b.len().saturating_sub(8)) & !7;
                    let v = match rng.next_u64() % 4 {
                        0 => rng.next_u64(),
                        1 => rng.next_u64() % 4096,
                        2 => u64::MAX - rng.next_u64() % 128,
                        _ => (rng.next_u64() % 64) * 64,
                    };
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                3 => b.truncate((rng.next_u64() % b.len() as u64) as usize),
                4 => b.extend((0..rng.next_u64() % 130).map(|_| rng.next_u64() as u8)),
                _ => {
                    let at = at.min(b.len().saturating_sub(4)) & !3;
                    let v = (rng.next_u64() % 2048) as u32;
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            if b.len() < 32 {
                break;
            }
        }
        if b.len() >= 32 {
            if rng.next_u64().is_multiple_of(2) {
                fix_section_crcs(&mut b);
            }
            if !rng.next_u64().is_multiple_of(4) {
                fix_header_crc(&mut b);
            }
        }
        if load_and_run(&b, &dev, &|| format!("seed {seed}")) {
            loaded += 1;
        }
    }
    // Some mutations (payload values behind fixed checksums) are still valid files.
    assert!(
        loaded > 0 && loaded < iterations,
        "{loaded} of {iterations} loaded"
    );
}

// ---------------------------------------------------------------- safetensors and CLI

/// A small safetensors file: f32, f16 and bf16 weights, two biases (one of the wrong
/// length), a 1-D norm and an int tensor.
fn safetensors_bytes() -> Vec<u8> {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    let mut rng = SplitMix64::new(42);
    let f32s = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let w0 = f32s(rng.uniform_vec(24 * 64, -0.5, 0.5));
    let b0 = f32s(rng.uniform_vec(24, -0.1, 0.1));
    let w1: Vec<u8> = rng
        .uniform_vec(8 * 64, -1.0, 1.0)
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    let w2: Vec<u8> = rng
        .uniform_vec(16 * 32, -1.0, 1.0)
        .iter()
        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
        .collect();
    let b2 = f32s(rng.uniform_vec(15, -0.1, 0.1));
    let norm = f32s(vec![1.0; 64]);
    let ints = vec![1u8; 4 * 4 * 4];
    let tensors = vec![
        (
            "model.l0.weight",
            TensorView::new(Dtype::F32, vec![24, 64], &w0).unwrap(),
        ),
        (
            "model.l0.bias",
            TensorView::new(Dtype::F32, vec![24], &b0).unwrap(),
        ),
        (
            "model.l1.weight",
            TensorView::new(Dtype::F16, vec![8, 64], &w1).unwrap(),
        ),
        (
            "model.l2.weight",
            TensorView::new(Dtype::BF16, vec![16, 32], &w2).unwrap(),
        ),
        (
            "model.l2.bias",
            TensorView::new(Dtype::F32, vec![15], &b2).unwrap(),
        ),
        (
            "model.norm",
            TensorView::new(Dtype::F32, vec![64], &norm).unwrap(),
        ),
        (
            "model.ids",
            TensorView::new(Dtype::I32, vec![4, 4], &ints).unwrap(),
        ),
    ];
    safetensors::serialize(tensors, None).unwrap()
}

#[test]
fn glob_patterns() {
    assert!(glob_match("*", "anything"));
    assert!(glob_match("a.*.w", "a.b.c.w"));
    assert!(glob_match("*proj*", "x.up_proj.weight"));
    assert!(!glob_match("*proj", "x.up_proj.weight"));
    assert!(glob_match("exact", "exact"));
    assert!(!glob_match("a*a", "a"));
    assert!(glob_match("a**b", "ab"));
}

#[test]
fn safetensors_import_and_reload() {
    let dev = dev();
    let dir = scratch("safetensors");
    let input = dir.join("in.safetensors");
    std::fs::write(&input, safetensors_bytes()).unwrap();
    let config = QuantConfig::int4();
    let opts = |include: Vec<String>| ImportOptions {
        config,
        include,
        skip_bad: false,
    };
    let out = dir.join("out.qlin");
    let mut seen = Vec::new();
    let report = quantize_checkpoint(&input, &out, &opts(vec![]), &dev, |e| {
        if let qlinear::io::import::Event::Done {
            index,
            total,
            layer,
        } = e
        {
            seen.push((*index, *total, layer.name.clone()))
        }
    })
    .unwrap();
    // In the file's data order (the safetensors writer orders by dtype, then name).
    let mut names: Vec<&str> = report.layers.iter().map(|l| l.name.as_str()).collect();
    let progress: Vec<&str> = seen.iter().map(|(_, _, n)| n.as_str()).collect();
    assert_eq!(names, progress);
    assert!(seen.iter().enumerate().all(|(i, s)| s.0 == i && s.1 == 3));
    let ckpt = Checkpoint::open(&input).unwrap();
    let offsets: Vec<u64> = report
        .layers
        .iter()
        .map(|l| ckpt.get(&l.weight_name).unwrap().offset)
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "checkpoint order");
    names.sort_unstable();
    assert_eq!(
        names,
        ["model.l0", "model.l1", "model.l2"],
        "the 2-D float tensors"
    );
    let l0 = report.layers.iter().find(|l| l.name == "model.l0").unwrap();
    assert_eq!(l0.bias_name.as_deref(), Some("model.l0.bias"));
    let l2 = report.layers.iter().find(|l| l.name == "model.l2").unwrap();
    assert!(
        l2.bias_name.is_none(),
        "bias of the wrong length is ignored"
    );
    for l in &report.layers {
        assert!(l.weight_error > 0.0 && l.weight_error < 0.2, "{l:?}");
        assert!(l.output_error > 0.0 && l.output_error < 0.3, "{l:?}");
    }
    // Written and read back: the layers quantized from the same tensors, bit for bit.
    let model = QuantizedModel::load(&out, &dev).unwrap();
    assert_eq!(model.len(), 3);
    assert!(model.get("model.l0").unwrap().bias().is_some());
    let w0 = ckpt.read_f32(ckpt.get("model.l0.weight").unwrap()).unwrap();
    let direct = QuantizedLinear::from_linear(
        &Linear::from_tensors(
            qlinear::CpuTensor::from_f32(w0, &[24, 64], &dev).unwrap(),
            None,
        )
        .unwrap(),
        &config,
    )
    .unwrap();
    assert_eq!(
        model.get("model.l0").unwrap().weight_quantized(),
        direct.weight_quantized()
    );

    let only = plan(&ckpt, &opts(vec!["*.l1.*".into()])).unwrap();
    assert_eq!(only.len(), 1);
    assert!(matches!(
        plan(&ckpt, &opts(vec!["nope*".into()])),
        Err(Error::InvalidArgument(_))
    ));
    // A pattern naming a non-float tensor: bad, failing the run or, with skip_bad, skipped.
    let with_ints = plan(&ckpt, &opts(vec!["*".into()])).unwrap();
    assert!(with_ints
        .iter()
        .any(|p| matches!(p, Planned::Bad { name, reason } if name == "model.ids" && reason.contains("I32"))));
    assert!(matches!(
        quantize_checkpoint(&input, &out, &opts(vec!["*".into()]), &dev, |_| {}),
        Err(Error::InvalidArgument(m)) if m.contains("model.ids") || m.contains("model.norm")
    ));
    let skipping = ImportOptions {
        skip_bad: true,
        ..opts(vec!["*".into()])
    };
    let r = quantize_checkpoint(&input, &out, &skipping, &dev, |_| {}).unwrap();
    assert_eq!(r.layers.len(), 3);
    assert!(r.skipped.iter().any(|(n, _)| n == "model.ids"));
    assert!(r.skipped.iter().any(|(n, _)| n == "model.norm"));
    let mut cut = safetensors_bytes();
    cut.truncate(cut.len() - 3);
    std::fs::write(dir.join("cut.safetensors"), cut).unwrap();
    assert!(matches!(
        Checkpoint::open(dir.join("cut.safetensors")),
        Err(Error::Corrupt(_))
    ));
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qlinear"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_quantize_inspect_bench() {
    let dir = scratch("cli");
    let input = dir.join("in.safetensors");
    std::fs::write(&input, safetensors_bytes()).unwrap();
    let out = dir.join("out.qlin");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());

    let (code, stdout, stderr) = cli(&[
        "quantize",
        i,
        "-o",
        o,
        "--bits",
        "4",
        "--group",
        "32",
        "--asym",
        "--include",
        "model.l*.weight",
        "--threads",
        "1",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("[1/3] model.l0 24x64 ... "), "{stdout}");
    assert!(stdout.contains("model.l2 16x32 ... "), "{stdout}");
    assert!(stdout.contains("[3/3] "), "{stdout}");
    assert!(stdout.contains("3 tensors (int4-g32-asym)"), "{stdout}");
    assert!(stdout.contains("worst"), "{stdout}");

    let (code, stdout, stderr) = cli(&["inspect", o]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 layers"), "{stdout}");
    assert!(
        stdout.contains("model.l0: 24x64 int4-g32-asym scales=f16 act=exact bias=yes"),
        "{stdout}"
    );

    let (code, stdout, stderr) = cli(&["bench", o, "--threads", "1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.matches("batch 32").count(), 3, "{stdout}");

    let (code, stdout, _) = cli(&["quantize", i, "-o", o, "--group", "channel", "--dyn8"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(cli(&["inspect", o])
        .1
        .contains("int8-channel scales=f16 act=dyn8"));

    let (code, stdout, _) = cli(&[
        "quantize",
        i,
        "-o",
        o,
        "--format",
        "cb4",
        "--group",
        "64",
        "--activations",
        "dyn8-row",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("(cb4-g64)"), "{stdout}");
    assert!(cli(&["inspect", o])
        .1
        .contains("cb4-g64 scales=f16 act=dyn8-row"));

    // Bad arguments: 2.
    for args in [
        &[][..],
        &["frobnicate"],
        &["inspect"],
        &["inspect", o, o],
        &["quantize", i],
        &["quantize", i, "-o"],
        &["quantize", i, "-o", o, "--bits", "5"],
        &["quantize", i, "-o", o, "--bits", "x"],
        &["quantize", i, "-o", o, "--format", "int3"],
        &["quantize", i, "-o", o, "--format", "cb4", "--asym"],
        &["quantize", i, "-o", o, "--activations", "fast"],
        &["quantize", i, "-o", o, "--group", "48"],
        &["quantize", i, "-o", o, "--wat"],
    ] {
        let (code, _, stderr) = cli(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
    // Bad files: 1.
    let garbage = dir.join("garbage.qlin");
    std::fs::write(&garbage, b"not a qlinear file at all, definitely not").unwrap();
    let g = garbage.to_str().unwrap();
    let missing = dir.join("missing").to_str().unwrap().to_string();
    for args in [
        &["inspect", g][..],
        &["bench", g],
        &["inspect", &missing],
        &["quantize", &missing, "-o", o],
        &["quantize", g, "-o", o],
        &["quantize", i, "-o", o, "--include", "nothing*"],
    ] {
        let (code, stdout, stderr) = cli(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with("qlinear: "), "{args:?}: {stderr}");
    }
    assert!(cli(&["inspect", g]).2.contains("magic"));
}

/// Writes the fuzzer's seed corpus (`fuzz/corpus/load/`). Run by hand:
/// `cargo test --test format -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dev = dev();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/load");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("two-layers.qlin"), sample(&dev)).unwrap();
    let l = layer(&dev, 3, 32, true, QuantConfig::int8(), 5);
    let mut b = Vec::new();
    io::write_model(&mut b, &[("l", &l)]).unwrap();
    std::fs::write(dir.join("int8-bias.qlin"), b).unwrap();
    let l = layer(
        &dev,
        2,
        9,
        false,
        QuantConfig::builder()
            .bits(4)
            .granularity(Granularity::PerTensor)
            .scale_dtype(ScaleDType::F32)
            .build()
            .unwrap(),
        6,
    );
    let mut b = Vec::new();
    io::write_model(&mut b, &[("t", &l)]).unwrap();
    std::fs::write(dir.join("int4-tensor.qlin"), b).unwrap();
    let _ = format::MAGIC;
}

/// `tests/fixtures/v1.qlin` was written by qlinear 0.1.0 (format version 1, commit e660b8e)
/// before the format gained codebook layers. It must keep loading to the same weights:
/// the CRC-32 of each layer's dequantized f32 weights and bias bits was recorded then.
#[test]
fn a_version_1_file_still_loads_to_the_same_weights() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1.qlin");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    let model = QuantizedModel::load(&path, &dev()).unwrap();
    let want = [
        (
            "int8.g32.f16.exact",
            0x1543a7fd,
            0xc5f8213a,
            8,
            ActivationMode::Exact,
        ),
        (
            "int4.g32.f16.exact",
            0x5b196e32,
            0x00000000,
            4,
            ActivationMode::Exact,
        ),
        (
            "int8.channel.f32.asym.dyn8",
            0xc30df91c,
            0xcb28c928,
            8,
            ActivationMode::Dyn8,
        ),
        (
            "int4.g64.f16.asym.dyn8",
            0xea60b25c,
            0x1dcf3bb2,
            4,
            ActivationMode::Dyn8,
        ),
        (
            "int4.tensor.f32.exact",
            0x40acbaef,
            0x00000000,
            4,
            ActivationMode::Exact,
        ),
    ];
    assert_eq!(model.len(), want.len());
    for (i, (name, w_crc, b_crc, bits, mode)) in want.into_iter().enumerate() {
        assert_eq!(model.name(i), Some(name));
        let l = model.get(name).unwrap();
        let w: Vec<u8> = l
            .weight_quantized()
            .dequantize()
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect();
        let b: Vec<u8> = l
            .bias()
            .map(|b| b.to_f32_vec())
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect();
        assert_eq!(crc32(&w), w_crc, "{name} weights");
        assert_eq!(crc32(&b), b_crc, "{name} bias");
        assert_eq!(l.bits(), bits, "{name}");
        assert_eq!(l.activation_mode(), mode, "{name}");
    }
}

/// Byte offset of layer record `i`.
fn record(i: usize) -> usize {
    32 + 128 * i
}

#[test]
fn version_2_files_hold_codebook_layers_and_per_row_dyn8() {
    let dev = dev();
    let plain = layer(&dev, 3, 40, false, QuantConfig::int8(), 10);
    let cb = layer(
        &dev,
        5,
        70,
        true,
        QuantConfig {
            activations: ActivationMode::Dyn8,
            ..QuantConfig::int4()
        },
        11,
    );
    let row = layer(
        &dev,
        4,
        40,
        false,
        QuantConfig {
            activations: ActivationMode::Dyn8PerRow,
            ..QuantConfig::int4_uniform()
        },
        12,
    );
    let version = |b: &[u8]| u32::from_le_bytes(b[8..12].try_into().unwrap());
    // Only what version 1 can say: written as version 1, for older readers.
    let mut b = Vec::new();
    io::write_model(&mut b, &[("plain", &plain)]).unwrap();
    assert_eq!(version(&b), 1);
    let mut good = Vec::new();
    io::write_model(&mut good, &[("cb", &cb), ("row", &row)]).unwrap();
    assert_eq!(version(&good), 2);
    let m = QuantizedModel::from_bytes(&good, &dev).unwrap();
    for (name, orig) in [("cb", &cb), ("row", &row)] {
        let l = m.get(name).unwrap();
        assert_eq!(l.weight_quantized(), orig.weight_quantized(), "{name}");
        assert_eq!(l.activation_mode(), orig.activation_mode(), "{name}");
        assert_eq!(l.format(), orig.format(), "{name}");
        assert!(same_bits(&forward(l, 3), &forward(orig, 3)), "{name}");
    }
    assert_eq!(m.get("cb").unwrap().format(), WeightFormat::Cb4);

    // The codebook lives in the zero-point section: 16 levels.
    let r0 = record(0);
    let levels_at = u64::from_le_bytes(good[r0 + 72..r0 + 80].try_into().unwrap()) as usize;
    let levels_len = u64::from_le_bytes(good[r0 + 80..r0 + 88].try_into().unwrap());
    assert_eq!(levels_len, 16);
    let levels: Vec<i8> = good[levels_at..levels_at + 16]
        .iter()
        .map(|&b| b as i8)
        .collect();
    assert_eq!(levels, qlinear::quant::codebook::CB4_LEVELS);

    let cases: Vec<(&str, usize, Vec<u8>, &str)> = vec![
        ("code format 2", r0 + 18, vec![2], "code format"),
        ("codebook with 8 bits", r0 + 12, vec![8], "codebook"),
        ("codebook asymmetric", r0 + 14, vec![0], "codebook"),
        ("activation 3", r0 + 16, vec![3], "activation"),
        (
            "levels length 15",
            r0 + 80,
            15u64.to_le_bytes().to_vec(),
            "length",
        ),
    ];
    for (what, at, new, want) in cases {
        let mut b = good.clone();
        b[at..at + new.len()].copy_from_slice(&new);
        fix_header_crc(&mut b);
        let msg = expect_corrupt(&b, &dev, what);
        assert!(msg.contains(want), "{what}: message {msg:?} lacks {want:?}");
    }
    // Levels out of order, behind valid checksums: the core rejects them, named by layer.
    let mut b = good.clone();
    b.swap(levels_at + 3, levels_at + 4);
    fix_section_crcs(&mut b);
    fix_header_crc(&mut b);
    let msg = expect_corrupt(&b, &dev, "levels out of order");
    assert!(msg.contains("cb") && msg.contains("ascending"), "{msg}");
    // A version-1 header cannot carry version-2 fields.
    let mut b = good.clone();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    expect_corrupt(&b, &dev, "version 1 with a codebook");
}

/// A checkpoint of `tensors` f32 `[n, k]` weights named `layers.{i}.weight`, written as one
/// safetensors file.
fn checkpoint_bytes(tensors: &[(String, usize, usize)], seed: u64) -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let mut rng = SplitMix64::new(seed);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, n, k)| {
            let v: Vec<u8> = (0..n * k)
                .flat_map(|_| (0.02 * rng.student_t(4)).to_le_bytes())
                .collect();
            (name.clone(), vec![*n, *k], v)
        })
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, v)| {
            (
                n.as_str(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), v).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn sharded_checkpoints_by_index_or_directory_match_the_single_file() {
    let dev = dev();
    let dir = scratch("sharded");
    let names: Vec<(String, usize, usize)> = (0..4)
        .map(|i| (format!("layers.{i}.weight"), 16 + i, 64))
        .collect();
    let single = dir.join("model.safetensors");
    std::fs::write(&single, checkpoint_bytes(&names, 9)).unwrap();
    // The same tensors in two shards with an index, as Hugging Face writes them.
    let shards = dir.join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    let mut map = Vec::new();
    for (s, part) in names.chunks(2).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", s + 1);
        // Same seed stream: regenerate all and keep this shard's tensors.
        let all = Checkpoint::open(&single).unwrap();
        use safetensors::tensor::TensorView;
        let owned: Vec<(String, Vec<usize>, Vec<u8>)> = part
            .iter()
            .map(|(n, r, c)| {
                let t = all.get(n).unwrap();
                let v: Vec<u8> = all
                    .read_f32(t)
                    .unwrap()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect();
                (n.clone(), vec![*r, *c], v)
            })
            .collect();
        let views: Vec<(&str, TensorView<'_>)> = owned
            .iter()
            .map(|(n, s, v)| {
                (
                    n.as_str(),
                    TensorView::new(safetensors::Dtype::F32, s.clone(), v).unwrap(),
                )
            })
            .collect();
        std::fs::write(
            shards.join(&file),
            safetensors::serialize(views, None).unwrap(),
        )
        .unwrap();
        for (n, _, _) in part {
            map.push(format!("\"{n}\": \"{file}\""));
        }
    }
    std::fs::write(
        shards.join("model.safetensors.index.json"),
        format!(
            "{{\"metadata\": {{}}, \"weight_map\": {{{}}}}}",
            map.join(", ")
        ),
    )
    .unwrap();
    let opts = ImportOptions {
        config: QuantConfig::int4(),
        include: vec![],
        skip_bad: false,
    };
    let run = |input: &Path, out: &str| {
        let out = dir.join(out);
        quantize_checkpoint(input, &out, &opts, &dev, |_| {}).unwrap();
        std::fs::read(out).unwrap()
    };
    let want = run(&single, "single.qlin");
    assert_eq!(
        run(&shards.join("model.safetensors.index.json"), "index.qlin"),
        want
    );
    assert_eq!(run(&shards, "dir.qlin"), want);
    let ckpt = Checkpoint::open(&shards).unwrap();
    assert_eq!(ckpt.shards().count(), 2);
    let order: Vec<&str> = ckpt.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        order,
        [
            "layers.0.weight",
            "layers.1.weight",
            "layers.2.weight",
            "layers.3.weight"
        ]
    );
    // An index naming a missing shard, or a path outside its directory, is a clean error.
    std::fs::write(
        dir.join("bad.safetensors.index.json"),
        "{\"weight_map\": {\"a\": \"../x.safetensors\"}}",
    )
    .unwrap();
    assert!(Checkpoint::open(dir.join("bad.safetensors.index.json")).is_err());
}

#[test]
fn a_write_that_fails_leaves_the_old_output_byte_identical() {
    // RLIMIT_FSIZE (`ulimit -f`, in 512-byte blocks here) makes the write fail with EFBIG
    // part-way, as a full disk would; SIGXFSZ is ignored so the write returns the error.
    let dir = scratch("fsize");
    let input = dir.join("in.safetensors");
    let names: Vec<(String, usize, usize)> =
        (0..2).map(|i| (format!("l{i}.weight"), 256, 512)).collect();
    std::fs::write(&input, checkpoint_bytes(&names, 3)).unwrap();
    let out = dir.join("out.qlin");
    let old = b"a good old model file".repeat(100);
    std::fs::write(&out, &old).unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 64; exec '{}' quantize '{}' -o '{}' --format int8 --threads 1",
            env!("CARGO_BIN_EXE_qlinear"),
            input.display(),
            out.display()
        ))
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("File too large") || stderr.contains("too large"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), old);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn killing_the_quantizer_never_tears_the_output() {
    let dir = scratch("kill");
    let input = dir.join("in.safetensors");
    let names: Vec<(String, usize, usize)> = (0..6)
        .map(|i| (format!("l{i}.weight"), 256, 1024))
        .collect();
    std::fs::write(&input, checkpoint_bytes(&names, 4)).unwrap();
    let out = dir.join("out.qlin");
    let old = b"the previous model".repeat(1000);
    let quantize = || {
        Command::new(env!("CARGO_BIN_EXE_qlinear"))
            .args([
                "quantize",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ])
            .args(["--format", "cb4", "--threads", "1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole run takes, to spread the kills over it.
    std::fs::write(&out, &old).unwrap();
    let t = std::time::Instant::now();
    assert!(quantize().wait().unwrap().success());
    let full = t.elapsed();
    let complete = std::fs::read(&out).unwrap();
    let dev = dev();
    let mut rng = SplitMix64::new(77);
    let (mut killed_before, mut finished) = (0, 0);
    for _ in 0..20 {
        std::fs::write(&out, &old).unwrap();
        let mut child = quantize();
        std::thread::sleep(full.mul_f32(rng.uniform(0.0, 1.1)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let now = std::fs::read(&out).unwrap();
        if now == old {
            killed_before += 1;
        } else {
            // Anything else must be the complete new file.
            assert_eq!(now, complete, "a torn or different file at the output path");
            QuantizedModel::load(&out, &dev).unwrap();
            finished += 1;
        }
    }
    assert_eq!(killed_before + finished, 20);
    assert!(killed_before > 0, "no kill landed before the rename");
}

#[test]
fn loading_a_file_that_changes_underneath_never_crashes() {
    // One thread truncates, extends and rewrites the file in a loop; 1000 loads run
    // meanwhile. Each must return a layer set or an error: no signal, no panic.
    let dev = dev();
    let dir = scratch("racing");
    let path = dir.join("model.qlin");
    let l = layer(&dev, 64, 256, true, QuantConfig::int8(), 5);
    let good = io::to_bytes(&[("a", &l), ("b", &l)]).unwrap();
    std::fs::write(&path, &good).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut ok, mut errors) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = SplitMix64::new(1);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                match rng.next_u64() % 3 {
                    0 => f.set_len(rng.next_u64() % good.len() as u64).unwrap(),
                    1 => f.set_len(good.len() as u64 + 4096).unwrap(),
                    _ => std::fs::write(&path, &good).unwrap(),
                }
            }
        });
        for _ in 0..1000 {
            match QuantizedModel::load(&path, &dev) {
                Ok(m) => {
                    assert_eq!(m.len(), 2);
                    ok += 1;
                }
                Err(Error::Corrupt(_) | Error::Io(_)) => errors += 1,
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(ok + errors, 1000);
}
