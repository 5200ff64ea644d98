//! Shared helpers for the ingot benchmarks.
