//! SentencePiece `tokenizer.model` → `tokenizer.ggml.model = "llama"` (tokens, scores, types),
//! as `convert_hf_to_gguf.py` does it (`Model._create_vocab_sentencepiece`,
//! `_set_vocab_sentencepiece`).
//!
//! `tokenizer.model` is a protobuf `ModelProto` (sentencepiece `sentencepiece_model.proto`):
//! field 1 is the repeated `SentencePiece { string piece = 1; float score = 2; Type type = 3
//! [default = NORMAL]; }` with types NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, BYTE 6,
//! UNUSED 5. Everything else (trainer and normalizer specs) is skipped. The reader here decodes
//! just that: varints, length-delimited fields, fixed32/fixed64, all bounds-checked.
//!
//! Token types as llama.cpp's converter assigns them: UNKNOWN → 2, CONTROL → 3, UNUSED → 5,
//! BYTE → 6, anything else (including sentencepiece USER_DEFINED) → 1 NORMAL. Ids up to
//! `vocab_size` with no piece are `[PAD{id}]`, score -10000, UNUSED. Then `added_tokens.json`
//! entries (score -1000, USER_DEFINED) and tokenizer_config.json `added_tokens_decoder` entries
//! (score -1000; CONTROL if `special` or special-looking, else USER_DEFINED with `▁` → space)
//! overwrite their ids.

use serde_json::Value as Json;

use crate::error::{ConvertError, Result};
use crate::tokenizer::token_type;

/// One piece of a SentencePiece model.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// The piece's text (`▁` marks a space).
    pub piece: String,
    /// Its score (log probability for unigram models, negative merge rank for BPE models).
    pub score: f32,
    /// SentencePiece type (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    pub kind: u32,
}

fn bad(offset: usize, what: &str) -> ConvertError {
    ConvertError::field(
        "tokenizer.model",
        &format!("byte {offset}"),
        what.to_string(),
    )
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    base: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| bad(self.base + self.pos, "truncated varint"))?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(self.base + self.pos, "varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&[u8]> {
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| bad(self.base + start, "field runs past the end"))?;
        self.pos = end;
        Ok(&self.b[start..end])
    }

    /// Next (field number, wire type, payload) or None at the end.
    fn field(&mut self) -> Result<Option<(u64, u8, Field<'_>)>> {
        if self.pos == self.b.len() {
            return Ok(None);
        }
        let at = self.base + self.pos;
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed(self.take(8)?),
            2 => {
                let n = self.varint()?;
                let base = self.base + self.pos;
                Field::Bytes(self.take(n)?, base)
            }
            5 => Field::Fixed(self.take(4)?),
            _ => return Err(bad(at, "unsupported protobuf wire type")),
        };
        Ok(Some((key >> 3, wire, f)))
    }
}

enum Field<'a> {
    Varint(u64),
    Fixed(&'a [u8]),
    Bytes(&'a [u8], usize),
}

/// Decodes the pieces of a `tokenizer.model`.
pub fn parse_model(bytes: &[u8]) -> Result<Vec<Piece>> {
    let mut r = Reader {
        b: bytes,
        pos: 0,
        base: 0,
    };
    let mut pieces = Vec::new();
    while let Some((num, _, f)) = r.field()? {
        let (1, Field::Bytes(msg, base)) = (num, f) else {
            continue;
        };
        let mut p = Reader {
            b: msg,
            pos: 0,
            base,
        };
        let mut piece = None;
        let mut score = 0.0f32;
        let mut kind = 1u32;
        while let Some((n, _, f)) = p.field()? {
            match (n, f) {
                (1, Field::Bytes(s, at)) => {
                    piece = Some(
                        std::str::from_utf8(s)
                            .map_err(|_| bad(at, "piece is not UTF-8"))?
                            .to_string(),
                    );
                }
                (2, Field::Fixed(b)) if b.len() == 4 => {
                    score = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                (3, Field::Varint(v)) => kind = u32::try_from(v).unwrap_or(0),
                _ => {}
            }
        }
        let piece = piece.ok_or_else(|| bad(base, "piece without text"))?;
        pieces.push(Piece { piece, score, kind });
    }
    if pieces.is_empty() {
        return Err(bad(0, "no pieces"));
    }
    Ok(pieces)
}

/// Tokens, scores and types for `vocab_size` ids (`_create_vocab_sentencepiece`).
pub fn vocab(
    pieces: &[Piece],
    vocab_size: u32,
    added_tokens_json: Option<&Json>,
    tokenizer_config: Option<&Json>,
    looks_special: impl Fn(&str) -> bool,
) -> Result<(Vec<String>, Vec<f32>, Vec<i32>)> {
    let n = vocab_size as usize;
    let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
    let mut scores = vec![-10000.0f32; n];
    let mut types = vec![token_type::UNUSED; n];
    for (i, p) in pieces.iter().enumerate().take(n) {
        tokens[i] = p.piece.clone();
        scores[i] = p.score;
        types[i] = match p.kind {
            2 => token_type::UNKNOWN,
            3 => token_type::CONTROL,
            5 => token_type::UNUSED,
            6 => token_type::BYTE,
            _ => token_type::NORMAL,
        };
    }
    if let Some(Json::Object(m)) = added_tokens_json {
        for (text, id) in m {
            let Some(id) = id.as_u64().filter(|&id| id < n as u64) else {
                continue;
            };
            let id = id as usize;
            tokens[id] = text.clone();
            scores[id] = -1000.0;
            types[id] = token_type::USER_DEFINED;
        }
    }
    if let Some(Json::Object(m)) = tokenizer_config.and_then(|t| t.get("added_tokens_decoder")) {
        for (id, data) in m {
            let Some(id) = id.parse::<usize>().ok().filter(|&id| id < n) else {
                continue;
            };
            let Some(content) = data.get("content").and_then(Json::as_str) else {
                continue;
            };
            let special = data.get("special").and_then(Json::as_bool) == Some(true);
            if special || looks_special(content) {
                tokens[id] = content.to_string();
                types[id] = token_type::CONTROL;
            } else {
                tokens[id] = content.replace('\u{2581}', " ");
                types[id] = token_type::USER_DEFINED;
            }
            scores[id] = -1000.0;
        }
    }
    Ok((tokens, scores, types))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes pieces as a minimal `ModelProto` (plus an unrelated field to skip).
    pub(crate) fn encode(pieces: &[(&str, f32, u32)]) -> Vec<u8> {
        fn varint(mut v: u64, out: &mut Vec<u8>) {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    out.push(b);
                    return;
                }
                out.push(b | 0x80);
            }
        }
        let mut out = Vec::new();
        for (text, score, kind) in pieces {
            let mut m = Vec::new();
            m.push(0x0a);
            varint(text.len() as u64, &mut m);
            m.extend_from_slice(text.as_bytes());
            m.push(0x15);
            m.extend_from_slice(&score.to_le_bytes());
            if *kind != 1 {
                m.push(0x18);
                varint(u64::from(*kind), &mut m);
            }
            out.push(0x0a);
            varint(m.len() as u64, &mut out);
            out.extend_from_slice(&m);
        }
        // trainer_spec (field 2) with a varint inside: must be skipped.
        out.extend_from_slice(&[0x12, 0x02, 0x08, 0x01]);
        out
    }

    #[test]
    fn parses_pieces_and_types() {
        let bytes = encode(&[
            ("<unk>", 0.0, 2),
            ("<s>", 0.0, 3),
            ("<0x0A>", 0.0, 6),
            ("▁the", -1.5, 1),
        ]);
        let p = parse_model(&bytes).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[3],
            Piece {
                piece: "▁the".into(),
                score: -1.5,
                kind: 1
            }
        );
        let (t, s, ty) = vocab(&p, 6, None, None, |_| false).unwrap();
        assert_eq!(t[5], "[PAD5]");
        assert_eq!(s[5], -10000.0);
        assert_eq!(ty, [2, 3, 6, 1, 5, 5]);
    }

    #[test]
    fn truncated_model_is_an_error() {
        let bytes = encode(&[("▁a", -1.0, 1)]);
        for cut in 1..bytes.len() - 4 {
            assert!(parse_model(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
