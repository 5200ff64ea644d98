//! Helpers shared by the model tools (`perplexity`, `imatrix`, `generate`): thread pool set-up,
//! opening a model with its tokenizer, and the process's memory use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ingot_format::GgufFile;
use ingot_infer::llama::LlamaModel;
use ingot_tokenizer::Tokenizer;

/// A model file as every model tool starts from it: the mapped GGUF and the tokenizer built
/// from its metadata. The model borrows the mapping, so it is made by [`ModelFile::model`]
/// rather than stored here.
pub struct ModelFile {
    /// The path given on the command line (for messages).
    pub path: PathBuf,
    /// The mapped file.
    pub file: GgufFile,
    /// The tokenizer from the file's metadata.
    pub tokenizer: Tokenizer,
}

impl ModelFile {
    /// Sizes the thread pool (`None` = one thread per core), maps `path` and builds its
    /// tokenizer: the common start of `perplexity`, `imatrix` and `generate`.
    pub fn load(path: &Path, threads: Option<usize>) -> Result<ModelFile> {
        init_threads(threads)?;
        let file = open_model(path)?;
        let tokenizer = tokenizer(&file, path)?;
        Ok(ModelFile {
            path: path.to_path_buf(),
            file,
            tokenizer,
        })
    }

    /// The llama-family model over the mapped weights (borrowed, not copied).
    pub fn model(&self) -> Result<LlamaModel<'_>> {
        LlamaModel::from_gguf(&self.file)
            .with_context(|| format!("loading {}", self.path.display()))
    }
}

/// Sizes rayon's global pool (`None` = one thread per core).
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()
            .context("configuring the thread pool")?;
    }
    Ok(())
}

/// Maps a GGUF model file.
pub fn open_model(path: &Path) -> Result<GgufFile> {
    GgufFile::open(path).with_context(|| format!("opening {}", path.display()))
}

/// Builds the tokenizer stored in the model's metadata.
pub fn tokenizer(file: &GgufFile, path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_gguf(file)
        .with_context(|| format!("reading the tokenizer of {}", path.display()))
}

/// Current and peak resident memory of this process in KiB (`VmRSS`, `VmHWM` from
/// `/proc/self/status`), when available.
pub fn resident_memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Prints the resident memory line to stderr.
pub fn report_memory() {
    if let Some((rss, hwm)) = resident_memory_kib() {
        eprintln!(
            "memory: resident {:.1} MiB, peak {:.1} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
}
