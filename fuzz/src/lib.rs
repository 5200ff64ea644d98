//! Fuzz target bodies, one function per target. Each takes arbitrary bytes, feeds them to one
//! of ingot's file-facing entry points and touches everything that comes back. A body may
//! return early on an error (hostile input is expected to be rejected) but must never panic,
//! hang or allocate without bound: libFuzzer reports any of those as a finding.
//!
//! The same functions are compiled into `tests/tests/reliability_fuzz_corpus.rs` (through
//! `#[path]`), which replays the committed corpus `fuzz/corpus/<target>/` as an ordinary
//! stable test, so a finding fixed once stays fixed without libFuzzer in CI.
//!
//! Beyond "no panic", the bodies assert a few cheap invariants a correct parser must keep
//! (a tensor view's length equals its declared byte size, encoded lengths agree with
//! encodings, a legacy imatrix re-reads to the same bytes, finite inputs quantize to finite
//! values): a violated invariant is a finding too.

use std::path::{Path, PathBuf};

use ingot_format::{Array, GgmlType, GgufFile, Value};
use ingot_quant::imatrix::{Imatrix, ImatrixFormat};
use ingot_quant::{QuantError, QuantMode};

/// GGUF parse from bytes, then every metadata value and every tensor view, and `verify`.
pub fn gguf(data: &[u8]) {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    touch_gguf(&file);
}

/// Reads everything a parsed file offers: each metadata value through the typed getters and
/// its encoding, each tensor's bytes and block view, and the integrity check.
fn touch_gguf(file: &GgufFile) {
    let _ = (file.version(), file.alignment(), file.n_shards());
    let keys: Vec<&str> = file.metadata().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), file.metadata_len());
    for (key, value) in file.metadata() {
        touch_value(value);
        assert!(file.get(key).is_some(), "key {key:?} listed but not found");
        let _ = file.get_u32(key);
        let _ = file.get_u64(key);
        let _ = file.get_i32(key);
        let _ = file.get_i64(key);
        let _ = file.get_f32(key);
        let _ = file.get_f64(key);
        let _ = file.get_bool(key);
        let _ = file.get_str(key);
        let _ = file.get_str_array(key);
        let _ = file.get_i32_array(key);
        let _ = file.get_u32_array(key);
        let _ = file.get_f32_array(key);
    }
    let mut total = 0u64;
    for t in file.tensor_views() {
        let bytes = t.bytes();
        assert_eq!(
            bytes.len() as u64,
            t.info().n_bytes(),
            "tensor {}",
            t.name()
        );
        // Touch the first and last byte of each tensor: reading the mapped range must be safe.
        let _ = (bytes.first(), bytes.last());
        let _ = (t.shape(), t.n_elements(), t.info().offset());
        let f32_view = t.blocks::<f32>();
        assert_eq!(
            f32_view.is_ok(),
            t.ggml_type().type_size() == 4 && bytes.as_ptr().align_offset(4) == 0,
            "blocks::<f32> of a {:?} tensor",
            t.ggml_type()
        );
        assert!(file.tensor(t.name()).is_some());
        total += t.info().n_bytes();
    }
    assert_eq!(total, file.total_tensor_bytes());
    let _ = file.total_elements();
    let _ = file.has_integrity();
    let _ = file.verify();
}

/// Reads every element of a value and checks its encoded length.
fn touch_value(v: &Value) {
    let _ = (v.type_name(), v.as_integer(), v.as_str());
    let mut out = Vec::new();
    v.encode(&mut out);
    assert_eq!(
        out.len() as u64,
        v.encoded_len(),
        "encoded length of a {}",
        v.type_name()
    );
    if let Some(a) = v.as_array() {
        touch_array(a);
    }
}

fn touch_array(a: &Array) {
    let _ = (a.element_type(), a.type_name(), a.is_empty());
    for i in 0..a.len() {
        let e = a.get(i).expect("index below len()");
        touch_value(&e);
    }
    assert!(a.get(a.len()).is_none());
}

/// Both imatrix formats: detection by content, the legacy parser on any bytes, and for every
/// matrix read, the per-entry accessors, validation and a legacy re-encode that must re-read.
pub fn imatrix(data: &[u8]) {
    if let Ok(im) = Imatrix::from_legacy(data) {
        touch_imatrix(&im, ImatrixFormat::Legacy);
    }
    if let Ok((im, format)) = Imatrix::from_bytes(data.to_vec()) {
        touch_imatrix(&im, format);
    }
}

fn touch_imatrix(im: &Imatrix, format: ImatrixFormat) {
    for (name, e) in im.entries() {
        let means = e.means();
        assert_eq!(means.len(), e.sums.len(), "entry {name}");
        let row = e.row_len();
        let _ = im.weights_for(name, row, e.counts.len());
        let _ = im.weights_for(name, row.saturating_add(1), 1);
    }
    let _ = im.validate();
    let legacy = im.to_legacy();
    if format == ImatrixFormat::Legacy {
        // What we read from a legacy file we can write back and read again, unchanged.
        let again = Imatrix::from_legacy(&legacy).expect("re-reading our own legacy encoding");
        assert_eq!(
            again.to_legacy(),
            legacy,
            "legacy round trip changed the bytes"
        );
    }
}

/// The safetensors directory reader: the input (see [`split_safetensors_input`]) is written
/// into a scratch directory ([`write_safetensors_dir`]), which `Shards::open` then reads;
/// every tensor it lists must have exactly its shape's bytes.
pub fn safetensors(data: &[u8]) {
    let Some((index, shard)) = split_safetensors_input(data) else {
        return;
    };
    let dir = scratch_dir();
    write_safetensors_dir(&dir, index, shard);
    let Ok(shards) = ingot_convert::source::Shards::open(&dir) else {
        return;
    };
    for (name, entry) in &shards.tensors {
        let bytes = shards.bytes(entry);
        let expected = entry
            .shape
            .iter()
            .try_fold(entry.dtype.size() as u64, |a, &d| a.checked_mul(d));
        assert_eq!(expected, Some(bytes.len() as u64), "tensor {name}");
        let _ = (bytes.first(), bytes.last());
    }
}

/// The safetensors target's input layout: one flag byte; if bit 0 is set, a u16
/// little-endian length and that many bytes of `model.safetensors.index.json`; the rest is the
/// shard. `None` when the input is too short for the layout it announces.
pub fn split_safetensors_input(data: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    let (&flags, rest) = data.split_first()?;
    if flags & 1 == 0 {
        return Some((None, rest));
    }
    let len = rest.get(..2)?;
    let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
    let index = rest.get(2..2 + len)?;
    Some((Some(index), &rest[2 + len..]))
}

/// Writes a model directory: the shard as both `model.safetensors` and
/// `model-00001-of-00001.safetensors` (the name seed indexes use), and the index if given
/// (removing a previous one if not).
pub fn write_safetensors_dir(dir: &Path, index: Option<&[u8]>, shard: &[u8]) {
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).expect("writing into the scratch directory")
    };
    match index {
        Some(i) => write("model.safetensors.index.json", i),
        None => {
            let _ = std::fs::remove_file(dir.join("model.safetensors.index.json"));
        }
    }
    write("model.safetensors", shard);
    write("model-00001-of-00001.safetensors", shard);
}

/// A directory private to this process for the safetensors target (created once; the files
/// in it are overwritten on every input). In `/dev/shm` when it exists: on a disk-backed
/// `/tmp` the three file writes per input held libFuzzer to ~40 inputs/s.
fn scratch_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let mut b = tempfile::Builder::new();
        b.prefix("ingot-fuzz-safetensors-");
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            if let Ok(d) = b.tempdir_in(shm) {
                return d;
            }
        }
        b.tempdir().expect("creating a scratch directory")
    })
    .path()
    .to_path_buf()
}

/// Texts encoded by the tokenizer target: ASCII, whitespace runs, digits, multi-byte UTF-8,
/// special-token look-alikes.
const TEXTS: [&str; 4] = [
    "Hello world! It's 2024, isn't it?",
    "  \n\t spaces\r\n  and   tabs 12345 ",
    "héllo wörld ß 日本語 🙂 \u{0}",
    "<s>a</s><|endoftext|><unk>",
];

/// Tokenizer construction from a fuzzed GGUF's metadata, then encoding and decoding.
pub fn tokenizer(data: &[u8]) {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let Ok(tok) = ingot_tokenizer::Tokenizer::from_gguf(&file) else {
        return;
    };
    let n = tok.n_vocab();
    for text in TEXTS {
        for (add, parse) in [(false, false), (true, true)] {
            let ids = tok.encode(text, add, parse);
            for &id in &ids {
                assert!((id as usize) < n, "id {id} out of a vocabulary of {n}");
                let _ = tok.token_to_piece(id);
                let _ = (tok.token_text(id), tok.token_type(id));
            }
            let _ = tok.decode_bytes(&ids);
            let _ = tok.try_decode(&ids);
        }
    }
    let _ = tok.try_decode(&[u32::MAX, n as u32]);
}

/// Quantize/dequantize of arbitrary floats. Input: type selector, flags (bit 0: reference
/// mode; bit 1: use importance weights), then little-endian f32s (the weights, when used, are
/// the absolute values of the same floats reversed). Also dequantizes the raw input bytes as
/// blocks of the selected type (arbitrary scales and codes).
pub fn quant(data: &[u8]) {
    let [sel, flags, rest @ ..] = data else {
        return;
    };
    let ty = GgmlType::ALL[usize::from(*sel) % GgmlType::ALL.len()];
    let mode = if flags & 1 == 1 {
        QuantMode::Reference
    } else {
        QuantMode::Default
    };
    let block = ty.block_size();
    let x: Vec<f32> = rest
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = x.len() / block * block;
    let x = &x[..n];
    let weights: Option<Vec<f32>> =
        (flags & 2 == 2).then(|| x.iter().rev().map(|v| v.abs()).collect());

    if let Ok(len) = ingot_quant::row_bytes(ty, n) {
        let mut q = vec![0u8; len];
        match ingot_quant::quantize_row(ty, x, weights.as_deref(), mode, &mut q) {
            Ok(()) => {
                let mut back = vec![0f32; n];
                match ingot_quant::dequantize_row(ty, &q, &mut back) {
                    Ok(()) => check_finite_round_trip(ty, x, weights.as_deref(), &back),
                    Err(QuantError::Unsupported { .. }) => {}
                    Err(e) => panic!("dequantizing what we quantized as {ty:?}: {e}"),
                }
            }
            Err(QuantError::Unsupported { .. }) => {}
            Err(QuantError::NonFiniteValue { index, .. }) => assert!(!x[index].is_finite()),
            Err(QuantError::InvalidWeight { .. }) => {
                assert!(weights.is_some_and(|w| w.iter().any(|v| !v.is_finite())));
            }
            Err(e) => panic!("quantizing {n} finite values as {ty:?}: {e}"),
        }
    }

    // Arbitrary bytes as blocks: whole blocks only.
    let type_size = ty.type_size();
    let n_blocks = rest.len() / type_size;
    let mut out = vec![0f32; n_blocks * block];
    match ingot_quant::dequantize_row(ty, &rest[..n_blocks * type_size], &mut out) {
        Ok(()) | Err(QuantError::Unsupported { .. }) => {}
        Err(e) => panic!("dequantizing {n_blocks} whole blocks of {ty:?}: {e}"),
    }
}

/// Inputs of moderate size (well inside every block format's scale range) with sane weights
/// must come back finite.
fn check_finite_round_trip(ty: GgmlType, x: &[f32], w: Option<&[f32]>, back: &[f32]) {
    const MODERATE: f32 = 1.0e3;
    let moderate = |v: &[f32]| v.iter().all(|a| a.is_finite() && a.abs() <= MODERATE);
    if moderate(x) && w.is_none_or(moderate) {
        if let Some(i) = back.iter().position(|v| !v.is_finite()) {
            panic!("{ty:?}: finite input {} came back as {}", x[i], back[i]);
        }
    }
}

/// Every file of a corpus directory, sorted (for the replay test).
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}
