//! The one place a file is memory-mapped. Everything else sees `&[u8]`.

use std::fs::File;
use std::path::Path;

use crate::error::{FormatError, Result};

/// The bytes of one GGUF file: a read-only memory map, or an owned buffer.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A read-only map of a file.
    Mapped(memmap2::Mmap),
    /// Bytes handed to us in memory (or an empty file, which cannot be mapped portably).
    Owned(Vec<u8>),
}

impl Backing {
    /// Maps `path` read-only. Nothing is read yet: pages are faulted in when touched.
    pub(crate) fn map(path: &Path) -> Result<Backing> {
        let io = |op, source| FormatError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|e| io("opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| io("reading metadata of", e))?
            .len();
        if len == 0 {
            return Ok(Backing::Owned(Vec::new()));
        }
        // SAFETY: the map is read-only and lives as long as the `Backing` that owns it. The
        // remaining hazard of any file map is another process truncating or rewriting the file
        // while it is mapped; like llama.cpp and safetensors we accept that (ingot's own writer
        // never modifies a file in place: it writes a temp file and renames it).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io("memory-mapping", e))?;
        Ok(Backing::Mapped(map))
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
        }
    }
}
