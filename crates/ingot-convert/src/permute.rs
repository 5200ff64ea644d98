//! llama.cpp's rotary row permutation of `q_proj` / `k_proj` (weights and biases).
//!
//! Hugging Face's Llama rotates "halves": within each head of `d` rows, row `i` pairs with row
//! `i + d/2`. ggml's `rope` (mode 0) rotates adjacent pairs `(2i, 2i+1)`. So
//! `convert_hf_to_gguf.py` (`LlamaModel.permute`) reorders rows, per head:
//!
//! ```text
//! w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols)
//! out[h*d + 2*i + j] = in[h*d + j*(d/2) + i]     for j in {0, 1}, i in 0..d/2
//! ```
//!
//! with `n_head` the query heads for Q and the KV heads for K. Only whole rows move, so the
//! permutation works on bytes in any element type. Qwen2 is not permuted (its llama.cpp graph
//! uses NeoX-style rope, which rotates halves like Hugging Face).

/// Applies the forward permutation (Hugging Face → GGUF) to `src`, a row-major tensor whose
/// rows are `row_bytes` long, grouped into `n_head` heads, writing into `dst`.
///
/// # Panics
/// If the lengths are inconsistent (`src.len() != dst.len()`, not a whole number of rows, or
/// the rows not divisible into `n_head` heads of an even number of rows). Callers check shapes
/// against config.json first, so this is an invariant, not an input error.
pub fn permute_rows(src: &[u8], dst: &mut [u8], row_bytes: usize, n_head: usize) {
    for_each_move(src.len(), dst.len(), row_bytes, n_head, |from, to| {
        dst[to * row_bytes..(to + 1) * row_bytes]
            .copy_from_slice(&src[from * row_bytes..(from + 1) * row_bytes]);
    });
}

/// The inverse of [`permute_rows`] (GGUF → Hugging Face), for export.
///
/// # Panics
/// As [`permute_rows`].
pub fn unpermute_rows(src: &[u8], dst: &mut [u8], row_bytes: usize, n_head: usize) {
    for_each_move(src.len(), dst.len(), row_bytes, n_head, |from, to| {
        dst[from * row_bytes..(from + 1) * row_bytes]
            .copy_from_slice(&src[to * row_bytes..(to + 1) * row_bytes]);
    });
}

/// Calls `f(hf_row, gguf_row)` for every row.
fn for_each_move(
    src_len: usize,
    dst_len: usize,
    row_bytes: usize,
    n_head: usize,
    mut f: impl FnMut(usize, usize),
) {
    assert_eq!(src_len, dst_len, "permute: source and destination differ");
    assert!(
        row_bytes > 0 && src_len % row_bytes == 0,
        "permute: partial row"
    );
    let rows = src_len / row_bytes;
    assert!(
        n_head > 0 && rows % (2 * n_head) == 0,
        "permute: {rows} rows do not split into {n_head} heads of even size"
    );
    let d = rows / n_head;
    let half = d / 2;
    for h in 0..n_head {
        for j in 0..2 {
            for i in 0..half {
                f(h * d + j * half + i, h * d + 2 * i + j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_reshape_swapaxes() {
        // 2 heads of 4 rows, 1 byte per row: rows [0..8).
        // numpy: arange(8).reshape(2,2,2).swapaxes(1,2).reshape(8) = [0,2,1,3,4,6,5,7].
        let src: Vec<u8> = (0..8).collect();
        let mut dst = vec![0; 8];
        permute_rows(&src, &mut dst, 1, 2);
        assert_eq!(dst, [0, 2, 1, 3, 4, 6, 5, 7]);
        // 1 head of 6 rows: arange(6).reshape(1,2,3).swapaxes(1,2) = [0,3,1,4,2,5].
        let src: Vec<u8> = (0..6).collect();
        let mut dst = vec![0; 6];
        permute_rows(&src, &mut dst, 1, 1);
        assert_eq!(dst, [0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn inverse_round_trips_with_wide_rows() {
        let src: Vec<u8> = (0..=255).cycle().take(12 * 5).collect();
        let mut mid = vec![0; src.len()];
        let mut back = vec![0; src.len()];
        permute_rows(&src, &mut mid, 5, 3);
        assert_ne!(mid, src);
        unpermute_rows(&mid, &mut back, 5, 3);
        assert_eq!(back, src);
    }
}
