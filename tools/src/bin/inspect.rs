//! `inspect`: print a GGUF file's header, metadata, tensor table, totals and bits per weight;
//! `--json` for scripts; `--verify` checks ingot's integrity digests.
//!
//! Exit codes: 0 success, 1 error (one line on stderr) or integrity mismatch, 2 usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ingot_format::{Array, FormatError, GgmlType, GgufFile, Value};
use ingot_tools::{human_bytes, run_tool};
use serde_json::{json, Value as Json};

/// Print what a GGUF file holds. A shard of a split model shows the whole model.
#[derive(Parser, Debug)]
#[command(name = "inspect", version)]
struct Args {
    /// The GGUF file (any shard of a split model).
    path: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Recompute the integrity digests (reads every tensor byte); exit 1 on a mismatch or if
    /// the file has none.
    #[arg(long)]
    verify: bool,
    /// Show at most this many elements of each array (0 = all).
    #[arg(long, default_value_t = 8, value_name = "N")]
    array_elements: usize,
    /// Do not print the tensor table.
    #[arg(long)]
    no_tensors: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_tool("inspect", || run(&args))
}

fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let file = GgufFile::open(&args.path).with_context(|| args.path.display().to_string())?;
    let verify = args.verify.then(|| file.verify());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let j = to_json(&file, args, verify.as_ref());
        serde_json::to_writer_pretty(&mut out, &j)?;
        writeln!(out)?;
    } else {
        print_text(&mut out, &file, args, verify.as_ref())?;
    }
    out.flush()?;
    drop(out);
    match verify {
        Some(Err(e)) => {
            // The report already says so; this line makes the failure explicit on stderr.
            eprintln!("inspect: error: {}: {e}", args.path.display());
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Tensor count, elements and bytes of one type.
#[derive(Default)]
struct TypeTotals {
    tensors: usize,
    elements: u64,
    bytes: u64,
}

fn per_type(file: &GgufFile) -> Vec<(GgmlType, TypeTotals)> {
    let mut v: Vec<(GgmlType, TypeTotals)> = Vec::new();
    for t in file.tensors() {
        let i = match v.iter().position(|(ty, _)| *ty == t.ggml_type()) {
            Some(i) => i,
            None => {
                v.push((t.ggml_type(), TypeTotals::default()));
                v.len() - 1
            }
        };
        let e = &mut v[i].1;
        e.tensors += 1;
        e.elements += t.n_elements();
        e.bytes += t.n_bytes();
    }
    v.sort_by_key(|(ty, _)| *ty);
    v
}

fn bpw(bytes: u64, elements: u64) -> f64 {
    if elements == 0 {
        0.0
    } else {
        8.0 * bytes as f64 / elements as f64
    }
}

fn show_value(v: &Value, max: usize) -> String {
    match v {
        Value::Array(a) => show_array(a, max),
        other => other.to_string(),
    }
}

fn show_array(a: &Array, max: usize) -> String {
    let n = a.len();
    let shown = if max == 0 { n } else { n.min(max) };
    let items: Vec<String> = (0..shown)
        .filter_map(|i| a.get(i))
        .map(|v| show_value(&v, max))
        .collect();
    if shown < n {
        format!("[{}, ... ({n} elements)]", items.join(", "))
    } else {
        format!("[{}]", items.join(", "))
    }
}

fn print_text(
    out: &mut impl Write,
    file: &GgufFile,
    args: &Args,
    verify: Option<&Result<(), FormatError>>,
) -> anyhow::Result<()> {
    writeln!(out, "file: {}", args.path.display())?;
    writeln!(
        out,
        "GGUF v{}, alignment {}, {} metadata keys, {} tensors, {} file(s)",
        file.version(),
        file.alignment(),
        file.metadata_len(),
        file.n_tensors(),
        file.n_shards()
    )?;
    for (i, p) in file.shard_paths().enumerate() {
        writeln!(
            out,
            "  shard {i}: {} ({}, data section at byte {})",
            p.map(|p| p.display().to_string()).unwrap_or_default(),
            human_bytes(file.file_size(i).unwrap_or(0)),
            file.data_offset(i).unwrap_or(0)
        )?;
    }
    writeln!(out, "\nmetadata:")?;
    let width = file.metadata().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in file.metadata() {
        writeln!(
            out,
            "  {k:width$}  {:<16} {}",
            v.type_name(),
            show_value(v, args.array_elements)
        )?;
    }
    if !args.no_tensors {
        writeln!(out, "\ntensors:")?;
        let nw = file
            .tensors()
            .map(|t| t.name().len())
            .max()
            .unwrap_or(4)
            .max(4);
        let shard_col = if file.n_shards() > 1 { "  shard" } else { "" };
        writeln!(
            out,
            "  {:nw$}  {:<8} {:<22} {:>12} {:>12}{shard_col}",
            "name", "type", "shape", "bytes", "offset"
        )?;
        for t in file.tensors() {
            let shape = format!("{:?}", t.shape());
            write!(
                out,
                "  {:nw$}  {:<8} {:<22} {:>12} {:>12}",
                t.name(),
                t.ggml_type().name(),
                shape,
                t.n_bytes(),
                t.offset()
            )?;
            if file.n_shards() > 1 {
                write!(out, "  {}", t.shard())?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "\ntotals by type:")?;
    for (ty, s) in per_type(file) {
        writeln!(
            out,
            "  {:<8} {:>5} tensors {:>14} elements {:>12}  {:.4} bpw",
            ty.name(),
            s.tensors,
            s.elements,
            human_bytes(s.bytes),
            bpw(s.bytes, s.elements)
        )?;
    }
    let (e, b) = (file.total_elements(), file.total_tensor_bytes());
    writeln!(
        out,
        "  total    {:>5} tensors {:>14} elements {:>12}  {:.4} bpw",
        file.n_tensors(),
        e,
        human_bytes(b),
        bpw(b, e)
    )?;
    match verify {
        None => {}
        Some(Ok(())) => writeln!(
            out,
            "\nverify: ok (xxh3 of every tensor, blake3 of the data section and of the header)"
        )?,
        Some(Err(e)) => writeln!(out, "\nverify: FAILED: {e}")?,
    }
    Ok(())
}

fn value_json(v: &Value, max: usize) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(a) => {
            let n = a.len();
            let shown = if max == 0 { n } else { n.min(max) };
            let items: Vec<Json> = (0..shown)
                .filter_map(|i| a.get(i))
                .map(|v| value_json(&v, max))
                .collect();
            json!({"len": n, "truncated": shown < n, "elements": items})
        }
    }
}

fn to_json(file: &GgufFile, args: &Args, verify: Option<&Result<(), FormatError>>) -> Json {
    let shards: Vec<Json> = file
        .shard_paths()
        .enumerate()
        .map(|(i, p)| {
            json!({"path": p.map(|p| p.display().to_string()), "file_size": file.file_size(i),
                   "data_offset": file.data_offset(i)})
        })
        .collect();
    let metadata: Vec<Json> = file
        .metadata()
        .map(|(k, v)| {
            json!({"key": k, "type": v.type_name(), "value": value_json(v, args.array_elements)})
        })
        .collect();
    let by_type: Vec<Json> = per_type(file)
        .into_iter()
        .map(|(ty, s)| {
            json!({"type": ty.name(), "tensors": s.tensors, "elements": s.elements,
                   "bytes": s.bytes, "bpw": bpw(s.bytes, s.elements)})
        })
        .collect();
    let (e, b) = (file.total_elements(), file.total_tensor_bytes());
    let mut j = json!({
        "path": args.path.display().to_string(),
        "version": file.version(),
        "alignment": file.alignment(),
        "shards": shards,
        "metadata": metadata,
        "totals": {"tensors": file.n_tensors(), "elements": e, "bytes": b, "bpw": bpw(b, e),
                   "by_type": by_type},
    });
    if !args.no_tensors {
        let tensors: Vec<Json> = file
            .tensors()
            .map(|t| {
                json!({"name": t.name(), "type": t.ggml_type().name(), "shape": t.shape(),
                       "elements": t.n_elements(), "bytes": t.n_bytes(), "offset": t.offset(),
                       "shard": t.shard()})
            })
            .collect();
        j["tensors"] = json!(tensors);
    }
    if let Some(v) = verify {
        j["verify"] = match v {
            Ok(()) => json!({"ok": true}),
            Err(
                e @ FormatError::IntegrityMismatch {
                    tensors,
                    data_section,
                    header,
                },
            ) => json!({"ok": false, "error": e.to_string(), "tensors": tensors,
                         "data_section": data_section, "header": header}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        };
    }
    j
}
