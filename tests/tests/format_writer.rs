//! The streaming writer: atomicity (nothing at the destination until `finish`, temp files
//! removed on error or drop), declaration checks, integrity keys and `verify`, and split
//! models read back as one model from any shard.

use std::path::Path;

use ingot_format::integrity::{DATA_BLAKE3_KEY, HEADER_BLAKE3_KEY, TENSOR_XXH3_KEY};
use ingot_format::split::{SPLIT_COUNT, SPLIT_NO, SPLIT_TENSORS_COUNT};
use ingot_format::{
    At, FormatError, GgmlType, GgufFile, GgufWriter, SplitPolicy, Value, WriterOptions,
};

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Tensor `i` of the test models: f32 of 8·(i+1) elements, bytes derived from i.
fn tensor_bytes(i: usize) -> Vec<u8> {
    (0..32 * (i + 1)).map(|j| (i * 31 + j) as u8).collect()
}

fn write_model(path: &Path, n: usize, opts: WriterOptions) -> Vec<std::path::PathBuf> {
    let mut w = GgufWriter::with_options(path, opts);
    w.add_kv("general.architecture", "test").unwrap();
    w.add_kv("test.n", n as u32).unwrap();
    for i in 0..n {
        w.add_tensor(&format!("t{i}"), &[8 * (i as u64 + 1)], GgmlType::F32)
            .unwrap();
    }
    for i in 0..n {
        w.write_tensor(&tensor_bytes(i)).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn drop_without_finish_leaves_nothing() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("m.gguf");
    std::fs::write(&dest, b"previous").unwrap();
    {
        let mut w = GgufWriter::new(&dest);
        w.add_tensor("a", &[8], GgmlType::F32).unwrap();
        w.add_tensor("b", &[8], GgmlType::F32).unwrap();
        w.write_tensor(&[0u8; 32]).unwrap();
        // A temp file exists beside the destination while streaming.
        assert_eq!(dir_entries(dir.path()).len(), 2);
    }
    assert_eq!(dir_entries(dir.path()), vec!["m.gguf"]);
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous");
}

#[test]
fn an_error_removes_the_temp_file_and_poisons_the_writer() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("m.gguf");
    let mut w = GgufWriter::new(&dest);
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    w.add_tensor("b", &[8], GgmlType::F32).unwrap();
    w.write_tensor(&[0u8; 32]).unwrap();
    assert!(matches!(
        w.write_tensor(&[0u8; 31]),
        Err(FormatError::TensorSizeMismatch { ref tensor, expected: 32, got: 31 }) if tensor == "b"
    ));
    assert!(dir_entries(dir.path()).is_empty());
    assert!(matches!(
        w.write_tensor(&[0u8; 32]),
        Err(FormatError::WriterState { .. })
    ));
    assert!(matches!(w.finish(), Err(FormatError::WriterState { .. })));
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn chunks_past_the_declared_size_and_short_readers_are_errors() {
    let dir = ingot_tests::temp_dir();
    let mut w = GgufWriter::new(dir.path().join("m.gguf"));
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    w.write_tensor_chunk(&[0u8; 30]).unwrap();
    assert!(matches!(
        w.write_tensor_chunk(&[0u8; 3]),
        Err(FormatError::TensorSizeMismatch {
            expected: 32,
            got: 33,
            ..
        })
    ));

    let mut w = GgufWriter::new(dir.path().join("m2.gguf"));
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    assert!(matches!(
        w.write_tensor_from(&[0u8; 20][..]),
        Err(FormatError::TensorSizeMismatch {
            expected: 32,
            got: 20,
            ..
        })
    ));
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn finish_with_missing_tensor_data() {
    let dir = ingot_tests::temp_dir();
    let mut w = GgufWriter::new(dir.path().join("m.gguf"));
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    w.add_tensor("b", &[8], GgmlType::F32).unwrap();
    w.write_tensor(&[0u8; 32]).unwrap();
    assert!(matches!(
        w.finish(),
        Err(FormatError::MissingTensorData { ref next, missing: 1, total: 2 }) if next == "b"
    ));
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn declaration_checks() {
    let dir = ingot_tests::temp_dir();
    let mut w = GgufWriter::new(dir.path().join("m.gguf"));
    w.add_kv("k", 1u32).unwrap();
    assert!(matches!(
        w.add_kv("k", 2u32),
        Err(FormatError::DuplicateKey {
            at: At::Declaration,
            ..
        })
    ));
    assert!(matches!(
        w.add_kv("", 2u32),
        Err(FormatError::EmptyKey {
            at: At::Declaration
        })
    ));
    assert!(matches!(
        w.add_kv(TENSOR_XXH3_KEY, 2u32),
        Err(FormatError::ReservedKey { .. })
    ));
    assert!(matches!(
        w.add_kv("general.alignment", 24u32),
        Err(FormatError::BadAlignment { alignment: 24, .. })
    ));
    assert!(matches!(
        w.add_kv("general.alignment", 64u64),
        Err(FormatError::WrongType { .. })
    ));
    assert!(matches!(
        w.add_tensor(&"x".repeat(64), &[8], GgmlType::F32),
        Err(FormatError::TensorNameTooLong {
            len: 64,
            max: 63,
            ..
        })
    ));
    assert!(matches!(
        w.add_tensor("q", &[100], GgmlType::Q8_0),
        Err(FormatError::NotBlockMultiple {
            at: At::Declaration,
            ..
        })
    ));
    assert!(matches!(
        w.add_tensor("q", &[], GgmlType::F32),
        Err(FormatError::BadDimCount { n_dims: 0, .. })
    ));
    assert!(matches!(
        w.add_tensor("q", &[4, 0], GgmlType::F32),
        Err(FormatError::ZeroDim { axis: 1, .. })
    ));
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    assert!(matches!(
        w.add_tensor("a", &[8], GgmlType::F32),
        Err(FormatError::DuplicateTensor {
            at: At::Declaration,
            ..
        })
    ));
    w.write_tensor(&[0u8; 32]).unwrap();
    assert!(matches!(
        w.add_tensor("late", &[8], GgmlType::F32),
        Err(FormatError::WriterState { .. })
    ));
    w.finish().unwrap();
}

#[test]
fn an_unwritable_destination_is_an_io_error() {
    let dir = ingot_tests::temp_dir();
    let mut w = GgufWriter::new(dir.path().join("missing-dir").join("m.gguf"));
    w.add_tensor("a", &[8], GgmlType::F32).unwrap();
    assert!(matches!(
        w.write_tensor(&[0u8; 32]),
        Err(FormatError::Io { .. })
    ));
}

#[test]
fn layout_alignment_and_round_trip() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("m.gguf");
    let mut w = GgufWriter::new(&dest);
    w.set_alignment(128).unwrap();
    w.add_kv("k", "v").unwrap();
    w.add_tensor("a", &[3], GgmlType::F32).unwrap();
    w.add_tensor("b", &[32, 3], GgmlType::Q8_0).unwrap();
    w.write_tensor_chunk(&[1, 2, 3, 4]).unwrap();
    w.write_tensor_chunk(&[5; 8]).unwrap();
    w.write_tensor_from(&[9u8; 102][..]).unwrap();
    assert_eq!(w.next_tensor(), None);
    let paths = w.finish().unwrap();
    assert_eq!(paths, vec![dest.clone()]);
    assert_eq!(dir_entries(dir.path()), vec!["m.gguf"]);
    let f = GgufFile::open(&dest).unwrap();
    assert_eq!(f.alignment(), 128);
    assert_eq!(f.data_offset(0).unwrap() % 128, 0);
    assert_eq!(f.tensor("a").unwrap().info().offset(), 0);
    assert_eq!(f.tensor("b").unwrap().info().offset(), 128);
    assert_eq!(
        f.tensor("a").unwrap().bytes(),
        &[1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5]
    );
    assert_eq!(f.tensor("b").unwrap().bytes(), &[9u8; 102][..]);
    // Every tensor is padded, the last one too.
    assert_eq!(f.file_size(0).unwrap(), f.data_offset(0).unwrap() + 256);
    f.verify().unwrap();
}

#[test]
fn verify_names_every_corrupted_tensor() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("m.gguf");
    write_model(&dest, 4, WriterOptions::default());
    let good = std::fs::read(&dest).unwrap();
    let f = GgufFile::from_bytes(good.clone()).unwrap();
    f.verify().unwrap();
    let start =
        |name: &str| (f.data_offset(0).unwrap() + f.tensor(name).unwrap().info().offset()) as usize;

    let mut bad = good.clone();
    bad[start("t1") + 5] ^= 1;
    bad[start("t3")] ^= 0x80;
    match GgufFile::from_bytes(bad).unwrap().verify() {
        Err(FormatError::IntegrityMismatch {
            tensors,
            data_section,
            header,
        }) => {
            assert_eq!(tensors, vec!["t1", "t3"]);
            assert!(data_section);
            assert!(!header);
        }
        r => panic!("{r:?}"),
    }
    // A padding byte: no tensor differs, the data-section digest does.
    let dest = dir.path().join("pad.gguf");
    let mut w = GgufWriter::new(&dest);
    w.add_tensor("small", &[3], GgmlType::F32).unwrap();
    w.write_tensor(&[7u8; 12]).unwrap();
    w.finish().unwrap();
    let mut bad = std::fs::read(&dest).unwrap();
    let last = bad.len() - 1;
    assert_eq!(bad[last], 0);
    bad[last] = 1;
    assert!(matches!(
        GgufFile::from_bytes(bad).unwrap().verify(),
        Err(FormatError::IntegrityMismatch { ref tensors, data_section: true, header: false }) if tensors.is_empty()
    ));
}

#[test]
fn verify_without_or_with_malformed_keys() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("plain.gguf");
    let plain = WriterOptions {
        integrity: false,
        ..WriterOptions::default()
    };
    write_model(&dest, 2, plain);
    let f = GgufFile::open(&dest).unwrap();
    assert!(!f.has_integrity());
    assert!(matches!(
        f.verify(),
        Err(FormatError::NoIntegrity {
            key: TENSOR_XXH3_KEY
        })
    ));

    let dest = dir.path().join("bad.gguf");
    let mut w = GgufWriter::with_options(&dest, plain);
    w.add_kv(TENSOR_XXH3_KEY, "not numbers").unwrap();
    w.add_kv(DATA_BLAKE3_KEY, "0".repeat(64)).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        GgufFile::open(&dest).unwrap().verify(),
        Err(FormatError::BadIntegrityKey {
            key: TENSOR_XXH3_KEY,
            ..
        })
    ));
}

#[test]
fn empty_model_is_written_and_read() {
    let dir = ingot_tests::temp_dir();
    let dest = dir.path().join("e.gguf");
    let mut w = GgufWriter::new(&dest);
    w.add_kv("only", true).unwrap();
    w.finish().unwrap();
    let f = GgufFile::open(&dest).unwrap();
    assert_eq!(f.n_tensors(), 0);
    assert!(f.get_bool("only").unwrap());
    f.verify().unwrap();
}

fn check_split_model(f: &GgufFile, n: usize) {
    assert_eq!(f.n_tensors(), n);
    assert_eq!(f.get_str("general.architecture").unwrap(), "test");
    assert_eq!(f.get_u32("test.n").unwrap() as usize, n);
    for (i, t) in f.tensor_views().enumerate() {
        assert_eq!(t.name(), format!("t{i}"));
        assert_eq!(t.bytes(), tensor_bytes(i));
    }
    f.verify().unwrap();
}

#[test]
fn split_by_max_tensors_reads_back_from_any_shard() {
    let dir = ingot_tests::temp_dir();
    let opts = WriterOptions {
        split: SplitPolicy {
            max_tensors: Some(3),
            max_bytes: None,
        },
        ..WriterOptions::default()
    };
    let paths = write_model(&dir.path().join("model.gguf"), 10, opts);
    let names: Vec<String> = (1..=4)
        .map(|i| format!("model-{i:05}-of-00004.gguf"))
        .collect();
    assert_eq!(dir_entries(dir.path()), names);
    assert_eq!(paths.len(), 4);
    for p in &paths {
        let f = GgufFile::open(p).unwrap();
        assert_eq!(f.n_shards(), 4);
        check_split_model(&f, 10);
    }
    // Each shard alone: split keys, its own tensors; metadata only in the first.
    let counts: Vec<usize> = paths
        .iter()
        .map(|p| GgufFile::open_single(p).unwrap().n_tensors())
        .collect();
    assert_eq!(counts, vec![3, 3, 3, 1]);
    let second = GgufFile::open_single(&paths[1]).unwrap();
    assert_eq!(second.get(SPLIT_NO), Some(&Value::U16(1)));
    assert_eq!(second.get(SPLIT_COUNT), Some(&Value::U16(4)));
    assert_eq!(second.get(SPLIT_TENSORS_COUNT), Some(&Value::I32(10)));
    assert!(second.get("general.architecture").is_none());
}

#[test]
fn split_by_max_bytes() {
    let dir = ingot_tests::temp_dir();
    // Tensor i takes 32·(i+1) bytes (already aligned): 32, 64, 96, 128, 160.
    let opts = WriterOptions {
        split: SplitPolicy {
            max_bytes: Some(130),
            max_tensors: None,
        },
        ..WriterOptions::default()
    };
    let paths = write_model(&dir.path().join("m.gguf"), 5, opts);
    let counts: Vec<usize> = paths
        .iter()
        .map(|p| GgufFile::open_single(p).unwrap().n_tensors())
        .collect();
    // [32+64], [96], [128], [160 alone although larger than the limit]
    assert_eq!(counts, vec![2, 1, 1, 1]);
    check_split_model(&GgufFile::open(&paths[2]).unwrap(), 5);
}

#[test]
fn inconsistent_or_misnamed_shards_are_errors() {
    let dir = ingot_tests::temp_dir();
    let opts = WriterOptions {
        split: SplitPolicy {
            max_tensors: Some(2),
            max_bytes: None,
        },
        ..WriterOptions::default()
    };
    let paths = write_model(&dir.path().join("m.gguf"), 6, opts);
    assert_eq!(paths.len(), 3);
    // A missing shard.
    let away = dir.path().join("away");
    std::fs::rename(&paths[2], &away).unwrap();
    assert!(matches!(
        GgufFile::open(&paths[0]),
        Err(FormatError::Io { .. })
    ));
    std::fs::rename(&away, &paths[2]).unwrap();
    // Shard 2 replaced by shard 3: its split.no says 2, expected 1.
    std::fs::copy(&paths[2], &paths[1]).unwrap();
    assert!(matches!(
        GgufFile::open(&paths[0]),
        Err(FormatError::SplitMismatch {
            field: "split.no",
            expected: 1,
            found: 2,
            ..
        })
    ));
    // A shard renamed so the others cannot be found.
    let renamed = dir.path().join("lonely.gguf");
    std::fs::copy(&paths[0], &renamed).unwrap();
    assert!(matches!(
        GgufFile::open(&renamed),
        Err(FormatError::SplitName { count: 3, .. })
    ));
    assert_eq!(GgufFile::open_single(&renamed).unwrap().n_tensors(), 2);
}

#[test]
fn copy_metadata_drops_stale_digests_and_split_keys() {
    let dir = ingot_tests::temp_dir();
    let opts = WriterOptions {
        split: SplitPolicy {
            max_tensors: Some(1),
            max_bytes: None,
        },
        ..WriterOptions::default()
    };
    let paths = write_model(&dir.path().join("src.gguf"), 2, opts);
    let src = GgufFile::open(&paths[0]).unwrap();
    assert!(src.get(SPLIT_NO).is_some() && src.get(TENSOR_XXH3_KEY).is_some());
    for integrity in [false, true] {
        let dest = dir.path().join(format!("copy-{integrity}.gguf"));
        let mut w = GgufWriter::with_options(
            &dest,
            WriterOptions {
                integrity,
                ..WriterOptions::default()
            },
        );
        w.copy_metadata_from(&src).unwrap();
        w.finish().unwrap();
        let f = GgufFile::open(&dest).unwrap();
        let keys: Vec<&str> = f.metadata().map(|(k, _)| k).collect();
        let mut want = vec!["general.architecture", "test.n"];
        if integrity {
            want.extend([TENSOR_XXH3_KEY, DATA_BLAKE3_KEY, HEADER_BLAKE3_KEY]);
        }
        assert_eq!(keys, want);
    }
}
