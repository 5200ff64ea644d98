//! Peer conformance with the `gguf` Python package (gguf-py, the reference used by
//! llama.cpp's converters), in both directions:
//! 1. a file ingot writes (all 13 value types, arrays of numbers, strings and arrays, an empty
//!    array, several tensor types, alignment 64, integrity keys) is read by `gguf.GGUFReader`
//!    with equal metadata (same order, types and values) and equal tensor bytes;
//! 2. a file written by `gguf.GGUFWriter` is read by ingot with equal content.
//!
//! The peer script is `format_peer.py` beside this file; it needs `python3` with `gguf` and
//! `numpy` (tests/requirements.txt).

use std::path::Path;
use std::process::Command;

use ingot_format::{Array, GgmlType, GgufFile, GgufWriter, Value};
use serde_json::{json, Value as Json};

fn peer(mode: &str, path: &Path) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/format_peer.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(mode)
        .arg(path)
        .output()
        .expect("running python3 (needed for the gguf peer tests)");
    assert!(
        out.status.success(),
        "{} {mode} failed (is the gguf package installed? pip install -r tests/requirements.txt):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("peer prints JSON")
}

fn tagged(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!({"t": "u8", "v": x}),
        Value::I8(x) => json!({"t": "i8", "v": x}),
        Value::U16(x) => json!({"t": "u16", "v": x}),
        Value::I16(x) => json!({"t": "i16", "v": x}),
        Value::U32(x) => json!({"t": "u32", "v": x}),
        Value::I32(x) => json!({"t": "i32", "v": x}),
        Value::F32(x) => json!({"t": "f32", "v": f64::from(*x)}),
        Value::Bool(x) => json!({"t": "bool", "v": x}),
        Value::String(x) => json!({"t": "string", "v": x}),
        Value::U64(x) => json!({"t": "u64", "v": x}),
        Value::I64(x) => json!({"t": "i64", "v": x}),
        Value::F64(x) => json!({"t": "f64", "v": x}),
        Value::Array(a) => {
            let elems: Vec<Json> = (0..a.len())
                .map(|i| tagged(&a.get(i).expect("index in range")))
                .collect();
            json!({"t": "array", "e": a.element_type().name(), "v": elems})
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// ingot's view of a file in the peer's JSON schema.
fn ingot_view(f: &GgufFile) -> Json {
    let fields: Vec<Json> = f.metadata().map(|(k, v)| json!([k, tagged(v)])).collect();
    let tensors: Vec<Json> = f
        .tensor_views()
        .map(|t| {
            json!({"name": t.name(), "type": t.ggml_type().id(), "shape": t.shape(),
                   "hex": hex(t.bytes())})
        })
        .collect();
    json!({"alignment": f.alignment(), "fields": fields, "tensors": tensors})
}

fn assert_same(ours: &Json, theirs: &Json) {
    let (a, b) = (&ours["fields"], &theirs["fields"]);
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "metadata differs");
    }
    assert_eq!(a.len(), b.len(), "metadata count differs");
    let (a, b) = (
        ours["tensors"].as_array().unwrap(),
        theirs["tensors"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x, y, "tensor differs");
    }
    assert_eq!(ours["alignment"], theirs["alignment"]);
}

#[test]
fn gguf_py_reads_what_ingot_writes() {
    let dir = ingot_tests::temp_dir();
    let path = dir.path().join("ingot.gguf");
    let mut w = GgufWriter::new(&path);
    w.add_kv("general.architecture", "llama").unwrap();
    w.set_alignment(64).unwrap();
    w.add_kv("v.u8", 250u8).unwrap();
    w.add_kv("v.i8", -120i8).unwrap();
    w.add_kv("v.u16", 65_000u16).unwrap();
    w.add_kv("v.i16", -32_000i16).unwrap();
    w.add_kv("v.u32", 4_000_000_000u32).unwrap();
    w.add_kv("v.i32", -2_000_000_000i32).unwrap();
    w.add_kv("v.f32", 0.1f32).unwrap();
    w.add_kv("v.bool", false).unwrap();
    w.add_kv("v.string", "ünïcode ✓").unwrap();
    w.add_kv("v.u64", u64::MAX).unwrap();
    w.add_kv("v.i64", i64::MIN).unwrap();
    w.add_kv("v.f64", -2.5e-300f64).unwrap();
    w.add_kv("a.u8", vec![0u8, 1, 255]).unwrap();
    w.add_kv("a.i16", vec![-1i16, 7]).unwrap();
    w.add_kv("a.u32", vec![1u32, 2, 3]).unwrap();
    w.add_kv("a.i32", vec![-5i32; 20]).unwrap();
    w.add_kv("a.f32", vec![0.5f32, -1e-3, 3.25]).unwrap();
    w.add_kv("a.bool", vec![true, false, true]).unwrap();
    w.add_kv("a.u64", vec![u64::MAX, 0]).unwrap();
    w.add_kv("a.i64", vec![i64::MIN, 1]).unwrap();
    w.add_kv("a.f64", vec![1.5f64, -0.0]).unwrap();
    w.add_kv("a.string", vec!["", "a b", "☃", "<0x0A>"])
        .unwrap();
    w.add_kv("a.empty", Vec::<i32>::new()).unwrap();
    w.add_kv(
        "a.nested",
        vec![
            Array::from(vec![1u32, 2]),
            Array::from(vec!["x".to_string(), "yz".to_string()]),
            Array::Array(vec![Array::from(vec![0.25f32])]),
        ],
    )
    .unwrap();

    let tensors: Vec<(&str, Vec<u64>, GgmlType)> = vec![
        ("t.f32", vec![5, 3], GgmlType::F32),
        ("t.f16", vec![7], GgmlType::F16),
        ("t.bf16", vec![4, 2], GgmlType::BF16),
        ("t.q8_0", vec![64, 2], GgmlType::Q8_0),
        ("t.q4_0", vec![32], GgmlType::Q4_0),
        ("t.q4_k", vec![256, 2], GgmlType::Q4_K),
        ("t.q6_k", vec![256], GgmlType::Q6_K),
        ("t.i8", vec![3, 1, 1, 2], GgmlType::I8),
    ];
    for (name, shape, ty) in &tensors {
        w.add_tensor(name, shape, *ty).unwrap();
    }
    for (i, (name, _, _)) in tensors.iter().enumerate() {
        let n = w.tensor_n_bytes(name).unwrap() as usize;
        // Deterministic bytes; f16/bf16/f32 bit patterns need not be meaningful numbers for
        // a container test, but keep them finite-looking by masking the top bits.
        let bytes: Vec<u8> = (0..n)
            .map(|j| ((j * 7 + i * 13) % 251) as u8 & 0x3f)
            .collect();
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();

    let ours = GgufFile::open(&path).unwrap();
    ours.verify().unwrap();
    let theirs = peer("read", &path);
    assert_same(&ingot_view(&ours), &theirs);
    // Sanity: the comparison covered what it should.
    assert_eq!(theirs["tensors"].as_array().unwrap().len(), tensors.len());
    assert_eq!(theirs["alignment"], 64);
    assert!(theirs["fields"].as_array().unwrap().len() >= 27);
}

#[test]
fn ingot_reads_what_gguf_py_writes() {
    let dir = ingot_tests::temp_dir();
    let path = dir.path().join("peer.gguf");
    let expected = peer("write", &path);
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_same(&ingot_view(&f), &expected);
    // Typed getters on the peer's values.
    assert_eq!(f.get_u32("p.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_i32_array("p.arr_i32").unwrap(), &[1, -2, 3]);
    assert_eq!(f.get_str_array("p.arr_str").unwrap(), vec!["a", "", "ünï"]);
    assert_eq!(f.get_f32_array("p.arr_f32").unwrap(), &[0.5, -1.25]);
    assert_eq!(f.tensor("w.q8_0").unwrap().ggml_type(), GgmlType::Q8_0);
    assert!(!f.has_integrity());
}
