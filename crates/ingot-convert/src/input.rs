//! A Hugging Face model as a quantize input: `quantize DIR OUT TYPE` with no intermediate GGUF.
//!
//! [`HfInput`] implements ingot-quant's [`ModelSource`] by presenting the model exactly as
//! [`crate::convert`] would write it — the same metadata in the same order, the same tensor
//! names, shapes and order, the rotary Q/K rows permuted — with each weight in the type that
//! keeps the checkpoint's values unchanged (F16 for an F16 checkpoint, BF16 for BF16, F32
//! otherwise; norms and biases F32 as always). So `quantize DIR` produces the same bytes as
//! `quantize` of `convert DIR --outtype <that type>`, and for the common F16 checkpoint the same
//! as after a default `convert`.
//!
//! ```text
//! open(dir):     dtypes of the ≥2-D tensors → lossless OutType; Plan::new(dir, it)
//! read(t, rows): pread the rows from the shard file (never through the map, so pages do not
//!                pile up in the resident set) → permute within whole heads (row_group = rows
//!                per head) → convert elements when the type differs (norms F16 → F32)
//! ```

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ingot_format::Value;
use ingot_quant::pipeline::ModelSource;
use ingot_quant::plan::SourceTensor;
use ingot_quant::{QuantError, Shared};

use crate::error::{ConvertError, Result};
use crate::permute::permute_rows;
use crate::plan::{convert_elements, OutType, Plan, TensorType};
use crate::source::{Dtype, Shards};

/// A Hugging Face model directory opened for quantizing (see the module docs).
pub struct HfInput {
    plan: Plan,
    outtype: OutType,
    files: Vec<File>,
}

impl HfInput {
    /// Opens the model in `dir` (config.json, tokenizer, safetensors), validating everything
    /// `convert` validates.
    pub fn open(dir: &Path) -> Result<HfInput> {
        let outtype = lossless_outtype(&Shards::open(dir)?);
        let plan = Plan::new(dir, outtype)?;
        let files = plan
            .shard_files()
            .iter()
            .map(|p| File::open(p).map_err(|e| ConvertError::io(p, e)))
            .collect::<Result<_>>()?;
        Ok(HfInput {
            plan,
            outtype,
            files,
        })
    }

    /// Opens the model a safetensors file belongs to: its directory must hold the model's
    /// config.json and tokenizer, and the file must be that model's weights
    /// (`model.safetensors` or a shard listed in the index).
    pub fn open_file(file: &Path) -> Result<HfInput> {
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let input = HfInput::open(&dir)?;
        let canon = |p: &Path| p.canonicalize().map_err(|e| ConvertError::io(p, e));
        let want = canon(file)?;
        for p in input.plan.shard_files() {
            if canon(p)? == want {
                return Ok(input);
            }
        }
        Err(ConvertError::NotModelFile {
            file: file.to_path_buf(),
            dir,
        })
    }

    /// The `--outtype` whose output this input reproduces.
    pub fn outtype(&self) -> OutType {
        self.outtype
    }

    /// The underlying conversion plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// F16 when every ≥2-D tensor is F16, BF16 when every one is BF16, else F32: the output type
/// that converts no weight's value.
pub fn lossless_outtype(shards: &Shards) -> OutType {
    let mut dtypes = shards
        .tensors
        .values()
        .filter(|e| e.shape.len() >= 2)
        .map(|e| e.dtype);
    match dtypes.next() {
        Some(first) if dtypes.all(|d| d == first) => match first {
            Dtype::F16 => OutType::F16,
            Dtype::BF16 => OutType::Bf16,
            Dtype::F32 => OutType::F32,
        },
        _ => OutType::F32,
    }
}

fn elem_size(ty: TensorType) -> u64 {
    match ty {
        TensorType::F32 => 4,
        TensorType::F16 | TensorType::Bf16 => 2,
        // Never chosen by `lossless_outtype`; a Q8_0 block is 34 bytes per 32 values.
        TensorType::Q8_0 => 34,
    }
}

impl ModelSource for HfInput {
    fn metadata(&self) -> Vec<(String, Value)> {
        self.plan
            .metadata
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_value()))
            .collect()
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.plan
            .tensors
            .iter()
            .map(|t| SourceTensor {
                name: t.gguf_name.clone(),
                shape: t.shape.clone(),
                ty: t.ty.ggml(),
            })
            .collect()
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.plan.shard_files().to_vec()
    }

    fn row_group(&self, index: usize) -> u64 {
        let t = &self.plan.tensors[index];
        match t.permute_heads {
            Some(heads) => (t.shape.iter().skip(1).product::<u64>() / u64::from(heads)).max(1),
            None => 1,
        }
    }

    fn read(
        &self,
        index: usize,
        offset: u64,
        buf: &mut [u8],
    ) -> std::result::Result<(), QuantError> {
        let t = &self.plan.tensors[index];
        let entry = self.plan.entry(index);
        let row_len = t.shape.first().copied().unwrap_or(1);
        let out_row = row_len * elem_size(t.ty);
        let src_row = row_len * entry.dtype.size() as u64;
        assert!(
            offset % out_row == 0 && buf.len() as u64 % out_row == 0,
            "the pipeline reads whole rows"
        );
        let (first, n_rows) = (offset / out_row, buf.len() as u64 / out_row);
        let at = entry.range.start as u64 + first * src_row;
        let path = &self.plan.shard_files()[entry.shard];
        let io = |e| QuantError::Io {
            path: path.clone(),
            source: Shared::new(e),
        };
        let file = &self.files[entry.shard];
        let same_type = convert_elements_is_copy(entry.dtype, t.ty);
        if same_type && t.permute_heads.is_none() {
            return file.read_exact_at(buf, at).map_err(io);
        }
        let mut src = vec![0u8; (n_rows * src_row) as usize];
        file.read_exact_at(&mut src, at).map_err(io)?;
        if t.permute_heads.is_some() {
            let group = self.row_group(index);
            assert!(n_rows % group == 0, "reads start and end on whole heads");
            let mut dst = vec![0u8; src.len()];
            permute_rows(&src, &mut dst, src_row as usize, (n_rows / group) as usize);
            src = dst;
        }
        if same_type {
            buf.copy_from_slice(&src);
        } else {
            buf.copy_from_slice(&convert_elements(&src, entry.dtype, t.ty));
        }
        Ok(())
    }
}

/// Whether [`convert_elements`] passes the bytes through unchanged.
fn convert_elements_is_copy(from: Dtype, to: TensorType) -> bool {
    matches!(
        (from, to),
        (Dtype::F32, TensorType::F32)
            | (Dtype::F16, TensorType::F16)
            | (Dtype::BF16, TensorType::Bf16)
    )
}
