//! The quantize pipeline end to end on a synthetic llama-shaped model: accuracy per type,
//! importance weighting, dry-run sizes, metadata, pruning, and the golden imatrix files.

mod quantize_common;

use ingot_format::{GgmlType, GgufFile, Value};
use ingot_quant::imatrix::{Imatrix, ImatrixFormat};
use ingot_quant::pipeline::{NoProgress, Prepared, QuantizeOptions};
use ingot_quant::plan::FileType;
use ingot_quant::QuantError;
use quantize_common::*;

/// Relative RMSE bound per output type for the synthetic N(0, σ_col²) weights. Measured
/// values are about 2/3 of these (uniform rounding error of the type's step size), except
/// 4-bit types since the no-imatrix default became one least-squares step (quant-legacy):
/// Q4_0 then measures up to 0.1201, about ggml's reference quantizer on Gaussian blocks.
fn bound(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 | GgmlType::BF16 => 4e-3,
        GgmlType::Q8_0 => 0.01,
        GgmlType::Q6_K => 0.03,
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5_K => 0.06,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4_K => 0.135,
        other => panic!("no bound for {other:?}"),
    }
}

fn quantize(
    input: &std::path::Path,
    out: &std::path::Path,
    opts: &QuantizeOptions,
    im: Option<Imatrix>,
) -> Prepared<'static> {
    let file: &'static GgufFile = Box::leak(Box::new(GgufFile::open(input).unwrap()));
    let p = Prepared::new(file, im, opts).unwrap();
    p.write(out, &mut NoProgress).unwrap();
    p
}

#[test]
fn accuracy_per_type_within_bounds_and_dry_run_sizes_match() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let src = write_model(&input, &Spec::small());
    for ft in [
        FileType::Q8_0,
        FileType::Q4_0,
        FileType::Q4_K_M,
        FileType::F16,
    ] {
        let out = dir.path().join(format!("{ft}.gguf"));
        let p = quantize(&input, &out, &QuantizeOptions::new(ft), None);
        let file = GgufFile::open(&out).unwrap();
        assert_eq!(file.n_tensors(), src.len());
        for ((name, _, vals), planned) in src.iter().zip(&p.plan.tensors) {
            let info = file.tensors().find(|t| t.name() == name).unwrap();
            // --dry-run prints the plan; its sizes are the file's.
            assert_eq!(planned.target_bytes, info.n_bytes(), "{ft} {name}");
            assert_eq!(planned.target_type, info.ggml_type());
            let got = decode(&file, name);
            let e = rel_rmse(vals, &got);
            assert!(
                e <= bound(info.ggml_type()),
                "{ft} {name} ({:?}): rel RMSE {e}",
                info.ggml_type()
            );
        }
        assert_eq!(file.get_u32("general.file_type").unwrap(), ft.llama_ftype());
        assert_eq!(file.get_u32("general.quantization_version").unwrap(), 2);
    }
}

#[test]
fn f16_input_and_mix_types() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let spec = Spec {
        ty: GgmlType::F16,
        ..Spec::small()
    };
    write_model(&input, &spec);
    let out = dir.path().join("q4km.gguf");
    quantize(&input, &out, &QuantizeOptions::new(FileType::Q4_K_M), None);
    let f = GgufFile::open(&out).unwrap();
    let ty = |n: &str| f.tensor(n).unwrap().ggml_type();
    assert_eq!(ty("output.weight"), GgmlType::Q6_K);
    // use_more_bits(i, 4): i >= 3 or i % 3 == 2.
    assert_eq!(ty("blk.0.attn_v.weight"), GgmlType::Q4_K);
    assert_eq!(ty("blk.2.attn_v.weight"), GgmlType::Q6_K);
    assert_eq!(ty("blk.3.ffn_down.weight"), GgmlType::Q6_K);
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q4_K);
    assert_eq!(ty("blk.0.attn_norm.weight"), GgmlType::F32);
}

#[test]
fn imatrix_lowers_the_weighted_error() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let spec = Spec::small();
    let src = write_model(&input, &spec);
    let im = synthetic_imatrix(&spec);
    for ft in [FileType::Q4_0, FileType::Q4_K_M] {
        let mut opts = QuantizeOptions::new(ft);
        opts.plan.pure = true; // same types with and without, so errors compare like for like
        let plain = dir.path().join(format!("{ft}-plain.gguf"));
        let weighted = dir.path().join(format!("{ft}-imatrix.gguf"));
        quantize(&input, &plain, &opts, None);
        quantize(&input, &weighted, &opts, Some(im.clone()));
        let (fp, fw) = (
            GgufFile::open(&plain).unwrap(),
            GgufFile::open(&weighted).unwrap(),
        );
        let mut covered = 0;
        for (name, shape, vals) in &src {
            let Some(e) = im.get(name) else { continue };
            if fp.tensor(name).unwrap().ggml_type() == GgmlType::F32 || shape.len() < 2 {
                continue;
            }
            let w = e.means();
            let ep = weighted_err(vals, &decode(&fp, name), &w);
            let ew = weighted_err(vals, &decode(&fw, name), &w);
            assert!(
                ew < ep,
                "{ft} {name}: weighted error with imatrix {ew} not below {ep}"
            );
            covered += 1;
        }
        assert!(covered >= 4 * 7, "{covered} tensors compared");
        assert_eq!(
            fw.get_u32("quantize.imatrix.entries_count").unwrap(),
            im.len() as u32
        );
        assert_eq!(
            fw.get_str("quantize.imatrix.dataset").unwrap(),
            "synthetic.txt"
        );
        assert_eq!(fw.get_u32("quantize.imatrix.chunks_count").unwrap(), 3);
    }
}

#[test]
fn imatrix_problems_are_errors_naming_the_tensor() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let spec = Spec::small();
    write_model(&input, &spec);
    let file = GgufFile::open(&input).unwrap();
    let opts = QuantizeOptions::new(FileType::Q4_0);

    // Another model's imatrix: same names, other widths.
    let other = synthetic_imatrix(&Spec {
        hidden: 512,
        ..Spec::small()
    });
    match Prepared::new(&file, Some(other), &opts) {
        Err(QuantError::ImatrixLengthMismatch { name, .. }) => {
            assert!(name.ends_with(".weight"))
        }
        other => panic!("{other:?}"),
    }
    // An imatrix naming nothing in this model.
    let renamed = synthetic_imatrix(&spec).remap(|n| Some(format!("x.{n}")));
    assert!(matches!(
        Prepared::new(&file, Some(renamed), &opts),
        Err(QuantError::ImatrixForAnotherModel { .. })
    ));
    // Non-finite values.
    let mut bad = synthetic_imatrix(&spec);
    let mut e = bad.get("blk.2.ffn_up.weight").unwrap().clone();
    e.sums[5] = f32::INFINITY;
    bad.insert("blk.2.ffn_up.weight", e).unwrap();
    match Prepared::new(&file, Some(bad), &opts) {
        Err(QuantError::ImatrixNonFinite { name, index, .. }) => {
            assert_eq!((name.as_str(), index), ("blk.2.ffn_up.weight", 5))
        }
        other => panic!("{other:?}"),
    }
    // Missing entries: warnings, or an error when required.
    let mut partial = synthetic_imatrix(&spec);
    partial.remove("blk.1.attn_q.weight");
    let p = Prepared::new(&file, Some(partial.clone()), &opts).unwrap();
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings); // blk.1.attn_q and token_embd
    let mut req = opts.clone();
    req.require_imatrix = true;
    assert!(matches!(
        Prepared::new(&file, Some(partial), &req),
        Err(QuantError::MissingImatrix { .. })
    ));
}

#[test]
fn pruning_renumbers_trims_and_maps_the_imatrix() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let spec = Spec::small();
    let src = write_model(&input, &spec);
    let mut opts = QuantizeOptions::new(FileType::F16);
    opts.plan.prune_layers = vec![1, 2];
    let out = dir.path().join("pruned.gguf");
    let p = quantize(&input, &out, &opts, Some(synthetic_imatrix(&spec)));
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 2);
    assert_eq!(
        f.get_u32_array("llama.feed_forward_length").unwrap(),
        &[1000, 1003]
    );
    match f.get("ingot.quantize.pruned_layers") {
        Some(Value::Array(a)) => assert_eq!(a.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.n_tensors(), src.len() - 2 * 9);
    assert!(f.tensor("blk.2.attn_q.weight").is_none());
    // New blk.1 is old blk.3: same data.
    let old = src.iter().find(|t| t.0 == "blk.3.ffn_down.weight").unwrap();
    let new = decode(&f, "blk.1.ffn_down.weight");
    assert!(rel_rmse(&old.2, &new) < 1e-3);
    // The imatrix entry of a renamed tensor is the one of its input name.
    let t = p
        .plan
        .tensors
        .iter()
        .find(|t| t.name == "blk.1.ffn_down.weight")
        .unwrap();
    assert_eq!(t.source_name, "blk.3.ffn_down.weight");
    let remapped = synthetic_imatrix(&spec).remap(|n| p.plan.layers.map_name(n));
    assert_eq!(
        remapped.get("blk.1.ffn_down.weight"),
        synthetic_imatrix(&spec).get("blk.3.ffn_down.weight")
    );
    assert!(remapped.get("blk.2.ffn_down.weight").is_none());

    let file = GgufFile::open(&input).unwrap();
    for (prune, ok) in [
        (vec![4], false),
        (vec![0, 0], false),
        (vec![0, 1, 2, 3], false),
        (vec![3], true),
    ] {
        let mut o = QuantizeOptions::new(FileType::Q8_0);
        o.plan.prune_layers = prune.clone();
        let r = Prepared::new(&file, None, &o);
        assert_eq!(r.is_ok(), ok, "{prune:?}");
        if let Err(e) = r {
            assert!(matches!(
                e,
                QuantError::PruneOutOfRange { .. }
                    | QuantError::PruneDuplicate { .. }
                    | QuantError::PruneAll { .. }
            ));
        }
    }
}

#[test]
fn requantize_needs_permission_and_works_with_it() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let src = write_model(&input, &Spec::small());
    let q8 = dir.path().join("q8.gguf");
    quantize(&input, &q8, &QuantizeOptions::new(FileType::Q8_0), None);
    let file = GgufFile::open(&q8).unwrap();
    assert!(matches!(
        Prepared::new(&file, None, &QuantizeOptions::new(FileType::Q4_0)),
        Err(QuantError::RequantizeNotAllowed { .. })
    ));
    let mut o = QuantizeOptions::new(FileType::F16);
    o.plan.allow_requantize = true;
    let out = dir.path().join("f16.gguf");
    quantize(&q8, &out, &o, None);
    let f = GgufFile::open(&out).unwrap();
    let (name, _, vals) = &src[2];
    assert!(rel_rmse(vals, &decode(&f, name)) < 0.012);
}

#[test]
fn metadata_overrides_and_no_split_keys() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    write_model(&input, &Spec::small());
    let mut o = QuantizeOptions::new(FileType::Q8_0);
    o.kv_overrides = vec![
        ingot_quant::pipeline::KvOverride::parse("general.name=str:renamed").unwrap(),
        ingot_quant::pipeline::KvOverride::parse("llama.block_count=int:4").unwrap(),
        ingot_quant::pipeline::KvOverride::parse("my.flag=bool:true").unwrap(),
    ];
    let out = dir.path().join("o.gguf");
    quantize(&input, &out, &o, None);
    let f = GgufFile::open(&out).unwrap();
    assert_eq!(f.get_str("general.name").unwrap(), "renamed");
    assert!(matches!(f.get("llama.block_count"), Some(Value::U32(4))));
    assert!(f.get_bool("my.flag").unwrap());
    assert!(f.metadata().all(|(k, _)| !k.starts_with("split.")));
    assert!(f.get_str("ingot.quantize.version").is_ok());
    assert!(ingot_quant::pipeline::KvOverride::parse("k=float").is_err());
    assert!(ingot_quant::pipeline::KvOverride::parse("k=int:x").is_err());
}

#[test]
fn golden_imatrix_formats_agree_and_convert_both_ways() {
    let g = ingot_tests::golden().join("smollm2");
    let (dat, fd) = Imatrix::open(g.join("imatrix.dat")).unwrap();
    let (gguf, fg) = Imatrix::open(g.join("imatrix.gguf")).unwrap();
    assert_eq!((fd, fg), (ImatrixFormat::Legacy, ImatrixFormat::Gguf));
    assert_eq!(dat.len(), gguf.len());
    assert_eq!((dat.chunk_count, gguf.chunk_count), (10, 10));
    assert_eq!(gguf.chunk_size, 512);
    assert_eq!(gguf.datasets, vec!["calib.txt".to_string()]);
    let mut worst = 0f64;
    for (name, e) in gguf.entries() {
        let d = dat
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from .dat"));
        for (a, b) in e.means().iter().zip(d.means()) {
            let rel = ((a - b).abs() / a.abs().max(1e-30)) as f64;
            worst = worst.max(rel);
        }
    }
    assert!(
        worst < 1e-5,
        "per-column means differ by {worst} (relative)"
    );

    let dir = ingot_tests::temp_dir();
    let to_gguf = dir.path().join("from-dat.gguf");
    dat.write_gguf(&to_gguf).unwrap();
    let (back, f) = Imatrix::open(&to_gguf).unwrap();
    assert_eq!(f, ImatrixFormat::Gguf);
    assert_eq!(back.to_legacy(), dat.to_legacy());
    let to_dat = dir.path().join("from-gguf.dat");
    gguf.write_legacy(&to_dat).unwrap();
    assert_eq!(
        std::fs::read(&to_dat).unwrap(),
        std::fs::read(g.join("imatrix.dat")).unwrap()
    );
}

#[test]
fn reference_option_gives_ggml_reference_blocks_for_unweighted_tensors() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let src = write_model(&input, &Spec::small());
    let mut o = QuantizeOptions::new(FileType::Q4_0);
    o.reference_unweighted = true;
    let out = dir.path().join("ref.gguf");
    quantize(&input, &out, &o, None);
    let f = GgufFile::open(&out).unwrap();
    let (name, shape, vals) = src.iter().find(|t| t.0 == "blk.1.attn_q.weight").unwrap();
    let row = shape[0] as usize;
    let row_bytes = GgmlType::Q4_0.row_bytes(shape[0]).unwrap() as usize;
    let mut want = vec![0u8; row_bytes * vals.len() / row];
    for (x, o) in vals.chunks(row).zip(want.chunks_mut(row_bytes)) {
        ingot_quant::quantize_row(
            GgmlType::Q4_0,
            x,
            None,
            ingot_quant::QuantMode::Reference,
            o,
        )
        .unwrap();
    }
    assert_eq!(f.tensor(name).unwrap().bytes(), &want[..]);
}

/// `thorough_unweighted` routes unweighted legacy tensors through `QuantMode::Thorough`: the
/// output equals that mode row by row, and its plain error is no higher than the default's.
#[test]
fn thorough_option_uses_the_thorough_search_for_unweighted_tensors() {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    let src = write_model(&input, &Spec::small());
    let (name, shape, vals) = src.iter().find(|t| t.0 == "blk.1.attn_q.weight").unwrap();
    let row = shape[0] as usize;
    let row_bytes = GgmlType::Q4_0.row_bytes(shape[0]).unwrap() as usize;
    let encode = |mode| {
        let mut bytes = vec![0u8; row_bytes * vals.len() / row];
        for (x, o) in vals.chunks(row).zip(bytes.chunks_mut(row_bytes)) {
            ingot_quant::quantize_row(GgmlType::Q4_0, x, None, mode, o).unwrap();
        }
        bytes
    };
    let sq_err = |bytes: &[u8]| {
        let mut y = vec![0f32; vals.len()];
        ingot_quant::dequantize_row(GgmlType::Q4_0, bytes, &mut y).unwrap();
        vals.iter()
            .zip(&y)
            .map(|(a, b)| f64::from(a - b).powi(2))
            .sum::<f64>()
    };
    let mut o = QuantizeOptions::new(FileType::Q4_0);
    o.thorough_unweighted = true;
    let out = dir.path().join("thorough.gguf");
    quantize(&input, &out, &o, None);
    let f = GgufFile::open(&out).unwrap();
    let got = f.tensor(name).unwrap().bytes();
    assert_eq!(got, &encode(ingot_quant::QuantMode::Thorough)[..]);
    let default = encode(ingot_quant::QuantMode::Default);
    assert_ne!(
        got,
        &default[..],
        "thorough and default gave the same bytes"
    );
    assert!(
        sq_err(got) <= sq_err(&default),
        "thorough error above the default's"
    );
}
