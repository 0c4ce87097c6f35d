//! Generates the bad-input sweep of the C ABI from `include/qlinear.h`: for every function
//! in the header, a valid baseline call and one call per bad input — each pointer NULL in
//! turn, each length 0, `SIZE_MAX` and off by one, each enum or width out of range, NaN and
//! Inf in every float input. Each call must return a `qlinear_status` and, when it fails, a
//! non-empty `qlinear_last_error_message()`. Functions are found by parsing the header, so a
//! new one is swept without editing this file; arguments are chosen by type and name (a new
//! name falls back to a generic value).
//!
//! Not swept: calls on a freed handle (the contract makes them undefined), and the free
//! functions with anything but NULL (they would free the shared handles).

/// One parameter of a prototype.
#[derive(Debug, Clone)]
pub struct Param {
    pub ty: String,
    pub name: String,
}

/// One function of the header.
#[derive(Debug, Clone)]
pub struct Proto {
    pub ret: String,
    pub name: String,
    pub params: Vec<Param>,
}

/// Every function prototype of a cbindgen header.
pub fn parse_header(header: &str) -> Vec<Proto> {
    // Drop comments, then read `ret name(params);` declarations.
    let mut text = String::new();
    let mut rest = header;
    while let Some(i) = rest.find("/*") {
        text.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        rest = &rest[rest.find("*/").map_or(rest.len(), |j| j + 2)..];
    }
    text.push_str(rest);
    let mut protos = Vec::new();
    for chunk in text.split(';') {
        // Drop preprocessor lines and anything up to an opening `extern "C" {`.
        let lines: String = chunk
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let decl = lines[lines.rfind('{').map_or(0, |i| i + 1)..].trim();
        let Some(open) = decl.find("(qlinear").or_else(|| decl.find('(')) else {
            continue;
        };
        let head = &decl[..open];
        let Some(name_at) = head.rfind("qlinear_") else {
            continue;
        };
        let name = head[name_at..].trim().to_string();
        if head.contains("typedef") || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let ret = head[..name_at].trim().to_string();
        if ret.is_empty() || ret.contains('}') || ret.contains('#') {
            continue;
        }
        let args = &decl[open + 1..decl.rfind(')').unwrap_or(decl.len())];
        let params = args
            .split(',')
            .map(|a| a.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|a| a != "void" && !a.is_empty())
            .map(|a| {
                let split = a
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                Param {
                    ty: a[..split].trim().to_string(),
                    name: a[split..].to_string(),
                }
            })
            .collect();
        protos.push(Proto { ret, name, params });
    }
    protos
}

/// Pointer parameters that may be NULL (documented as "NULL = none" or "NULL = default").
const OPTIONAL: &[&str] = &[
    "bias",
    "zero_points",
    "isa",
    "run",
    "run_ctx",
    "alloc",
    "free",
    "alloc_ctx",
];

/// Parameters whose bad value is valid in the sweep's setting: the length of a buffer that is
/// NULL in the baseline (and ignored then), and the copy-out of the (empty) zero points of
/// the symmetric layer (an empty copy accepts any buffer, NULL too).
const EMPTY_OK: &[(&str, &str)] = &[
    ("qlinear_quantized_linear_from_parts", "zero_points_len"),
    ("qlinear_quantized_linear_copy_zero_points", "dst"),
    ("qlinear_quantized_linear_copy_zero_points", "dst_len"),
];

/// Handle types and the globals holding a live one, and each type's free function.
const HANDLES: &[(&str, &str, &str)] = &[
    ("qlinear_device", "g_dev", "qlinear_device_free"),
    ("qlinear_linear", "g_lin", "qlinear_linear_free"),
    (
        "qlinear_quantized_linear",
        "g_q",
        "qlinear_quantized_linear_free",
    ),
    ("qlinear_quant_config", "g_cfg", "qlinear_quant_config_free"),
    ("qlinear_model", "g_model", "qlinear_model_free"),
];

fn handle_of(ty: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    let base = ty.trim_start_matches("const ").trim_end_matches(['*', ' ']);
    HANDLES.iter().find(|h| h.0 == base)
}

/// The baseline value of a `size_t` parameter of `func`.
fn size_value(func: &str, name: &str) -> String {
    let codebook = func.contains("codebook");
    match name {
        "out_features" => "N".into(),
        "in_features" => "K".into(),
        "rows" => "R".into(),
        "weights_len" => "N * K".into(),
        "x_len" => "R * K".into(),
        "y_len" => "R * N".into(),
        "bias_len" => "N".into(),
        "codes_len" if codebook => "N * K / 2".into(),
        "codes_len" => "N * K".into(),
        "scales_len" => "N * K / 32".into(),
        "zero_points_len" => "0".into(),
        "levels_len" => "16".into(),
        "group_size" => "32".into(),
        "threads" => "1".into(),
        "count" => "2".into(),
        "index" => "0".into(),
        "len" => "g_file_len".into(),
        "dst_len" => "BUF".into(),
        _ => "1".into(),
    }
}

/// The baseline value of a `uint32_t` parameter.
fn u32_value(name: &str) -> &'static str {
    match name {
        "bits" => "8",
        "granularity" => "QLINEAR_GRANULARITY_GROUP",
        "scale_dtype" => "QLINEAR_SCALE_F16",
        "format" => "QLINEAR_FORMAT_INT8",
        _ => "0",
    }
}

/// How one parameter is passed: a baseline expression, an output local to declare, and the
/// bad values to try.
struct Arg {
    base: String,
    /// `(type, local)` of an output the call writes.
    out: Option<(String, String)>,
    /// `(label, value, must_fail)`: a NULL required pointer, an absurd length, an unknown
    /// enum and non-finite data must fail; a zero or off-by-one length may be valid.
    bad: Vec<(&'static str, String, bool)>,
}

fn arg_for(func: &str, i: usize, p: &Param) -> Arg {
    let ty = p.ty.as_str();
    let local = format!("o{i}");
    let ptr_bad = || vec![("NULL", "NULL".to_string(), true)];
    let is_out = |base: &str| Arg {
        base: format!("&{local}"),
        out: Some((base.to_string(), local.clone())),
        bad: ptr_bad(),
    };
    if ty.contains("qlinear_quantized_linear *const *") {
        return Arg {
            base: "g_layers".into(),
            out: None,
            bad: ptr_bad(),
        };
    }
    if let Some(h) = handle_of(ty) {
        return match ty.matches('*').count() {
            2 => is_out(&format!("{} *", h.0)),
            _ => Arg {
                base: h.1.into(),
                out: None,
                bad: ptr_bad(),
            },
        };
    }
    let input = |base: &str, extra: Vec<(&'static str, String, bool)>| {
        let mut bad = ptr_bad();
        bad.extend(extra);
        Arg {
            base: base.into(),
            out: None,
            bad,
        }
    };
    match (ty, p.name.as_str()) {
        ("size_t", n) => {
            let v = size_value(func, n);
            Arg {
                base: v.clone(),
                out: None,
                bad: vec![
                    ("0", "0".into(), false),
                    ("SIZE_MAX", "SIZE_MAX".into(), true),
                    ("-1", format!("({v}) - 1"), false),
                    ("+1", format!("({v}) + 1"), false),
                ],
            }
        }
        ("uint32_t", n) => Arg {
            base: u32_value(n).into(),
            out: None,
            bad: vec![
                ("99", "99u".into(), true),
                ("UINT32_MAX", "UINT32_MAX".into(), true),
            ],
        },
        ("bool", _) => Arg {
            base: "true".into(),
            out: None,
            bad: vec![("false", "false".into(), false)],
        },
        ("const float *", _) => input(
            "g_f",
            vec![
                ("NaN", "g_f_nan".into(), true),
                ("Inf", "g_f_inf".into(), true),
            ],
        ),
        ("const uint16_t *", _) => input(
            "g_h",
            vec![
                ("NaN", "g_h_nan".into(), true),
                ("Inf", "g_h_inf".into(), true),
            ],
        ),
        ("const uint8_t *", "data") => input("g_file", vec![]),
        ("const uint8_t *", _) => input("g_codes", vec![]),
        ("const int8_t *", "levels") => input("g_levels", vec![]),
        ("const int8_t *", _) => Arg {
            base: "NULL".into(),
            out: None,
            bad: vec![],
        },
        ("const char *", "path") => input("g_path", vec![]),
        ("const char *", "isa") => {
            input("\"auto\"", vec![("unknown ISA", "\"sse9\"".into(), true)])
        }
        ("const char *", _) => input("\"q\"", vec![("unknown name", "\"nope\"".into(), true)]),
        ("const char *const *", _) => input("g_names", vec![]),
        ("const char **", _) => is_out("const char *"),
        ("uint8_t **", _) => is_out("uint8_t *"),
        ("bool *", _) => is_out("bool"),
        ("size_t *", _) => is_out("size_t"),
        ("uint32_t *", _) => is_out("uint32_t"),
        ("float *", _) => input("g_out_f", vec![]),
        ("uint16_t *", _) => input("g_out_h", vec![]),
        ("int8_t *", _) => input("g_out_i8", vec![]),
        ("uint8_t *", _) => input("g_out_u8", vec![]),
        // Callbacks and their contexts: none (the library owns its threads and memory).
        _ => Arg {
            base: "NULL".into(),
            out: None,
            bad: vec![],
        },
    }
}

/// The C function that sweeps `p`.
fn sweep_function(p: &Proto) -> String {
    let mut s = format!("static void sweep_{}(void) {{\n", p.name);
    if p.ret == "void" {
        // The free functions (the only ones returning nothing): only NULL, as anything else
        // would free a shared handle.
        let nulls: Vec<&str> = p
            .params
            .iter()
            .map(|q| if q.ty.contains('*') { "NULL" } else { "0" })
            .collect();
        s += &format!(
            "    {}({});\n    g_calls++;\n}}\n",
            p.name,
            nulls.join(", ")
        );
        return s;
    }
    if p.params.is_empty() {
        s += &format!(
            "    if ({}() == NULL) fail(\"{}\", \"returns NULL\");\n    g_calls++;\n}}\n",
            p.name, p.name
        );
        return s;
    }
    let args: Vec<Arg> = p
        .params
        .iter()
        .enumerate()
        .map(|(i, q)| arg_for(&p.name, i, q))
        .collect();
    let mut variants: Vec<(String, Vec<String>, bool)> = vec![(
        "baseline".into(),
        args.iter().map(|a| a.base.clone()).collect(),
        false,
    )];
    for (i, a) in args.iter().enumerate() {
        for (label, v, must_fail) in &a.bad {
            let mut call: Vec<String> = args.iter().map(|a| a.base.clone()).collect();
            call[i] = v.clone();
            let pname = p.params[i].name.as_str();
            let optional = (OPTIONAL.contains(&pname) && v == "NULL")
                || EMPTY_OK.contains(&(p.name.as_str(), pname));
            variants.push((
                format!("{} = {label}", p.params[i].name),
                call,
                *must_fail && !optional,
            ));
        }
    }
    for (label, call, must_fail) in variants {
        s += "    {\n";
        for a in &args {
            if let Some((ty, local)) = &a.out {
                s += &format!("        {ty} {local} = 0;\n        (void){local};\n");
            }
        }
        s += &format!(
            "        qlinear_status st = {}({});\n        check(\"{}\", \"{}\", st, {});\n",
            p.name,
            call.join(", "),
            p.name,
            label.replace('"', "\\\""),
            if must_fail { 1 } else { 0 }
        );
        // Free what a successful call handed out.
        for a in &args {
            if let Some((ty, local)) = &a.out {
                if let Some(h) = handle_of(ty) {
                    s += &format!("        if ({local}) {}({local});\n", h.2);
                } else if ty == "uint8_t *" {
                    let len = args
                        .iter()
                        .filter_map(|b| b.out.as_ref())
                        .find(|(t, _)| t == "size_t")
                        .map_or("0".to_string(), |(_, l)| l.clone());
                    s += &format!("        if ({local}) qlinear_bytes_free({local}, {len});\n");
                }
            }
        }
        s += "    }\n";
    }
    s += "}\n";
    s
}

/// The whole sweep program for `protos`.
pub fn generate(protos: &[Proto]) -> String {
    let mut s = String::from(PRELUDE);
    for p in protos {
        s += &sweep_function(p);
    }
    s += "\nint main(void) {\n    setup();\n";
    for p in protos {
        s += &format!("    sweep_{}();\n", p.name);
    }
    s += &format!(
        "    teardown();\n    printf(\"sweep: %zu calls over {} functions, %zu failures\\n\", g_calls, g_failures);\n    return g_failures != 0;\n}}\n",
        protos.len()
    );
    s
}

const PRELUDE: &str = r#"/* Generated by tests/sweep_gen from include/qlinear.h: do not edit. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlinear.h"

enum { N = 8, K = 64, R = 2, BUF = 8192 };

static qlinear_device *g_dev;
static qlinear_linear *g_lin;
static qlinear_quantized_linear *g_q, *g_q2;
static qlinear_quant_config *g_cfg;
static qlinear_model *g_model;
static const qlinear_quantized_linear *g_layers[3];
static const char *const g_names[3] = {"q", "r", "x"};
static const char *g_path = "qlinear_sweep.qlin";
static float g_f[BUF], g_f_nan[BUF], g_f_inf[BUF], g_out_f[BUF];
static uint16_t g_h[BUF], g_h_nan[BUF], g_h_inf[BUF], g_out_h[BUF];
static uint8_t g_codes[BUF], g_out_u8[BUF];
static int8_t g_out_i8[BUF];
static const int8_t g_levels[16] = {-127, -97, -76, -60, -46, -34, -22, -11, 0, 12, 23, 35, 48, 62, 79, 103};
static uint8_t *g_file;
static size_t g_file_len, g_calls, g_failures;

static void fail(const char *fn, const char *what) {
    printf("FAIL %s: %s\n", fn, what);
    g_failures++;
}

/* A documented status, a message whenever it is not OK, and a failure where one is due. */
static void check(const char *fn, const char *variant, qlinear_status st, int must_fail) {
    g_calls++;
    if (must_fail && st == QLINEAR_OK) {
        printf("FAIL %s (%s): succeeded\n", fn, variant);
        g_failures++;
    }
    if (st == QLINEAR_ERR_INTERNAL) {
        printf("FAIL %s (%s): internal error (a caught panic): %s\n", fn, variant,
               qlinear_last_error_message());
        g_failures++;
    }
    if ((unsigned)st > QLINEAR_ERR_INTERNAL) {
        printf("FAIL %s (%s): status %d is not a qlinear_status\n", fn, variant, (int)st);
        g_failures++;
    } else if (st != QLINEAR_OK) {
        const char *m = qlinear_last_error_message();
        if (m == NULL || m[0] == '\0') {
            printf("FAIL %s (%s): status %d with an empty message\n", fn, variant, (int)st);
            g_failures++;
        }
    }
}

static void require(qlinear_status st, const char *what) {
    if (st != QLINEAR_OK) {
        printf("setup failed: %s: %s\n", what, qlinear_last_error_message());
        exit(2);
    }
}

static void setup(void) {
    size_t i;
    uint8_t *bytes = NULL;
    size_t len = 0;
    for (i = 0; i < BUF; i++) {
        g_f[i] = 0.01f * (float)((int)(i % 17) - 8);
        g_f_nan[i] = (i == 3) ? NAN : g_f[i];
        g_f_inf[i] = (i == 5) ? -INFINITY : g_f[i];
        g_h[i] = 0x3C00;  /* 1.0 in f16 */
        /* 0x7FC0 is NaN as f16 and as bf16; 0x7F80 is bf16 +Inf (an f16 NaN), 0x7C00 f16 +Inf. */
        g_h_nan[i] = (i == 3) ? 0x7FC0 : 0x3C00;
        g_h_inf[i] = (i == 5) ? 0x7F80 : (i == 6) ? 0x7C00 : 0x3C00;
        g_codes[i] = (uint8_t)(i * 7);
    }
    for (i = 0; i < N * K / 32; i++) g_f[i] = 0.25f; /* also valid f16 scales */
    require(qlinear_device_create(1, &g_dev), "device");
    require(qlinear_linear_create(g_dev, g_f, N * K, N, K, NULL, 0, &g_lin), "linear");
    require(qlinear_quant_config_create_int8(&g_cfg), "config");
    require(qlinear_quantized_linear_quantize(g_dev, g_f, N * K, N, K, NULL, 0, g_cfg, &g_q), "layer");
    require(qlinear_quantized_linear_quantize(g_dev, g_f, N * K, N, K, g_f, N, g_cfg, &g_q2), "layer 2");
    g_layers[0] = g_q;
    g_layers[1] = g_q2;
    g_layers[2] = NULL;
    require(qlinear_model_save_memory(g_layers, g_names, 2, &bytes, &len), "save_memory");
    g_file = malloc(len + 1); /* one spare byte: the off-by-one length stays readable */
    memcpy(g_file, bytes, len);
    g_file_len = len;
    qlinear_bytes_free(bytes, len);
    require(qlinear_model_load_memory(g_file, g_file_len, g_dev, &g_model), "model");
    require(qlinear_model_save_file(g_path, g_layers, g_names, 2), "save_file");
}

static void teardown(void) {
    qlinear_model_free(g_model);
    qlinear_quantized_linear_free(g_q);
    qlinear_quantized_linear_free(g_q2);
    qlinear_quant_config_free(g_cfg);
    qlinear_linear_free(g_lin);
    qlinear_device_free(g_dev);
    free(g_file);
    remove(g_path);
}

"#;
