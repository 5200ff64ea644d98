//! `quantize IN OUT TYPE [options]`: quantize a model to TYPE, with llama.cpp's per-tensor
//! mixes, importance matrices and layer pruning, streaming with bounded memory. IN is a GGUF
//! file (F32/F16/BF16, or quantized with `--allow-requantize`), a safetensors file or a Hugging
//! Face model directory, told apart by content. Also `quantize --imatrix-convert IN OUT`.
//!
//! The decisions live in `ingot_quant::plan` and `ingot_quant::pipeline`; this binary parses
//! arguments, loads files, prints progress and the summary, and maps errors to one line on
//! stderr and exit status 1.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use ingot_convert::HfInput;
use ingot_format::{GgufFile, SplitPolicy};
use ingot_quant::imatrix::{Imatrix, ImatrixFormat};
use ingot_quant::pipeline::{
    ImatrixSource, KvOverride, ModelSource, Prepared, Progress, QuantizeOptions,
};
use ingot_quant::plan::{parse_tensor_type, FileType, TensorPlan, TensorTypeOverride};

#[derive(Parser, Debug)]
#[command(
    name = "quantize",
    about = "Quantize a model: quantize IN OUT TYPE [options]. IN is a GGUF file, a safetensors \
             file or a Hugging Face model directory (detected by content)",
    after_help = "TYPE (case-insensitive): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K (= Q4_K_M), Q4_K_S, Q4_K_M, \
                  Q5_K (= Q5_K_M), Q5_K_S, Q5_K_M, Q6_K, F16, BF16, F32.\n\
                  With --dry-run, OUT may be left out: quantize --dry-run IN TYPE.\n\
                  quantize --imatrix-convert IN OUT converts an importance matrix between llama.cpp's \
                  legacy .dat and GGUF formats (OUT ending in .gguf is written as GGUF, else .dat)."
)]
struct Args {
    /// IN OUT TYPE (or IN TYPE with --dry-run; or IN OUT with --imatrix-convert).
    #[arg(required = true, num_args = 2..=3, value_name = "IN OUT TYPE")]
    positional: Vec<String>,
    /// Importance matrix (llama.cpp legacy .dat or GGUF; detected by content).
    #[arg(long, value_name = "FILE")]
    imatrix: Option<PathBuf>,
    /// Use imatrix entries only for tensors whose name contains PAT (repeatable).
    #[arg(long, value_name = "PAT", conflicts_with = "exclude_weights")]
    include_weights: Vec<String>,
    /// Do not use imatrix entries for tensors whose name contains PAT (repeatable).
    #[arg(long, value_name = "PAT")]
    exclude_weights: Vec<String>,
    /// Quantize tensors matching the regex PAT to TYPE; repeatable, first match wins.
    #[arg(long, value_name = "PAT=TYPE")]
    tensor_type: Vec<String>,
    /// Type for output.weight.
    #[arg(long, value_name = "TYPE")]
    output_tensor_type: Option<String>,
    /// Type for token_embd.weight.
    #[arg(long, value_name = "TYPE")]
    token_embedding_type: Option<String>,
    /// Leave output.weight as it is.
    #[arg(long)]
    leave_output_tensor: bool,
    /// No mix: the one type everywhere it fits.
    #[arg(long)]
    pure: bool,
    /// Remove these blocks (comma-separated) and renumber the rest.
    #[arg(long, value_name = "LIST")]
    prune_layers: Option<String>,
    /// Write the output in as many shards as the input, with the same tensors in each.
    #[arg(long, conflicts_with = "split_max_size")]
    keep_split: bool,
    /// Split the output into shards of at most SIZE bytes of tensor data (suffix K, M, G = 10^3,
    /// 10^6, 10^9).
    #[arg(long, value_name = "SIZE")]
    split_max_size: Option<String>,
    /// Set metadata KEY to VALUE (TYPE: int, float, bool, str); repeatable.
    #[arg(long, value_name = "KEY=TYPE:VALUE")]
    override_kv: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't', value_name = "N")]
    threads: Option<usize>,
    /// Print each tensor's type and size and the totals; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Allow already-quantized input (dequantized to f32 first).
    #[arg(long)]
    allow_requantize: bool,
    /// A quantized tensor without an imatrix entry is an error.
    #[arg(long)]
    require_imatrix: bool,
    /// Convert the importance matrix IN to OUT and exit.
    #[arg(long)]
    imatrix_convert: bool,
    /// Tensors without imatrix weights use ggml's reference quantizers (llama-quantize's exact
    /// output) instead of ingot's default (the reference plus a cheap error-reducing refinement).
    #[arg(long, conflicts_with = "thorough")]
    reference: bool,
    /// Tensors without imatrix weights of the legacy types (Q4_0, Q4_1, Q5_0, Q5_1) get ingot's
    /// full candidate-scale search: lower error than the default, several times slower.
    #[arg(long)]
    thorough: bool,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    no_progress_bar: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line: the chain of causes joined, skipping a cause whose text the
            // message already holds (many errors print their source themselves).
            let mut msg = String::new();
            for cause in e.chain() {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&c);
                }
            }
            eprintln!("quantize: error: {}", msg.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    if let Some(n) = args.threads {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting up the thread pool")?;
    }
    if args.imatrix_convert {
        return imatrix_convert(&args);
    }
    let (input, out, ty) = match args.positional.as_slice() {
        [i, o, t] => (PathBuf::from(i), Some(PathBuf::from(o)), t.as_str()),
        [i, t] if args.dry_run => (PathBuf::from(i), None, t.as_str()),
        _ => bail!("expected IN OUT TYPE (or IN TYPE with --dry-run)"),
    };
    let file_type = FileType::parse(ty)?;
    let opts = options(&args, file_type)?;

    if !input.exists() {
        bail!("input {} does not exist", input.display());
    }
    let model = open_model(&input)?;
    let imatrix = match &args.imatrix {
        Some(p) => {
            let (im, _) =
                Imatrix::open(p).with_context(|| format!("reading imatrix {}", p.display()))?;
            Some(im)
        }
        None => None,
    };
    let prepared = Prepared::new(model.source(), imatrix, &opts)?;
    for w in &prepared.warnings {
        eprintln!("quantize: warning: {w}");
    }
    if args.dry_run {
        print_dry_run(&prepared);
        return Ok(());
    }
    let out = out.expect("OUT is present unless --dry-run");
    let mut progress = Reporter::new(!args.no_progress_bar && std::io::stderr().is_terminal());
    let summary = prepared.write(&out, &mut progress)?;
    progress.finish();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let plan = &prepared.plan;
    eprintln!(
        "quantize: {} -> {} ({}): tensors {:.2} MiB -> {:.2} MiB, file {:.2} MiB, {:.3} bits/weight, {:.2} s, {:.0} MB/s{}",
        input.display(),
        summary.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        plan.file_type,
        mib(summary.source_bytes),
        mib(summary.target_bytes),
        mib(summary.file_bytes),
        summary.bits_per_weight(),
        summary.elapsed.as_secs_f64(),
        summary.mb_per_s(),
        if plan.n_fallback > 0 {
            format!(", {} tensors used a fallback type", plan.n_fallback)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// An opened input model.
enum Model {
    Gguf(GgufFile),
    Hf(Box<HfInput>),
}

impl Model {
    fn source(&self) -> &dyn ModelSource {
        match self {
            Model::Gguf(f) => f,
            Model::Hf(h) => h.as_ref(),
        }
    }
}

/// Opens the input, detected by content: a directory holding config.json is a Hugging Face
/// model; a file starting with the GGUF magic is GGUF; a file starting with a little-endian
/// u64 header length followed by `{` is safetensors (its directory must be the model's).
fn open_model(path: &Path) -> Result<Model> {
    if path.is_dir() {
        if !path.join("config.json").is_file() {
            bail!(
                "{} is a directory without config.json, not a Hugging Face model",
                path.display()
            );
        }
        let h = HfInput::open(path)
            .with_context(|| format!("reading the Hugging Face model {}", path.display()))?;
        return Ok(Model::Hf(Box::new(h)));
    }
    let mut head = [0u8; 9];
    let n = {
        use std::io::Read;
        let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut n = 0;
        for b in std::io::BufReader::new(f).bytes().take(head.len()) {
            head[n] = b.with_context(|| format!("reading {}", path.display()))?;
            n += 1;
        }
        n
    };
    if n >= 4 && &head[..4] == b"GGUF" {
        let f = GgufFile::open(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(Model::Gguf(f));
    }
    let header_len = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    if n == 9 && header_len > 0 && head[8] == b'{' {
        let h = HfInput::open_file(path)
            .with_context(|| format!("reading the safetensors model {}", path.display()))?;
        return Ok(Model::Hf(Box::new(h)));
    }
    bail!(
        "{} is not a GGUF file, a safetensors file or a Hugging Face model directory",
        path.display()
    )
}

fn options(args: &Args, file_type: FileType) -> Result<QuantizeOptions> {
    let mut o = QuantizeOptions::new(file_type);
    o.plan.pure = args.pure;
    o.plan.leave_output_tensor = args.leave_output_tensor;
    o.plan.allow_requantize = args.allow_requantize;
    o.plan.output_tensor_type = args
        .output_tensor_type
        .as_deref()
        .map(parse_tensor_type)
        .transpose()?;
    o.plan.token_embedding_type = args
        .token_embedding_type
        .as_deref()
        .map(parse_tensor_type)
        .transpose()?;
    o.plan.tensor_types = args
        .tensor_type
        .iter()
        .map(|a| TensorTypeOverride::parse(a))
        .collect::<Result<_, _>>()?;
    if let Some(list) = &args.prune_layers {
        o.plan.prune_layers = list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<u32>()
                    .with_context(|| format!("--prune-layers: {s:?} is not a layer number"))
            })
            .collect::<Result<_>>()?;
    }
    o.require_imatrix = args.require_imatrix;
    o.include_weights = args.include_weights.clone();
    o.exclude_weights = args.exclude_weights.clone();
    o.kv_overrides = args
        .override_kv
        .iter()
        .map(|a| KvOverride::parse(a))
        .collect::<Result<_, _>>()?;
    if let Some(s) = &args.split_max_size {
        o.split = SplitPolicy {
            max_bytes: Some(parse_size(s)?),
            max_tensors: None,
        };
    }
    o.keep_split = args.keep_split;
    o.reference_unweighted = args.reference;
    o.thorough_unweighted = args.thorough;
    if let Some(p) = &args.imatrix {
        let bytes = std::fs::read(p).with_context(|| format!("reading imatrix {}", p.display()))?;
        o.imatrix_source = Some(ImatrixSource {
            file: p.display().to_string(),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        });
    }
    Ok(o)
}

/// `500M`, `2G`, `123456` → bytes (decimal units, as llama.cpp's gguf-split).
fn parse_size(s: &str) -> Result<u64> {
    let (num, mul) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1_000),
        Some('M' | 'm') => (&s[..s.len() - 1], 1_000_000),
        Some('G' | 'g') => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("--split-max-size: {s:?} is not a size"))?;
    match n.checked_mul(mul) {
        Some(b) if b > 0 => Ok(b),
        _ => bail!("--split-max-size: {s:?} is out of range"),
    }
}

fn imatrix_convert(args: &Args) -> Result<()> {
    let [input, out] = args.positional.as_slice() else {
        bail!("--imatrix-convert takes IN OUT");
    };
    let (im, from) = Imatrix::open(input).with_context(|| format!("reading imatrix {input}"))?;
    let to_gguf = out.ends_with(".gguf");
    if to_gguf {
        im.write_gguf(out)?;
    } else {
        im.write_legacy(out)?;
    }
    let name = |f: ImatrixFormat| match f {
        ImatrixFormat::Gguf => "GGUF",
        ImatrixFormat::Legacy => "legacy .dat",
    };
    eprintln!(
        "quantize: {} entries, {} chunks: {input} ({}) -> {out} ({})",
        im.len(),
        im.chunk_count,
        name(from),
        if to_gguf { "GGUF" } else { "legacy .dat" }
    );
    Ok(())
}

fn print_dry_run(p: &Prepared) {
    let plan = &p.plan;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let n = plan.tensors.len();
    for (i, t) in plan.tensors.iter().enumerate() {
        let shape = t
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let fb = t
            .fallback_from
            .map(|f| format!(" (fallback from {})", f.name()))
            .unwrap_or_default();
        println!(
            "[{:4}/{n}] {:<40} [{shape}] {:>6} -> {:<6} {:>12} bytes ({:.2} MiB){fb}",
            i + 1,
            t.name,
            t.source_type.name(),
            t.target_type.name(),
            t.target_bytes,
            mib(t.target_bytes),
        );
    }
    for name in &plan.pruned_tensors {
        println!("pruned: {name}");
    }
    println!(
        "total: {} tensors, {} weights, {} -> {} bytes ({:.2} MiB -> {:.2} MiB), {:.3} bits/weight",
        n,
        plan.n_elements(),
        plan.source_bytes(),
        plan.target_bytes(),
        mib(plan.source_bytes()),
        mib(plan.target_bytes()),
        plan.bits_per_weight()
    );
}

/// Progress: an indicatif bar on a terminal, one plain line per tensor otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    n: usize,
}

impl Reporter {
    fn new(terminal: bool) -> Reporter {
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("the template is valid"),
            );
            b
        });
        Reporter { bar, n: 0 }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn start(&mut self, total_bytes: u64, n_tensors: usize) {
        self.n = n_tensors;
        if let Some(b) = &self.bar {
            b.set_length(total_bytes);
        }
    }

    fn tensor_start(&mut self, index: usize, t: &TensorPlan) {
        if let Some(b) = &self.bar {
            b.set_message(format!("[{}/{}] {}", index + 1, self.n, t.name));
        }
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.inc(bytes);
        }
    }

    fn tensor_done(&mut self, index: usize, t: &TensorPlan) {
        if self.bar.is_none() {
            eprintln!(
                "[{:4}/{}] {:<40} {:>6} -> {:<6} {:>10.2} MiB -> {:>8.2} MiB",
                index + 1,
                self.n,
                t.name,
                t.source_type.name(),
                t.target_type.name(),
                t.source_bytes as f64 / 1048576.0,
                t.target_bytes as f64 / 1048576.0
            );
        }
    }
}
