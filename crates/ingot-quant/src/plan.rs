//! The quantization plan: which tensors are quantized, to which type, and which blocks are
//! pruned — pure decisions over names, shapes and types, with no tensor data touched.
//!
//! The rules follow llama.cpp's `src/llama-quant.cpp` (`tensor_allows_quantization`,
//! `llama_tensor_get_type_impl`, `tensor_type_fallback`, `remap_layer`); `formats/quant-plans.md`
//! lists each rule with its source and the few places ingot deliberately differs.
//!
//! ```text
//! build(model, tensors, options):
//!   layers   = LayerMap(block_count, prune list)         # errors: out of range, duplicate, all
//!   kept     = tensors whose blk.N is not pruned, renamed blk.N -> blk.new(N)
//!   order    = kept sorted by (block index or -1, name)   # llama.cpp's weight order; the
//!                                                         # per-layer counters run in it
//!   for t in order:
//!     if not quantizable(t): type = t.type                # 1-D, norms, non-.weight, ...
//!     elif t is token_embd and --token-embedding-type: that type
//!     elif t is output.weight and --output-tensor-type: that type
//!     else:
//!       type = first --tensor-type PAT=TYPE whose regex matches, or
//!              default type of the file type, refined by the mix rules unless --pure
//!       type = fallback(type) while row length % block size != 0
//!                (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K->Q4_0, else F16)
//! ```

use std::fmt;

use ingot_format::GgmlType;

use crate::QuantError;

/// The file types (llama.cpp's `llama_ftype`) ingot can produce: the headline type plus its
/// per-tensor mix.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// Everything 32-bit float.
    F32,
    /// Weights f16.
    F16,
    /// Weights bf16.
    BF16,
    /// Weights Q8_0.
    Q8_0,
    /// Weights Q4_0 (output Q6_K).
    Q4_0,
    /// Weights Q4_1 (output Q6_K).
    Q4_1,
    /// Weights Q5_0 (output Q6_K).
    Q5_0,
    /// Weights Q5_1 (output Q6_K).
    Q5_1,
    /// Q4_K with a few attn_v/ffn_down layers in Q5_K.
    Q4_K_S,
    /// Q4_K with half the attn_v/ffn_down layers in Q6_K (`Q4_K` is an alias).
    Q4_K_M,
    /// Q5_K with the output in Q6_K.
    Q5_K_S,
    /// Q5_K with half the attn_v/ffn_down layers in Q6_K (`Q5_K` is an alias).
    Q5_K_M,
    /// Weights Q6_K.
    Q6_K,
}

impl FileType {
    /// Every file type, in the order they are listed to users.
    pub const ALL: [FileType; 13] = [
        FileType::Q8_0,
        FileType::Q4_0,
        FileType::Q4_1,
        FileType::Q5_0,
        FileType::Q5_1,
        FileType::Q4_K_S,
        FileType::Q4_K_M,
        FileType::Q5_K_S,
        FileType::Q5_K_M,
        FileType::Q6_K,
        FileType::F16,
        FileType::BF16,
        FileType::F32,
    ];

    /// Accepted aliases (llama-quantize's `QUANT_OPTIONS`: `Q4_K` = `Q4_K_M`, `Q5_K` = `Q5_K_M`).
    const ALIASES: [(&'static str, FileType); 2] =
        [("Q4_K", FileType::Q4_K_M), ("Q5_K", FileType::Q5_K_M)];

    /// The user-facing name (`"Q4_K_M"`).
    pub fn name(self) -> &'static str {
        match self {
            FileType::F32 => "F32",
            FileType::F16 => "F16",
            FileType::BF16 => "BF16",
            FileType::Q8_0 => "Q8_0",
            FileType::Q4_0 => "Q4_0",
            FileType::Q4_1 => "Q4_1",
            FileType::Q5_0 => "Q5_0",
            FileType::Q5_1 => "Q5_1",
            FileType::Q4_K_S => "Q4_K_S",
            FileType::Q4_K_M => "Q4_K_M",
            FileType::Q5_K_S => "Q5_K_S",
            FileType::Q5_K_M => "Q5_K_M",
            FileType::Q6_K => "Q6_K",
        }
    }

    /// llama.cpp's `LLAMA_FTYPE_*` number, written to `general.file_type` (`include/llama.h`).
    pub fn llama_ftype(self) -> u32 {
        match self {
            FileType::F32 => 0,
            FileType::F16 => 1,
            FileType::Q4_0 => 2,
            FileType::Q4_1 => 3,
            FileType::Q8_0 => 7,
            FileType::Q5_0 => 8,
            FileType::Q5_1 => 9,
            FileType::Q4_K_S => 14,
            FileType::Q4_K_M => 15,
            FileType::Q5_K_S => 16,
            FileType::Q5_K_M => 17,
            FileType::Q6_K => 18,
            FileType::BF16 => 32,
        }
    }

    /// The tensor type most weights get (`llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        match self {
            FileType::F32 => GgmlType::F32,
            FileType::F16 => GgmlType::F16,
            FileType::BF16 => GgmlType::BF16,
            FileType::Q8_0 => GgmlType::Q8_0,
            FileType::Q4_0 => GgmlType::Q4_0,
            FileType::Q4_1 => GgmlType::Q4_1,
            FileType::Q5_0 => GgmlType::Q5_0,
            FileType::Q5_1 => GgmlType::Q5_1,
            FileType::Q4_K_S | FileType::Q4_K_M => GgmlType::Q4_K,
            FileType::Q5_K_S | FileType::Q5_K_M => GgmlType::Q5_K,
            FileType::Q6_K => GgmlType::Q6_K,
        }
    }

    /// The valid names (aliases included), comma-separated, for error messages.
    pub fn valid_names() -> String {
        let mut names: Vec<&str> = FileType::ALL.iter().map(|t| t.name()).collect();
        names.extend(FileType::ALIASES.iter().map(|(n, _)| *n));
        names.join(", ")
    }

    /// Parses a name case-insensitively (aliases included).
    pub fn parse(name: &str) -> Result<FileType, QuantError> {
        let found = FileType::ALL
            .iter()
            .map(|&t| (t.name(), t))
            .chain(FileType::ALIASES)
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found
            .map(|(_, t)| t)
            .ok_or_else(|| QuantError::UnknownFileType {
                name: name.to_owned(),
                valid: FileType::valid_names(),
            })
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Tensor types ingot can write (and so accepts in `--tensor-type`, `--output-tensor-type`,
/// `--token-embedding-type`).
pub const WRITABLE_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// Parses a ggml tensor type name (`q4_K`, `Q8_0`, `f16`, ...) case-insensitively, as
/// llama-quantize's `parse_ggml_type` does; only [`WRITABLE_TYPES`] are accepted.
pub fn parse_tensor_type(name: &str) -> Result<GgmlType, QuantError> {
    WRITABLE_TYPES
        .iter()
        .copied()
        .find(|t| t.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| QuantError::UnknownTensorType {
            name: name.to_owned(),
            valid: WRITABLE_TYPES
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// True for the plain float types a quantizer can read directly.
pub fn is_float(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)
}

/// One `--tensor-type PATTERN=TYPE` override: tensors whose name the regex matches anywhere
/// (llama.cpp uses `std::regex_search` on the lower-cased pattern) get `ty`.
#[derive(Clone, Debug)]
pub struct TensorTypeOverride {
    pattern: String,
    regex: fancy_regex::Regex,
    ty: GgmlType,
}

impl TensorTypeOverride {
    /// Parses `PATTERN=TYPE`; the pattern is lower-cased as llama-quantize does.
    pub fn parse(arg: &str) -> Result<TensorTypeOverride, QuantError> {
        let bad = |problem: &str| QuantError::BadTensorTypeOverride {
            arg: arg.to_owned(),
            problem: problem.to_owned(),
        };
        let (pat, ty) = arg
            .rsplit_once('=')
            .ok_or_else(|| bad("expected PATTERN=TYPE"))?;
        if pat.is_empty() {
            return Err(bad("missing tensor name pattern"));
        }
        if ty.is_empty() {
            return Err(bad("missing quantization type"));
        }
        let ty = parse_tensor_type(ty)?;
        TensorTypeOverride::new(&pat.to_lowercase(), ty).map_err(|e| match e {
            QuantError::BadTensorTypeOverride { problem, .. } => {
                QuantError::BadTensorTypeOverride {
                    arg: arg.to_owned(),
                    problem,
                }
            }
            other => other,
        })
    }

    /// An override from a regex pattern and a type.
    pub fn new(pattern: &str, ty: GgmlType) -> Result<TensorTypeOverride, QuantError> {
        let regex =
            fancy_regex::Regex::new(pattern).map_err(|e| QuantError::BadTensorTypeOverride {
                arg: format!("{pattern}={}", ty.name()),
                problem: e.to_string(),
            })?;
        Ok(TensorTypeOverride {
            pattern: pattern.to_owned(),
            regex,
            ty,
        })
    }

    /// The pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The type it assigns.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    fn matches(&self, name: &str) -> bool {
        // A regex that exhausts fancy-regex's backtracking limit is treated as no match.
        self.regex.is_match(name).unwrap_or(false)
    }
}

/// What the plan needs to know about the model (from its metadata).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.architecture` (`"llama"`, `"falcon"`, ...).
    pub arch: String,
    /// `{arch}.block_count`, if present.
    pub block_count: Option<u32>,
    /// `{arch}.expert_count` (0 for dense models).
    pub expert_count: u32,
    /// `{arch}.attention.head_count` (0 if unknown).
    pub head_count: u32,
    /// `{arch}.attention.head_count_kv` (0 if unknown).
    pub head_count_kv: u32,
}

impl ModelInfo {
    /// llama.cpp's `LLM_TYPE_70B` as its quantizer infers it: llama with 80 layers and
    /// grouped-query attention (`llama_quant_model_from_metadata`).
    fn is_70b(&self) -> bool {
        self.arch == "llama"
            && self.block_count == Some(80)
            && self.head_count_kv != 0
            && self.head_count != self.head_count_kv
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// Everything the user chose.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// The file type (headline type and mix).
    pub file_type: FileType,
    /// Use the default type for every quantizable tensor, no mix (`--pure`).
    pub pure: bool,
    /// Keep `output.weight` as it is (`--leave-output-tensor`).
    pub leave_output_tensor: bool,
    /// Type for `output.weight` (`--output-tensor-type`).
    pub output_tensor_type: Option<GgmlType>,
    /// Type for `token_embd.weight` (`--token-embedding-type`).
    pub token_embedding_type: Option<GgmlType>,
    /// `--tensor-type` overrides; the first match wins.
    pub tensor_types: Vec<TensorTypeOverride>,
    /// Blocks to remove (`--prune-layers`).
    pub prune_layers: Vec<u32>,
    /// Whether an importance matrix will be used (changes the Q4_0/Q5_0 ffn_down rule).
    pub has_imatrix: bool,
    /// Allow already-quantized input tensors to be dequantized and quantized again.
    pub allow_requantize: bool,
}

impl PlanOptions {
    /// Options for a plain run of `file_type`.
    pub fn new(file_type: FileType) -> PlanOptions {
        PlanOptions {
            file_type,
            pure: false,
            leave_output_tensor: false,
            output_tensor_type: None,
            token_embedding_type: None,
            tensor_types: Vec::new(),
            prune_layers: Vec::new(),
            has_imatrix: false,
            allow_requantize: false,
        }
    }
}

/// A tensor of the input, as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceTensor {
    /// Its name in the input.
    pub name: String,
    /// Its shape in ggml order (`shape[0]` = elements per row).
    pub shape: Vec<u64>,
    /// Its type in the input.
    pub ty: GgmlType,
}

/// What happens to one tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorPlan {
    /// Name in the input (and in the importance matrix).
    pub source_name: String,
    /// Name in the output (differs when pruning renumbers blocks).
    pub name: String,
    /// Shape (ggml order).
    pub shape: Vec<u64>,
    /// Type in the input.
    pub source_type: GgmlType,
    /// Type in the output.
    pub target_type: GgmlType,
    /// The type the rules chose before the row-length fallback replaced it, if they did.
    pub fallback_from: Option<GgmlType>,
    /// Bytes in the input.
    pub source_bytes: u64,
    /// Bytes in the output.
    pub target_bytes: u64,
}

impl TensorPlan {
    /// Elements in the tensor.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Elements per row (`shape[0]`).
    pub fn row_len(&self) -> u64 {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Rows (product of the other dimensions).
    pub fn n_rows(&self) -> u64 {
        self.shape.iter().skip(1).product()
    }

    /// Matrices in a merged expert tensor (`shape[2]`, times `shape[3]` if any; 1 for ordinary
    /// weights): the number of row-length slices its importance-matrix entry holds.
    pub fn n_expert(&self) -> u64 {
        self.shape.iter().skip(2).product()
    }

    /// True when the data changes (converted or quantized), false when it is copied.
    pub fn converts(&self) -> bool {
        self.source_type != self.target_type
    }
}

/// Block renumbering after pruning: old block index ↔ new block index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerMap {
    old_count: u32,
    /// `new_of_old[i]` = new index of old block i, `None` if pruned.
    new_of_old: Vec<Option<u32>>,
    /// `old_of_new[j]` = old index of new block j.
    old_of_new: Vec<u32>,
}

impl LayerMap {
    /// The identity map for a model of `block_count` blocks.
    pub fn identity(block_count: u32) -> LayerMap {
        LayerMap {
            old_count: block_count,
            new_of_old: (0..block_count).map(Some).collect(),
            old_of_new: (0..block_count).collect(),
        }
    }

    /// Removes `prune` from `block_count` blocks and numbers the rest without gaps.
    ///
    /// Errors: a layer ≥ `block_count`, a layer listed twice, or every layer listed.
    pub fn new(block_count: u32, prune: &[u32]) -> Result<LayerMap, QuantError> {
        let mut pruned = vec![false; block_count as usize];
        for &l in prune {
            let slot = pruned
                .get_mut(l as usize)
                .ok_or(QuantError::PruneOutOfRange {
                    layer: l,
                    block_count,
                })?;
            if *slot {
                return Err(QuantError::PruneDuplicate { layer: l });
            }
            *slot = true;
        }
        if block_count > 0 && pruned.iter().all(|&p| p) {
            return Err(QuantError::PruneAll { block_count });
        }
        let mut new_of_old = Vec::with_capacity(block_count as usize);
        let mut old_of_new = Vec::new();
        for (old, &p) in pruned.iter().enumerate() {
            if p {
                new_of_old.push(None);
            } else {
                new_of_old.push(Some(old_of_new.len() as u32));
                old_of_new.push(old as u32);
            }
        }
        Ok(LayerMap {
            old_count: block_count,
            new_of_old,
            old_of_new,
        })
    }

    /// Blocks before pruning.
    pub fn old_count(&self) -> u32 {
        self.old_count
    }

    /// Blocks after pruning.
    pub fn new_count(&self) -> u32 {
        self.old_of_new.len() as u32
    }

    /// True when nothing is pruned.
    pub fn is_identity(&self) -> bool {
        self.new_count() == self.old_count
    }

    /// The pruned (old) block indices, ascending.
    pub fn pruned(&self) -> Vec<u32> {
        (0..self.old_count)
            .filter(|&i| self.new_of_old[i as usize].is_none())
            .collect()
    }

    /// The old index of every kept block, in new order.
    pub fn kept(&self) -> &[u32] {
        &self.old_of_new
    }

    /// A name in the output for an input name: `Some(renamed)` (unchanged when it has no
    /// `blk.N.` part or N is beyond the map), `None` when its block is pruned.
    pub fn map_name(&self, name: &str) -> Option<String> {
        match block_index(name) {
            Some((idx, start, end)) => match self.new_of_old.get(idx as usize) {
                Some(Some(new)) => Some(format!("{}{}{}", &name[..start], new, &name[end..])),
                Some(None) => None,
                None => Some(name.to_owned()),
            },
            None => Some(name.to_owned()),
        }
    }

    /// The input name for an output name (inverse of [`LayerMap::map_name`]).
    pub fn source_name(&self, name: &str) -> String {
        match block_index(name) {
            Some((idx, start, end)) => match self.old_of_new.get(idx as usize) {
                Some(old) => format!("{}{}{}", &name[..start], old, &name[end..]),
                None => name.to_owned(),
            },
            None => name.to_owned(),
        }
    }

    /// Keeps the elements of a per-layer array (one element per old block) for the kept
    /// blocks; `None` when the array is not per-layer (its length is not the old count).
    pub fn trim<T: Clone>(&self, per_layer: &[T]) -> Option<Vec<T>> {
        (per_layer.len() == self.old_count as usize).then(|| {
            self.old_of_new
                .iter()
                .map(|&o| per_layer[o as usize].clone())
                .collect()
        })
    }
}

/// Finds the first `blk.N.` in a name: (N, byte range of the digits). llama.cpp's
/// `remap_layer` searches with the regex `blk\.(\d+)\.`.
pub fn block_index(name: &str) -> Option<(u32, usize, usize)> {
    let bytes = name.as_bytes();
    let mut from = 0;
    while let Some(pos) = name[from..].find("blk.") {
        let start = from + pos + 4;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = start + digits;
        if digits > 0 && bytes.get(end) == Some(&b'.') {
            if let Ok(n) = name[start..end].parse::<u32>() {
                return Some((n, start, end));
            }
        }
        from = from + pos + 1;
    }
    None
}

/// The block index when a name *starts* with `blk.N.` (llama.cpp's `sscanf(name, "blk.%d.")`,
/// used to order weights and to find an expert tensor's layer).
fn leading_block(name: &str) -> Option<u32> {
    block_index(name)
        .filter(|&(_, start, _)| start == 4)
        .map(|(n, _, _)| n)
}

/// Broad tensor roles the mix rules look at (`tensor_get_category` in llama-quant.cpp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// `token_embd.weight` or `per_layer_token_embd.weight`.
    TokenEmbd,
    /// `attn_q.weight`.
    AttnQ,
    /// `attn_v.weight`.
    AttnV,
    /// `attn_k.weight`.
    AttnK,
    /// `attn_qkv.weight`.
    AttnQkv,
    /// `attn_kv_b.weight`.
    AttnKvB,
    /// `attn_output.weight`.
    AttnOutput,
    /// `ffn_up*`.
    FfnUp,
    /// `ffn_gate*`.
    FfnGate,
    /// `ffn_down*`.
    FfnDown,
    /// `output.weight`.
    Output,
    /// Anything else.
    Other,
}

impl Category {
    /// The category of a tensor name, tested in llama.cpp's order.
    pub fn of(name: &str) -> Category {
        if name == "output.weight" {
            Category::Output
        } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            Category::TokenEmbd
        } else if name.contains("attn_qkv.weight") {
            Category::AttnQkv
        } else if name.contains("attn_kv_b.weight") {
            Category::AttnKvB
        } else if name.contains("attn_v.weight") {
            Category::AttnV
        } else if name.contains("attn_k.weight") {
            Category::AttnK
        } else if name.contains("attn_q.weight") {
            Category::AttnQ
        } else if name.contains("attn_output.weight") {
            Category::AttnOutput
        } else if name.contains("ffn_up") {
            Category::FfnUp
        } else if name.contains("ffn_gate") {
            Category::FfnGate
        } else if name.contains("ffn_down") {
            Category::FfnDown
        } else {
            Category::Other
        }
    }

    /// attn_v-like tensors, the most sensitive to quantization (`category_is_attn_v`).
    fn is_attn_v(self) -> bool {
        matches!(
            self,
            Category::AttnV | Category::AttnQkv | Category::AttnKvB
        )
    }
}

/// Substrings that exclude a tensor from quantization (`tensor_allows_quantization`).
const NEVER_QUANTIZED: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// ggml's `ggml_n_dims`: dimensions up to the last one larger than 1 (at least 1).
pub fn n_dims(shape: &[u64]) -> usize {
    shape.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// Whether a tensor may be quantized at all: 2-D or more, named `*weight`, not a norm, not
/// one of the small or special tensors llama.cpp keeps as they are.
pub fn allows_quantization(name: &str, shape: &[u64], leave_output_tensor: bool) -> bool {
    n_dims(shape) >= 2
        && name.ends_with("weight")
        && !(leave_output_tensor && name == "output.weight")
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !NEVER_QUANTIZED.iter().any(|s| name.contains(s))
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third
/// layer in between, get more bits in the _M mixes.
pub fn use_more_bits(i_layer: i64, n_layers: i64) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

/// The row-length fallback (`tensor_type_fallback`): when `ncols` is not a multiple of the
/// type's block size, a 32-element type of similar quality, else F16. Returns the type to use
/// and, when it changed, the type it replaced.
pub fn fallback(ty: GgmlType, ncols: u64) -> (GgmlType, Option<GgmlType>) {
    let fits = |t: GgmlType| ncols.is_multiple_of(t.block_size() as u64);
    if fits(ty) {
        return (ty, None);
    }
    let mut fb = match ty {
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        GgmlType::Q2_K | GgmlType::Q3_K => GgmlType::Q4_0,
        _ => GgmlType::F16,
    };
    if !fits(fb) {
        fb = GgmlType::F16;
    }
    (fb, Some(ty))
}

/// The plan for a whole model.
#[derive(Clone, Debug)]
pub struct QuantPlan {
    /// The file type asked for.
    pub file_type: FileType,
    /// Every tensor kept, in input order.
    pub tensors: Vec<TensorPlan>,
    /// Input names of the tensors removed with their pruned blocks.
    pub pruned_tensors: Vec<String>,
    /// Block renumbering (identity when nothing is pruned).
    pub layers: LayerMap,
    /// Tensors whose type the row-length fallback changed.
    pub n_fallback: usize,
}

/// Mutable state of the mix rules (llama.cpp's `quantize_state_impl` counters).
struct MixState<'a> {
    model: &'a ModelInfo,
    opts: &'a PlanOptions,
    n_layer: i64,
    n_attention_wv: i64,
    i_attention_wv: i64,
    i_ffn_down: i64,
    has_tied_embeddings: bool,
}

impl MixState<'_> {
    /// Refines the default type by tensor role and layer (`llama_tensor_get_type_impl`,
    /// restricted to the file types ingot produces).
    fn mix(
        &mut self,
        name: &str,
        shape: &[u64],
        cat: Category,
        default: GgmlType,
    ) -> Result<GgmlType, QuantError> {
        use FileType as F;
        let ft = self.opts.file_type;
        let falcon = self.model.is_falcon();
        let n_expert = self.model.expert_count;
        let mut t = default;
        if cat == Category::Output || (self.has_tied_embeddings && cat == Category::TokenEmbd) {
            if let Some(o) = self.opts.output_tensor_type {
                t = o;
            } else {
                let nx = shape.first().copied().unwrap_or(0);
                if falcon || nx % t.block_size() as u64 != 0 {
                    t = GgmlType::Q8_0;
                } else if t != GgmlType::Q8_0 {
                    t = GgmlType::Q6_K;
                }
            }
        } else if cat == Category::TokenEmbd {
            // No rule for the file types ingot produces.
        } else if cat.is_attn_v() {
            if matches!(ft, F::Q4_K_M | F::Q5_K_M)
                && use_more_bits(self.i_attention_wv, self.n_attention_wv)
            {
                t = GgmlType::Q6_K;
            } else if ft == F::Q4_K_S && self.i_attention_wv < 4 {
                t = GgmlType::Q5_K;
            }
            if self.model.is_70b() && matches!(t, GgmlType::Q3_K | GgmlType::Q4_K) {
                t = GgmlType::Q5_K;
            }
            if n_expert == 8 {
                t = GgmlType::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == Category::AttnK && n_expert == 8 {
            t = GgmlType::Q8_0;
        } else if cat == Category::FfnDown {
            let (i, n) = self.layer_info(name)?;
            match ft {
                F::Q4_K_M if falcon => {
                    t = if i < n / 16 {
                        GgmlType::Q6_K
                    } else if use_more_bits(i, n) {
                        GgmlType::Q5_K
                    } else {
                        GgmlType::Q4_K
                    };
                }
                F::Q4_K_M | F::Q5_K_M if use_more_bits(i, n) => t = GgmlType::Q6_K,
                F::Q4_K_S if !falcon && i < n / 8 => t = GgmlType::Q5_K,
                F::Q4_0 if self.opts.has_imatrix && i < n / 8 => t = GgmlType::Q4_1,
                F::Q5_0 if self.opts.has_imatrix && i < n / 8 => t = GgmlType::Q5_1,
                _ => {}
            }
            self.i_ffn_down += 1;
        } else if cat == Category::AttnOutput
            && !falcon
            && n_expert == 8
            && matches!(ft, F::Q4_K_S | F::Q4_K_M)
        {
            t = GgmlType::Q5_K;
        }
        // attn_qkv is attn_v-like, so llama.cpp's later attn_qkv branch never runs.
        Ok(t)
    }

    /// (layer, layers) for a per-layer rule: a running counter for dense models, the block
    /// index parsed from the name for mixture-of-experts models (`layer_info`).
    fn layer_info(&self, name: &str) -> Result<(i64, i64), QuantError> {
        if self.model.expert_count > 1 {
            match leading_block(name) {
                Some(l) if (l as i64) < self.n_layer => Ok((l as i64, self.n_layer)),
                _ => Err(QuantError::BadLayer {
                    name: name.to_owned(),
                    block_count: self.n_layer as u32,
                }),
            }
        } else {
            Ok((self.i_ffn_down, self.n_layer))
        }
    }
}

fn tensor_bytes(name: &str, shape: &[u64], ty: GgmlType) -> Result<u64, QuantError> {
    let bad = || QuantError::BadShape {
        name: name.to_owned(),
        shape: shape.to_vec(),
        ty: ty.name(),
    };
    let row = ty
        .row_bytes(shape.first().copied().unwrap_or(1))
        .ok_or_else(bad)?;
    shape
        .iter()
        .skip(1)
        .try_fold(row, |acc, &d| acc.checked_mul(d))
        .ok_or_else(bad)
}

impl QuantPlan {
    /// Decides every tensor's fate. `tensors` are in input order; the result keeps that order.
    pub fn build(
        model: &ModelInfo,
        tensors: &[SourceTensor],
        opts: &PlanOptions,
    ) -> Result<QuantPlan, QuantError> {
        let layers = match model.block_count {
            Some(n) => LayerMap::new(n, &opts.prune_layers)?,
            None if opts.prune_layers.is_empty() => {
                let n = tensors
                    .iter()
                    .filter_map(|t| leading_block(&t.name))
                    .max()
                    .map_or(0, |m| m + 1);
                LayerMap::identity(n)
            }
            None => {
                return Err(QuantError::NoBlockCount {
                    key: format!("{}.block_count", model.arch),
                })
            }
        };

        // Rename and drop pruned blocks.
        let mut kept: Vec<(usize, String)> = Vec::with_capacity(tensors.len());
        let mut pruned_tensors = Vec::new();
        for (i, t) in tensors.iter().enumerate() {
            match layers.map_name(&t.name) {
                Some(n) => kept.push((i, n)),
                None => pruned_tensors.push(t.name.clone()),
            }
        }

        // llama.cpp visits weights sorted by (leading block index, name); its counters run in
        // that order.
        let mut order: Vec<usize> = (0..kept.len()).collect();
        order.sort_by(|&a, &b| {
            let ka = (leading_block(&kept[a].1).map_or(-1, i64::from), &kept[a].1);
            let kb = (leading_block(&kept[b].1).map_or(-1, i64::from), &kept[b].1);
            ka.cmp(&kb)
        });

        let default = opts.file_type.default_type();
        let default_quantized = !is_float(default);
        let mut state = MixState {
            model,
            opts,
            n_layer: i64::from(layers.new_count()),
            n_attention_wv: kept
                .iter()
                .filter(|(_, n)| Category::of(n).is_attn_v())
                .count() as i64,
            i_attention_wv: 0,
            i_ffn_down: 0,
            has_tied_embeddings: !kept.iter().any(|(_, n)| n == "output.weight"),
        };

        let mut planned: Vec<Option<TensorPlan>> = vec![None; kept.len()];
        let mut n_fallback = 0;
        for &k in &order {
            let (src_idx, name) = &kept[k];
            let src = &tensors[*src_idx];
            let cat = Category::of(name);
            let mut fallback_from = None;
            let target = if !allows_quantization(name, &src.shape, opts.leave_output_tensor) {
                src.ty
            } else {
                let chosen =
                    if let (Some(t), Category::TokenEmbd) = (opts.token_embedding_type, cat) {
                        t
                    } else if let (Some(t), Category::Output) = (opts.output_tensor_type, cat) {
                        t
                    } else if let Some(o) = opts.tensor_types.iter().find(|o| o.matches(name)) {
                        o.ty()
                    } else if opts.pure || !default_quantized {
                        default
                    } else {
                        state.mix(name, &src.shape, cat, default)?
                    };
                let ncols = src.shape.first().copied().unwrap_or(1);
                let (t, from) = fallback(chosen, ncols);
                if from.is_some() {
                    n_fallback += 1;
                    fallback_from = from;
                }
                t
            };
            if target != src.ty && !is_float(src.ty) && !opts.allow_requantize {
                return Err(QuantError::RequantizeNotAllowed {
                    name: src.name.clone(),
                    ty: src.ty.name(),
                });
            }
            planned[k] = Some(TensorPlan {
                source_name: src.name.clone(),
                name: name.clone(),
                shape: src.shape.clone(),
                source_type: src.ty,
                target_type: target,
                fallback_from,
                source_bytes: tensor_bytes(&src.name, &src.shape, src.ty)?,
                target_bytes: tensor_bytes(&src.name, &src.shape, target)?,
            });
        }
        let tensors = planned
            .into_iter()
            .map(|p| p.expect("every kept tensor is visited once in `order`"))
            .collect();
        Ok(QuantPlan {
            file_type: opts.file_type,
            tensors,
            pruned_tensors,
            layers,
            n_fallback,
        })
    }

    /// Bytes of tensor data read (kept tensors only).
    pub fn source_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.source_bytes).sum()
    }

    /// Bytes of tensor data written.
    pub fn target_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.target_bytes).sum()
    }

    /// Weights (elements) in the kept tensors.
    pub fn n_elements(&self) -> u64 {
        self.tensors.iter().map(TensorPlan::n_elements).sum()
    }

    /// Bits per weight of the output's tensor data.
    pub fn bits_per_weight(&self) -> f64 {
        let n = self.n_elements();
        if n == 0 {
            0.0
        } else {
            self.target_bytes() as f64 * 8.0 / n as f64
        }
    }

    /// The largest tensor's size as f32, the unit of the pipeline's memory bound.
    pub fn largest_f32_bytes(&self) -> u64 {
        self.tensors
            .iter()
            .map(|t| t.n_elements() * 4)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use GgmlType as G;

    /// A llama-shaped model: `n_layer` blocks, hidden `h`, feed-forward `ff`, kv width `kv`.
    fn llama(n_layer: u32, h: u64, ff: u64, kv: u64, tied: bool) -> (ModelInfo, Vec<SourceTensor>) {
        let t = |name: String, shape: Vec<u64>, ty| SourceTensor { name, shape, ty };
        let mut v = vec![t("token_embd.weight".into(), vec![h, 1000], G::F16)];
        for i in 0..n_layer {
            let b = |s: &str| format!("blk.{i}.{s}");
            v.push(t(b("attn_norm.weight"), vec![h], G::F32));
            v.push(t(b("attn_q.weight"), vec![h, h], G::F16));
            v.push(t(b("attn_k.weight"), vec![h, kv], G::F16));
            v.push(t(b("attn_v.weight"), vec![h, kv], G::F16));
            v.push(t(b("attn_output.weight"), vec![h, h], G::F16));
            v.push(t(b("ffn_norm.weight"), vec![h], G::F32));
            v.push(t(b("ffn_gate.weight"), vec![h, ff], G::F16));
            v.push(t(b("ffn_up.weight"), vec![h, ff], G::F16));
            v.push(t(b("ffn_down.weight"), vec![ff, h], G::F16));
        }
        v.push(t("output_norm.weight".into(), vec![h], G::F32));
        if !tied {
            v.push(t("output.weight".into(), vec![h, 1000], G::F16));
        }
        let model = ModelInfo {
            arch: "llama".into(),
            block_count: Some(n_layer),
            expert_count: 0,
            head_count: 8,
            head_count_kv: 2,
        };
        (model, v)
    }

    fn ty_of(plan: &QuantPlan, name: &str) -> GgmlType {
        plan.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .target_type
    }

    #[test]
    fn file_type_names_are_case_insensitive_with_aliases() {
        assert_eq!(FileType::parse("q4_k_m").unwrap(), FileType::Q4_K_M);
        assert_eq!(FileType::parse("Q4_K").unwrap(), FileType::Q4_K_M);
        assert_eq!(FileType::parse("q5_k").unwrap(), FileType::Q5_K_M);
        assert_eq!(FileType::parse("bf16").unwrap(), FileType::BF16);
        match FileType::parse("Q3_X") {
            Err(QuantError::UnknownFileType { name, valid }) => {
                assert_eq!(name, "Q3_X");
                for t in FileType::ALL {
                    assert!(valid.contains(t.name()), "{valid} lacks {t}");
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn llama_ftype_numbers() {
        let pairs = [
            (FileType::F32, 0),
            (FileType::F16, 1),
            (FileType::Q4_0, 2),
            (FileType::Q8_0, 7),
            (FileType::Q4_K_S, 14),
            (FileType::Q4_K_M, 15),
            (FileType::Q5_K_M, 17),
            (FileType::Q6_K, 18),
            (FileType::BF16, 32),
        ];
        for (t, n) in pairs {
            assert_eq!(t.llama_ftype(), n, "{t}");
        }
    }

    #[test]
    fn q4_k_m_mix_on_a_256_multiple_model() {
        let (m, ts) = llama(32, 512, 1024, 256, false);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q4_K_M)).unwrap();
        // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2.
        for i in 0..32 {
            let more = !(4..28).contains(&i) || (i - 4) % 3 == 2;
            let want = if more { G::Q6_K } else { G::Q4_K };
            assert_eq!(
                ty_of(&plan, &format!("blk.{i}.attn_v.weight")),
                want,
                "attn_v {i}"
            );
            assert_eq!(
                ty_of(&plan, &format!("blk.{i}.ffn_down.weight")),
                want,
                "ffn_down {i}"
            );
            assert_eq!(ty_of(&plan, &format!("blk.{i}.attn_q.weight")), G::Q4_K);
            assert_eq!(ty_of(&plan, &format!("blk.{i}.attn_norm.weight")), G::F32);
        }
        assert_eq!(ty_of(&plan, "output.weight"), G::Q6_K);
        assert_eq!(ty_of(&plan, "token_embd.weight"), G::Q4_K);
        assert_eq!(plan.n_fallback, 0);
    }

    #[test]
    fn q4_k_m_on_smollm2_shapes_falls_back() {
        // Hidden 576 is not a multiple of 256: Q4_K -> Q5_0, Q6_K -> Q8_0; ffn_down rows are
        // 1536 long and keep K types; the tied embedding is the output: Q8_0.
        let (m, ts) = llama(30, 576, 1536, 192, true);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q4_K_M)).unwrap();
        assert_eq!(ty_of(&plan, "token_embd.weight"), G::Q8_0);
        for i in 0..30 {
            assert_eq!(ty_of(&plan, &format!("blk.{i}.attn_q.weight")), G::Q5_0);
            let v = ty_of(&plan, &format!("blk.{i}.attn_v.weight"));
            assert!(v == G::Q5_0 || v == G::Q8_0, "{v:?}");
            let d = ty_of(&plan, &format!("blk.{i}.ffn_down.weight"));
            assert!(d == G::Q4_K || d == G::Q6_K, "{d:?}");
        }
        let t = plan
            .tensors
            .iter()
            .find(|t| t.name == "blk.0.attn_q.weight")
            .unwrap();
        assert_eq!(t.fallback_from, Some(G::Q4_K));
    }

    #[test]
    fn q4_k_s_rules() {
        let (m, ts) = llama(16, 256, 512, 256, false);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q4_K_S)).unwrap();
        for i in 0..16 {
            let v = if i < 4 { G::Q5_K } else { G::Q4_K };
            assert_eq!(ty_of(&plan, &format!("blk.{i}.attn_v.weight")), v);
            let d = if i < 2 { G::Q5_K } else { G::Q4_K };
            assert_eq!(ty_of(&plan, &format!("blk.{i}.ffn_down.weight")), d);
        }
        assert_eq!(ty_of(&plan, "output.weight"), G::Q6_K);
    }

    #[test]
    fn q4_0_and_q8_0_outputs() {
        let (m, ts) = llama(8, 256, 512, 256, false);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q4_0)).unwrap();
        assert_eq!(ty_of(&plan, "output.weight"), G::Q6_K);
        assert_eq!(ty_of(&plan, "blk.0.ffn_down.weight"), G::Q4_0);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q8_0)).unwrap();
        assert!(plan
            .tensors
            .iter()
            .filter(|t| t.shape.len() == 2)
            .all(|t| t.target_type == G::Q8_0));
        // With an imatrix, Q4_0's first eighth of ffn_down layers get Q4_1.
        let mut o = PlanOptions::new(FileType::Q4_0);
        o.has_imatrix = true;
        let plan = QuantPlan::build(&m, &ts, &o).unwrap();
        assert_eq!(ty_of(&plan, "blk.0.ffn_down.weight"), G::Q4_1);
        assert_eq!(ty_of(&plan, "blk.1.ffn_down.weight"), G::Q4_0);
    }

    #[test]
    fn pure_overrides_and_output_options() {
        let (m, ts) = llama(8, 256, 512, 256, false);
        let mut o = PlanOptions::new(FileType::Q4_K_M);
        o.pure = true;
        let plan = QuantPlan::build(&m, &ts, &o).unwrap();
        assert_eq!(ty_of(&plan, "output.weight"), G::Q4_K);
        assert_eq!(ty_of(&plan, "blk.0.attn_v.weight"), G::Q4_K);

        let mut o = PlanOptions::new(FileType::Q4_K_M);
        o.tensor_types = vec![
            TensorTypeOverride::parse("ATTN_V=q8_0").unwrap(),
            TensorTypeOverride::parse("attn_.*=f16").unwrap(),
        ];
        o.output_tensor_type = Some(G::Q8_0);
        o.token_embedding_type = Some(G::F16);
        let plan = QuantPlan::build(&m, &ts, &o).unwrap();
        assert_eq!(
            ty_of(&plan, "blk.3.attn_v.weight"),
            G::Q8_0,
            "first match wins"
        );
        assert_eq!(ty_of(&plan, "blk.3.attn_q.weight"), G::F16);
        assert_eq!(ty_of(&plan, "blk.3.ffn_up.weight"), G::Q4_K);
        assert_eq!(ty_of(&plan, "output.weight"), G::Q8_0);
        assert_eq!(ty_of(&plan, "token_embd.weight"), G::F16);

        let mut o = PlanOptions::new(FileType::Q4_K_M);
        o.leave_output_tensor = true;
        let plan = QuantPlan::build(&m, &ts, &o).unwrap();
        assert_eq!(ty_of(&plan, "output.weight"), G::F16);
    }

    #[test]
    fn bad_overrides_are_errors() {
        assert!(matches!(
            TensorTypeOverride::parse("attn_v"),
            Err(QuantError::BadTensorTypeOverride { .. })
        ));
        assert!(matches!(
            TensorTypeOverride::parse("=q8_0"),
            Err(QuantError::BadTensorTypeOverride { .. })
        ));
        assert!(matches!(
            TensorTypeOverride::parse("attn_v=q9_9"),
            Err(QuantError::UnknownTensorType { .. })
        ));
        assert!(matches!(
            TensorTypeOverride::parse("attn_v(=q8_0"),
            Err(QuantError::BadTensorTypeOverride { .. })
        ));
    }

    #[test]
    fn fallback_rules() {
        assert_eq!(fallback(G::Q4_K, 576), (G::Q5_0, Some(G::Q4_K)));
        assert_eq!(fallback(G::Q5_K, 576), (G::Q5_1, Some(G::Q5_K)));
        assert_eq!(fallback(G::Q6_K, 576), (G::Q8_0, Some(G::Q6_K)));
        assert_eq!(fallback(G::Q3_K, 96), (G::Q4_0, Some(G::Q3_K)));
        assert_eq!(fallback(G::Q4_K, 100), (G::F16, Some(G::Q4_K)));
        assert_eq!(fallback(G::Q8_0, 100), (G::F16, Some(G::Q8_0)));
        assert_eq!(fallback(G::Q4_K, 512), (G::Q4_K, None));
    }

    #[test]
    fn one_d_and_special_tensors_are_not_quantized() {
        assert!(!allows_quantization(
            "blk.0.attn_norm.weight",
            &[4096, 4096],
            false
        ));
        assert!(!allows_quantization(
            "blk.0.ffn_gate_inp.weight",
            &[4096, 8],
            false
        ));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[4096, 2], false));
        assert!(
            !allows_quantization("blk.0.attn_q.weight", &[4096, 1], false),
            "1-D after trimming"
        );
        assert!(allows_quantization(
            "blk.0.attn_q.weight",
            &[4096, 4096],
            false
        ));
        assert!(!allows_quantization("output.weight", &[4096, 4096], true));
    }

    #[test]
    fn requantize_needs_permission() {
        let (m, mut ts) = llama(2, 256, 512, 256, false);
        ts[2].ty = G::Q4_0;
        let e = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q8_0)).unwrap_err();
        assert!(
            matches!(e, QuantError::RequantizeNotAllowed { ref name, .. } if name == &ts[2].name)
        );
        let mut o = PlanOptions::new(FileType::Q8_0);
        o.allow_requantize = true;
        assert!(QuantPlan::build(&m, &ts, &o).is_ok());
        // A quantized tensor that stays as it is needs no permission.
        let mut o = PlanOptions::new(FileType::Q4_0);
        o.pure = true;
        assert!(QuantPlan::build(&m, &ts, &o).is_ok());
    }

    #[test]
    fn pruning_renumbers_and_validates() {
        let (m, ts) = llama(6, 256, 512, 256, false);
        let mut o = PlanOptions::new(FileType::Q8_0);
        o.prune_layers = vec![1, 4];
        let plan = QuantPlan::build(&m, &ts, &o).unwrap();
        assert_eq!(plan.layers.new_count(), 4);
        assert_eq!(plan.layers.kept(), &[0, 2, 3, 5]);
        assert_eq!(plan.pruned_tensors.len(), 2 * 9);
        let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"blk.3.ffn_up.weight"));
        assert!(!names.contains(&"blk.4.ffn_up.weight"));
        let t = plan
            .tensors
            .iter()
            .find(|t| t.name == "blk.2.attn_q.weight")
            .unwrap();
        assert_eq!(t.source_name, "blk.3.attn_q.weight");
        assert_eq!(
            plan.layers.source_name("blk.3.ffn_up.weight"),
            "blk.5.ffn_up.weight"
        );
        assert_eq!(
            plan.layers.trim(&[10, 11, 12, 13, 14, 15]),
            Some(vec![10, 12, 13, 15])
        );
        assert_eq!(plan.layers.trim(&[1, 2]), None);

        for (prune, want) in [
            (vec![6], "range"),
            (vec![2, 2], "dup"),
            (vec![0, 1, 2, 3, 4, 5], "all"),
        ] {
            let mut o = PlanOptions::new(FileType::Q8_0);
            o.prune_layers = prune;
            let e = QuantPlan::build(&m, &ts, &o).unwrap_err();
            let ok = match want {
                "range" => matches!(
                    e,
                    QuantError::PruneOutOfRange {
                        layer: 6,
                        block_count: 6
                    }
                ),
                "dup" => matches!(e, QuantError::PruneDuplicate { layer: 2 }),
                _ => matches!(e, QuantError::PruneAll { block_count: 6 }),
            };
            assert!(ok, "{want}: {e:?}");
        }
    }

    #[test]
    fn sizes_and_bits_per_weight() {
        let (m, ts) = llama(2, 256, 512, 256, false);
        let plan = QuantPlan::build(&m, &ts, &PlanOptions::new(FileType::Q8_0)).unwrap();
        let t = plan
            .tensors
            .iter()
            .find(|t| t.name == "blk.0.attn_q.weight")
            .unwrap();
        assert_eq!(t.source_bytes, 256 * 256 * 2);
        assert_eq!(t.target_bytes, 256 / 32 * 34 * 256);
        let bpw = plan.bits_per_weight();
        assert!(bpw > 8.5 && bpw < 8.6, "{bpw}");
    }

    #[test]
    fn block_index_parsing() {
        assert_eq!(block_index("blk.12.attn_q.weight"), Some((12, 4, 6)));
        assert_eq!(block_index("v.blk.3.x"), Some((3, 6, 7)));
        assert_eq!(block_index("blk.x.blk.7.y"), Some((7, 10, 11)));
        assert_eq!(block_index("token_embd.weight"), None);
        assert_eq!(block_index("blk.5"), None);
    }
}
