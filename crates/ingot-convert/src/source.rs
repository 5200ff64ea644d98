//! Reading a model's safetensors: one `model.safetensors`, or the shards listed by
//! `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`).
//!
//! Each shard is memory-mapped and parsed by the `safetensors` crate, which validates the
//! header (offsets in bounds, contiguous, covering the data) before we touch any tensor; data is
//! then borrowed from the map, so a shard is never read into memory as a whole.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;
use serde_json::Value as Json;

use crate::error::{ConvertError, Result};

/// A safetensors element type the converter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    BF16,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
        }
    }
}

/// One tensor's location: which shard, its type, shape and byte range in the shard's map.
#[derive(Clone, Debug)]
pub struct TensorEntry {
    /// Index into [`Shards::files`].
    pub shard: usize,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost first.
    pub shape: Vec<u64>,
    /// Byte range within the shard's memory map.
    pub range: std::ops::Range<usize>,
}

/// The opened shards of a model and the tensors they hold.
pub struct Shards {
    /// Shard paths, in the order given (single file, or sorted index file names).
    pub files: Vec<PathBuf>,
    maps: Vec<Mmap>,
    /// Every tensor by name (sorted).
    pub tensors: BTreeMap<String, TensorEntry>,
}

/// Maps a file read-only.
fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| ConvertError::io(path, e))?;
    // SAFETY: the map is read-only and private to this process; the `safetensors` crate
    // validates every offset against its length before any tensor bytes are borrowed. As for
    // every memory-mapped reader (llama.cpp, the safetensors Python package), another process
    // truncating the file while it is mapped is outside what can be defended against.
    unsafe { Mmap::map(&file) }.map_err(|e| ConvertError::io(path, e))
}

impl Shards {
    /// Opens `dir/model.safetensors`, or the shards listed by
    /// `dir/model.safetensors.index.json` when that exists.
    pub fn open(dir: &Path) -> Result<Shards> {
        let index_path = dir.join("model.safetensors.index.json");
        let (files, weight_map) = if index_path.is_file() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| ConvertError::io(&index_path, e))?;
            let json: Json = serde_json::from_str(&text).map_err(|e| ConvertError::Json {
                path: index_path.clone(),
                source: e,
            })?;
            let map = json
                .get("weight_map")
                .and_then(Json::as_object)
                .ok_or_else(|| {
                    ConvertError::field(
                        "model.safetensors.index.json",
                        "weight_map",
                        "missing or not an object",
                    )
                })?;
            let mut wm = HashMap::new();
            let mut names: Vec<String> = Vec::new();
            for (tensor, shard) in map {
                let shard = shard.as_str().ok_or_else(|| {
                    ConvertError::field(
                        "model.safetensors.index.json",
                        &format!("weight_map.{tensor}"),
                        "not a file name",
                    )
                })?;
                if shard.contains('/') || shard.contains('\\') || shard.starts_with('.') {
                    return Err(ConvertError::field(
                        "model.safetensors.index.json",
                        &format!("weight_map.{tensor}"),
                        format!("`{shard}` is not a plain file name in the model directory"),
                    ));
                }
                if !names.iter().any(|n| n == shard) {
                    names.push(shard.to_string());
                }
                wm.insert(tensor.clone(), shard.to_string());
            }
            names.sort();
            (names.iter().map(|n| dir.join(n)).collect(), Some(wm))
        } else {
            let single = dir.join("model.safetensors");
            if !single.is_file() {
                return Err(ConvertError::MissingFile { path: single });
            }
            (vec![single], None)
        };

        let mut maps = Vec::with_capacity(files.len());
        let mut tensors: BTreeMap<String, TensorEntry> = BTreeMap::new();
        for (i, path) in files.iter().enumerate() {
            if !path.is_file() {
                return Err(ConvertError::MissingShard { path: path.clone() });
            }
            let map = map_file(path)?;
            let st = SafeTensors::deserialize(&map).map_err(|e| ConvertError::Safetensors {
                path: path.clone(),
                source: e,
            })?;
            let base = map.as_ptr() as usize;
            for (name, view) in st.iter() {
                let dtype = match view.dtype() {
                    safetensors::Dtype::F32 => Dtype::F32,
                    safetensors::Dtype::F16 => Dtype::F16,
                    safetensors::Dtype::BF16 => Dtype::BF16,
                    other => {
                        return Err(ConvertError::UnsupportedDtype {
                            tensor: name.to_string(),
                            dtype: format!("{other:?}"),
                        })
                    }
                };
                // The view borrows from `map`: recover its range so we can keep the map alone.
                let start = view.data().as_ptr() as usize - base;
                let entry = TensorEntry {
                    shard: i,
                    dtype,
                    shape: view.shape().iter().map(|&d| d as u64).collect(),
                    range: start..start + view.data().len(),
                };
                if let Some(prev) = tensors.insert(name.to_string(), entry) {
                    return Err(ConvertError::DuplicateTensor {
                        tensor: name.to_string(),
                        first: file_name(&files[prev.shard]),
                        second: file_name(path),
                    });
                }
            }
            maps.push(map);
        }

        if let Some(wm) = weight_map {
            for (tensor, shard) in &wm {
                match tensors.get(tensor) {
                    Some(e) if file_name(&files[e.shard]) == *shard => {}
                    _ => {
                        return Err(ConvertError::IndexMismatch {
                            tensor: tensor.clone(),
                            shard: shard.clone(),
                        })
                    }
                }
            }
            if let Some((tensor, e)) = tensors.iter().find(|(t, _)| !wm.contains_key(*t)) {
                return Err(ConvertError::IndexMismatch {
                    tensor: tensor.clone(),
                    shard: format!("no shard (it is in {})", file_name(&files[e.shard])),
                });
            }
        }
        Ok(Shards {
            files,
            maps,
            tensors,
        })
    }

    /// The bytes of a tensor (borrowed from its shard's map).
    pub fn bytes(&self, entry: &TensorEntry) -> &[u8] {
        &self.maps[entry.shard][entry.range.clone()]
    }
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
