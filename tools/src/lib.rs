//! Shared helpers for ingot's command-line programs (progress bars, error printing, thread
//! count). Logic lives in the library crates; binaries parse arguments, call one entry point
//! and print.

/// Runs a tool's `main` body and turns its outcome into an exit code: `Ok(code)` as is, an
/// error as one line on stderr (`<tool>: error: <message>: <cause>: ...`) and exit code 1. A
/// broken pipe (output piped into `head`) counts as success, as in ripgrep.
pub fn run_tool(
    tool: &str,
    body: impl FnOnce() -> anyhow::Result<std::process::ExitCode>,
) -> std::process::ExitCode {
    match body() {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("{tool}: error: {}", msg.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A byte count for people: `1.23 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{x:.2} {}", UNITS[u])
    }
}

/// `--split-max-size` / `--split-max-tensors`, for any tool that writes GGUF files: flatten it
/// into the tool's arguments (`#[command(flatten)] split: SplitArgs`) and pass
/// `split.policy()` in `ingot_format::WriterOptions`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SplitArgs {
    /// Split the output into shards of at most this much tensor data (e.g. 500M, 2G; K/M/G are
    /// powers of 1000 as in llama.cpp's gguf-split, Ki/Mi/Gi powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub split_max_size: Option<u64>,
    /// Split the output into shards of at most this many tensors.
    #[arg(long, value_name = "N")]
    pub split_max_tensors: Option<usize>,
}

impl SplitArgs {
    /// The writer's split policy.
    pub fn policy(&self) -> ingot_format::SplitPolicy {
        ingot_format::SplitPolicy {
            max_bytes: self.split_max_size,
            max_tensors: self.split_max_tensors,
        }
    }
}

/// Parses a byte size: a number with an optional suffix K, M, G, T (powers of 1000) or Ki, Mi,
/// Gi, Ti (powers of 1024), optionally followed by `B`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 500M, 2G, 1048576)"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => return Err(format!("{s:?}: unknown size unit {unit:?}")),
    };
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("{s:?} is zero or too large"))
}

#[cfg(test)]
mod format_helper_tests {
    use super::*;

    #[test]
    fn sizes_parse_like_gguf_split() {
        assert_eq!(parse_size("500M"), Ok(500_000_000));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(human_bytes(1536), "1.50 KiB");
    }
}

pub mod model_cli;
