//! Shared helpers for ingot's command-line programs (progress bars, error printing, thread
//! count). Logic lives in the library crates; binaries parse arguments, call one entry point
//! and print.
pub mod model_cli;
