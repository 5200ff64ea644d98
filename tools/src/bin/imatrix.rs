//! `imatrix`: collects an importance matrix as llama-imatrix does and writes it in llama.cpp's
//! GGUF or legacy `.dat` format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use ingot_infer::imatrix::{collect, ImatrixOptions};
use ingot_infer::llama::KvPrecision;
use ingot_tools::model_cli::ModelFile;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputFormat {
    /// llama.cpp's GGUF imatrix (`<name>.in_sum2`, `<name>.counts`).
    Gguf,
    /// llama.cpp's legacy binary format.
    Dat,
}

/// Collects squared activations per input column of every `blk.*` matrix multiplication.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// GGUF model file.
    #[arg(short = 'm', long)]
    model: PathBuf,
    /// Calibration text file (UTF-8).
    #[arg(short = 'f', long)]
    file: PathBuf,
    /// Output file.
    #[arg(short = 'o', long = "output-file")]
    output: PathBuf,
    /// Window size in tokens.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Process at most this many windows.
    #[arg(long)]
    chunks: Option<usize>,
    /// Output format (default: gguf).
    #[arg(long = "output-format", value_enum, default_value_t = OutputFormat::Gguf)]
    output_format: OutputFormat,
    /// Also collect `output.weight`.
    #[arg(long)]
    process_output: bool,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ingot_tools::run_tool("imatrix", || run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    let loaded = ModelFile::load(&args.model, args.threads)?;
    let (model, tok) = (loaded.model()?, &loaded.tokenizer);
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let tokens = tok.encode(&text, true, false);
    eprintln!("{} tokens", tokens.len());
    let opts = ImatrixOptions {
        n_ctx: args.ctx,
        max_chunks: args.chunks,
        bos: if tok.add_bos() { tok.bos() } else { None },
        process_output: args.process_output,
        dataset: args.file.to_string_lossy().into_owned(),
        kv_precision: KvPrecision::F16,
    };
    let run = collect(&model, &tokens, &opts, |p| {
        eprint!("[{}]{:.4},", p.chunk, p.ppl);
    })?;
    eprintln!();
    println!(
        "Final estimate: PPL = {:.4} +/- {:.5}  ({} chunks, {:.2} s)",
        run.nll.ppl(),
        run.nll.ppl_error(),
        run.imatrix.chunk_count,
        run.elapsed.as_secs_f64()
    );
    match args.output_format {
        OutputFormat::Gguf => run.imatrix.write_gguf(&args.output)?,
        OutputFormat::Dat => run.imatrix.write_legacy(&args.output)?,
    }
    println!(
        "wrote {} entries to {}",
        run.imatrix.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}
