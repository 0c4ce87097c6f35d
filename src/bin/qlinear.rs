//! `qlinear`: quantize safetensors weights into a qlinear file, inspect one, time its layers.
//!
//! Exit codes: 0 success, 1 a file could not be read, written or parsed, 2 bad arguments.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use qlinear::io::checkpoint::Checkpoint;
use qlinear::io::import::{plan, quantize_checkpoint, Event, ImportOptions, Planned};
use qlinear::{
    ActivationMode, CpuDevice, Granularity, QuantConfig, QuantizedModel, ScaleDType, WeightFormat,
};

const USAGE: &str = "\
usage:
  qlinear quantize CHECKPOINT -o OUT.qlin [--format int8|int4|cb4] [--bits 4|8]
                   [--group N|channel|tensor] [--asym] [--f32-scales]
                   [--activations exact|dyn8|dyn8-row] [--dyn8] [--include PATTERN]...
                   [--threads N] [--skip-bad] [--dry-run]
  qlinear inspect FILE
  qlinear bench FILE [--threads N]

quantize: CHECKPOINT is a .safetensors file, a sharded *.safetensors.index.json, or a
directory holding either. Every 2-D f32/f16/bf16 tensor (or those matching an --include glob,
`*` = any run of characters) becomes a layer named like the tensor without `.weight`, in
checkpoint order; a 1-D tensor named like the weight with `weight` -> `bias` becomes its bias.
A bad tensor (NaN/Inf, not f32/f16/bf16, not 2-D when --include names it) fails the run,
or is reported and left out with --skip-bad. --dry-run lists what would be quantized and the
expected size. The output is written once, at the end, crash-safely: a failure or a kill
leaves any existing OUT untouched. Defaults: --format int8,
--group 32, symmetric, f16 scales, exact activations. cb4 is the 4-bit default (16
non-uniform levels); --bits 4 is the uniform int4 grid, --bits 8 is int8. --dyn8 is
--activations dyn8 (int8 activations, one scale per 32 inputs).";

/// A failure and the exit code it maps to.
enum Fail {
    Usage(String),
    File(String),
}

impl From<qlinear::Error> for Fail {
    fn from(e: qlinear::Error) -> Self {
        Fail::File(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail::Usage(m)) => {
            eprintln!("qlinear: {m}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Fail::File(m)) => {
            eprintln!("qlinear: {m}");
            ExitCode::from(1)
        }
    }
}

fn usage(m: impl Into<String>) -> Fail {
    Fail::Usage(m.into())
}

/// Command-line arguments after the subcommand: positionals and `--flag [value]` options.
struct Args<'a> {
    rest: std::slice::Iter<'a, String>,
}

impl<'a> Args<'a> {
    fn value(&mut self, flag: &str) -> Result<&'a str, Fail> {
        self.rest
            .next()
            .map(String::as_str)
            .ok_or_else(|| usage(format!("{flag} needs a value")))
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, Fail> {
    v.parse()
        .map_err(|_| usage(format!("{flag}: not a valid number: {v:?}")))
}

fn device(threads: Option<usize>) -> Result<CpuDevice, Fail> {
    Ok(match threads {
        Some(t) => CpuDevice::with_threads(t)?,
        None => CpuDevice::new()?,
    })
}

fn run(args: &[String]) -> Result<(), Fail> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(usage("missing command"));
    };
    let mut it = Args { rest: rest.iter() };
    let mut positional = Vec::new();
    let mut output = None;
    let mut format = WeightFormat::Int8;
    let mut granularity = Granularity::Group(32);
    let mut symmetric = true;
    let mut scale_dtype = ScaleDType::F16;
    let mut activations = ActivationMode::Exact;
    let mut include = Vec::new();
    let mut threads = None;
    let (mut skip_bad, mut dry_run) = (false, false);
    while let Some(a) = it.rest.next() {
        match a.as_str() {
            "-o" | "--output" => output = Some(PathBuf::from(it.value(a)?)),
            "--bits" => {
                format = match parse_num::<u8>(a, it.value(a)?)? {
                    8 => WeightFormat::Int8,
                    4 => WeightFormat::Int4,
                    b => return Err(usage(format!("--bits must be 4 or 8, got {b}"))),
                }
            }
            "--format" => {
                format = WeightFormat::parse(it.value(a)?).map_err(|e| usage(e.to_string()))?
            }
            "--activations" => {
                activations =
                    ActivationMode::parse(it.value(a)?).map_err(|e| usage(e.to_string()))?
            }
            "--group" => {
                granularity = match it.value(a)? {
                    "channel" => Granularity::PerChannel,
                    "tensor" => Granularity::PerTensor,
                    v => Granularity::Group(parse_num(a, v)?),
                }
            }
            "--asym" => symmetric = false,
            "--f32-scales" => scale_dtype = ScaleDType::F32,
            "--dyn8" => activations = ActivationMode::Dyn8,
            "--include" => include.push(it.value(a)?.to_string()),
            "--threads" => threads = Some(parse_num(a, it.value(a)?)?),
            "--skip-bad" => skip_bad = true,
            "--dry-run" => dry_run = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(usage(format!("unknown option {f}")))
            }
            p => positional.push(p.to_string()),
        }
    }
    let one_file = |positional: &[String]| match positional {
        [f] => Ok(PathBuf::from(f)),
        [] => Err(usage(format!("{cmd}: missing FILE"))),
        _ => Err(usage(format!(
            "{cmd}: expected one FILE, got {}",
            positional.len()
        ))),
    };
    match cmd.as_str() {
        "quantize" => {
            let input = one_file(&positional)?;
            let output = output.unwrap_or_default();
            if output.as_os_str().is_empty() && !dry_run {
                return Err(usage("quantize: missing -o OUT"));
            }
            let config = QuantConfig::builder()
                .format(format)
                .granularity(granularity)
                .symmetric(symmetric)
                .scale_dtype(scale_dtype)
                .activations(activations)
                .build()
                .map_err(|e| usage(e.to_string()))?;
            let options = ImportOptions {
                config,
                include,
                skip_bad,
            };
            if dry_run {
                dry(&input, &options)
            } else {
                quantize(&input, &output, options, threads)
            }
        }
        "inspect" => inspect(&one_file(&positional)?),
        "bench" => bench(&one_file(&positional)?, threads),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        c => Err(usage(format!("unknown command {c:?}"))),
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// `--dry-run`: what would be quantized, in order, and the expected output size.
fn dry(input: &PathBuf, options: &ImportOptions) -> Result<(), Fail> {
    let ckpt = Checkpoint::open(input)?;
    let planned = plan(&ckpt, options)?;
    let (mut layers, mut source, mut after) = (0, 0, 0);
    for p in &planned {
        match p {
            Planned::Layer {
                name,
                weight,
                bias,
                quantized_bytes,
            } => {
                layers += 1;
                source += weight.len + bias.as_ref().map_or(0, |b| b.len);
                after += quantized_bytes + bias.as_ref().map_or(0, |b| 4 * b.elements());
                println!(
                    "  {name}: {}x{} {}{} -> {:.2} MiB",
                    weight.shape[0],
                    weight.shape[1],
                    weight.dtype.name(),
                    if bias.is_some() { " + bias" } else { "" },
                    mib(*quantized_bytes)
                );
            }
            Planned::Bad { name, reason } => println!("  {name}: BAD ({reason})"),
        }
    }
    println!(
        "dry run: {layers} layers ({}), {:.2} MiB of source tensors -> about {:.2} MiB",
        options.config.label(),
        mib(source),
        mib(after)
    );
    Ok(())
}

/// `[=====>    ]` of `width` characters for `done` of `total`.
fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    let mut s = "=".repeat(filled);
    if filled < width {
        s.push('>');
        s.push_str(&" ".repeat(width - filled - 1));
    }
    s
}

fn quantize(
    input: &PathBuf,
    output: &PathBuf,
    options: ImportOptions,
    threads: Option<usize>,
) -> Result<(), Fail> {
    let dev = device(threads)?;
    let start = Instant::now();
    // A progress bar with an ETA on a terminal, one line per layer otherwise (logs, pipes).
    let tty = std::io::stderr().is_terminal();
    let report = quantize_checkpoint(input, output, &options, &dev, |e| match e {
        Event::Started {
            index,
            total,
            name,
            weights_done,
            weights_total,
        } if tty => {
            let t = start.elapsed().as_secs_f64();
            let eta = if *weights_done > 0 {
                format!(
                    "ETA {:.0} s",
                    t * (*weights_total - weights_done) as f64 / *weights_done as f64
                )
            } else {
                "ETA -".into()
            };
            eprint!(
                "\r\x1b[K[{}] {}/{total} {eta}  {name}",
                bar(*weights_done, *weights_total, 30),
                index + 1
            );
            let _ = std::io::stderr().flush();
        }
        Event::Done {
            index,
            total,
            layer: l,
        } if !tty => println!(
            "[{}/{total}] {} {}x{} ... {:.1} s",
            index + 1,
            l.name,
            l.shape[0],
            l.shape[1],
            l.seconds
        ),
        Event::Skipped { name, reason } => {
            if tty {
                eprint!("\r\x1b[K");
            }
            println!("skipped {name}: {reason}");
        }
        _ => {}
    })?;
    if tty {
        eprintln!("\r\x1b[K[{}] done", bar(1, 1, 30));
    }
    let width = report
        .layers
        .iter()
        .map(|l| l.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "layer", "shape", "MiB", "w err", "y err", "s"
    );
    for l in &report.layers {
        println!(
            "{:<width$} {:>12} {:>10.2} {:>10.3e} {:>10.3e} {:>8.2}",
            l.name,
            format!("{}x{}", l.shape[0], l.shape[1]),
            mib(l.quantized_bytes),
            l.weight_error,
            l.output_error,
            l.seconds
        );
    }
    let before: usize = report.layers.iter().map(|l| l.source_bytes).sum();
    let after = std::fs::metadata(output)
        .map(|m| m.len() as usize)
        .map_err(|e| Fail::File(format!("{}: {e}", output.display())))?;
    let mean = |f: fn(&qlinear::io::import::ImportedLayer) -> f64| {
        report.layers.iter().map(f).sum::<f64>() / report.layers.len() as f64
    };
    let worst = report
        .layers
        .iter()
        .max_by(|a, b| a.weight_error.total_cmp(&b.weight_error))
        .expect("at least one layer");
    println!(
        "{} tensors ({}), {before} -> {after} bytes ({:.2}x smaller), relative weight error mean \
         {:.3e}, worst {:.3e} ({}), output error mean {:.3e}; {} skipped; {:.1} s, {:.1} M weights/s",
        report.layers.len(),
        options.config.label(),
        before as f64 / after.max(1) as f64,
        mean(|l| l.weight_error),
        worst.weight_error,
        worst.name,
        mean(|l| l.output_error),
        report.skipped.len(),
        report.seconds,
        report.weights as f64 / report.seconds / 1e6
    );
    Ok(())
}

fn inspect(path: &PathBuf) -> Result<(), Fail> {
    let dev = CpuDevice::with_threads(1)?;
    let model = QuantizedModel::load(path, &dev).map_err(|e| Fail::File(e.to_string()))?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!("{}: {} layers, {size} bytes", path.display(), model.len());
    for (name, l) in model.iter() {
        let label = format!(
            "{}-{}{}",
            l.format().name(),
            l.granularity().name(),
            if l.is_symmetric() { "" } else { "-asym" }
        );
        println!(
            "  {name}: {}x{} {label} scales={} act={} bias={} weight_bytes={} ({:.2} bits/weight)",
            l.out_features,
            l.in_features,
            match l.scale_dtype() {
                ScaleDType::F16 => "f16",
                ScaleDType::F32 => "f32",
            },
            l.activation_mode().name(),
            if l.bias().is_some() { "yes" } else { "no" },
            l.weight_bytes(),
            8.0 * l.weight_bytes() as f64 / (l.out_features * l.in_features) as f64
        );
    }
    Ok(())
}

fn bench(path: &PathBuf, threads: Option<usize>) -> Result<(), Fail> {
    let dev = device(threads)?;
    let model = QuantizedModel::load(path, &dev).map_err(|e| Fail::File(e.to_string()))?;
    println!(
        "{}: {} layers, {} threads",
        path.display(),
        model.len(),
        dev.threads()
    );
    for (name, l) in model.iter() {
        let mut line = format!("  {name} {}x{}:", l.out_features, l.in_features);
        for rows in [1usize, 32] {
            let x: Vec<f32> = (0..rows * l.in_features)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut y = vec![0f32; rows * l.out_features];
            let mut times = Vec::with_capacity(7);
            l.forward_f32(&x, rows, &mut y)?; // warm-up
            for _ in 0..7 {
                let t = Instant::now();
                l.forward_f32(&x, rows, &mut y)?;
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let median = times[times.len() / 2];
            let gflops = 2.0 * (rows * l.in_features * l.out_features) as f64 / median / 1e9;
            line += &format!(
                " batch {rows}: {:.3} ms ({gflops:.1} GFLOP/s);",
                median * 1e3
            );
        }
        println!("{}", line.trim_end_matches(';'));
    }
    Ok(())
}
