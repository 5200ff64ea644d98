//! `generate`: streams a continuation of a prompt and reports prompt and generation speed.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use ingot_infer::generate::{generate, GenerateOptions};
use ingot_infer::llama::KvPrecision;
use ingot_infer::sampling::SamplerOptions;
use ingot_tools::model_cli::{self, ModelFile};

/// Generates text from a prompt.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// GGUF model file.
    #[arg(short = 'm', long)]
    model: PathBuf,
    /// Prompt text.
    #[arg(short = 'p', long)]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n: usize,
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.8)]
    temp: f32,
    /// Top-k (0 = off).
    #[arg(long = "top-k", default_value_t = 40)]
    top_k: usize,
    /// Top-p (1 = off).
    #[arg(long = "top-p", default_value_t = 0.95)]
    top_p: f32,
    /// Random seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ingot_tools::run_tool("generate", || run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    let loaded = ModelFile::load(&args.model, args.threads)?;
    let (model, tok) = (loaded.model()?, &loaded.tokenizer);
    let prompt = tok.encode(&args.prompt, true, true);
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let opts = GenerateOptions {
        max_tokens: args.n,
        sampler: SamplerOptions {
            temperature: args.temp,
            top_k: args.top_k,
            top_p: args.top_p,
            seed,
        },
        stop_tokens: tok.eos().into_iter().collect(),
        n_ctx: None,
        kv_precision: KvPrecision::F16,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(args.prompt.as_bytes())?;
    out.flush()?;
    let stats = generate(&model, &prompt, &opts, |t| {
        // A closed pipe (e.g. `| head`) ends the generation quietly.
        out.write_all(tok.token_to_piece(t))
            .and_then(|()| out.flush())
            .is_ok()
    })?;
    drop(out);
    println!();
    eprintln!(
        "prompt: {} tokens, {:.1} tokens/s; generation: {} tokens, {:.1} tokens/s (seed {})",
        stats.prompt_tokens,
        stats.prompt_tokens_per_second(),
        stats.generated_tokens,
        stats.generation_tokens_per_second(),
        seed
    );
    model_cli::report_memory();
    Ok(ExitCode::SUCCESS)
}
