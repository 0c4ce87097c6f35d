//! The byte layout of a qlinear file (`docs/FORMAT.md` is the specification): writing it,
//! and parsing it without trusting a single field.
//!
//! Parsing borrows the payloads from the input slice (nothing is copied until the layer is
//! decoded and packed), checks every offset, length and checksum with checked arithmetic,
//! and never allocates more than a bound derived from the input length.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;

use super::checksum::crc32;
use crate::error::{Error, Result};

/// First 8 bytes of every file.
pub const MAGIC: [u8; 8] = *b"QLINEAR\0";
/// The newest version this reader understands (it reads every version from 1). Version 2
/// added codebook layers (`code_format` 1) and per-row dyn8 (`activation` 2); a writer
/// writes version 1 when no layer uses either, so older readers still take such files.
pub const VERSION: u32 = 2;
/// Bytes of the fixed file header.
pub const FILE_HEADER_LEN: usize = 32;
/// Bytes of one layer record.
pub const RECORD_LEN: usize = 128;
/// Every payload starts at a multiple of this.
pub const ALIGN: usize = 64;
/// Longest layer name, in bytes.
pub const MAX_NAME_LEN: usize = 4096;

/// Section indices in a record, in file order.
pub const CODES: usize = 0;
pub const SCALES: usize = 1;
pub const ZEROS: usize = 2;
pub const BIAS: usize = 3;
const SECTION_NAMES: [&str; 4] = ["codes", "scales", "zero points", "bias"];

/// `code_format` codes: integer codes, or 4-bit indices into a 16-level codebook whose levels
/// take the zero-point section.
pub const CODES_INTEGER: u8 = 0;
pub const CODES_CODEBOOK: u8 = 1;
/// Bytes of a codebook (16 `i8` levels).
pub const CODEBOOK_LEN: usize = 16;

/// Activation codes.
pub const ACT_EXACT: u8 = 0;
pub const ACT_DYN8: u8 = 1;
pub const ACT_DYN8_PER_ROW: u8 = 2;

/// Granularity codes.
pub const GRAN_TENSOR: u8 = 0;
pub const GRAN_CHANNEL: u8 = 1;
pub const GRAN_GROUP: u8 = 2;

/// The description of one layer as stored in its record (names as in the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerMeta {
    pub bits: u8,
    /// 0 integer codes, 1 codebook (version 2).
    pub code_format: u8,
    /// 0 per-tensor, 1 per-channel, 2 group-wise.
    pub granularity: u8,
    pub symmetric: bool,
    /// 0 f32, 1 f16.
    pub scale_dtype: u8,
    /// 0 exact, 1 dyn8 (block-wise), 2 dyn8 per row (version 2).
    pub activation: u8,
    pub has_bias: bool,
    /// 0 unless group-wise.
    pub group_size: u32,
    pub out_features: u64,
    pub in_features: u64,
}

/// Byte lengths of the four sections a layer of `meta` must have, computed with checked
/// arithmetic: `[codes, scales, zero points, bias]`.
pub fn section_lengths(meta: &LayerMeta) -> Result<[usize; 4]> {
    let overflow = || corrupt("layer shape overflows the address space");
    let n = usize::try_from(meta.out_features).map_err(|_| overflow())?;
    let k = usize::try_from(meta.in_features).map_err(|_| overflow())?;
    if n == 0 || k == 0 {
        return Err(corrupt(format!("empty weight shape [{n}, {k}]")));
    }
    n.checked_mul(k).ok_or_else(overflow)?;
    let row_bytes = match meta.bits {
        8 => k,
        4 => k.div_ceil(2),
        b => return Err(corrupt(format!("bits must be 4 or 8, got {b}"))),
    };
    let scales = match (meta.granularity, meta.group_size) {
        (GRAN_TENSOR, 0) => 1,
        (GRAN_CHANNEL, 0) => n,
        (GRAN_GROUP, g) if (32..=1024).contains(&g) && g.is_power_of_two() => {
            n.checked_mul(k.div_ceil(g as usize)).ok_or_else(overflow)?
        }
        (GRAN_GROUP, g) => {
            return Err(corrupt(format!(
                "group size must be a power of two from 32 to 1024, got {g}"
            )))
        }
        (GRAN_TENSOR | GRAN_CHANNEL, g) => {
            return Err(corrupt(format!(
                "group size must be 0 unless group-wise, got {g}"
            )))
        }
        (gr, _) => return Err(corrupt(format!("unknown granularity code {gr}"))),
    };
    let scale_width = match meta.scale_dtype {
        0 => 4,
        1 => 2,
        d => return Err(corrupt(format!("unknown scale dtype code {d}"))),
    };
    if meta.activation > ACT_DYN8_PER_ROW {
        return Err(corrupt(format!(
            "unknown activation mode code {}",
            meta.activation
        )));
    }
    let params = match meta.code_format {
        CODES_INTEGER if meta.symmetric => 0,
        CODES_INTEGER => scales,
        CODES_CODEBOOK if meta.bits == 4 && meta.symmetric => CODEBOOK_LEN,
        CODES_CODEBOOK => {
            return Err(corrupt(
                "a codebook layer must have 4-bit codes and be symmetric",
            ))
        }
        c => return Err(corrupt(format!("unknown code format {c}"))),
    };
    Ok([
        n.checked_mul(row_bytes).ok_or_else(overflow)?,
        scales.checked_mul(scale_width).ok_or_else(overflow)?,
        params,
        if meta.has_bias {
            n.checked_mul(4).ok_or_else(overflow)?
        } else {
            0
        },
    ])
}

pub(crate) fn corrupt(msg: impl Into<String>) -> Error {
    Error::Corrupt(msg.into())
}

/// One layer on its way into a file: its name, record fields and section bytes.
pub(crate) struct LayerOut<'a> {
    pub name: &'a str,
    pub meta: LayerMeta,
    pub sections: [&'a [u8]; 4],
}

fn io(e: std::io::Error) -> Error {
    Error::Io(e.to_string())
}

/// Writes a complete file. Sections are laid out in layer order, codes, scales, zero points,
/// bias, each at the next multiple of [`ALIGN`], padding zero-filled.
pub(crate) fn write_file<W: Write + ?Sized>(w: &mut W, layers: &[LayerOut<'_>]) -> Result<()> {
    let overflow = || Error::Overflow("file layout exceeds u64".into());
    let mut seen = HashSet::new();
    for l in layers {
        if l.name.len() > MAX_NAME_LEN || l.name.contains('\0') {
            return Err(Error::invalid(format!(
                "layer name {:?} must be at most {MAX_NAME_LEN} bytes without NUL",
                l.name
            )));
        }
        if !seen.insert(l.name) {
            return Err(Error::invalid(format!("duplicate layer name {:?}", l.name)));
        }
        let want = section_lengths(&l.meta).map_err(|e| Error::Internal(e.to_string()))?;
        let got = l.sections.map(<[u8]>::len);
        if want != got {
            return Err(Error::Internal(format!(
                "layer {:?}: sections {got:?}, layout wants {want:?}",
                l.name
            )));
        }
    }
    let count = u32::try_from(layers.len()).map_err(|_| overflow())?;
    let names_start = FILE_HEADER_LEN + layers.len() * RECORD_LEN;
    let names_len: usize = layers.iter().map(|l| l.name.len()).sum();
    let header_len = names_start + names_len;

    // Records and names.
    let mut header = vec![0u8; header_len];
    let mut name_at = names_start;
    let mut offset = header_len.next_multiple_of(ALIGN) as u64;
    let mut placed = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let r = &mut header[FILE_HEADER_LEN + i * RECORD_LEN..][..RECORD_LEN];
        let m = &l.meta;
        r[0..8].copy_from_slice(&(name_at as u64).to_le_bytes());
        r[8..12].copy_from_slice(&(l.name.len() as u32).to_le_bytes());
        r[12] = m.bits;
        r[13] = m.granularity;
        r[14] = m.symmetric as u8;
        r[15] = m.scale_dtype;
        r[16] = m.activation;
        r[17] = m.has_bias as u8;
        r[18] = m.code_format;
        r[20..24].copy_from_slice(&m.group_size.to_le_bytes());
        r[24..32].copy_from_slice(&m.out_features.to_le_bytes());
        r[32..40].copy_from_slice(&m.in_features.to_le_bytes());
        let mut offsets = [0u64; 4];
        for (s, bytes) in l.sections.iter().enumerate() {
            let at = 40 + 16 * s;
            if !bytes.is_empty() {
                offsets[s] = offset;
                r[at..at + 8].copy_from_slice(&offset.to_le_bytes());
                offset = offset
                    .checked_add(bytes.len() as u64)
                    .ok_or_else(overflow)?
                    .checked_next_multiple_of(ALIGN as u64)
                    .ok_or_else(overflow)?;
            }
            r[at + 8..at + 16].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
            r[104 + 4 * s..108 + 4 * s].copy_from_slice(&crc32(bytes).to_le_bytes());
        }
        placed.push(offsets);
        header[name_at..name_at + l.name.len()].copy_from_slice(l.name.as_bytes());
        name_at += l.name.len();
    }
    let crc = crc32(&header[FILE_HEADER_LEN..]);
    let needs_v2 = layers
        .iter()
        .any(|l| l.meta.code_format != CODES_INTEGER || l.meta.activation > ACT_DYN8);
    let version: u32 = if needs_v2 { 2 } else { 1 };
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&version.to_le_bytes());
    header[12..16].copy_from_slice(&count.to_le_bytes());
    header[16..24].copy_from_slice(&(header_len as u64).to_le_bytes());
    header[24..28].copy_from_slice(&crc.to_le_bytes());

    w.write_all(&header).map_err(io)?;
    let mut pos = header_len as u64;
    let zeros = [0u8; ALIGN];
    for (l, offsets) in layers.iter().zip(&placed) {
        for (bytes, &at) in l.sections.iter().zip(offsets) {
            if bytes.is_empty() {
                continue;
            }
            let pad = (at - pos) as usize; // < ALIGN by construction
            w.write_all(&zeros[..pad]).map_err(io)?;
            w.write_all(bytes).map_err(io)?;
            pos = at + bytes.len() as u64;
        }
    }
    w.flush().map_err(io)
}

/// Where a file's bytes come from: a buffer in memory (borrowed) or a file read piece by
/// piece into owned memory, so loading a file never holds all of it at once.
pub(crate) trait Source {
    /// The total length of the file.
    fn total_len(&self) -> u64;
    /// `len` bytes from `offset` (inside `total_len`); a source that shrank meanwhile
    /// reports a truncated file.
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>>;
}

impl Source for [u8] {
    fn total_len(&self) -> u64 {
        self.len() as u64
    }
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        range(self, offset, len as u64, &|| "section".to_string()).map(Cow::Borrowed)
    }
}

/// Where a section lies and what its checksum must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Section {
    pub offset: u64,
    pub len: usize,
    pub crc: u32,
}

/// One layer's record: validated metadata and where its sections lie.
#[derive(Debug)]
pub(crate) struct Record {
    pub name: String,
    pub meta: LayerMeta,
    pub sections: [Section; 4],
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// `bytes[offset .. offset+len]` if it lies inside `bytes`, else a Corrupt error.
fn range<'a>(
    bytes: &'a [u8],
    offset: u64,
    len: u64,
    what: &dyn Fn() -> String,
) -> Result<&'a [u8]> {
    let end = offset
        .checked_add(len)
        .filter(|&e| e <= bytes.len() as u64)
        .ok_or_else(|| {
            corrupt(format!(
                "{}: bytes {offset}+{len} lie outside the {}-byte file (truncated?)",
                what(),
                bytes.len()
            ))
        })?;
    Ok(&bytes[offset as usize..end as usize])
}

/// Parses and validates the header and every record of the file in `src` (reading only the
/// header): shapes, codes, names, and that every section lies inside the file. The sections
/// themselves are read and checksummed by [`read_sections`].
pub(crate) fn parse_header<S: Source + ?Sized>(src: &S) -> Result<Vec<Record>> {
    let file_len = src.total_len();
    if file_len < FILE_HEADER_LEN as u64 {
        return Err(corrupt(format!(
            "file is {file_len} bytes, shorter than the {FILE_HEADER_LEN}-byte header (truncated?)"
        )));
    }
    let head = src.read(0, FILE_HEADER_LEN)?;
    if head[0..8] != MAGIC {
        return Err(corrupt("bad magic: not a qlinear file"));
    }
    let version = u32_at(&head, 8);
    if !(1..=VERSION).contains(&version) {
        return Err(corrupt(format!(
            "unsupported format version {version} (this reader knows 1 to {VERSION})"
        )));
    }
    let count = u32_at(&head, 12) as usize;
    let header_len = u64_at(&head, 16);
    let header_crc = u32_at(&head, 24);
    if u32_at(&head, 28) != 0 {
        return Err(corrupt("reserved header field is not 0"));
    }
    // Bound the count by the file size before anything is sized by it.
    let names_start = count
        .checked_mul(RECORD_LEN)
        .and_then(|r| r.checked_add(FILE_HEADER_LEN))
        .filter(|&e| e as u64 <= header_len)
        .ok_or_else(|| {
            corrupt(format!(
                "{count} layer records do not fit in the {header_len}-byte header"
            ))
        })?;
    if header_len > file_len {
        return Err(corrupt(format!(
            "header: bytes 0+{header_len} lie outside the {file_len}-byte file (truncated?)"
        )));
    }
    let header = src.read(0, header_len as usize)?;
    let header: &[u8] = &header;
    if crc32(&header[FILE_HEADER_LEN..]) != header_crc {
        return Err(corrupt("header checksum mismatch"));
    }
    let payload_start = (header_len as usize).next_multiple_of(ALIGN);

    let mut records = Vec::with_capacity(count);
    let mut names = HashSet::with_capacity(count);
    for i in 0..count {
        let r = &header[FILE_HEADER_LEN + i * RECORD_LEN..][..RECORD_LEN];
        let name_offset = u64_at(r, 0);
        let name_len = u32_at(r, 8) as usize;
        if name_len > MAX_NAME_LEN {
            return Err(corrupt(format!(
                "layer {i}: name length {name_len} exceeds {MAX_NAME_LEN}"
            )));
        }
        if name_offset < names_start as u64 {
            return Err(corrupt(format!(
                "layer {i}: name offset {name_offset} points into the records"
            )));
        }
        let name = range(header, name_offset, name_len as u64, &|| {
            format!("layer {i} name")
        })?;
        let name = std::str::from_utf8(name)
            .map_err(|e| corrupt(format!("layer {i}: name is not UTF-8 ({e})")))?;
        if name.contains('\0') {
            return Err(corrupt(format!("layer {i}: name contains NUL")));
        }
        if !names.insert(name.to_string()) {
            return Err(corrupt(format!("duplicate layer name {name:?}")));
        }
        let flag = |at: usize, what: &str| match r[at] {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(corrupt(format!(
                "layer {name:?}: {what} flag is {v}, not 0 or 1"
            ))),
        };
        if r[19] != 0 || u64_at(r, 120) != 0 || (version == 1 && r[18] != 0) {
            return Err(corrupt(format!(
                "layer {name:?}: reserved record bytes are not 0"
            )));
        }
        if version == 1 && r[16] > ACT_DYN8 {
            return Err(corrupt(format!(
                "layer {name:?}: activation code {} needs format version 2",
                r[16]
            )));
        }
        let meta = LayerMeta {
            bits: r[12],
            code_format: r[18],
            granularity: r[13],
            symmetric: flag(14, "symmetric")?,
            scale_dtype: r[15],
            activation: r[16],
            has_bias: flag(17, "has_bias")?,
            group_size: u32_at(r, 20),
            out_features: u64_at(r, 24),
            in_features: u64_at(r, 32),
        };
        let want = section_lengths(&meta).map_err(|e| corrupt(format!("layer {name:?}: {e}")))?;
        let mut sections = [Section {
            offset: 0,
            len: 0,
            crc: 0,
        }; 4];
        for s in 0..4 {
            let offset = u64_at(r, 40 + 16 * s);
            let len = u64_at(r, 48 + 16 * s);
            let crc = u32_at(r, 104 + 4 * s);
            let what = || format!("layer {name:?} {}", SECTION_NAMES[s]);
            if len != want[s] as u64 {
                return Err(corrupt(format!(
                    "{}: length {len}, the layer's shape and format need {}",
                    what(),
                    want[s]
                )));
            }
            if len == 0 {
                if offset != 0 || crc != 0 {
                    return Err(corrupt(format!(
                        "{}: empty but offset or checksum set",
                        what()
                    )));
                }
                continue;
            }
            if !offset.is_multiple_of(ALIGN as u64) {
                return Err(corrupt(format!(
                    "{}: offset {offset} is not a multiple of {ALIGN}",
                    what()
                )));
            }
            if offset < payload_start as u64 {
                return Err(corrupt(format!(
                    "{}: offset {offset} overlaps the header",
                    what()
                )));
            }
            if offset.checked_add(len).is_none_or(|e| e > file_len) {
                return Err(corrupt(format!(
                    "{}: bytes {offset}+{len} lie outside the {file_len}-byte file (truncated?)",
                    what()
                )));
            }
            sections[s] = Section {
                offset,
                len: len as usize,
                crc,
            };
        }
        records.push(Record {
            name: name.to_string(),
            meta,
            sections,
        });
    }
    Ok(records)
}

/// Reads the four sections of `rec` from `src` and checks their checksums.
pub(crate) fn read_sections<'a, S: Source + ?Sized>(
    src: &'a S,
    rec: &Record,
) -> Result<[Cow<'a, [u8]>; 4]> {
    let mut out: [Cow<'a, [u8]>; 4] = Default::default();
    for (s, sec) in rec.sections.iter().enumerate() {
        if sec.len == 0 {
            continue;
        }
        let data = src.read(sec.offset, sec.len)?;
        if crc32(&data) != sec.crc {
            return Err(corrupt(format!(
                "layer {:?} {}: checksum mismatch",
                rec.name, SECTION_NAMES[s]
            )));
        }
        out[s] = data;
    }
    Ok(out)
}
