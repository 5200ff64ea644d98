//! The streaming quantize driver: one pass over a model ([`ModelSource`]: a GGUF file, or a
//! Hugging Face model through `ingot_convert::HfInput`), each tensor converted in row chunks,
//! quantized row-parallel with rayon, and streamed to a [`GgufWriter`] that renames its temp
//! file into place only when everything is written.
//!
//! ```text
//! prepare(input, imatrix, options):
//!   plan      = QuantPlan::build(model info from metadata, tensor infos, plan options)
//!   imatrix   = filter (--include/--exclude-weights), validate (finite, non-negative)
//!   for each tensor that is quantized: weights = imatrix entry of its *input* name
//!       (length must be row length × experts; missing → warning, or error if required)
//!   metadata  = input metadata − split.* + general.file_type, general.quantization_version,
//!               pruning (block_count, per-layer arrays trimmed), provenance, --override-kv
//! write(prepared, out):
//!   declare metadata and every tensor (output name, shape, target type)
//!   jobs = every tensor, in input order, cut into whole-row chunks (≈ CHUNK_F32_BYTES of f32
//!          when converted, COPY_PIECE bytes when copied; multiples of the source's row group)
//!   read job 0
//!   for k in 0..=jobs:                       # a three-stage pipeline, rayon::join per step
//!     | this thread: write job k−1 (the writer hashes it), pread job k+1
//!     | the pool:    job k rows in parallel: decode to f32 (F16C f16 / bf16 / f32 / dequantize),
//!     |              reject NaN/inf, quantize with the row's imatrix slice (or copy bytes)
//!   finish: fsync + rename (a failure or an early drop leaves nothing at OUT)
//! ```
//!
//! Memory: tensor data is read with positioned reads (`pread`) from the input file, not
//! through the memory map, so pages of the model never accumulate in the process's resident
//! set; the working set is two source and two output buffers of one job each plus one f32 row
//! per thread — bounded by a few times [`CHUNK_F32_BYTES`] whatever the model or tensor size.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ingot_format::{GgmlType, GgufFile, GgufWriter, SplitPolicy, Value, WriterOptions};
use rayon::prelude::*;

use crate::imatrix::Imatrix;
use crate::plan::{
    is_float, FileType, ModelInfo, PlanOptions, QuantPlan, SourceTensor, TensorPlan,
};
use crate::{QuantError, QuantMode};

/// Target size of one chunk's f32 rows. Large enough that rayon's per-chunk overhead is
/// negligible, small enough that memory does not grow with the model.
pub const CHUNK_F32_BYTES: usize = 16 << 20;

/// Bytes copied per piece for tensors whose type does not change.
const COPY_PIECE: usize = 8 << 20;

/// `general.quantization_version` written (`GGML_QNT_VERSION` in ggml.h).
pub const QUANTIZATION_VERSION: u32 = 2;

/// llama.cpp's provenance keys (`tools/quantize/quantize.cpp`).
pub const KEY_IMATRIX_FILE: &str = "quantize.imatrix.file";
/// The first dataset the imatrix was collected on.
pub const KEY_IMATRIX_DATASET: &str = "quantize.imatrix.dataset";
/// Imatrix entries used (after `--include/--exclude-weights`).
pub const KEY_IMATRIX_ENTRIES: &str = "quantize.imatrix.entries_count";
/// Chunks the imatrix was collected on.
pub const KEY_IMATRIX_CHUNKS: &str = "quantize.imatrix.chunks_count";
/// ingot's key: BLAKE3 (hex) of the imatrix file.
pub const KEY_IMATRIX_BLAKE3: &str = "ingot.quantize.imatrix.blake3";
/// ingot's key: the ingot version that wrote the file.
pub const KEY_INGOT_VERSION: &str = "ingot.quantize.version";
/// ingot's key: the pruned (input) block indices.
pub const KEY_PRUNED_LAYERS: &str = "ingot.quantize.pruned_layers";

/// A parsed `--override-kv KEY=TYPE:VALUE` (llama.cpp's `string_parse_kv_override`: TYPE is
/// `int`, `float`, `bool` or `str`).
#[derive(Clone, Debug, PartialEq)]
pub struct KvOverride {
    /// The key.
    pub key: String,
    /// The value.
    pub value: KvValue,
}

/// The value of a [`KvOverride`].
#[derive(Clone, Debug, PartialEq)]
pub enum KvValue {
    /// `int:` — written with the existing key's integer type, else u32 when it fits, else i64.
    Int(i64),
    /// `float:` — written as f32.
    Float(f64),
    /// `bool:` — `true` or `false`.
    Bool(bool),
    /// `str:` — a string.
    Str(String),
}

impl KvOverride {
    /// Parses `KEY=TYPE:VALUE`.
    pub fn parse(arg: &str) -> Result<KvOverride, QuantError> {
        let bad = |problem: &str| QuantError::BadKvOverride {
            arg: arg.to_owned(),
            problem: problem.to_owned(),
        };
        let (key, rest) = arg
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=TYPE:VALUE"))?;
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        let (ty, val) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected TYPE:VALUE after '='"))?;
        let value = match ty {
            "int" => KvValue::Int(val.parse().map_err(|_| bad("not an integer"))?),
            "float" => KvValue::Float(val.parse().map_err(|_| bad("not a number"))?),
            "bool" => match val {
                "true" => KvValue::Bool(true),
                "false" => KvValue::Bool(false),
                _ => return Err(bad("bool must be true or false")),
            },
            "str" => KvValue::Str(val.to_owned()),
            _ => return Err(bad("TYPE must be int, float, bool or str")),
        };
        Ok(KvOverride {
            key: key.to_owned(),
            value,
        })
    }

    fn to_value(&self, existing: Option<&Value>) -> Result<Value, QuantError> {
        let out_of_range = || QuantError::BadKvOverride {
            arg: self.key.clone(),
            problem: "integer out of range for the key's existing type".to_owned(),
        };
        Ok(match &self.value {
            KvValue::Int(v) => {
                let v = *v;
                match existing {
                    Some(Value::U8(_)) => Value::U8(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::I8(_)) => Value::I8(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::U16(_)) => Value::U16(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::I16(_)) => Value::I16(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::U32(_)) => Value::U32(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::I32(_)) => Value::I32(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::U64(_)) => Value::U64(v.try_into().map_err(|_| out_of_range())?),
                    Some(Value::I64(_)) => Value::I64(v),
                    _ => match u32::try_from(v) {
                        Ok(u) => Value::U32(u),
                        Err(_) => Value::I64(v),
                    },
                }
            }
            KvValue::Float(f) => Value::F32(*f as f32),
            KvValue::Bool(b) => Value::Bool(*b),
            KvValue::Str(s) => Value::String(s.clone()),
        })
    }
}

/// Where the importance matrix came from, for the provenance keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImatrixSource {
    /// The path as the user gave it (`quantize.imatrix.file`).
    pub file: String,
    /// BLAKE3 of the file's bytes, hex.
    pub blake3: String,
}

/// Everything `quantize` was asked to do besides the plan.
#[derive(Clone, Debug)]
pub struct QuantizeOptions {
    /// Plan options (type, mix, overrides, pruning).
    pub plan: PlanOptions,
    /// A quantized tensor without an imatrix entry is an error instead of a warning.
    pub require_imatrix: bool,
    /// Keep only imatrix entries whose name contains one of these.
    pub include_weights: Vec<String>,
    /// Drop imatrix entries whose name contains one of these.
    pub exclude_weights: Vec<String>,
    /// Metadata overrides, applied last.
    pub kv_overrides: Vec<KvOverride>,
    /// Provenance of the imatrix.
    pub imatrix_source: Option<ImatrixSource>,
    /// Output splitting.
    pub split: SplitPolicy,
    /// Write one output shard per input shard, holding the same tensors (`--keep-split`).
    pub keep_split: bool,
    /// Store ingot's integrity digests in the output (default on).
    pub integrity: bool,
    /// For tensors without importance weights, use ggml's reference quantizers (llama-quantize's
    /// output, much faster) instead of ingot's plain-error search. Weighted tensors always use
    /// the weighted quantizer.
    pub reference_unweighted: bool,
    /// For tensors without importance weights, run the legacy types' full candidate search
    /// ([`QuantMode::Thorough`]: lower plain error than the default, several times slower).
    /// Ignored when `reference_unweighted` is set; K-quants and Q8_0 treat it as the default.
    pub thorough_unweighted: bool,
}

impl QuantizeOptions {
    /// Defaults for `file_type`.
    pub fn new(file_type: FileType) -> QuantizeOptions {
        QuantizeOptions {
            plan: PlanOptions::new(file_type),
            require_imatrix: false,
            include_weights: Vec::new(),
            exclude_weights: Vec::new(),
            kv_overrides: Vec::new(),
            imatrix_source: None,
            split: SplitPolicy::default(),
            keep_split: false,
            integrity: true,
            reference_unweighted: false,
            thorough_unweighted: false,
        }
    }
}

/// A non-fatal finding, reported to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// A quantized tensor has no imatrix entry (it is quantized without weights).
    MissingImatrix {
        /// The tensor (input name).
        tensor: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::MissingImatrix { tensor } => {
                write!(
                    f,
                    "no importance matrix entry for {tensor}; quantizing it without one"
                )
            }
        }
    }
}

/// A model the pipeline reads: its metadata, its tensors and their bytes. A GGUF file
/// ([`GgufFile`]) is one; `ingot_convert::HfInput` presents a Hugging Face safetensors model as
/// the GGUF `convert` would write, so it is quantized with no intermediate file.
///
/// Reads come from several threads' worth of pipeline stages, one at a time per source, and
/// always cover whole rows starting at a multiple of [`ModelSource::row_group`] rows.
pub trait ModelSource: Sync {
    /// The metadata, in file order.
    fn metadata(&self) -> Vec<(String, Value)>;
    /// The tensors (name, ggml shape, type), in file order.
    fn tensors(&self) -> Vec<SourceTensor>;
    /// Shards the model is stored in (for `--keep-split`).
    fn n_shards(&self) -> usize {
        1
    }
    /// The shard tensor `index` is stored in.
    fn shard_of(&self, _index: usize) -> usize {
        0
    }
    /// The files the model is read from: the output may not be one of them.
    fn paths(&self) -> Vec<PathBuf>;
    /// Reads must start at a multiple of this many rows of tensor `index` (1 unless the
    /// source reorders rows in groups, like the rotary permutation of Q/K weights).
    fn row_group(&self, _index: usize) -> u64 {
        1
    }
    /// Fills `buf` with tensor `index`'s bytes (in the type [`ModelSource::tensors`] gives),
    /// starting `offset` bytes into the tensor. `offset` and `buf.len()` are whole rows.
    fn read(&self, index: usize, offset: u64, buf: &mut [u8]) -> Result<(), QuantError>;
}

impl ModelSource for GgufFile {
    fn metadata(&self) -> Vec<(String, Value)> {
        GgufFile::metadata(self)
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect()
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        GgufFile::tensors(self)
            .map(|t| SourceTensor {
                name: t.name().to_owned(),
                shape: t.shape().to_vec(),
                ty: t.ggml_type(),
            })
            .collect()
    }

    fn n_shards(&self) -> usize {
        GgufFile::n_shards(self)
    }

    fn shard_of(&self, index: usize) -> usize {
        GgufFile::tensors(self).nth(index).map_or(0, |t| t.shard())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.shard_paths()
            .flatten()
            .map(Path::to_path_buf)
            .collect()
    }

    /// Positioned reads from the shard's file (or a copy from memory for in-memory files), so
    /// the model's pages never pile up in the resident set as they would through the map.
    fn read(&self, index: usize, offset: u64, buf: &mut [u8]) -> Result<(), QuantError> {
        let info = GgufFile::tensors(self)
            .nth(index)
            .expect("the pipeline reads only tensors the source listed");
        let shard = info.shard();
        match self.shard_paths().nth(shard).flatten() {
            Some(path) => {
                let base = self
                    .data_offset(shard)
                    .expect("shard index from the file's own tensor info");
                File::open(path)
                    .and_then(|f| f.read_exact_at(buf, base + info.offset() + offset))
                    .map_err(|source| QuantError::io(path, source))
            }
            None => {
                let view = self
                    .tensor(info.name())
                    .expect("the tensor's own name finds it");
                let start = offset as usize;
                buf.copy_from_slice(&view.bytes()[start..start + buf.len()]);
                Ok(())
            }
        }
    }
}

/// Reads [`ModelInfo`] from a GGUF file's metadata.
pub fn model_info(file: &GgufFile) -> ModelInfo {
    model_info_from(&ModelSource::metadata(file))
}

/// Reads [`ModelInfo`] from metadata (`general.architecture` and `{arch}.*` counts).
pub fn model_info_from(md: &[(String, Value)]) -> ModelInfo {
    let get = |k: &str| md.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let arch = get("general.architecture")
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let u = |k: &str| {
        get(&format!("{arch}.{k}"))
            .and_then(Value::as_integer)
            .and_then(|v| u32::try_from(v).ok())
    };
    ModelInfo {
        block_count: u("block_count"),
        expert_count: u("expert_count").unwrap_or(0),
        head_count: u("attention.head_count").unwrap_or(0),
        head_count_kv: u("attention.head_count_kv").unwrap_or(0),
        arch,
    }
}

/// A model checked and planned, ready to write (or to print, for `--dry-run`).
pub struct Prepared<'f> {
    input: &'f dyn ModelSource,
    /// The plan.
    pub plan: QuantPlan,
    /// Output metadata, in order.
    pub metadata: Vec<(String, Value)>,
    /// Per planned tensor, its index in the source.
    source_index: Vec<usize>,
    /// Per planned tensor, its importance weights (row length × experts), if any.
    weights: Vec<Option<Vec<f32>>>,
    /// Findings to report.
    pub warnings: Vec<Warning>,
    integrity: bool,
    split: SplitPolicy,
    keep_split: bool,
    reference_unweighted: bool,
    thorough_unweighted: bool,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("tensors", &self.plan.tensors.len())
            .field("metadata", &self.metadata.len())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl<'f> Prepared<'f> {
    /// Plans `input`, matches the importance matrix to its tensors and builds the output
    /// metadata; nothing is read from tensor data and nothing is written.
    pub fn new(
        input: &'f dyn ModelSource,
        imatrix: Option<Imatrix>,
        opts: &QuantizeOptions,
    ) -> Result<Prepared<'f>, QuantError> {
        let input_md = input.metadata();
        let model = model_info_from(&input_md);
        let sources: Vec<SourceTensor> = input.tensors();
        let mut plan_opts = opts.plan.clone();
        let mut imatrix = imatrix;
        if let Some(im) = imatrix.as_mut() {
            if !opts.include_weights.is_empty() {
                im.retain(|n| opts.include_weights.iter().any(|p| n.contains(p.as_str())));
            }
            if !opts.exclude_weights.is_empty() {
                im.retain(|n| !opts.exclude_weights.iter().any(|p| n.contains(p.as_str())));
            }
            im.validate()?;
        }
        plan_opts.has_imatrix = imatrix.as_ref().is_some_and(|im| !im.is_empty());
        let plan = QuantPlan::build(&model, &sources, &plan_opts)?;

        let mut weights = Vec::with_capacity(plan.tensors.len());
        let mut warnings = Vec::new();
        let mut matched = 0usize;
        for t in &plan.tensors {
            let quantized = t.converts() && t.target_type.is_quantized();
            let w = match imatrix.as_ref() {
                Some(im) if quantized => {
                    let w = im.weights_for(
                        &t.source_name,
                        t.row_len() as usize,
                        t.n_expert() as usize,
                    )?;
                    if w.is_none() {
                        if opts.require_imatrix {
                            return Err(QuantError::MissingImatrix {
                                tensor: t.source_name.clone(),
                            });
                        }
                        warnings.push(Warning::MissingImatrix {
                            tensor: t.source_name.clone(),
                        });
                    }
                    w
                }
                None if quantized && opts.require_imatrix => {
                    return Err(QuantError::MissingImatrix {
                        tensor: t.source_name.clone(),
                    })
                }
                _ => None,
            };
            if let Some(im) = imatrix.as_ref() {
                if im.get(&t.source_name).is_some() {
                    matched += 1;
                }
            }
            weights.push(w);
        }
        if let Some(im) = imatrix.as_ref() {
            if !im.is_empty() && matched == 0 {
                return Err(QuantError::ImatrixForAnotherModel { entries: im.len() });
            }
        }

        let metadata = build_metadata(input_md, &model, &plan, imatrix.as_ref(), opts)?;
        let index_of: std::collections::HashMap<&str, usize> = sources
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let source_index = plan
            .tensors
            .iter()
            .map(|t| index_of[t.source_name.as_str()])
            .collect();
        Ok(Prepared {
            input,
            plan,
            metadata,
            source_index,
            weights,
            warnings,
            integrity: opts.integrity,
            split: opts.split,
            keep_split: opts.keep_split,
            reference_unweighted: opts.reference_unweighted,
            thorough_unweighted: opts.thorough_unweighted,
        })
    }

    /// Writes the output to `out` (or its shards), reporting progress. Nothing appears at
    /// `out` unless every tensor was written.
    ///
    /// The work is a list of jobs (a group of rows of one tensor) run as a three-stage
    /// pipeline: while the thread pool quantizes job k, one of its threads writes job k − 1
    /// (hashing it for the integrity digests) and reads job k + 1, then joins the quantizing.
    pub fn write(&self, out: &Path, progress: &mut dyn Progress) -> Result<Summary, QuantError> {
        check_output_path(self.input, out)?;
        let start = Instant::now();
        let (mut writers, writer_of) = self.writers(out)?;
        progress.start(self.plan.source_bytes(), self.plan.tensors.len());
        let jobs = self.jobs();
        let mut src = [Buffer::default(), Buffer::default()];
        let mut dst = [Buffer::default(), Buffer::default()];
        if let Some(first) = jobs.first() {
            self.read_job(first, &mut src[0])?;
        }
        for k in 0..=jobs.len() {
            let job = jobs.get(k);
            if let Some(j) = job.filter(|j| j.first_row == 0) {
                progress.tensor_start(j.tensor, &self.plan.tensors[j.tensor]);
            }
            let (src_cur, src_next) = pair_mut(&mut src, k % 2);
            let (dst_cur, dst_prev) = pair_mut(&mut dst, k % 2);
            let prev = k.checked_sub(1).and_then(|p| jobs.get(p));
            let next = jobs.get(k + 1);
            let writers = &mut writers;
            let writer_of = &writer_of;
            let (io, compute) = rayon::join(
                || -> Result<(), QuantError> {
                    if let Some(p) = prev {
                        let w = &mut writers[writer_of[p.tensor]];
                        if p.n_rows == 0 {
                            w.write_tensor(&[])?;
                        } else {
                            w.write_tensor_chunk(dst_prev.bytes())?;
                        }
                    }
                    if let Some(n) = next {
                        self.read_job(n, src_next)?;
                    }
                    Ok(())
                },
                || match job {
                    Some(j) => self.compute_job(j, src_cur, dst_cur),
                    None => Ok(()),
                },
            );
            io?;
            compute?;
            if let Some(p) = prev {
                progress.advance(p.source_bytes);
                if p.last {
                    progress.tensor_done(p.tensor, &self.plan.tensors[p.tensor]);
                }
            }
        }
        let mut paths = Vec::new();
        for w in writers {
            paths.extend(w.finish()?);
        }
        let elapsed = start.elapsed();
        let file_bytes = paths
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        Ok(Summary {
            paths,
            source_bytes: self.plan.source_bytes(),
            target_bytes: self.plan.target_bytes(),
            file_bytes,
            n_elements: self.plan.n_elements(),
            elapsed,
        })
    }

    /// Splits every tensor into jobs of whole rows: about [`CHUNK_F32_BYTES`] of f32 for
    /// tensors that are converted, [`COPY_PIECE`] source bytes for copied ones, a multiple of
    /// the source's row group, and one empty job for an empty tensor.
    fn jobs(&self) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (i, t) in self.plan.tensors.iter().enumerate() {
            let n_rows = if t.n_elements() == 0 { 0 } else { t.n_rows() };
            let src_row = t.source_bytes.checked_div(n_rows).unwrap_or(0);
            let dst_row = t.target_bytes.checked_div(n_rows).unwrap_or(0);
            let per_job = if t.converts() {
                CHUNK_F32_BYTES as u64 / (t.row_len() * 4).max(1)
            } else {
                COPY_PIECE as u64 / src_row.max(1)
            };
            let group = self.input.row_group(self.source_index[i]).max(1);
            let per_job = (per_job / group).max(1) * group;
            let mut row = 0;
            loop {
                let rows = (n_rows - row).min(per_job);
                jobs.push(Job {
                    tensor: i,
                    first_row: row,
                    n_rows: rows,
                    src_row,
                    dst_row,
                    source_bytes: rows * src_row,
                    last: row + rows == n_rows,
                });
                row += rows;
                if row >= n_rows {
                    break;
                }
            }
        }
        jobs
    }

    fn read_job(&self, j: &Job, buf: &mut Buffer) -> Result<(), QuantError> {
        let src = buf.resize(j.source_bytes as usize);
        if src.is_empty() {
            return Ok(());
        }
        self.input
            .read(self.source_index[j.tensor], j.first_row * j.src_row, src)
    }

    /// Converts or copies one job's rows from `src` into `dst`, row-parallel.
    fn compute_job(&self, j: &Job, src: &Buffer, dst: &mut Buffer) -> Result<(), QuantError> {
        let t = &self.plan.tensors[j.tensor];
        let src = src.bytes();
        let out = dst.resize((j.n_rows * j.dst_row) as usize);
        if !t.converts() {
            out.copy_from_slice(src);
            return Ok(());
        }
        if !is_float(t.source_type) && !t.source_type.is_quantized() {
            return Err(QuantError::UnsupportedSource {
                tensor: t.source_name.clone(),
                ty: t.source_type.name(),
            });
        }
        if out.is_empty() {
            return Ok(());
        }
        let row_len = t.row_len() as usize;
        // Rows per matrix: an expert tensor [n_in, n_out, n_expert] has n_out rows per expert.
        let rows_per_matrix = t.shape.get(1).copied().unwrap_or(1).max(1);
        let weights = self.weights[j.tensor].as_deref();
        let mode = match (weights, self.reference_unweighted, self.thorough_unweighted) {
            (None, true, _) => QuantMode::Reference,
            (None, false, true) => QuantMode::Thorough,
            _ => QuantMode::Default,
        };
        let first = j.first_row;
        out.par_chunks_mut(j.dst_row as usize)
            .zip(src.par_chunks(j.src_row as usize))
            .enumerate()
            .try_for_each_init(
                || vec![0f32; row_len],
                |x, (i, (d, s))| {
                    let r = first + i as u64;
                    decode_row(t, r, s, x)?;
                    let wrow = weights.map(|w| {
                        let m = (r / rows_per_matrix) as usize;
                        &w[m * row_len..(m + 1) * row_len]
                    });
                    encode_row(t, x, wrow, mode, d)
                },
            )
    }

    /// The writer(s) with everything declared, and which writer each tensor goes to. One
    /// writer (which may itself split by size), or with `keep_split` one per input shard:
    /// shard 0 gets the metadata, every shard its `split.*` keys, as llama-quantize does.
    fn writers(&self, out: &Path) -> Result<(Vec<GgufWriter>, Vec<usize>), QuantError> {
        use ingot_format::split::{
            prefix_of, shard_path, SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT,
        };
        let n_shards = self.input.n_shards();
        let shard_of: Vec<usize> = self
            .source_index
            .iter()
            .map(|&i| self.input.shard_of(i))
            .collect();
        if !self.keep_split || n_shards <= 1 {
            let mut w = GgufWriter::with_options(
                out,
                WriterOptions {
                    integrity: self.integrity,
                    split: self.split,
                },
            );
            for (k, v) in &self.metadata {
                w.add_kv(k, v.clone())?;
            }
            for t in &self.plan.tensors {
                w.add_tensor(&t.name, &t.shape, t.target_type)?;
            }
            return Ok((vec![w], vec![0; self.plan.tensors.len()]));
        }
        let prefix = prefix_of(out);
        let opts = WriterOptions {
            integrity: self.integrity,
            split: SplitPolicy::default(),
        };
        let mut writers: Vec<GgufWriter> = (0..n_shards)
            .map(|i| GgufWriter::with_options(shard_path(&prefix, i, n_shards), opts))
            .collect();
        let n_tensors = i32::try_from(self.plan.tensors.len()).unwrap_or(i32::MAX);
        for (i, w) in writers.iter_mut().enumerate() {
            w.add_kv(SPLIT_NO, Value::U16(i as u16))?;
            w.add_kv(SPLIT_COUNT, Value::U16(n_shards as u16))?;
            w.add_kv(SPLIT_TENSORS_COUNT, Value::I32(n_tensors))?;
            if i == 0 {
                for (k, v) in &self.metadata {
                    w.add_kv(k, v.clone())?;
                }
            }
        }
        for (t, &s) in self.plan.tensors.iter().zip(&shard_of) {
            writers[s].add_tensor(&t.name, &t.shape, t.target_type)?;
        }
        Ok((writers, shard_of))
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Files written.
    pub paths: Vec<PathBuf>,
    /// Tensor bytes read.
    pub source_bytes: u64,
    /// Tensor bytes written.
    pub target_bytes: u64,
    /// Total size of the output file(s).
    pub file_bytes: u64,
    /// Weights written.
    pub n_elements: u64,
    /// Wall time of the write.
    pub elapsed: Duration,
}

impl Summary {
    /// Bits per weight of the tensor data.
    pub fn bits_per_weight(&self) -> f64 {
        if self.n_elements == 0 {
            0.0
        } else {
            self.target_bytes as f64 * 8.0 / self.n_elements as f64
        }
    }

    /// Input tensor bytes per second, in MB/s (10^6 bytes).
    pub fn mb_per_s(&self) -> f64 {
        self.source_bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Receives progress from [`Prepared::write`] (on the calling thread).
pub trait Progress {
    /// Before the first tensor: total source bytes and tensor count.
    fn start(&mut self, _total_bytes: u64, _n_tensors: usize) {}
    /// A tensor begins.
    fn tensor_start(&mut self, _index: usize, _tensor: &TensorPlan) {}
    /// `bytes` more source bytes are done.
    fn advance(&mut self, _bytes: u64) {}
    /// A tensor is written.
    fn tensor_done(&mut self, _index: usize, _tensor: &TensorPlan) {}
}

/// Progress that reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

fn check_output_path(input: &dyn ModelSource, out: &Path) -> Result<(), QuantError> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(QuantError::OutputDirMissing { dir });
    }
    if let Ok(out_canon) = out.canonicalize() {
        for p in input.paths() {
            if p.canonicalize().is_ok_and(|c| c == out_canon) {
                return Err(QuantError::OutputIsInput {
                    path: out.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

fn set_kv(md: &mut Vec<(String, Value)>, key: &str, value: Value) {
    match md.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => md.push((key.to_owned(), value)),
    }
}

fn build_metadata(
    input_md: Vec<(String, Value)>,
    model: &ModelInfo,
    plan: &QuantPlan,
    imatrix: Option<&Imatrix>,
    opts: &QuantizeOptions,
) -> Result<Vec<(String, Value)>, QuantError> {
    use ingot_format::split::{SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT};
    let mut md: Vec<(String, Value)> = input_md
        .into_iter()
        .filter(|(k, _)| {
            ![SPLIT_NO, SPLIT_COUNT, SPLIT_TENSORS_COUNT].contains(&k.as_str())
                && !k.starts_with(ingot_format::integrity::RESERVED_PREFIX)
        })
        .collect();
    set_kv(
        &mut md,
        "general.quantization_version",
        Value::U32(QUANTIZATION_VERSION),
    );
    set_kv(
        &mut md,
        "general.file_type",
        Value::U32(plan.file_type.llama_ftype()),
    );

    if !plan.layers.is_identity() {
        let prefix = format!("{}.", model.arch);
        let block_key = format!("{}block_count", prefix);
        for (k, v) in md.iter_mut() {
            if !k.starts_with(&prefix) {
                continue;
            }
            if let Value::Array(a) = v {
                if let Some(t) = trim_array(a, &plan.layers) {
                    *a = t;
                }
            }
        }
        set_kv(&mut md, &block_key, Value::U32(plan.layers.new_count()));
        set_kv(
            &mut md,
            KEY_PRUNED_LAYERS,
            Value::from(plan.layers.pruned()),
        );
    }

    if let Some(im) = imatrix.filter(|im| !im.is_empty()) {
        if let Some(src) = &opts.imatrix_source {
            set_kv(&mut md, KEY_IMATRIX_FILE, Value::String(src.file.clone()));
        }
        if let Some(ds) = im.datasets.first() {
            set_kv(&mut md, KEY_IMATRIX_DATASET, Value::String(ds.clone()));
        }
        set_kv(&mut md, KEY_IMATRIX_ENTRIES, Value::U32(im.len() as u32));
        if im.chunk_count > 0 {
            set_kv(&mut md, KEY_IMATRIX_CHUNKS, Value::U32(im.chunk_count));
        }
        if let Some(src) = &opts.imatrix_source {
            set_kv(
                &mut md,
                KEY_IMATRIX_BLAKE3,
                Value::String(src.blake3.clone()),
            );
        }
    }
    set_kv(
        &mut md,
        KEY_INGOT_VERSION,
        Value::String(env!("CARGO_PKG_VERSION").to_owned()),
    );

    for o in &opts.kv_overrides {
        let existing = md.iter().find(|(k, _)| *k == o.key).map(|(_, v)| v);
        let v = o.to_value(existing)?;
        set_kv(&mut md, &o.key, v);
    }
    Ok(md)
}

fn trim_array(
    a: &ingot_format::Array,
    layers: &crate::plan::LayerMap,
) -> Option<ingot_format::Array> {
    use ingot_format::Array as A;
    Some(match a {
        A::U8(v) => A::U8(layers.trim(v)?),
        A::I8(v) => A::I8(layers.trim(v)?),
        A::U16(v) => A::U16(layers.trim(v)?),
        A::I16(v) => A::I16(layers.trim(v)?),
        A::U32(v) => A::U32(layers.trim(v)?),
        A::I32(v) => A::I32(layers.trim(v)?),
        A::F32(v) => A::F32(layers.trim(v)?),
        A::Bool(v) => A::Bool(layers.trim(v)?),
        A::String(v) => A::String(layers.trim(v)?),
        A::Array(v) => A::Array(layers.trim(v)?),
        A::U64(v) => A::U64(layers.trim(v)?),
        A::I64(v) => A::I64(layers.trim(v)?),
        A::F64(v) => A::F64(layers.trim(v)?),
    })
}

/// One unit of pipeline work: `n_rows` rows of planned tensor `tensor` from `first_row`.
#[derive(Clone, Copy, Debug)]
struct Job {
    tensor: usize,
    first_row: u64,
    n_rows: u64,
    src_row: u64,
    dst_row: u64,
    source_bytes: u64,
    /// The tensor's last job.
    last: bool,
}

/// A reusable byte buffer kept 4-aligned (u32 storage) for the f16/bf16/f32 casts.
#[derive(Default)]
struct Buffer {
    words: Vec<u32>,
    len: usize,
}

impl Buffer {
    /// Sets the length to `len` bytes (growing the storage if needed) and returns them.
    fn resize(&mut self, len: usize) -> &mut [u8] {
        let words = len.div_ceil(4);
        if self.words.len() < words {
            self.words.resize(words, 0);
        }
        self.len = len;
        &mut bytemuck::cast_slice_mut::<u32, u8>(&mut self.words)[..len]
    }

    fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u32, u8>(&self.words)[..self.len]
    }
}

/// The buffer at `i` and the other one.
fn pair_mut(b: &mut [Buffer; 2], i: usize) -> (&mut Buffer, &mut Buffer) {
    let (a, c) = b.split_at_mut(1);
    if i == 0 {
        (&mut a[0], &mut c[0])
    } else {
        (&mut c[0], &mut a[0])
    }
}

/// Decodes one row to f32 and rejects NaN/inf.
fn decode_row(
    tensor: &TensorPlan,
    row: u64,
    src: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    match tensor.source_type {
        GgmlType::F32 => out.copy_from_slice(bytemuck::cast_slice(src)),
        GgmlType::F16 => crate::float::f16_to_f32_row(bytemuck::cast_slice(src), out),
        GgmlType::BF16 => crate::float::bf16_to_f32_row(bytemuck::cast_slice(src), out),
        ty if ty.is_quantized() => crate::dequantize_row(ty, src, out)
            .map_err(|source| QuantError::in_tensor(&tensor.source_name, source))?,
        ty => {
            return Err(QuantError::UnsupportedSource {
                tensor: tensor.source_name.clone(),
                ty: ty.name(),
            })
        }
    }
    if let Some((_, value)) = crate::float::first_non_finite(out) {
        return Err(QuantError::NonFiniteInput {
            tensor: tensor.source_name.clone(),
            row,
            value,
        });
    }
    Ok(())
}

/// Encodes one finite f32 row to the target type. Lengths and weights were validated when the
/// plan and the imatrix were matched, and `decode_row` checked finiteness, so this goes
/// straight to the quantizer without re-checking each row.
fn encode_row(
    tensor: &TensorPlan,
    x: &[f32],
    weights: Option<&[f32]>,
    mode: QuantMode,
    out: &mut [u8],
) -> Result<(), QuantError> {
    match tensor.target_type {
        ty if ty.is_quantized() || is_float(ty) => {
            crate::dispatch::quantize_row_checked(ty, x, weights, mode, out)
                .map_err(|source| QuantError::in_tensor(&tensor.source_name, source))
        }
        ty => Err(QuantError::UnsupportedTarget {
            tensor: tensor.source_name.clone(),
            ty: ty.name(),
        }),
    }
}
