//! Hostile input: every rejection rule of the reader has a test asserting its error variant
//! (and the numbers it carries), and a small valid file truncated at every byte offset gives an
//! error, never a panic.

use ingot_format::{At, FormatError, GgmlType, GgufFile, GgufWriter, Value};

/// Raw GGUF bytes built field by field, so tests can write files the writer refuses to.
#[derive(Default, Clone)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw::default()
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kv)
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn u8(self, v: u8) -> Raw {
        self.bytes(&[v])
    }
    fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.str(key.as_bytes()).u32(4).u32(v)
    }
    fn tensor(self, name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    fn pad(mut self, align: usize) -> Raw {
        while self.0.len() % align != 0 {
            self.0.push(0);
        }
        self
    }
    fn zeros(mut self, n: usize) -> Raw {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    fn open(self) -> Result<GgufFile, FormatError> {
        GgufFile::from_bytes(self.0)
    }
}

/// A valid file: one u32 key, one string key, two f32 tensors of 8 and 4 elements.
fn valid() -> Raw {
    Raw::header(3, 2, 2)
        .kv_u32("a.n", 7)
        .str(b"a.s")
        .u32(8)
        .str(b"hi")
        .tensor(b"t0", &[8], 0, 0)
        .tensor(b"t1", &[2, 2], 0, 32)
        .pad(32)
        .zeros(48)
}

fn err(r: Raw) -> FormatError {
    r.open().expect_err("the file must be rejected")
}

#[test]
fn the_valid_base_file_opens() {
    let f = valid().open().unwrap();
    assert_eq!(f.get_u32("a.n").unwrap(), 7);
    assert_eq!(f.get_str("a.s").unwrap(), "hi");
    assert_eq!(f.tensor("t1").unwrap().shape(), &[2, 2]);
    assert_eq!(f.tensor("t1").unwrap().bytes().len(), 16);
}

#[test]
fn truncated_at_every_offset_is_an_error_not_a_panic() {
    let full = valid().0;
    // Everything before the last tensor's end is required; bytes after it are padding.
    let needed = full.len() - 16;
    for cut in 0..full.len() {
        let r = GgufFile::from_bytes(full[..cut].to_vec());
        if cut < needed {
            assert!(
                r.is_err(),
                "truncated at {cut} of {} was accepted",
                full.len()
            );
        }
    }
    // And the same for a file from the writer with every value type and nested arrays.
    let dir = ingot_tests::temp_dir();
    let path = dir.path().join("all.gguf");
    let mut w = GgufWriter::new(&path);
    w.add_kv("u8", 1u8).unwrap();
    w.add_kv("i8", -1i8).unwrap();
    w.add_kv("u16", 2u16).unwrap();
    w.add_kv("i16", -2i16).unwrap();
    w.add_kv("u32", 3u32).unwrap();
    w.add_kv("i32", -3i32).unwrap();
    w.add_kv("f32", 0.5f32).unwrap();
    w.add_kv("bool", true).unwrap();
    w.add_kv("str", "hello").unwrap();
    w.add_kv("u64", 4u64).unwrap();
    w.add_kv("i64", -4i64).unwrap();
    w.add_kv("f64", 0.25f64).unwrap();
    w.add_kv("strs", vec!["a", "bc"]).unwrap();
    w.add_kv(
        "nested",
        vec![
            ingot_format::Array::from(vec![1i32, 2]),
            ingot_format::Array::from(vec![true]),
        ],
    )
    .unwrap();
    w.add_tensor("q", &[32, 2], GgmlType::Q8_0).unwrap();
    w.write_tensor(&[1u8; 68]).unwrap();
    w.finish().unwrap();
    let full = std::fs::read(&path).unwrap();
    let f = GgufFile::from_bytes(full.clone()).unwrap();
    let needed = (f.data_offset(0).unwrap() + 68) as usize;
    for cut in 0..needed {
        assert!(
            GgufFile::from_bytes(full[..cut].to_vec()).is_err(),
            "cut {cut}"
        );
    }
}

#[test]
fn bad_magic() {
    let mut r = valid();
    r.0[0] = b'g';
    assert!(matches!(err(r), FormatError::BadMagic { found } if &found == b"gGUF"));
}

#[test]
fn big_endian_is_detected_and_rejected() {
    let mut r = valid();
    r.0[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert!(matches!(
        err(r),
        FormatError::BigEndian { raw_version } if raw_version == 0x0300_0000
    ));
}

#[test]
fn unsupported_version() {
    for v in [1u32, 4, 0xFFFF_0001] {
        let mut r = valid();
        r.0[4..8].copy_from_slice(&v.to_le_bytes());
        assert!(
            matches!(err(r), FormatError::UnsupportedVersion { version } if version == v),
            "{v}"
        );
    }
}

#[test]
fn version_2_is_read() {
    let mut r = valid();
    r.0[4..8].copy_from_slice(&2u32.to_le_bytes());
    assert_eq!(r.open().unwrap().version(), 2);
}

#[test]
fn truncated_names_field_offset_and_sizes() {
    let r = Raw::default().bytes(b"GGUF").u32(3).u64(0).bytes(&[0, 0]);
    match err(r) {
        FormatError::Truncated {
            field,
            offset,
            needed,
            available,
        } => {
            assert_eq!((field, offset, needed, available), ("n_kv", 16, 8, 2));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn string_length_past_end() {
    let r = Raw::header(3, 0, 1)
        .str(b"k")
        .u32(8)
        .u64(1 << 40)
        .bytes(b"abc");
    match err(r) {
        FormatError::StringPastEnd {
            field,
            offset,
            len,
            remaining,
        } => {
            assert_eq!(field, "k");
            assert_eq!((offset, len, remaining), (24 + 9 + 4, 1 << 40, 3));
        }
        e => panic!("{e:?}"),
    }
    // A key's own length.
    let r = Raw::header(3, 0, 1).u64(u64::MAX).zeros(20);
    assert!(matches!(
        err(r),
        FormatError::StringPastEnd { len: u64::MAX, .. }
    ));
}

#[test]
fn array_count_past_end_is_rejected_before_allocating() {
    // 2^61 u64 elements would need 2^64 bytes: must fail on the count, not on allocation.
    let r = Raw::header(3, 0, 1)
        .str(b"arr")
        .u32(9)
        .u32(10)
        .u64(1 << 61)
        .zeros(16);
    match err(r) {
        FormatError::ArrayPastEnd {
            key,
            count,
            min_bytes,
            remaining,
            offset,
        } => {
            assert_eq!(key, "arr");
            assert_eq!((count, min_bytes, remaining), (1 << 61, u64::MAX, 16));
            assert_eq!(offset, 24 + 11 + 4 + 4);
        }
        e => panic!("{e:?}"),
    }
    // Strings need at least 8 bytes each.
    let r = Raw::header(3, 0, 1)
        .str(b"s")
        .u32(9)
        .u32(8)
        .u64(3)
        .zeros(20);
    assert!(matches!(
        err(r),
        FormatError::ArrayPastEnd {
            count: 3,
            min_bytes: 24,
            remaining: 20,
            ..
        }
    ));
}

#[test]
fn counts_past_end() {
    let r = Raw::header(3, 0, u64::MAX).zeros(100);
    assert!(matches!(
        err(r),
        FormatError::CountPastEnd {
            field: "n_kv",
            offset: 16,
            count: u64::MAX,
            ..
        }
    ));
    let r = Raw::header(3, 1_000_000, 0).zeros(100);
    assert!(matches!(
        err(r),
        FormatError::CountPastEnd {
            field: "n_tensors",
            offset: 8,
            count: 1_000_000,
            remaining: 100,
            ..
        }
    ));
}

#[test]
fn unknown_value_type() {
    let r = Raw::header(3, 0, 1).str(b"k").u32(13).u32(0);
    assert!(matches!(
        err(r),
        FormatError::UnknownValueType { ref key, offset: 33, type_id: 13 } if key == "k"
    ));
    // Unknown element type inside an array.
    let r = Raw::header(3, 0, 1).str(b"k").u32(9).u32(99).u64(0);
    assert!(matches!(
        err(r),
        FormatError::UnknownValueType { type_id: 99, .. }
    ));
}

#[test]
fn unknown_and_retired_tensor_types_name_the_id() {
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[32], 42, 0)
        .pad(32)
        .zeros(64);
    assert!(matches!(
        err(r),
        FormatError::UnknownTensorType { ref tensor, type_id: 42, .. } if tensor == "t"
    ));
    for id in [4u32, 5, 31, 32, 33, 36, 37, 38] {
        let r = Raw::header(3, 1, 0)
            .tensor(b"t", &[32], id, 0)
            .pad(32)
            .zeros(64);
        match err(r) {
            FormatError::RetiredTensorType {
                type_id, offset, ..
            } => {
                assert_eq!(type_id, id);
                assert_eq!(offset, 24 + 9 + 4 + 8);
            }
            e => panic!("{id}: {e:?}"),
        }
    }
}

#[test]
fn dimension_count_zero_or_above_four() {
    for n in [0usize, 5] {
        let dims = vec![1u64; n];
        let r = Raw::header(3, 1, 0)
            .tensor(b"t", &dims, 0, 0)
            .pad(32)
            .zeros(64);
        assert!(
            matches!(err(r), FormatError::BadDimCount { n_dims, at: At::Offset(33), .. } if n_dims == n as u64),
            "{n}"
        );
    }
}

#[test]
fn zero_dimension() {
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[4, 0], 0, 0)
        .pad(32)
        .zeros(64);
    assert!(matches!(err(r), FormatError::ZeroDim { axis: 1, .. }));
}

#[test]
fn overflowing_dimensions() {
    // Product overflows u64.
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[1 << 32, 1 << 32], 0, 0)
        .pad(32);
    assert!(
        matches!(err(r), FormatError::DimOverflow { ref dims, .. } if dims == &[1 << 32, 1 << 32])
    );
    // A single dim above i64::MAX.
    let r = Raw::header(3, 1, 0).tensor(b"t", &[1 << 63], 24, 0).pad(32);
    assert!(matches!(err(r), FormatError::DimOverflow { .. }));
    // Elements fit in i64 but bytes do not.
    let r = Raw::header(3, 1, 0).tensor(b"t", &[1 << 61], 0, 0).pad(32);
    assert!(matches!(err(r), FormatError::DimOverflow { .. }));
}

#[test]
fn ne0_not_a_block_multiple() {
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[100, 2], GgmlType::Q4_K.id(), 0)
        .pad(32)
        .zeros(1024);
    assert!(matches!(
        err(r),
        FormatError::NotBlockMultiple {
            ty: GgmlType::Q4_K,
            ne0: 100,
            block_size: 256,
            ..
        }
    ));
}

#[test]
fn tensor_name_too_long() {
    let name = [b'x'; 65];
    let r = Raw::header(3, 1, 0)
        .tensor(&name, &[1], 0, 0)
        .pad(32)
        .zeros(32);
    assert!(matches!(
        err(r),
        FormatError::TensorNameTooLong {
            len: 65,
            max: 64,
            at: At::Offset(24)
        }
    ));
    // 64 bytes is accepted when reading.
    let r = Raw::header(3, 1, 0)
        .tensor(&[b'x'; 64], &[1], 0, 0)
        .pad(32)
        .zeros(32);
    assert!(r.open().is_ok());
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48] {
        let r = Raw::header(3, 0, 1).kv_u32("general.alignment", a);
        assert!(
            matches!(err(r), FormatError::BadAlignment { alignment, at: At::Offset(_) } if alignment == u64::from(a)),
            "{a}"
        );
    }
    // Wrong value type for the alignment.
    let r = Raw::header(3, 0, 1)
        .str(b"general.alignment")
        .u32(10)
        .u64(64);
    assert!(matches!(
        err(r),
        FormatError::WrongType {
            expected: "u32",
            found: "u64",
            ..
        }
    ));
}

#[test]
fn non_default_alignment_is_honoured() {
    let r = Raw::header(3, 2, 1)
        .kv_u32("general.alignment", 64)
        .tensor(b"a", &[4], 0, 0)
        .tensor(b"b", &[4], 0, 64)
        .pad(64)
        .zeros(80);
    let f = r.open().unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset(0).unwrap() % 64, 0);
    // Offset 32 is no longer aligned.
    let r = Raw::header(3, 2, 1)
        .kv_u32("general.alignment", 64)
        .tensor(b"a", &[4], 0, 0)
        .tensor(b"b", &[4], 0, 32)
        .pad(64)
        .zeros(80);
    assert!(matches!(
        err(r),
        FormatError::UnalignedTensor {
            offset: 32,
            alignment: 64,
            ..
        }
    ));
}

#[test]
fn unaligned_tensor_offset() {
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[4], 0, 8)
        .pad(32)
        .zeros(64);
    assert!(matches!(
        err(r),
        FormatError::UnalignedTensor { ref tensor, offset: 8, alignment: 32, info_offset: 24 } if tensor == "t"
    ));
}

#[test]
fn tensor_out_of_bounds() {
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[8], 0, 0)
        .pad(32)
        .zeros(31);
    assert!(matches!(
        err(r),
        FormatError::TensorOutOfBounds {
            offset: 0,
            size: 32,
            data_len: 31,
            ..
        }
    ));
    // Offset + size overflowing u64.
    let r = Raw::header(3, 1, 0)
        .tensor(b"t", &[8], 0, u64::MAX - 31)
        .pad(32)
        .zeros(64);
    assert!(matches!(err(r), FormatError::TensorOutOfBounds { .. }));
}

#[test]
fn overlapping_tensors() {
    let r = Raw::header(3, 2, 0)
        .tensor(b"a", &[16], 0, 0)
        .tensor(b"b", &[8], 0, 32)
        .pad(32)
        .zeros(128);
    match err(r) {
        FormatError::TensorOverlap {
            first,
            second,
            first_start,
            first_end,
            second_start,
        } => {
            assert_eq!((first.as_str(), second.as_str()), ("a", "b"));
            assert_eq!((first_start, first_end, second_start), (0, 64, 32));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn non_contiguous_but_disjoint_tensors_are_read() {
    // llama.cpp demands contiguity in info order; we only demand disjointness.
    let r = Raw::header(3, 2, 0)
        .tensor(b"a", &[8], 0, 64)
        .tensor(b"b", &[8], 0, 0)
        .pad(32)
        .zeros(128);
    let f = r.open().unwrap();
    assert_eq!(f.tensor("a").unwrap().info().offset(), 64);
}

#[test]
fn duplicate_key() {
    let r = Raw::header(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2);
    assert!(matches!(
        err(r),
        FormatError::DuplicateKey { ref key, at: At::Offset(41) } if key == "k"
    ));
}

#[test]
fn duplicate_tensor_name() {
    let r = Raw::header(3, 2, 0)
        .tensor(b"t", &[8], 0, 0)
        .tensor(b"t", &[8], 0, 32)
        .pad(32)
        .zeros(64);
    assert!(matches!(
        err(r),
        FormatError::DuplicateTensor { ref tensor, at: At::Offset(_) } if tensor == "t"
    ));
}

#[test]
fn empty_key() {
    let r = Raw::header(3, 0, 1).kv_u32("", 1);
    assert!(matches!(
        err(r),
        FormatError::EmptyKey { at: At::Offset(24) }
    ));
}

#[test]
fn invalid_utf8_in_key_value_and_tensor_name() {
    let r = Raw::header(3, 0, 1).str(b"k\xff").u32(4).u32(0);
    assert!(matches!(
        err(r),
        FormatError::InvalidUtf8 {
            offset: 32,
            valid_up_to: 1,
            ..
        }
    ));
    let r = Raw::header(3, 0, 1).str(b"k").u32(8).str(b"ab\xc3");
    assert!(matches!(
        err(r),
        FormatError::InvalidUtf8 { ref field, valid_up_to: 2, .. } if field == "k"
    ));
    let r = Raw::header(3, 0, 1)
        .str(b"k")
        .u32(9)
        .u32(8)
        .u64(2)
        .str(b"ok")
        .str(b"\x80");
    assert!(matches!(
        err(r),
        FormatError::InvalidUtf8 { ref field, .. } if field == "k[1]"
    ));
    let r = Raw::header(3, 1, 0)
        .tensor(b"\xfe", &[8], 0, 0)
        .pad(32)
        .zeros(32);
    assert!(matches!(err(r), FormatError::InvalidUtf8 { .. }));
}

#[test]
fn invalid_bool() {
    let r = Raw::header(3, 0, 1).str(b"b").u32(7).u8(2);
    assert!(matches!(
        err(r),
        FormatError::InvalidBool {
            value: 2,
            offset: 37,
            ..
        }
    ));
    let r = Raw::header(3, 0, 1)
        .str(b"b")
        .u32(9)
        .u32(7)
        .u64(3)
        .bytes(&[0, 1, 7]);
    assert!(matches!(
        err(r),
        FormatError::InvalidBool {
            value: 7,
            offset: 51,
            ..
        }
    ));
}

#[test]
fn nested_arrays_are_read_and_capped() {
    // Depth 2: [[1, 2], []] of i32.
    let r = Raw::header(3, 0, 1)
        .str(b"n")
        .u32(9)
        .u32(9)
        .u64(2)
        .u32(5)
        .u64(2)
        .u32(1)
        .u32(2)
        .u32(5)
        .u64(0);
    let f = r.open().unwrap();
    let a = f.get_array("n").unwrap();
    assert_eq!(
        a,
        &ingot_format::Array::Array(vec![
            ingot_format::Array::I32(vec![1, 2]),
            ingot_format::Array::I32(vec![]),
        ])
    );
    // 9 levels of arrays of one array each: past MAX_ARRAY_DEPTH = 8.
    let mut r = Raw::header(3, 0, 1).str(b"deep").u32(9);
    for _ in 0..ingot_format::MAX_ARRAY_DEPTH {
        r = r.u32(9).u64(1);
    }
    r = r.u32(0).u64(0);
    assert!(matches!(err(r), FormatError::NestingTooDeep { max: 8, .. }));
}

#[test]
fn getters_report_missing_wrong_type_and_out_of_range() {
    let r = Raw::header(3, 0, 2)
        .kv_u32("n", 7)
        .str(b"neg")
        .u32(5)
        .bytes(&(-1i32).to_le_bytes());
    let f = r.open().unwrap();
    assert!(matches!(f.get_u32("x"), Err(FormatError::MissingKey { ref key }) if key == "x"));
    assert!(matches!(
        f.get_str("n"),
        Err(FormatError::WrongType {
            expected: "string",
            found: "u32",
            ..
        })
    ));
    assert!(matches!(
        f.get_u32("neg"),
        Err(FormatError::OutOfRange {
            value: -1,
            target: "u32",
            ..
        })
    ));
    assert_eq!(f.get_i32("neg").unwrap(), -1);
    assert_eq!(f.get_u64("n").unwrap(), 7);
    assert!(matches!(
        f.get_str_array("n"),
        Err(FormatError::WrongType {
            expected: "array of string",
            ..
        })
    ));
    assert_eq!(f.get("n"), Some(&Value::U32(7)));
}

#[test]
fn block_cast_checks_size_and_alignment() {
    let f = valid().open().unwrap();
    let t = f.tensor("t0").unwrap();
    assert_eq!(t.blocks::<f32>().unwrap().len(), 8);
    // Wrong block size for f32.
    assert!(matches!(
        t.blocks::<u16>(),
        Err(FormatError::BlockCast { block_bytes: 2, .. })
    ));
    // Misaligned: view an odd-address slice through a file whose data starts at an odd
    // address. The cast must report, not panic, whichever the address is.
    let mut bytes = vec![0u8; 1];
    bytes.extend_from_slice(&valid().0);
    let shifted = GgufFile::from_bytes(bytes[1..].to_vec()).unwrap();
    let r = shifted.tensor("t0").unwrap().blocks::<f32>();
    let addr = shifted.tensor("t0").unwrap().bytes().as_ptr() as usize;
    assert_eq!(r.is_ok(), addr % 4 == 0);
}

#[test]
fn random_bytes_never_panic() {
    // A cheap fuzz: flip bytes of the valid file at every position with several values.
    let base = valid().0;
    for i in 0..base.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut b = base.clone();
            b[i] = v;
            let _ = GgufFile::from_bytes(b);
        }
    }
}
