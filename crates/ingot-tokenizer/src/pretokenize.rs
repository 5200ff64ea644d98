//! Pre-tokenizers: how a `gpt2` (byte-level BPE) vocabulary cuts text into words before merging.
//!
//! llama.cpp (`src/llama-vocab.cpp`, `llm_tokenizer_bpe`) gives each `tokenizer.ggml.pre` value a
//! list of regular expressions, applied one after the other: each splits every piece left by the
//! previous one, and the text between matches stays a piece of its own
//! (`unicode_regex_split_stl`). Two of those expressions are not run as regexes at all but by
//! hand-written splitters in `src/unicode.cpp` (`unicode_regex_split_custom_gpt2`,
//! `unicode_regex_split_custom_llama3`); the others go through `std::regex` over text whose
//! non-ASCII code points are collapsed to one byte per Unicode category. We implement every stage
//! by hand, following those splitters step by step (including their treatment of a piece's end as
//! end of text for `\s+(?!\S)`), so the splits are the ones llama.cpp makes:
//!
//! | `tokenizer.ggml.pre` | stages |
//! |---|---|
//! | `llama-bpe` (`llama3`, `llama-v3`, …) | LLAMA3: `(?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d)\|[^\r\n\p{L}\p{N}]?\p{L}+\|\p{N}{1,3}\| ?[^\s\p{L}\p{N}]+[\r\n]*\|\s*[\r\n]+\|\s+(?!\S)\|\s+` |
//! | `qwen2` (`stablelm2`, `megrez`, …) | the LLAMA3 expression with `\p{N}` (one digit) for `\p{N}{1,3}` |
//! | `smollm` (`starcoder`, `refact`, `command-r`, …) | `\p{N}`, then GPT2 |
//! | `gpt-2` (alias `gpt2`; `mpt`, `olmo`, …) | GPT2: `'s\|'t\|'re\|'ve\|'m\|'ll\|'d\| ?\p{L}+\| ?\p{N}+\| ?[^\s\p{L}\p{N}]+\|\s+(?!\S)` |
//! | `default` (or no `tokenizer.ggml.pre`) | `[\p{P}\$\+<=>\^~\|]+`, GPT2, `\p{N}+`, `[0-9][0-9][0-9]` |
//!
//! Why hand-written rather than `fancy-regex`: llama.cpp itself does not run the GPT2 and LLAMA3
//! expressions as regexes, so mirroring its splitters is the most faithful choice; they run in one
//! linear pass with a table lookup per code point, several times faster than a backtracking
//! engine with look-ahead. `fancy-regex` is used in the tests as an independent oracle: on random
//! text the splitters must agree with the original expressions.

use crate::unicode::{flags_of, LETTER, NUMBER, PUNCTUATION, WHITESPACE};
use std::ops::Range;

/// The pre-tokenizers we implement, named after llama.cpp's `LLAMA_VOCAB_PRE_TYPE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreTokenizer {
    /// llama.cpp's fallback when `tokenizer.ggml.pre` is absent or `default`.
    Default,
    /// GPT-2's expression.
    Gpt2,
    /// Llama 3's expression (digits in groups of up to three).
    Llama3,
    /// Qwen 2's expression (Llama 3's with single digits).
    Qwen2,
    /// SmolLM / StarCoder: single digits, then GPT-2's expression.
    Smollm,
}

/// How llama.cpp configures a vocabulary for one `tokenizer.ggml.pre` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PreConfig {
    pub(crate) kind: PreTokenizer,
    /// A word that is itself a token is emitted whole, without merges (Llama 3).
    pub(crate) ignore_merges: bool,
    /// Default of `add_bos` for this pre-tokenizer (overridden by `tokenizer.ggml.add_bos_token`).
    pub(crate) add_bos: bool,
}

impl PreTokenizer {
    /// The configuration llama.cpp's `llama_vocab::impl::load` gives a `tokenizer.ggml.pre`
    /// value, or `None` for values we do not implement. `None` as input (key absent) means
    /// llama.cpp's `default`.
    pub(crate) fn config(name: Option<&str>) -> Option<PreConfig> {
        let plain = |kind| PreConfig {
            kind,
            ignore_merges: false,
            add_bos: false,
        };
        let Some(name) = name else {
            return Some(plain(PreTokenizer::Default));
        };
        Some(match name {
            "default" => plain(PreTokenizer::Default),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => PreConfig {
                kind: PreTokenizer::Llama3,
                ignore_merges: true,
                add_bos: true,
            },
            "dbrx" | "smaug-bpe" => plain(PreTokenizer::Llama3),
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2"
            | "hunyuan" | "solar-open" | "grok-2" => plain(PreTokenizer::Qwen2),
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" | "mellum2" => plain(PreTokenizer::Smollm),
            "gpt-2" | "gpt2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "exaone4" | "mpt" | "olmo"
            | "jais" | "trillion" | "granite-docling" => plain(PreTokenizer::Gpt2),
            _ => return None,
        })
    }

    /// Splits `text` into words, appending their byte ranges to `words`.
    pub fn split(self, text: &str, words: &mut Vec<Range<usize>>) {
        let mut scratch = Scratch::default();
        self.split_with(text, &mut scratch, words);
    }

    pub(crate) fn split_with(self, text: &str, s: &mut Scratch, words: &mut Vec<Range<usize>>) {
        if text.is_empty() {
            return;
        }
        s.chars.clear();
        s.chars.extend(text.chars());
        flags_of(&s.chars, &mut s.flags);
        s.segs.clear();
        s.segs.push(s.chars.len());
        let stages: &[Stage] = match self {
            PreTokenizer::Default => &[
                Stage::Runs(is_default_punct),
                Stage::Gpt2,
                Stage::Runs(is_number),
                Stage::AsciiDigitTriples,
            ],
            PreTokenizer::Gpt2 => &[Stage::Gpt2],
            PreTokenizer::Llama3 => &[Stage::Llama3 { max_digits: 3 }],
            PreTokenizer::Qwen2 => &[Stage::Llama3 { max_digits: 1 }],
            PreTokenizer::Smollm => &[Stage::EachNumber, Stage::Gpt2],
        };
        for stage in stages {
            s.next.clear();
            match *stage {
                Stage::Gpt2 => split_gpt2(&s.chars, &s.flags, &s.segs, &mut s.next),
                Stage::Llama3 { max_digits } => {
                    split_llama3(&s.chars, &s.flags, &s.segs, max_digits, &mut s.next)
                }
                Stage::EachNumber => split_each_number(&s.flags, &s.segs, &mut s.next),
                Stage::Runs(pred) => split_runs(&s.chars, &s.flags, &s.segs, pred, &mut s.next),
                Stage::AsciiDigitTriples => split_digit_triples(&s.chars, &s.segs, &mut s.next),
            }
            std::mem::swap(&mut s.segs, &mut s.next);
        }
        // Code point lengths to byte ranges.
        let mut byte = 0usize;
        let mut cp = 0usize;
        for &len in &s.segs {
            let start = byte;
            for c in &s.chars[cp..cp + len] {
                byte += c.len_utf8();
            }
            cp += len;
            words.push(start..byte);
        }
    }
}

/// Reusable buffers for [`PreTokenizer::split_with`].
#[derive(Default)]
pub(crate) struct Scratch {
    chars: Vec<char>,
    flags: Vec<u8>,
    segs: Vec<usize>,
    next: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Stage {
    Gpt2,
    Llama3 { max_digits: usize },
    EachNumber,
    Runs(fn(char, u8) -> bool),
    AsciiDigitTriples,
}

fn is_default_punct(c: char, f: u8) -> bool {
    f & PUNCTUATION != 0 || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
}

fn is_number(_: char, f: u8) -> bool {
    f & NUMBER != 0
}

/// Appends the piece lengths between `prev` and `end` (if non-empty) and moves `prev`.
#[inline]
fn add(out: &mut Vec<usize>, prev: &mut usize, end: usize) {
    if end > *prev {
        out.push(end - *prev);
    }
    *prev = end;
}

const WLN: u8 = WHITESPACE | LETTER | NUMBER;

/// llama.cpp's `unicode_regex_split_custom_gpt2`.
fn split_gpt2(chars: &[char], fl: &[u8], segs: &[usize], out: &mut Vec<usize>) {
    let mut start = 0;
    for &len in segs {
        let (ini, end) = (start, start + len);
        start = end;
        // Flags at `p`, or None past the piece's end (llama.cpp's empty flags).
        let fa = |p: usize| if p < end { Some(fl[p]) } else { None };
        let has = |f: Option<u8>, bit: u8| matches!(f, Some(f) if f & bit != 0);
        let other = |f: Option<u8>| matches!(f, Some(f) if f & WLN == 0);
        let mut prev = ini;
        let mut pos = ini;
        while pos < end {
            let c = chars[pos];
            if c == '\'' && pos + 1 < end {
                let n = chars[pos + 1];
                if matches!(n, 's' | 't' | 'm' | 'd') {
                    pos += 2;
                    add(out, &mut prev, pos);
                    continue;
                }
                if pos + 2 < end {
                    let nn = chars[pos + 2];
                    if matches!((n, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                        pos += 3;
                        add(out, &mut prev, pos);
                        continue;
                    }
                }
            }
            let space = usize::from(c == ' ');
            let f2 = if c == ' ' { fa(pos + 1) } else { Some(fl[pos]) };
            if has(f2, LETTER) {
                pos += space;
                while has(fa(pos), LETTER) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            if has(f2, NUMBER) {
                pos += space;
                while has(fa(pos), NUMBER) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            if other(f2) {
                pos += space;
                while other(fa(pos)) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            let mut n_ws = 0;
            while has(fa(pos + n_ws), WHITESPACE) {
                n_ws += 1;
            }
            // \s+(?!\S): leave the last whitespace for the next word, unless the piece ends.
            if n_ws > 1 && pos + n_ws < end {
                pos += n_ws - 1;
                add(out, &mut prev, pos);
                continue;
            }
            if n_ws > 0 {
                pos += n_ws;
                add(out, &mut prev, pos);
                continue;
            }
            pos += 1;
            add(out, &mut prev, pos);
        }
    }
}

/// llama.cpp's `unicode_regex_split_custom_llama3`, with the digit group length as a parameter
/// (3 for Llama 3; 1 gives the Qwen 2 expression, which llama.cpp runs through `std::regex` with
/// the same result).
fn split_llama3(
    chars: &[char],
    fl: &[u8],
    segs: &[usize],
    max_digits: usize,
    out: &mut Vec<usize>,
) {
    let mut start = 0;
    for &len in segs {
        let (ini, end) = (start, start + len);
        start = end;
        let fa = |p: usize| if p < end { Some(fl[p]) } else { None };
        let has = |f: Option<u8>, bit: u8| matches!(f, Some(f) if f & bit != 0);
        let mut prev = ini;
        let mut pos = ini;
        while pos < end {
            let c = chars[pos];
            let f = fl[pos];
            if c == '\'' && pos + 1 < end {
                let n = chars[pos + 1].to_ascii_lowercase();
                if matches!(n, 's' | 't' | 'm' | 'd') {
                    pos += 2;
                    add(out, &mut prev, pos);
                    continue;
                }
                if pos + 2 < end {
                    let nn = chars[pos + 2].to_ascii_lowercase();
                    if matches!((n, nn), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                        pos += 3;
                        add(out, &mut prev, pos);
                        continue;
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(c == '\r' || c == '\n' || f & NUMBER != 0)
                && (f & LETTER != 0 || has(fa(pos + 1), LETTER))
            {
                pos += 1;
                while has(fa(pos), LETTER) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            // \p{N}{1,max_digits}
            if f & NUMBER != 0 {
                let mut group = pos;
                while has(fa(pos), NUMBER) {
                    pos += 1;
                    if pos - group >= max_digits {
                        add(out, &mut prev, pos);
                        group = pos;
                    }
                }
                add(out, &mut prev, pos);
                continue;
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; like llama.cpp, a space that ends the piece is taken
            // here too (as a word of its own, which `\s+` would give as well).
            let f2 = if c == ' ' { fa(pos + 1) } else { Some(f) };
            if f2.is_none_or(|g| g & WLN == 0) {
                pos += usize::from(c == ' ');
                while matches!(fa(pos), Some(g) if g & WLN == 0) {
                    pos += 1;
                }
                while pos < end && matches!(chars[pos], '\r' | '\n') {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            let mut n_ws = 0;
            let mut last_newline_end = None;
            while has(fa(pos + n_ws), WHITESPACE) {
                if matches!(chars[pos + n_ws], '\r' | '\n') {
                    last_newline_end = Some(pos + n_ws + 1);
                }
                n_ws += 1;
            }
            // \s*[\r\n]+
            if let Some(e) = last_newline_end {
                pos = e;
                add(out, &mut prev, pos);
                continue;
            }
            if n_ws > 1 && pos + n_ws < end {
                pos += n_ws - 1;
                add(out, &mut prev, pos);
                continue;
            }
            if n_ws > 0 {
                pos += n_ws;
                add(out, &mut prev, pos);
                continue;
            }
            pos += 1;
            add(out, &mut prev, pos);
        }
    }
}

/// `\p{N}` as a split expression: every number code point alone, the text between as pieces.
fn split_each_number(fl: &[u8], segs: &[usize], out: &mut Vec<usize>) {
    let mut start = 0;
    for &len in segs {
        let (ini, end) = (start, start + len);
        start = end;
        let mut prev = ini;
        for (p, &f) in fl[ini..end].iter().enumerate() {
            if f & NUMBER != 0 {
                let p = ini + p;
                add(out, &mut prev, p);
                add(out, &mut prev, p + 1);
            }
        }
        add(out, &mut prev, end);
    }
}

/// `[class]+` as a split expression: maximal runs of the class, the text between as pieces.
fn split_runs(
    chars: &[char],
    fl: &[u8],
    segs: &[usize],
    pred: fn(char, u8) -> bool,
    out: &mut Vec<usize>,
) {
    let mut start = 0;
    for &len in segs {
        let (ini, end) = (start, start + len);
        start = end;
        let mut prev = ini;
        let mut pos = ini;
        while pos < end {
            if pred(chars[pos], fl[pos]) {
                add(out, &mut prev, pos);
                while pos < end && pred(chars[pos], fl[pos]) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
            } else {
                pos += 1;
            }
        }
        add(out, &mut prev, end);
    }
}

/// `[0-9][0-9][0-9]` as a split expression (leftmost, non-overlapping).
fn split_digit_triples(chars: &[char], segs: &[usize], out: &mut Vec<usize>) {
    let mut start = 0;
    for &len in segs {
        let (ini, end) = (start, start + len);
        start = end;
        let mut prev = ini;
        let mut pos = ini;
        while pos + 3 <= end {
            if chars[pos..pos + 3].iter().all(char::is_ascii_digit) {
                add(out, &mut prev, pos);
                pos += 3;
                add(out, &mut prev, pos);
            } else {
                pos += 1;
            }
        }
        add(out, &mut prev, end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, text: &str) -> Vec<&str> {
        let mut ranges = Vec::new();
        pre.split(text, &mut ranges);
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn gpt2_splits_contractions_words_numbers_and_spaces() {
        assert_eq!(
            words(PreTokenizer::Gpt2, "Hello world's  12 apples!!  \n"),
            ["Hello", " world", "'s", " ", " 12", " apples", "!!", "  \n"]
        );
        // Case-sensitive contractions: 'S is not one.
        assert_eq!(words(PreTokenizer::Gpt2, "IT'S"), ["IT", "'", "S"]);
        assert_eq!(words(PreTokenizer::Gpt2, "a\n\nb"), ["a", "\n", "\n", "b"]);
    }

    #[test]
    fn smollm_splits_every_digit_first() {
        assert_eq!(
            words(PreTokenizer::Smollm, "in 2024, x1  7"),
            ["in", " ", "2", "0", "2", "4", ",", " x", "1", "  ", "7"]
        );
    }

    #[test]
    fn llama3_groups_digits_by_three_and_keeps_newlines_together() {
        assert_eq!(
            words(PreTokenizer::Llama3, "I'M 1234567 ok?\n\n  hi"),
            ["I", "'M", " ", "123", "456", "7", " ok", "?\n\n", " ", " hi"]
        );
        assert_eq!(words(PreTokenizer::Llama3, "a \n b"), ["a", " \n", " b"]);
        assert_eq!(words(PreTokenizer::Llama3, "(hello)"), ["(hello", ")"]);
    }

    #[test]
    fn qwen2_splits_single_digits() {
        assert_eq!(
            words(PreTokenizer::Qwen2, "x 123"),
            ["x", " ", "1", "2", "3"]
        );
    }

    #[test]
    fn default_splits_punctuation_and_digit_triples() {
        assert_eq!(
            words(PreTokenizer::Default, "a+b=12345."),
            ["a", "+", "b", "=", "123", "45", "."]
        );
    }

    #[test]
    fn empty_text_gives_no_words() {
        for pre in [
            PreTokenizer::Default,
            PreTokenizer::Gpt2,
            PreTokenizer::Llama3,
            PreTokenizer::Qwen2,
            PreTokenizer::Smollm,
        ] {
            assert!(words(pre, "").is_empty());
        }
    }

    // The original expressions, run by a backtracking regex engine: an independent oracle.
    const GPT2_RE: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
    const LLAMA3_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const QWEN2_RE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// llama.cpp's `unicode_regex_split_stl`: matches, and the text between them, are pieces;
    /// each expression splits every piece of the previous one.
    fn regex_split<'a>(exprs: &[&str], text: &'a str) -> Vec<&'a str> {
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, fancy_regex::Regex>> =
                Default::default();
        }
        let mut pieces = vec![text];
        for e in exprs {
            let re = COMPILED.with(|c| {
                c.borrow_mut()
                    .entry(e.to_string())
                    .or_insert_with(|| fancy_regex::Regex::new(e).unwrap())
                    .clone()
            });
            let mut next = Vec::new();
            for p in pieces {
                let mut last = 0;
                for m in re.find_iter(p) {
                    let m = m.unwrap();
                    if m.start() > last {
                        next.push(&p[last..m.start()]);
                    }
                    next.push(m.as_str());
                    last = m.end();
                }
                if last < p.len() {
                    next.push(&p[last..]);
                }
            }
            pieces = next;
        }
        pieces.retain(|p| !p.is_empty());
        pieces
    }

    const ALPHABET: &[char] = &[
        'a', 'Z', 's', 't', 'S', 'l', 'e', 'é', '中', 'Ж', '1', '9', '٣', '½', ' ', ' ', '\t',
        '\n', '\r', '\u{3000}', '\u{A0}', '\u{85}', '\'', '.', '!', '(', '😀', '\u{301}',
        '\u{200B}', '_', '$', '+', '𝐀',
    ];

    fn text_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET), 0..40)
            .prop_map(|v| v.into_iter().collect())
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn gpt2_agrees_with_the_regex(text in text_strategy()) {
            prop_assert_eq!(words(PreTokenizer::Gpt2, &text), regex_split(&[GPT2_RE], &text));
        }

        #[test]
        fn smollm_agrees_with_the_regexes(text in text_strategy()) {
            prop_assert_eq!(
                words(PreTokenizer::Smollm, &text),
                regex_split(&[r"\p{N}", GPT2_RE], &text)
            );
        }

        #[test]
        fn llama3_agrees_with_the_regex(text in text_strategy()) {
            prop_assert_eq!(words(PreTokenizer::Llama3, &text), regex_split(&[LLAMA3_RE], &text));
        }

        #[test]
        fn qwen2_agrees_with_the_regex(text in text_strategy()) {
            prop_assert_eq!(words(PreTokenizer::Qwen2, &text), regex_split(&[QWEN2_RE], &text));
        }

        #[test]
        fn default_agrees_with_the_regexes(text in text_strategy()) {
            prop_assert_eq!(
                words(PreTokenizer::Default, &text),
                regex_split(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2_RE, r"\p{N}+", "[0-9][0-9][0-9]"], &text)
            );
        }
    }
}
