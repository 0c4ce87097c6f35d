//! Reading safetensors checkpoints tensor by tensor, without holding them in memory: a single
//! `.safetensors` file, a sharded checkpoint (`*.safetensors.index.json` naming its shards),
//! or a directory holding either. Only the headers are read up front; each tensor is read
//! (into owned memory, never mapped) when asked for.
//!
//! The safetensors layout (huggingface/safetensors, "Format"): an 8-byte little-endian header
//! length `n`, `n` bytes of JSON mapping tensor names to `{dtype, shape, data_offsets}` (plus
//! an optional `__metadata__` object), then the data; offsets are relative to the data start.
//! Every field is checked against the file before it is used.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::os;

/// Largest header accepted (the reference implementation's limit).
const MAX_HEADER: u64 = 100_000_000;

/// A tensor's element type, as safetensors names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    /// Any other type (`I8`, `F64`, `BOOL`...): not importable.
    Other(String),
}

impl Dtype {
    fn parse(s: &str) -> Dtype {
        match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            o => Dtype::Other(o.to_string()),
        }
    }

    /// Bytes per element, when known.
    fn size(&self) -> Option<usize> {
        Some(match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::Other(o) => match o.as_str() {
                "F64" | "I64" | "U64" => 8,
                "I32" | "U32" => 4,
                "I16" | "U16" => 2,
                "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
                _ => return None,
            },
        })
    }

    pub fn is_float(&self) -> bool {
        !matches!(self, Dtype::Other(_))
    }

    pub fn name(&self) -> &str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::Other(o) => o,
        }
    }
}

/// Where one tensor lies.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Index of its shard in [`Checkpoint::shards`].
    pub shard: usize,
    /// Absolute byte offset in the shard, and byte length.
    pub offset: u64,
    pub len: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An opened checkpoint: its shards and every tensor, in checkpoint order (shards in order,
/// tensors by position within a shard).
#[derive(Debug)]
pub struct Checkpoint {
    shards: Vec<(PathBuf, File)>,
    tensors: Vec<TensorInfo>,
    index: HashMap<String, usize>,
}

fn corrupt(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("{}: {msg}", path.display()))
}

/// The tensors of one safetensors file `file` (shard number `shard`).
fn read_header(path: &Path, file: &File, shard: usize) -> Result<Vec<TensorInfo>> {
    let size = file
        .metadata()
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?
        .len();
    let len_bytes = os::read_at(file, path, 0, 8)?;
    let n = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    if n > MAX_HEADER || n + 8 > size {
        return Err(corrupt(
            path,
            format!("header length {n} does not fit the {size}-byte file"),
        ));
    }
    let header = os::read_at(file, path, 8, n as usize)?;
    let json: Value = serde_json::from_slice(&header)
        .map_err(|e| corrupt(path, format!("header is not JSON: {e}")))?;
    let map = json
        .as_object()
        .ok_or_else(|| corrupt(path, "header is not a JSON object"))?;
    let data_start = 8 + n;
    let data_len = size - data_start;
    let mut tensors = Vec::with_capacity(map.len());
    for (name, t) in map {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| corrupt(path, format!("tensor {name:?}: {what}"));
        let dtype = Dtype::parse(t["dtype"].as_str().ok_or_else(|| bad("no dtype"))?);
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("shape is not a list of sizes"))?;
        let offs = t["data_offsets"]
            .as_array()
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
            .ok_or_else(|| bad("data_offsets is not [begin, end]"))?;
        if offs.0 > offs.1 || offs.1 > data_len {
            return Err(bad(&format!(
                "data_offsets {offs:?} outside the {data_len} data bytes"
            )));
        }
        let len = (offs.1 - offs.0) as usize;
        if let Some(es) = dtype.size() {
            let want = shape
                .iter()
                .try_fold(es, |a, &d| a.checked_mul(d))
                .ok_or_else(|| bad("shape overflows"))?;
            if want != len {
                return Err(bad(&format!(
                    "{len} bytes for a {shape:?} {} tensor",
                    dtype.name()
                )));
            }
        }
        tensors.push(TensorInfo {
            name: name.clone(),
            dtype,
            shape,
            shard,
            offset: data_start + offs.0,
            len,
        });
    }
    tensors.sort_by_key(|t| t.offset);
    Ok(tensors)
}

/// The shard files an index (`{"weight_map": {tensor: file}}`) names, in file-name order.
fn index_shards(path: &Path) -> Result<Vec<PathBuf>> {
    let bytes = os::read_file(path)?;
    let json: Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(path, format!("not JSON: {e}")))?;
    let map = json["weight_map"]
        .as_object()
        .ok_or_else(|| corrupt(path, "no weight_map object"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<String> = Vec::new();
    for (tensor, f) in map {
        let f = f
            .as_str()
            .filter(|f| !f.contains('/') && !f.contains('\\') && *f != ".." && !f.is_empty())
            .ok_or_else(|| corrupt(path, format!("tensor {tensor:?}: bad shard file name")))?;
        files.push(f.to_string());
    }
    files.sort();
    files.dedup();
    Ok(files.into_iter().map(|f| dir.join(f)).collect())
}

impl Checkpoint {
    /// Opens a `.safetensors` file, a `*.safetensors.index.json`, or a directory holding an
    /// index (then its shards) or else `.safetensors` files (all of them, by name).
    pub fn open(path: impl AsRef<Path>) -> Result<Checkpoint> {
        let path = path.as_ref();
        let meta =
            std::fs::metadata(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        let is_index = |p: &Path| p.to_string_lossy().ends_with(".safetensors.index.json");
        let files = if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            match entries.iter().find(|p| is_index(p)) {
                Some(index) => index_shards(index)?,
                None => {
                    let st: Vec<PathBuf> = entries
                        .into_iter()
                        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                        .collect();
                    if st.is_empty() {
                        return Err(Error::Io(format!(
                            "{}: no .safetensors file or index in the directory",
                            path.display()
                        )));
                    }
                    st
                }
            }
        } else if is_index(path) {
            index_shards(path)?
        } else {
            vec![path.to_path_buf()]
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut tensors = Vec::new();
        for (i, f) in files.into_iter().enumerate() {
            let file = os::open_regular(&f)?;
            tensors.extend(read_header(&f, &file, i)?);
            shards.push((f, file));
        }
        let mut index = HashMap::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            if index.insert(t.name.clone(), i).is_some() {
                return Err(Error::Corrupt(format!(
                    "tensor {:?} appears in two shards",
                    t.name
                )));
            }
        }
        Ok(Checkpoint {
            shards,
            tensors,
            index,
        })
    }

    /// The shard files, in order.
    pub fn shards(&self) -> impl Iterator<Item = &Path> {
        self.shards.iter().map(|(p, _)| p.as_path())
    }

    /// Every tensor, in checkpoint order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// Reads `t` and converts it to f32 (f32, f16 and bf16 only). f32 data is read straight
    /// into the result; f16 and bf16 through one 16-bit buffer and a vectorised conversion.
    pub fn read_f32(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        use half::slice::HalfFloatSliceExt;
        let (path, file) = &self.shards[t.shard];
        let n = t.elements();
        let out_of_memory = |bytes| Error::OutOfMemory { bytes };
        match t.dtype {
            Dtype::F32 => {
                let mut v: Vec<f32> = Vec::new();
                v.try_reserve_exact(n).map_err(|_| out_of_memory(4 * n))?;
                v.resize(n, 0.0);
                os::read_into(file, path, t.offset, bytes_of_mut(&mut v))?;
                if cfg!(target_endian = "big") {
                    v.iter_mut()
                        .for_each(|x| *x = f32::from_bits(x.to_bits().swap_bytes()));
                }
                Ok(v)
            }
            Dtype::F16 | Dtype::BF16 => {
                let mut raw: Vec<u16> = Vec::new();
                raw.try_reserve_exact(n).map_err(|_| out_of_memory(2 * n))?;
                raw.resize(n, 0);
                os::read_into(file, path, t.offset, bytes_of_mut(&mut raw))?;
                if cfg!(target_endian = "big") {
                    raw.iter_mut().for_each(|x| *x = x.swap_bytes());
                }
                let mut v = vec![0f32; n];
                if t.dtype == Dtype::F16 {
                    let h: &[half::f16] = bytemuck_cast(&raw);
                    h.convert_to_f32_slice(&mut v);
                } else {
                    let h: &[half::bf16] = bytemuck_cast(&raw);
                    h.convert_to_f32_slice(&mut v);
                }
                Ok(v)
            }
            Dtype::Other(ref d) => Err(Error::invalid(format!(
                "tensor {:?} is {d}, not f32/f16/bf16",
                t.name
            ))),
        }
    }
}

/// The bytes of a slice of plain numbers (f32 or u16: every bit pattern is valid).
fn bytes_of_mut<T: Copy>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: T is f32 or u16 here: no padding, any byte pattern is a valid value, and u8
    // has alignment 1.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// `u16` bit patterns viewed as f16/bf16 (both are `#[repr(transparent)]` over u16).
fn bytemuck_cast<T>(v: &[u16]) -> &[T] {
    assert_eq!(std::mem::size_of::<T>(), 2);
    // SAFETY: half's f16 and bf16 are repr(transparent) wrappers of u16.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const T, v.len()) }
}
