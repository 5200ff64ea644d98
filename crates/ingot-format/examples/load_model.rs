//! How another program loads a model with ingot-format: open (memory-map + validate), read
//! hyper-parameters with typed getters, look tensors up by name and borrow their bytes, or view
//! them as typed blocks without copying.
//!
//! ```text
//! cargo run -p ingot-format --example load_model -- path/to/model.gguf
//! ```

use ingot_format::{GgmlType, GgufFile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: load_model MODEL.gguf");
        std::process::exit(2);
    };
    // Nothing but the header is read here: tensor data stays in the map until touched.
    let model = GgufFile::open(&path)?;

    let arch = model.get_str("general.architecture")?;
    let n_layers = model.get_u32(&format!("{arch}.block_count"))?;
    let n_embd = model.get_u32(&format!("{arch}.embedding_length"))?;
    let eps = model.get_f32(&format!("{arch}.attention.layer_norm_rms_epsilon"))?;
    let vocab = model.get_str_array("tokenizer.ggml.tokens")?;
    println!(
        "{arch}: {n_layers} layers, embedding {n_embd}, rms eps {eps}, vocab {}",
        vocab.len()
    );

    // A norm weight is f32: view its bytes as &[f32] without copying (checked size/alignment).
    let norm = model
        .tensor("output_norm.weight")
        .ok_or("output_norm.weight is missing")?;
    assert_eq!(norm.ggml_type(), GgmlType::F32);
    let w: &[f32] = norm.blocks::<f32>()?;
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    println!("output_norm.weight: {} values, mean {mean:.4}", w.len());

    // Quantized weights: rows of ne[0] elements, each row `row_bytes(ne[0])` bytes.
    for t in model.tensor_views().take(4) {
        let row = t.ggml_type().row_bytes(t.shape()[0]).ok_or("bad row")?;
        println!(
            "{:<28} {:<5} shape {:?}: {} rows of {row} bytes",
            t.name(),
            t.ggml_type().name(),
            t.shape(),
            t.bytes().len() as u64 / row
        );
    }
    Ok(())
}
