//! `convert`: a Hugging Face safetensors model directory → GGUF (as llama.cpp's
//! convert_hf_to_gguf.py writes it), or with `--export` a GGUF back to a Hugging Face directory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ingot_convert::OutType;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutTypeArg {
    F32,
    F16,
    Bf16,
    #[value(name = "q8_0")]
    Q8_0,
}

/// Convert a Hugging Face model directory (config.json, tokenizer.json, safetensors) to GGUF.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Model directory (or, with --export, the GGUF file to export).
    input: PathBuf,
    /// Output GGUF file (or, with --export, the directory to create).
    output: PathBuf,
    /// Element type of the 2-D weights (norms and biases stay F32).
    #[arg(long, value_enum, default_value = "f16")]
    outtype: OutTypeArg,
    /// Export a GGUF (F32/F16/BF16 tensors) back to a Hugging Face safetensors directory.
    #[arg(long)]
    export: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convert: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let start = Instant::now();
    if args.export {
        let s = ingot_convert::export(&args.input, &args.output)
            .with_context(|| format!("exporting {}", args.input.display()))?;
        eprintln!(
            "exported {} tensors ({} parameters, architecture {}) to {} in {:.1} s",
            s.n_tensors,
            s.n_params,
            s.architecture,
            args.output.display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let outtype = match args.outtype {
        OutTypeArg::F32 => OutType::F32,
        OutTypeArg::F16 => OutType::F16,
        OutTypeArg::Bf16 => OutType::Bf16,
        OutTypeArg::Q8_0 => OutType::Q8_0,
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tensors {msg}")
                .expect("the template is valid"),
        );
        Some(b)
    } else {
        None
    };
    let summary = ingot_convert::convert(&args.input, &args.output, outtype, |p| {
        if let Some(b) = &bar {
            b.set_length(p.total as u64);
            b.set_position(p.done as u64);
            b.set_message(p.tensor.to_string());
        }
    })
    .with_context(|| format!("converting {}", args.input.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!(
        "wrote {}: architecture {}, {} tensors, {} parameters, {} metadata keys, {:.1} MiB of \
         tensor data ({}), in {:.1} s",
        args.output.display(),
        summary.architecture,
        summary.n_tensors,
        summary.n_params,
        summary.n_kv,
        summary.data_bytes as f64 / (1024.0 * 1024.0),
        outtype.name(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
