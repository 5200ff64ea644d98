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

pub mod model_cli;
