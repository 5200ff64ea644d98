//! Split models, llama.cpp style (`examples/gguf-split/gguf-split.cpp`, `llama_split_path` and
//! `llama_split_prefix` in `src/llama.cpp`): shards named `PREFIX-NNNNN-of-MMMMM.gguf`
//! (1-based, five digits), each holding the keys `split.no` (u16, 0-based), `split.count` (u16)
//! and `split.tensors.count` (i32, tensors in the whole model). The model's metadata lives in
//! the first shard; each shard's tensor offsets are relative to its own data section.

use std::path::{Path, PathBuf};

/// Key: this shard's 0-based index (u16).
pub const SPLIT_NO: &str = "split.no";
/// Key: number of shards (u16).
pub const SPLIT_COUNT: &str = "split.count";
/// Key: number of tensors in the whole model (i32).
pub const SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// Path of shard `no` (0-based) of `count`: `PREFIX-{no+1:05}-of-{count:05}.gguf`.
pub fn shard_path(prefix: &Path, no: usize, count: usize) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(format!("-{:05}-of-{:05}.gguf", no + 1, count));
    PathBuf::from(s)
}

/// Splits a shard path into `(prefix, 0-based index, count)`, or `None` if the file name does
/// not end in `-NNNNN-of-MMMMM.gguf` with `1 <= NNNNN <= MMMMM`.
pub fn parse_shard_path(path: &Path) -> Option<(PathBuf, usize, usize)> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    // "-NNNNN-of-MMMMM" is 15 bytes.
    let cut = stem.len().checked_sub(15)?;
    let (prefix, tail) = (stem.get(..cut)?, stem.get(cut..)?);
    let digits = |s: &str| -> Option<usize> {
        (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let no = digits(tail.get(1..6)?)?;
    let count = digits(tail.get(10..15)?)?;
    if tail.get(..1)? != "-" || tail.get(6..10)? != "-of-" || no == 0 || no > count {
        return None;
    }
    Some((path.with_file_name(prefix), no - 1, count))
}

/// The shard-name prefix for a destination path: the path without a trailing `.gguf`.
pub fn prefix_of(dest: &Path) -> PathBuf {
    match dest.to_str().and_then(|s| s.strip_suffix(".gguf")) {
        Some(p) => PathBuf::from(p),
        None => dest.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = shard_path(Path::new("/m/model"), 1, 3);
        assert_eq!(p, Path::new("/m/model-00002-of-00003.gguf"));
        assert_eq!(
            parse_shard_path(&p),
            Some((PathBuf::from("/m/model"), 1, 3))
        );
        assert_eq!(parse_shard_path(Path::new("model.gguf")), None);
        assert_eq!(parse_shard_path(Path::new("m-00004-of-00003.gguf")), None);
        assert_eq!(parse_shard_path(Path::new("m-00000-of-00003.gguf")), None);
        assert_eq!(parse_shard_path(Path::new("m-0000x-of-00003.gguf")), None);
        assert_eq!(prefix_of(Path::new("a/b.gguf")), Path::new("a/b"));
    }
}
