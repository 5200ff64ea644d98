//! `perplexity`: llama.cpp's perplexity over a text file, optionally saving or comparing
//! against a KL-divergence base (format: formats/kl-divergence.md).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ingot_infer::llama::KvPrecision;
use ingot_infer::perplexity::{perplexity, KlBaseHeader, KlMode, PerplexityOptions};
use ingot_tools::model_cli::{self, ModelFile};

/// Perplexity of a model over a text, computed as llama-perplexity does.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// GGUF model file.
    #[arg(short = 'm', long)]
    model: PathBuf,
    /// Text file (UTF-8). Optional with --kl-divergence: the base file holds the tokens.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
    /// Window size in tokens.
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    ctx: usize,
    /// Evaluate at most this many windows.
    #[arg(long)]
    chunks: Option<usize>,
    /// Threads (default: all cores).
    #[arg(short = 't', long)]
    threads: Option<usize>,
    /// KL base file: written by a plain run, read with --kl-divergence.
    #[arg(long = "kl-divergence-base")]
    kl_base: Option<PathBuf>,
    /// Compare against --kl-divergence-base instead of writing it.
    #[arg(long = "kl-divergence")]
    kl_divergence: bool,
    /// Keep the KV cache in f32 (default: f16 precision, like llama.cpp).
    #[arg(long)]
    kv_f32: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ingot_tools::run_tool("perplexity", || run(args))
}

fn run(args: Args) -> Result<ExitCode> {
    if args.kl_divergence && args.kl_base.is_none() {
        bail!("--kl-divergence needs --kl-divergence-base FILE");
    }
    let loaded = ModelFile::load(&args.model, args.threads)?;
    let (model, tok) = (loaded.model()?, &loaded.tokenizer);

    let mut opts = PerplexityOptions {
        n_ctx: args.ctx,
        max_chunks: args.chunks,
        bos: if tok.add_bos() { tok.bos() } else { None },
        kv_precision: if args.kv_f32 {
            KvPrecision::F32
        } else {
            KvPrecision::F16
        },
    };
    let tokens: Vec<u32> = match (&args.file, args.kl_divergence) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let t0 = std::time::Instant::now();
            let tokens = tok.encode(&text, true, false);
            eprintln!(
                "tokenized {} bytes into {} tokens in {:.2} s",
                text.len(),
                tokens.len(),
                t0.elapsed().as_secs_f64()
            );
            tokens
        }
        (None, true) => {
            let path = args.kl_base.as_ref().expect("checked above");
            let mut r = BufReader::new(
                File::open(path).with_context(|| format!("opening {}", path.display()))?,
            );
            let h = KlBaseHeader::read(&mut r)?;
            opts.n_ctx = h.n_ctx;
            eprintln!(
                "using the {} tokens stored in {}",
                h.tokens.len(),
                path.display()
            );
            h.tokens
        }
        (None, false) => bail!("-f TEXT is required"),
    };

    let mut writer;
    let mut reader;
    let kl = match (&args.kl_base, args.kl_divergence) {
        (None, _) => KlMode::None,
        (Some(path), false) => {
            writer = BufWriter::new(
                File::create(path).with_context(|| format!("creating {}", path.display()))?,
            );
            KlMode::SaveBase(&mut writer)
        }
        (Some(path), true) => {
            reader = BufReader::new(
                File::open(path).with_context(|| format!("opening {}", path.display()))?,
            );
            KlMode::Compare(&mut reader)
        }
    };
    let mut out = std::io::stdout().lock();
    let res = perplexity(&model, &tokens, &opts, kl, |r| {
        let _ = write!(out, "[{}]{:.4},", r.chunk, r.ppl);
        let _ = out.flush();
    })?;
    drop(out);
    println!();
    println!(
        "Final estimate: PPL = {:.4} +/- {:.5}  ({} chunks of {} tokens, {} scored)",
        res.ppl(),
        res.nll.ppl_error(),
        res.n_chunks,
        opts.n_ctx,
        res.nll.count
    );
    println!(
        "speed: {:.1} tokens/s ({} tokens in {:.2} s)",
        res.tokens_per_second(),
        res.n_tokens_evaluated,
        res.elapsed.as_secs_f64()
    );
    if let Some(k) = &res.kl {
        println!(
            "====== KL divergence statistics ({} positions) ======",
            k.count
        );
        println!("PPL(base)          : {:.4}", k.ppl_base);
        println!(
            "PPL(this)          : {:.4}  (ratio {:.4})",
            k.ppl,
            k.ppl / k.ppl_base
        );
        println!(
            "Cor(ln p base, ln p): {:.2}%",
            100.0 * k.logprob_correlation
        );
        println!(
            "Mean KLD           : {:.6} ± {:.6}",
            k.mean_kl, k.mean_kl_error
        );
        println!("Maximum KLD        : {:.6}", k.max_kl);
        for (p, v) in k.kl_percentiles {
            println!("{:5.1}% KLD         : {:.6}", p, v);
        }
        println!(
            "Mean Δp            : {:.3} ± {:.3} %",
            100.0 * k.mean_dp,
            100.0 * k.mean_dp_error
        );
        println!("RMS Δp             : {:.3} %", 100.0 * k.rms_dp);
        for (p, v) in k.dp_percentiles {
            println!("{:5.1}% Δp          : {:.3}%", p, 100.0 * v);
        }
        println!("Same top p         : {:.3} %", 100.0 * k.same_top);
    }
    model_cli::report_memory();
    Ok(ExitCode::SUCCESS)
}
