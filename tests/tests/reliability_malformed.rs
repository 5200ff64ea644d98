//! The hostile-file corpus `testdata/malformed/` (built by `make_malformed.py` beside it): one
//! small file per vulnerability class GGUF readers have been attacked with. Each file must be
//! rejected with its one specific error variant and the numbers that explain it, both when
//! memory-mapped from disk (`GgufFile::open`) and when parsed from bytes. Every file in the
//! directory must be covered here, so a new file cannot be added without its assertion.

use std::path::PathBuf;

use ingot_format::{At, FormatError, GgufFile};
use ingot_quant::imatrix::{Imatrix, ImatrixFormat};
use ingot_quant::pipeline::{Prepared, QuantizeOptions};
use ingot_quant::plan::FileType;
use ingot_quant::QuantError;

fn malformed(name: &str) -> PathBuf {
    ingot_tests::testdata().join("malformed").join(name)
}

/// Opens the file both ways; both must fail with the same message (same variant and numbers).
fn open_err(name: &str) -> FormatError {
    let path = malformed(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run testdata/malformed/make_malformed.py)",
            path.display()
        )
    });
    let mapped = GgufFile::open(&path).expect_err(name);
    let owned = GgufFile::from_bytes(bytes).expect_err(name);
    assert_eq!(mapped.to_string(), owned.to_string(), "{name}");
    mapped
}

type Check = fn(FormatError) -> bool;

/// Each file and the error it must give.
const CASES: &[(&str, Check)] = &[
    ("string_length_near_2_64.gguf", |e| {
        matches!(
            e,
            FormatError::StringPastEnd {
                offset: 24,
                len: u64::MAX,
                remaining: 32,
                ..
            }
        )
    }),
    ("array_count_wraps.gguf", |e| {
        matches!(e, FormatError::ArrayPastEnd { ref key, offset: 41, count, min_bytes: u64::MAX, .. }
            if key == "a" && count == (1 << 61) + 1)
    }),
    (
        "string_array_count_overflow.gguf",
        |e| matches!(e, FormatError::ArrayPastEnd { ref key, count, .. } if key == "s" && count == 1 << 63),
    ),
    (
        "n_kv_too_large.gguf",
        |e| matches!(e, FormatError::CountPastEnd { field: "n_kv", offset: 16, count, .. } if count == 1 << 60),
    ),
    (
        "n_tensors_too_large.gguf",
        |e| matches!(e, FormatError::CountPastEnd { field: "n_tensors", offset: 8, count, .. } if count == 1 << 60),
    ),
    (
        "n_dims_zero.gguf",
        |e| matches!(e, FormatError::BadDimCount { ref tensor, n_dims: 0, at: At::Offset(_) } if tensor == "t"),
    ),
    (
        "n_dims_five.gguf",
        |e| matches!(e, FormatError::BadDimCount { ref tensor, n_dims: 5, .. } if tensor == "t"),
    ),
    (
        "dim_zero.gguf",
        |e| matches!(e, FormatError::ZeroDim { ref tensor, axis: 1, .. } if tensor == "t"),
    ),
    (
        "dims_product_overflow.gguf",
        |e| matches!(e, FormatError::DimOverflow { ref dims, .. } if dims == &[1 << 32, 1 << 32]),
    ),
    (
        "bytes_overflow.gguf",
        |e| matches!(e, FormatError::DimOverflow { ref dims, .. } if dims == &[1 << 62]),
    ),
    ("offset_past_end.gguf", |e| {
        matches!(e, FormatError::TensorOutOfBounds { ref tensor, offset: 4096, size: 32, data_len: 32, .. }
            if tensor == "t")
    }),
    (
        "offset_plus_size_overflow.gguf",
        |e| matches!(e, FormatError::TensorOutOfBounds { offset, size: 32, .. } if offset == u64::MAX - 31),
    ),
    ("overlapping_tensors.gguf", |e| {
        matches!(e, FormatError::TensorOverlap { ref first, first_start: 0, first_end: 64, ref second, second_start: 32 }
            if first == "a" && second == "b")
    }),
    (
        "unaligned_offset.gguf",
        |e| matches!(e, FormatError::UnalignedTensor { ref tensor, offset: 33, alignment: 32, .. } if tensor == "b"),
    ),
    ("alignment_0.gguf", |e| {
        matches!(e, FormatError::BadAlignment { alignment: 0, .. })
    }),
    ("alignment_3.gguf", |e| {
        matches!(e, FormatError::BadAlignment { alignment: 3, .. })
    }),
    // 2^31 is a legal power of two; the data section would start at byte 2^31.
    (
        "alignment_2_31.gguf",
        |e| matches!(e, FormatError::TensorOutOfBounds { data_start, data_len: 0, .. } if data_start == 1 << 31),
    ),
    (
        "duplicate_key.gguf",
        |e| matches!(e, FormatError::DuplicateKey { ref key, at: At::Offset(_) } if key == "general.name"),
    ),
    (
        "duplicate_tensor_name.gguf",
        |e| matches!(e, FormatError::DuplicateTensor { ref tensor, .. } if tensor == "t"),
    ),
    ("empty_key.gguf", |e| {
        matches!(e, FormatError::EmptyKey { at: At::Offset(24) })
    }),
    (
        "invalid_utf8.gguf",
        |e| matches!(e, FormatError::InvalidUtf8 { ref field, valid_up_to: 3, .. } if field == "general.name"),
    ),
    (
        "unknown_value_type.gguf",
        |e| matches!(e, FormatError::UnknownValueType { ref key, type_id: 13, .. } if key == "k"),
    ),
    (
        "unknown_tensor_type.gguf",
        |e| matches!(e, FormatError::UnknownTensorType { ref tensor, type_id: 99, .. } if tensor == "t"),
    ),
    (
        "nested_arrays_too_deep.gguf",
        |e| matches!(e, FormatError::NestingTooDeep { ref key, max: ingot_format::MAX_ARRAY_DEPTH, .. } if key == "deep"),
    ),
    // A download cut short: the second tensor's 34 bytes run past the 74 present.
    ("truncated_data_section.gguf", |e| {
        matches!(e, FormatError::TensorOutOfBounds { ref tensor, offset: 64, size: 34, data_len: 74, .. }
            if tensor == "b")
    }),
];

#[test]
fn every_hostile_file_gives_its_specific_error() {
    let mut failures = Vec::new();
    for (name, check) in CASES {
        let e = open_err(name);
        let shown = e.to_string();
        if !check(e) {
            failures.push(format!("{name}: {shown}"));
        }
    }
    assert!(
        failures.is_empty(),
        "wrong errors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_file_in_the_corpus_is_covered() {
    let dir = ingot_tests::testdata().join("malformed");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gguf") || n.ends_with(".dat"))
        .collect();
    names.sort();
    let mut covered: Vec<&str> = CASES.iter().map(|(n, _)| *n).collect();
    covered.extend(["imatrix_model.gguf", "imatrix_length_mismatch.dat"]);
    covered.sort();
    assert_eq!(names, covered);
}

/// An imatrix whose entry length disagrees with the model: 48 values for a 64-column weight.
/// Both the lookup and the quantize pipeline refuse it, naming the entry and both lengths.
#[test]
fn imatrix_length_disagreeing_with_the_model() {
    let model = GgufFile::open(malformed("imatrix_model.gguf")).unwrap();
    let (im, format) = Imatrix::open(malformed("imatrix_length_mismatch.dat")).unwrap();
    assert_eq!(format, ImatrixFormat::Legacy);
    let name = "blk.0.attn_q.weight";
    let row = model.tensor(name).unwrap().shape()[0] as usize;
    assert_eq!(row, 64);
    let is_mismatch = |e: &QuantError| match e {
        QuantError::ImatrixLengthMismatch {
            name: n,
            entry_len: 48,
            expected: 64,
        } => n == name,
        QuantError::InTensor { tensor, source } => {
            tensor == name
                && matches!(
                    &**source,
                    QuantError::ImatrixLengthMismatch {
                        entry_len: 48,
                        expected: 64,
                        ..
                    }
                )
        }
        _ => false,
    };
    let e = im.weights_for(name, row, 1).unwrap_err();
    assert!(is_mismatch(&e), "{e}");
    match Prepared::new(&model, Some(im), &QuantizeOptions::new(FileType::Q8_0)) {
        Err(e) => assert!(is_mismatch(&e), "wrong error: {e}"),
        Ok(_) => panic!("an imatrix of the wrong length was accepted"),
    }
}
