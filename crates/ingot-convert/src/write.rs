//! Writing the planned GGUF: metadata and tensor infos first, then each tensor's data streamed
//! in order, into a temporary file beside the destination that is fsynced and renamed over it
//! only when complete (so a failed conversion leaves nothing at the destination).
//!
//! Layout (GGUF v3, ggml `docs/gguf.md`, gguf-py `GGUFWriter`): magic `GGUF`, version 3,
//! tensor count (u64), KV count (u64); each KV as key string, value type (u32), value; each
//! tensor info as name, n_dims (u32), dims (u64 each, `ne[0]` first), type (u32), offset (u64,
//! relative to the data section); padding to `general.alignment` (32); the data, each tensor
//! padded to 32 bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{ConvertError, Result};
use crate::meta::{MetaValue, Metadata};

/// `GGUF_DEFAULT_ALIGNMENT`.
pub const ALIGNMENT: u64 = 32;
const MAGIC: &[u8; 4] = b"GGUF";
const VERSION: u32 = 3;

mod value_type {
    pub const UINT32: u32 = 4;
    pub const INT32: u32 = 5;
    pub const FLOAT32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
}

/// A tensor's header entry.
pub struct TensorHeader<'a> {
    /// GGUF name.
    pub name: &'a str,
    /// Shape, `ne[0]` first.
    pub shape: &'a [u64],
    /// GGML type id.
    pub ggml_type: u32,
    /// Bytes of data.
    pub n_bytes: u64,
}

/// Rounds `n` up to a multiple of [`ALIGNMENT`].
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// A temporary file that is removed unless [`TempOut::commit`] renames it into place.
pub(crate) struct TempOut {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl TempOut {
    pub(crate) fn create(dest: &Path) -> Result<(TempOut, File)> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| ConvertError::io(&tmp, e))?;
        Ok((
            TempOut {
                tmp,
                dest: dest.to_path_buf(),
                done: false,
            },
            file,
        ))
    }

    pub(crate) fn commit(mut self, file: File) -> Result<()> {
        file.sync_all()
            .map_err(|e| ConvertError::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| ConvertError::io(&self.dest, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: the error that got us here is the one worth reporting.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn put_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

fn put_value(w: &mut impl Write, v: &MetaValue) -> std::io::Result<()> {
    use value_type::*;
    match v {
        MetaValue::U32(x) => {
            w.write_all(&UINT32.to_le_bytes())?;
            w.write_all(&x.to_le_bytes())
        }
        MetaValue::F32(x) => {
            w.write_all(&FLOAT32.to_le_bytes())?;
            w.write_all(&x.to_le_bytes())
        }
        MetaValue::Bool(b) => {
            w.write_all(&BOOL.to_le_bytes())?;
            w.write_all(&[u8::from(*b)])
        }
        MetaValue::Str(s) => {
            w.write_all(&STRING.to_le_bytes())?;
            put_str(w, s)
        }
        MetaValue::StrArray(a) => {
            w.write_all(&ARRAY.to_le_bytes())?;
            w.write_all(&STRING.to_le_bytes())?;
            w.write_all(&(a.len() as u64).to_le_bytes())?;
            a.iter().try_for_each(|s| put_str(w, s))
        }
        MetaValue::I32Array(a) => {
            w.write_all(&ARRAY.to_le_bytes())?;
            w.write_all(&INT32.to_le_bytes())?;
            w.write_all(&(a.len() as u64).to_le_bytes())?;
            a.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
        }
        MetaValue::F32Array(a) => {
            w.write_all(&ARRAY.to_le_bytes())?;
            w.write_all(&FLOAT32.to_le_bytes())?;
            w.write_all(&(a.len() as u64).to_le_bytes())?;
            a.iter().try_for_each(|x| w.write_all(&x.to_le_bytes()))
        }
    }
}

/// Writes a GGUF file at `dest` atomically. `data(i)` yields tensor `i`'s bytes, which must be
/// `tensors[i].n_bytes` long; it is called once per tensor, in order.
pub fn write_gguf(
    dest: &Path,
    metadata: &Metadata,
    tensors: &[TensorHeader<'_>],
    mut data: impl FnMut(usize) -> Result<Vec<u8>>,
) -> Result<()> {
    let (guard, file) = TempOut::create(dest)?;
    let tmp = guard.tmp.clone();
    let io = |e| ConvertError::io(&tmp, e);
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&VERSION.to_le_bytes()).map_err(io)?;
    w.write_all(&(tensors.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(&(metadata.len() as u64).to_le_bytes())
        .map_err(io)?;
    let mut pos = 24u64;
    let mut count = CountingWriter {
        inner: &mut w,
        n: 0,
    };
    for (k, v) in metadata.iter() {
        put_str(&mut count, k).map_err(io)?;
        put_value(&mut count, v).map_err(io)?;
    }
    let mut offset = 0u64;
    for t in tensors {
        put_str(&mut count, t.name).map_err(io)?;
        count
            .write_all(&(t.shape.len() as u32).to_le_bytes())
            .map_err(io)?;
        for d in t.shape {
            count.write_all(&d.to_le_bytes()).map_err(io)?;
        }
        count.write_all(&t.ggml_type.to_le_bytes()).map_err(io)?;
        count.write_all(&offset.to_le_bytes()).map_err(io)?;
        offset = align_up(offset + t.n_bytes);
    }
    pos += count.n;
    let pad = align_up(pos) - pos;
    w.write_all(&vec![0u8; pad as usize]).map_err(io)?;
    for (i, t) in tensors.iter().enumerate() {
        let bytes = data(i)?;
        assert_eq!(
            bytes.len() as u64,
            t.n_bytes,
            "tensor {}: produced size differs from its header",
            t.name
        );
        w.write_all(&bytes).map_err(io)?;
        let pad = align_up(t.n_bytes) - t.n_bytes;
        w.write_all(&vec![0u8; pad as usize]).map_err(io)?;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    guard.commit(file)
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
