//! Character classes as llama.cpp's pre-tokenizers see them, and GPT-2's byte-level alphabet.
//!
//! llama.cpp (`src/unicode.cpp`, `src/unicode-data.cpp`) gives every code point flags from its
//! Unicode general category: `\p{L}` = Lu|Ll|Lt|Lm|Lo, `\p{N}` = Nd|Nl|No, `\p{P}` = Pc|Pd|Pe|Pf|
//! Pi|Po|Ps, and a separate whitespace flag that is the Unicode `White_Space` property (the 25 code
//! points listed in [`WHITESPACE`]). Its hand-written splitters test those flags; its `std::regex`
//! fallback collapses each non-ASCII code point to one representative byte per category, which
//! gives the same classes. We take the category ranges from `regex-syntax`'s Unicode tables
//! (BurntSushi's, kept current with Unicode releases) once, into a 64 Ki-entry table for the Basic
//! Multilingual Plane plus sorted ranges for the rest, so a lookup is one load for nearly all text.

use std::sync::OnceLock;

/// `\p{L}`: a letter.
pub(crate) const LETTER: u8 = 1;
/// `\p{N}`: a number.
pub(crate) const NUMBER: u8 = 2;
/// `\s`: Unicode `White_Space`.
pub(crate) const WHITESPACE: u8 = 4;
/// `\p{P}`: punctuation (only the `default` pre-tokenizer uses it).
pub(crate) const PUNCTUATION: u8 = 8;

/// The `White_Space` code points, as in llama.cpp's `unicode_set_whitespace`.
pub(crate) const WHITESPACE_CODEPOINTS: [u32; 25] = [
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
    0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
];

struct Table {
    /// Flags of every code point below 0x10000.
    bmp: Vec<u8>,
    /// Sorted, disjoint `(first, last, flags)` ranges above 0xFFFF.
    astral: Vec<(u32, u32, u8)>,
}

fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::parse(pattern).expect("a constant Unicode class pattern parses");
    match hir.kind() {
        regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        other => unreachable!("{pattern} is a Unicode class, got {other:?}"),
    }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut bmp = vec![0u8; 0x10000];
        let mut astral = Vec::new();
        for (pattern, flag) in [
            (r"\p{L}", LETTER),
            (r"\p{N}", NUMBER),
            (r"\p{P}", PUNCTUATION),
        ] {
            for (lo, hi) in class_ranges(pattern) {
                for cp in lo..=hi.min(0xFFFF) {
                    bmp[cp as usize] |= flag;
                }
                if hi > 0xFFFF {
                    astral.push((lo.max(0x10000), hi, flag));
                }
            }
        }
        for cp in WHITESPACE_CODEPOINTS {
            bmp[cp as usize] |= WHITESPACE;
        }
        // The three categories are disjoint, so the ranges never overlap.
        astral.sort_unstable();
        Table { bmp, astral }
    })
}

/// The class flags of one code point (0 for anything that is none of the above).
#[inline]
pub(crate) fn flags(c: char) -> u8 {
    let cp = u32::from(c);
    let t = table();
    match t.bmp.get(cp as usize) {
        Some(&f) => f,
        None => {
            let i = t.astral.partition_point(|&(_, hi, _)| hi < cp);
            match t.astral.get(i) {
                Some(&(lo, _, f)) if lo <= cp => f,
                _ => 0,
            }
        }
    }
}

/// Flags of every code point of `text`, in order.
pub(crate) fn flags_of(chars: &[char], out: &mut Vec<u8>) {
    let t = table();
    out.clear();
    out.extend(chars.iter().map(|&c| match t.bmp.get(c as usize) {
        Some(&f) => f,
        None => flags(c),
    }));
}

/// GPT-2's byte-level alphabet (`bytes_to_unicode` in OpenAI's encoder.py, llama.cpp's
/// `unicode_byte_to_utf8_map`): printable Latin-1 bytes `!`..`~`, `¡`..`¬`, `®`..`ÿ` stand for
/// themselves, the other 68 bytes map to U+0100.. in byte order.
pub(crate) const fn byte_to_char_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if printable {
            table[b] = b as u32;
        } else {
            table[b] = 256 + n;
            n += 1;
        }
        b += 1;
    }
    table
}

/// `BYTE_TO_CHAR[b]`: the code point standing for byte `b`.
pub(crate) const BYTE_TO_CHAR: [u32; 256] = byte_to_char_table();

/// The inverse of [`BYTE_TO_CHAR`]: `char_to_byte(c)` is the byte `c` stands for, if any.
#[inline]
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    const fn inverse() -> [i16; 324] {
        let mut inv = [-1i16; 324];
        let mut b = 0usize;
        while b < 256 {
            inv[BYTE_TO_CHAR[b] as usize] = b as i16;
            b += 1;
        }
        inv
    }
    const INV: [i16; 324] = inverse();
    match INV.get(c as usize) {
        Some(&b) if b >= 0 => Some(b as u8),
        _ => None,
    }
}

/// Appends the byte-level (GPT-2 alphabet) encoding of `bytes` to `out`.
pub(crate) fn byte_encode(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        let c = char::from_u32(BYTE_TO_CHAR[b as usize]).expect("the byte table holds code points");
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection_with_gpt2_fixed_points() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = char::from_u32(BYTE_TO_CHAR[b as usize]).unwrap();
            assert!(seen.insert(c));
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 0x120); // 'Ġ'
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 0x10A); // 'Ċ'
        assert_eq!(BYTE_TO_CHAR[b'a' as usize], u32::from('a'));
        assert_eq!(BYTE_TO_CHAR[0xAD], 0x143);
        assert_eq!(char_to_byte('z'), Some(b'z'));
        assert_eq!(char_to_byte('\u{2581}'), None);
    }

    #[test]
    fn classes_match_unicode_categories() {
        assert_eq!(flags('a'), LETTER);
        assert_eq!(flags('Ж'), LETTER);
        assert_eq!(flags('中'), LETTER);
        assert_eq!(flags('7'), NUMBER);
        assert_eq!(flags('Ⅻ'), NUMBER); // Nl
        assert_eq!(flags('½'), NUMBER); // No
        assert_eq!(flags('٣'), NUMBER); // Arabic-Indic digit
        assert_eq!(flags(' '), WHITESPACE);
        assert_eq!(flags('\u{3000}'), WHITESPACE);
        assert_eq!(flags('\u{85}'), WHITESPACE);
        assert_eq!(flags('\u{200B}'), 0); // zero width space is Cf, not White_Space
        assert_eq!(flags('\u{1C}'), 0); // Python's isspace() says yes; White_Space says no
        assert_eq!(flags('.'), PUNCTUATION);
        assert_eq!(flags('$'), 0); // Sc
        assert_eq!(flags('\u{301}'), 0); // combining acute: Mn
        assert_eq!(flags('😀'), 0); // So
        assert_eq!(flags('𝐀'), LETTER); // astral letter
        assert_eq!(flags('𝟎'), NUMBER); // astral digit
        assert_eq!(flags('\u{10FFFF}'), 0);
    }
}
