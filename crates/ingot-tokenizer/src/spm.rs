//! SentencePiece-style tokenization (`tokenizer.ggml.model = llama`), as llama.cpp's
//! `llm_tokenizer_spm_session`.
//!
//! The text (spaces already replaced by `▁` U+2581, with a leading space when the vocabulary adds
//! one) starts as one symbol per UTF-8 character. Every adjacent pair whose concatenated text is a
//! token is queued with that token's score; the highest score is merged first, ties going to the
//! leftmost pair; a queued pair is dropped when either side has changed (its byte length no longer
//! adds up). New neighbours are queued after each merge. Remaining symbols are tokens, or — byte
//! fallback — the `<0xNN>` tokens of their UTF-8 bytes.
//!
//! This is SentencePiece's BPE encoding (`bpe_model.cc`) without its normalizer: llama.cpp applies
//! no NFKC and does not collapse whitespace, and does not pre-split at whitespace (which only
//! matters for vocabularies with `▁` inside a piece).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

#[derive(Clone, Copy)]
struct Sym {
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
}

/// No symbol.
const END: usize = usize::MAX;
/// No token.
const NONE: u32 = u32::MAX;

/// A queued pair: ordered by score (higher first), then by left position (lower first).
#[derive(Clone, Copy)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| Reverse(self.left).cmp(&Reverse(other.left)))
    }
}

pub(crate) struct Spm {
    /// Token for each byte: `<0xNN>`, else the one-byte text, else the unknown token, else NONE.
    pub(crate) byte_token: [u32; 256],
}

impl Spm {
    /// Appends the tokens of `text` (already escaped) to `out`.
    pub(crate) fn encode(
        &self,
        text: &str,
        text_to_id: &HashMap<Box<[u8]>, u32>,
        scores: &[f32],
        out: &mut Vec<u32>,
    ) {
        let bytes = text.as_bytes();
        let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
        for (i, c) in text.char_indices() {
            let idx = syms.len();
            syms.push(Sym {
                start: i,
                len: c.len_utf8(),
                prev: if idx == 0 { END } else { idx - 1 },
                next: idx + 1,
            });
        }
        let Some(last) = syms.last_mut() else {
            return;
        };
        last.next = END;
        let mut heap = BinaryHeap::new();
        let try_pair = |syms: &[Sym], heap: &mut BinaryHeap<Pair>, left: usize, right: usize| {
            if left == END || right == END {
                return;
            }
            let (l, r) = (syms[left], syms[right]);
            let slice = &bytes[l.start..r.start + r.len];
            if let Some(&id) = text_to_id.get(slice) {
                heap.push(Pair {
                    score: scores[id as usize],
                    left,
                    right,
                    size: l.len + r.len,
                });
            }
        };
        for i in 1..syms.len() {
            try_pair(&syms, &mut heap, i - 1, i);
        }
        while let Some(p) = heap.pop() {
            let (l, r) = (syms[p.left], syms[p.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != p.size {
                continue;
            }
            syms[p.left].len += r.len;
            syms[p.left].next = r.next;
            syms[p.right].len = 0;
            if r.next != END {
                syms[r.next].prev = p.left;
            }
            try_pair(&syms, &mut heap, l.prev, p.left);
            try_pair(&syms, &mut heap, p.left, r.next);
        }
        let mut i = 0;
        while i != END {
            let s = syms[i];
            let slice = &bytes[s.start..s.start + s.len];
            match text_to_id.get(slice) {
                Some(&id) => out.push(id),
                None => {
                    for &b in slice {
                        let id = self.byte_token[b as usize];
                        if id != NONE {
                            out.push(id);
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}
