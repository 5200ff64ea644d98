//! Byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's `llm_tokenizer_bpe_session`.
//!
//! Each pre-tokenized word is taken as bytes; every byte is one initial symbol (the token whose
//! text is that byte's character in GPT-2's byte alphabet). Then, repeatedly, the adjacent pair
//! whose merge rule has the lowest rank (index in `tokenizer.ggml.merges`) is merged, ties going
//! to the leftmost pair; a queued pair is dropped when either side has changed since it was
//! queued. Symbols that end up not being tokens fall back to the tokens of their single bytes
//! (llama.cpp looks up each byte of the symbol's alphabet text and skips those it cannot find).
//! With `ignore_merges` (Llama 3), a word that is itself a token is emitted without merging.
//!
//! Merge rules are resolved to token ids once, so the queue works on `(left id, right id)` pairs
//! instead of strings; results are memoised per distinct word within one `encode` call, which is
//! exact because BPE of a word does not depend on its neighbours.

use crate::unicode::{byte_encode, BYTE_TO_CHAR};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// No token.
pub(crate) const NONE: u32 = u32::MAX;

/// A merge rule resolved to ids: its rank and the id of the merged text (NONE if the merged
/// text is not a token, which llama.cpp tolerates).
#[derive(Clone, Copy)]
pub(crate) struct Merge {
    pub(crate) rank: u32,
    pub(crate) merged: u32,
}

/// Hashes a `(left, right)` id pair: one multiply, enough for keys that are already dense ids.
#[derive(Default, Clone, Copy)]
pub(crate) struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type PairMap = HashMap<u64, Merge, std::hash::BuildHasherDefault<PairHasher>>;

#[inline]
pub(crate) fn pair_key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

pub(crate) struct Bpe {
    pub(crate) merges: PairMap,
    /// Token of each byte's alphabet character, or NONE.
    pub(crate) byte_token: [u32; 256],
    pub(crate) ignore_merges: bool,
}

#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
}

/// No symbol.
const END: usize = usize::MAX;

/// Reusable buffers for one `encode` call.
#[derive(Default)]
pub(crate) struct BpeScratch<'t> {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<(u32, usize, usize)>>,
    mapped: Vec<u8>,
    cache: HashMap<&'t [u8], (usize, usize)>,
    cached_ids: Vec<u32>,
}

impl Bpe {
    /// Appends the tokens of one pre-tokenized word (raw bytes) to `out`.
    pub(crate) fn encode_word<'t>(
        &self,
        word: &'t [u8],
        text_to_id: &HashMap<Box<[u8]>, u32>,
        s: &mut BpeScratch<'t>,
        out: &mut Vec<u32>,
    ) {
        if let Some(&(start, len)) = s.cache.get(word) {
            out.extend_from_slice(&s.cached_ids[start..start + len]);
            return;
        }
        let before = out.len();
        self.encode_word_uncached(word, text_to_id, s, out);
        let start = s.cached_ids.len();
        s.cached_ids.extend_from_slice(&out[before..]);
        s.cache.insert(word, (start, out.len() - before));
    }

    fn encode_word_uncached(
        &self,
        word: &[u8],
        text_to_id: &HashMap<Box<[u8]>, u32>,
        s: &mut BpeScratch<'_>,
        out: &mut Vec<u32>,
    ) {
        if word.is_empty() {
            return;
        }
        if self.ignore_merges {
            s.mapped.clear();
            byte_encode(word, &mut s.mapped);
            if let Some(&id) = text_to_id.get(s.mapped.as_slice()) {
                out.push(id);
                return;
            }
        }
        let n = word.len();
        s.syms.clear();
        s.syms.extend(word.iter().enumerate().map(|(i, &b)| Sym {
            id: self.byte_token[b as usize],
            start: i,
            len: 1,
            prev: if i == 0 { END } else { i - 1 },
            next: if i + 1 == n { END } else { i + 1 },
        }));
        s.heap.clear();
        for i in 1..n {
            self.push_pair(&s.syms, &mut s.heap, i - 1, i);
        }
        while let Some(Reverse((rank, left, right))) = s.heap.pop() {
            let (l, r) = (s.syms[left], s.syms[right]);
            // Stale: one side has been merged away or grown since the pair was queued. A pair
            // whose ids still carry the queued rank is the queued pair (ranks are unique).
            if l.len == 0 || r.len == 0 || l.next != right {
                continue;
            }
            let Some(m) = self.merges.get(&pair_key(l.id, r.id)) else {
                continue;
            };
            if m.rank != rank {
                continue;
            }
            let merged = m.merged;
            let sl = &mut s.syms[left];
            sl.len += r.len;
            sl.id = merged;
            sl.next = r.next;
            s.syms[right].len = 0;
            if r.next != END {
                s.syms[r.next].prev = left;
            }
            let prev = s.syms[left].prev;
            if prev != END {
                self.push_pair(&s.syms, &mut s.heap, prev, left);
            }
            if r.next != END {
                self.push_pair(&s.syms, &mut s.heap, left, r.next);
            }
        }
        let mut i = 0;
        while i != END {
            let sym = s.syms[i];
            if sym.id != NONE {
                out.push(sym.id);
            } else {
                // Not a token: each byte of the symbol's alphabet text, if that is a token.
                for &b in &word[sym.start..sym.start + sym.len] {
                    let c = char::from_u32(BYTE_TO_CHAR[b as usize])
                        .expect("the byte table holds code points");
                    let mut buf = [0u8; 4];
                    for &x in c.encode_utf8(&mut buf).as_bytes() {
                        if let Some(&id) = text_to_id.get([x].as_slice()) {
                            out.push(id);
                        }
                    }
                }
            }
            i = sym.next;
        }
    }

    /// Queues the pair `(left, right)` if a merge rule exists for it. The queue orders by rank,
    /// then by left position, as llama.cpp's `llm_bigram_bpe::comparator`.
    #[inline]
    fn push_pair(
        &self,
        syms: &[Sym],
        heap: &mut BinaryHeap<Reverse<(u32, usize, usize)>>,
        left: usize,
        right: usize,
    ) {
        let (l, r) = (syms[left].id, syms[right].id);
        if l == NONE || r == NONE {
            return;
        }
        if let Some(m) = self.merges.get(&pair_key(l, r)) {
            heap.push(Reverse((m.rank, left, right)));
        }
    }
}
