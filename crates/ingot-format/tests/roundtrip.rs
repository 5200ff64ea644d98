//! Property: whatever metadata and tensors the writer accepts, the reader gives back equal,
//! in order, with tensors aligned and `verify()` passing; and random byte edits of a valid file
//! never panic the reader.

use ingot_format::{Array, GgmlType, GgufFile, GgufWriter, Value, WriterOptions};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        // Finite floats so equality is meaningful.
        (-1e30f32..1e30).prop_map(Value::F32),
        any::<bool>().prop_map(Value::Bool),
        ".{0,12}".prop_map(Value::String),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        (-1e300f64..1e300).prop_map(Value::F64),
    ]
}

fn array() -> impl Strategy<Value = Array> {
    let leaf = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Array::U8),
        prop::collection::vec(any::<i16>(), 0..6).prop_map(Array::I16),
        prop::collection::vec(any::<i32>(), 0..6).prop_map(Array::I32),
        prop::collection::vec(-1e6f32..1e6, 0..6).prop_map(Array::F32),
        prop::collection::vec(any::<bool>(), 0..6).prop_map(Array::Bool),
        prop::collection::vec(".{0,6}", 0..6).prop_map(Array::String),
        prop::collection::vec(any::<u64>(), 0..6).prop_map(Array::U64),
        prop::collection::vec(-1e9f64..1e9, 0..6).prop_map(Array::F64),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Array::Array)
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![3 => scalar(), 1 => array().prop_map(Value::Array)]
}

fn tensor() -> impl Strategy<Value = (GgmlType, Vec<u64>)> {
    (
        prop::sample::select(GgmlType::ALL.to_vec()),
        1u64..3,
        prop::collection::vec(1u64..4, 0..3),
    )
        .prop_map(|(ty, blocks, mut rest)| {
            let mut shape = vec![blocks * ty.block_size() as u64];
            shape.append(&mut rest);
            (ty, shape)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn written_files_read_back_equal(
        kvs in prop::collection::vec(value(), 0..8),
        tensors in prop::collection::vec(tensor(), 0..6),
        align_pow in 0u32..8,
        integrity in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.gguf");
        let mut w = GgufWriter::with_options(&path, WriterOptions { integrity, ..Default::default() });
        let alignment = 1u32 << (align_pow + 2);
        w.set_alignment(alignment).unwrap();
        for (i, v) in kvs.iter().enumerate() {
            w.add_kv(&format!("k.{i}"), v.clone()).unwrap();
        }
        for (i, (ty, shape)) in tensors.iter().enumerate() {
            w.add_tensor(&format!("t.{i}"), shape, *ty).unwrap();
        }
        let mut datas = Vec::new();
        for (i, _) in tensors.iter().enumerate() {
            let n = w.tensor_n_bytes(&format!("t.{i}")).unwrap() as usize;
            let d: Vec<u8> = (0..n).map(|j| (j * 17 + i) as u8).collect();
            w.write_tensor(&d).unwrap();
            datas.push(d);
        }
        w.finish().unwrap();

        let f = GgufFile::open(&path).unwrap();
        prop_assert_eq!(f.alignment(), u64::from(alignment));
        let got: Vec<(&str, &Value)> = f.metadata().filter(|(k, _)| k.starts_with("k.")).collect();
        prop_assert_eq!(got.len(), kvs.len());
        for ((k, v), (i, want)) in got.iter().zip(kvs.iter().enumerate()) {
            prop_assert_eq!(*k, format!("k.{i}"));
            prop_assert_eq!(*v, want);
        }
        prop_assert_eq!(f.n_tensors(), tensors.len());
        for (i, t) in f.tensor_views().enumerate() {
            prop_assert_eq!(t.ggml_type(), tensors[i].0);
            prop_assert_eq!(t.shape(), &tensors[i].1[..]);
            prop_assert_eq!(t.info().offset() % u64::from(alignment), 0);
            prop_assert_eq!(t.bytes(), &datas[i][..]);
        }
        prop_assert_eq!(f.has_integrity(), integrity);
        if integrity {
            prop_assert!(f.verify().is_ok());
        }

        // Hostile edits of the same bytes: an error or a file, never a panic.
        let bytes = std::fs::read(&path).unwrap();
        for k in 0..bytes.len().min(200) {
            let mut b = bytes.clone();
            b[k] = b[k].wrapping_add(0x81);
            let _ = GgufFile::from_bytes(b);
        }
    }
}
