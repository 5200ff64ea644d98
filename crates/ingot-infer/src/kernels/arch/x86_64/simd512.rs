//! 512-bit legacy dot bodies for the AVX-512 VNNI level: two 32-element blocks per register.
//!
//! Why: the 256-bit body spends more instructions on per-block bookkeeping (two f16 → f32
//! conversions, a product and a broadcast per block; nibble unpacking; `abs`/`sign`) than on the
//! one `vpdpbusd` doing the work, which held q4_0 · q8_0 at ≈ 4 cycles per block. Here:
//! - the f16 scales of 8 consecutive blocks are gathered with one `vpermt2d` per 128-byte
//!   window (no per-block loads and conversions) and converted with one `vcvtph2ps`; the
//!   products `d_w·d_a` of 8 blocks are one multiply, and each pair of blocks takes its two
//!   scales with one `vpermps`;
//! - codes stay unsigned (q4_0 nibble = value + 8, q5_0 5-bit code = value + 16) and the offset
//!   is taken off in integers, `Σ (u − o)·a = vpdpbusd(u, a) − vpdpbusd(o, a)`, exact in i32, so
//!   no `abs`/`sign` (which have no 512-bit form);
//! - one `fma` and one `cvtdq2ps` per pair of blocks.
//!
//! Per i32 lane the integer sums are the 256-bit body's; the float products `d_w·d_a` are the
//! same f32 multiplications; only the order of the final float additions differs (the
//! numerics contract of `formats/kernels.md`).
//!
//! Every body is `unsafe`: callers must run on a CPU with AVX2, FMA, F16C, AVX-512 F/BW/VL and
//! AVX512-VNNI, and pass slices whose lengths the wrapper checked.

use core::arch::x86_64::*;
use core::mem::size_of;

use ingot_quant::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1};

use super::avx512::Vnni;
use super::prefetch_ahead;
use super::simd::{self, Type0, Type1};

/// Blocks per chunk: the scales of one chunk are gathered and converted together.
const CHUNK: usize = 8;

/// How to gather the f16 at byte `off` of each of 8 consecutive `size`-byte blocks with
/// `vpermt2d` from two 128-byte windows (`A` at byte 0, `B` at `b_start`) of the chunk.
///
/// After the gather, dword k holds block k's f16 in its low (`odd[k] == false`) or high half,
/// so in the 16 f16 of the low 256 bits block k is number `2k + odd[k]`.
#[derive(Clone, Copy)]
struct Gather {
    idx_a: [i32; 16],
    idx_b: [i32; 16],
    /// Dwords taken from window B.
    mask_b: u16,
    b_start: usize,
    odd: [bool; CHUNK],
}

impl Gather {
    /// The plan; panics (at compile time, every use is in a `const`) when a block's f16 is in
    /// neither window or a window would read past the chunk.
    const fn new(size: usize, off: usize) -> Gather {
        assert!(size.is_multiple_of(2) && off.is_multiple_of(2) && off + 2 <= size);
        assert!(CHUNK * size >= 128, "window A must lie inside the chunk");
        // Window B starts on a multiple of 4 (so a half's parity is the same in both windows)
        // and ends inside the chunk.
        let b_start = if CHUNK * size >= 256 {
            128
        } else {
            (CHUNK * size - 128) / 4 * 4
        };
        let mut g = Gather {
            idx_a: [0; 16],
            idx_b: [0; 16],
            mask_b: 0,
            b_start,
            odd: [false; 8],
        };
        let mut k = 0;
        while k < CHUNK {
            let pos = k * size + off;
            g.odd[k] = pos % 4 == 2;
            if pos + 2 <= 128 {
                g.idx_a[k] = (pos / 4) as i32;
            } else {
                assert!(
                    pos >= b_start && pos + 2 - b_start <= 128,
                    "f16 outside both windows"
                );
                g.idx_b[k] = ((pos - b_start) / 4) as i32;
                g.mask_b |= 1 << k;
            }
            k += 1;
        }
        g
    }

    /// `vpermps` indices giving blocks 2p and 2p+1 of a chunk their scales in the low and
    /// high eight lanes, from the 16 floats converted from the gathered f16.
    const fn pair_indices(&self) -> [[i32; 16]; CHUNK / 2] {
        let mut out = [[0; 16]; CHUNK / 2];
        let mut p = 0;
        while p < CHUNK / 2 {
            let mut l = 0;
            while l < 16 {
                let k = 2 * p + l / 8;
                out[p][l] = (2 * k + self.odd[k] as usize) as i32;
                l += 1;
            }
            p += 1;
        }
        out
    }

    /// Whether two plans load the same windows and pick the same dwords, i.e. produce the same
    /// register (a block's two adjacent f16, such as q4_1's `d` and `m`, share a dword).
    const fn same_dwords(&self, other: &Gather) -> bool {
        if self.mask_b != other.mask_b || self.b_start != other.b_start {
            return false;
        }
        let mut l = 0;
        while l < 16 {
            if self.idx_a[l] != other.idx_a[l] || self.idx_b[l] != other.idx_b[l] {
                return false;
            }
            l += 1;
        }
        true
    }

    /// Whether two gathers put every block's f16 in the same half, so their floats line up.
    const fn aligned_with(&self, other: &Gather) -> bool {
        let mut k = 0;
        while k < CHUNK {
            if self.odd[k] != other.odd[k] {
                return false;
            }
            k += 1;
        }
        true
    }
}

/// 64 bytes at `p`, as a load LLVM must keep: with ordinary loads it sees that the windows
/// overlap the blocks' code loads and rebuilds those from the windows with a dozen shuffles
/// (measured: q4_0 slower than the 256-bit body).
///
/// # Safety
/// `p` valid for 64 bytes; AVX-512 F.
#[inline(always)]
unsafe fn window(p: *const u8) -> __m512i {
    // SAFETY: the caller guarantees 64 readable bytes; `Unaligned64` has alignment 1, so any
    // address is aligned for it.
    unsafe { core::ptr::read_volatile(p.cast::<Unaligned64>()).0 }
}

/// A 512-bit vector at any address (volatile reads need their type's alignment).
#[derive(Clone, Copy)]
#[repr(C, packed)]
struct Unaligned64(__m512i);

/// 16 f32: block k's f16 at byte `off` of `p + k·size`, converted, at lane `2k + odd[k]`
/// (other lanes hold whatever the neighbouring bytes decode to; never used).
///
/// # Safety
/// AVX-512 F/BW; `p` valid for `CHUNK · size` bytes, the plan made by [`Gather::new`] for
/// that size.
#[inline(always)]
unsafe fn gather_f16(p: *const u8, g: &Gather) -> __m512 {
    // SAFETY: the plan's windows lie inside the chunk (asserted by `Gather::new`), which the
    // caller guarantees readable; the rest are register intrinsics.
    unsafe {
        let a0 = window(p);
        let a1 = window(p.add(64));
        let mut r = _mm512_permutex2var_epi32(a0, _mm512_loadu_si512(g.idx_a.as_ptr().cast()), a1);
        if g.mask_b != 0 {
            let b0 = window(p.add(g.b_start));
            let b1 = window(p.add(g.b_start + 64));
            let rb = _mm512_permutex2var_epi32(b0, _mm512_loadu_si512(g.idx_b.as_ptr().cast()), b1);
            r = _mm512_mask_mov_epi32(r, g.mask_b, rb);
        }
        _mm512_cvtph_ps(_mm512_castsi512_si256(r))
    }
}

/// Two blocks' 32-byte activation codes as one register (block `y0` in the low half).
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
unsafe fn act_pair(q0: &[i8; 32], q1: &[i8; 32]) -> __m512i {
    // SAFETY: two 32-byte loads inside the arrays.
    unsafe {
        let lo = _mm256_loadu_si256(q0.as_ptr().cast());
        let hi = _mm256_loadu_si256(q1.as_ptr().cast());
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }
}

/// The nibbles of two legacy blocks in element order: block `q0`'s low nibbles, its high
/// nibbles, then `q1`'s.
///
/// # Safety
/// AVX-512 F/BW.
#[inline(always)]
unsafe fn nibble_pair(q0: &[u8; 16], q1: &[u8; 16]) -> __m512i {
    // SAFETY: two 16-byte loads inside the arrays; register intrinsics.
    unsafe {
        let b = _mm512_broadcast_i32x4(_mm_loadu_si128(q0.as_ptr().cast()));
        let b = _mm512_mask_broadcast_i32x4(b, 0xFF00, _mm_loadu_si128(q1.as_ptr().cast()));
        // 128-bit lanes 1 and 3 take the high nibbles: 16-bit lanes 8..16 and 24..32.
        let b = _mm512_mask_srli_epi16::<4>(b, 0xFF00_FF00, b);
        _mm512_and_si512(b, _mm512_set1_epi8(0x0f))
    }
}

/// `acc += scales · f32(s)`: the integer sums `s` of a pair of blocks, with the pair's two
/// scales picked from the chunk's `d` by `idx` (see [`Gather::pair_indices`]). Two
/// accumulators (even and odd pairs) keep two FMA chains in flight.
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
unsafe fn scale_add(s: __m512i, d: __m512, idx: &[i32; 16], acc: &mut __m512) {
    // SAFETY: a 64-byte load of `idx`; register intrinsics.
    unsafe {
        let dd = _mm512_permutexvar_ps(_mm512_loadu_si512(idx.as_ptr().cast()), d);
        *acc = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(s), *acc);
    }
}

/// A legacy weight block whose codes the 512-bit bodies decode two at a time, as unsigned
/// bytes (`value + OFFSET` for type 0).
pub(crate) trait Pair512: Sized {
    /// Subtracted from every unsigned code to get the value (type 0); 0 for type 1.
    const OFFSET: u8;
    /// Unsigned codes of two blocks, element order, `x0` in the low half.
    ///
    /// # Safety
    /// AVX-512 F/BW.
    unsafe fn codes2(x0: &Self, x1: &Self) -> __m512i;
}

impl Pair512 for BlockQ8_0 {
    const OFFSET: u8 = 128;
    #[inline(always)]
    unsafe fn codes2(x0: &Self, x1: &Self) -> __m512i {
        // SAFETY: AVX-512 F per the trait contract. Flipping the sign bit maps the signed code
        // q to the unsigned q + 128.
        unsafe { _mm512_xor_si512(act_pair(&x0.qs, &x1.qs), _mm512_set1_epi8(0x80u8 as i8)) }
    }
}

impl Pair512 for BlockQ4_0 {
    const OFFSET: u8 = 8;
    #[inline(always)]
    unsafe fn codes2(x0: &Self, x1: &Self) -> __m512i {
        // SAFETY: AVX-512 F/BW per the trait contract.
        unsafe { nibble_pair(&x0.qs, &x1.qs) }
    }
}

impl Pair512 for BlockQ5_0 {
    const OFFSET: u8 = 16;
    #[inline(always)]
    unsafe fn codes2(x0: &Self, x1: &Self) -> __m512i {
        // SAFETY: AVX-512 F/BW per the trait contract. Byte j of the pair gets +16 when bit j
        // of (qh1 << 32 | qh0) is set: the fifth bit of element j mod 32 of its block.
        unsafe {
            let bits = (u32::from_le_bytes(x1.qh) as u64) << 32 | u32::from_le_bytes(x0.qh) as u64;
            let n = nibble_pair(&x0.qs, &x1.qs);
            _mm512_mask_add_epi8(n, bits, n, _mm512_set1_epi8(16))
        }
    }
}

impl Pair512 for BlockQ4_1 {
    const OFFSET: u8 = 0;
    #[inline(always)]
    unsafe fn codes2(x0: &Self, x1: &Self) -> __m512i {
        // SAFETY: AVX-512 F/BW per the trait contract.
        unsafe { nibble_pair(&x0.qs, &x1.qs) }
    }
}

/// Type-0 weights (q4_0, q5_0) · q8_0, 8 blocks per iteration; the last `len % 8` blocks go
/// through the 256-bit body.
///
/// # Safety
/// See the module docs; `w.len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0<W: Pair512 + Type0>(w: &[W], a: &[BlockQ8_0]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_type0_tile::<W, 1, 1>([w], [a], 0)[0][0] }
}

/// Type-0 weights · four q8_0 rows, each pair of weight blocks decoded once.
///
/// # Safety
/// See the module docs; every `a[t].len() == w.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0_x4<W: Pair512 + Type0>(w: &[W], a: [&[BlockQ8_0]; 4]) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_type0_tile::<W, 1, 4>([w], a, 0)[0] }
}

/// Four type-0 weight rows · one q8_0 row, each pair of activation blocks loaded (and its
/// offset term computed) once; row r's result is `dot_type0(w[r], a)` bit for bit. Each
/// chunk of W read is followed by a prefetch of the bytes `ahead` further (0: none).
///
/// # Safety
/// See the module docs; every `w[r].len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0_4rows<W: Pair512 + Type0>(
    w: [&[W]; 4],
    a: &[BlockQ8_0],
    ahead: usize,
) -> [f32; 4] {
    // SAFETY: forwarded contract.
    let out = unsafe { dot_type0_tile::<W, 4, 1>(w, [a], ahead) };
    [out[0][0], out[1][0], out[2][0], out[3][0]]
}

/// `M` type-0 weight rows · `N` q8_0 rows (see [`dot_type0`]). Every (row, column) pair goes
/// through the same operations in the same order whatever `M` and `N` are, so each result is
/// the one-by-one result bit for bit.
///
/// # Safety
/// See the module docs; all slices have the same length.
#[inline(always)]
unsafe fn dot_type0_tile<W: Pair512 + Type0, const M: usize, const N: usize>(
    w: [&[W]; M],
    a: [&[BlockQ8_0]; N],
    ahead: usize,
) -> [[f32; N]; M] {
    let gw = const { Gather::new(size_of::<W>(), 0) };
    let ga = const { Gather::new(size_of::<BlockQ8_0>(), 0) };
    let pairs = const {
        assert!(Gather::new(size_of::<W>(), 0).aligned_with(&Gather::new(34, 0)));
        Gather::new(size_of::<W>(), 0).pair_indices()
    };
    let len = a[0].len();
    // SAFETY: features per the caller; chunks are whole blocks of all slices (equal lengths).
    unsafe {
        let zero = _mm512_setzero_si512();
        let off = _mm512_set1_epi8(W::OFFSET as i8);
        let mut acc = [[[_mm512_setzero_ps(); 2]; N]; M];
        let chunks = len / CHUNK;
        for c in 0..chunks {
            let wc: [&[W]; M] = core::array::from_fn(|m| &w[m][c * CHUNK..][..CHUNK]);
            let ac: [&[BlockQ8_0]; N] = core::array::from_fn(|t| &a[t][c * CHUNK..][..CHUNK]);
            let mut da = [_mm512_setzero_ps(); N];
            for t in 0..N {
                da[t] = gather_f16(ac[t].as_ptr().cast(), &ga);
            }
            let mut d = [[_mm512_setzero_ps(); N]; M];
            for m in 0..M {
                prefetch_ahead(wc[m].as_ptr().cast(), ahead, CHUNK * size_of::<W>());
                let dw = gather_f16(wc[m].as_ptr().cast(), &gw);
                for t in 0..N {
                    d[m][t] = _mm512_mul_ps(dw, da[t]);
                }
            }
            for p in 0..CHUNK / 2 {
                // −Σ o·a per lane, once per activation pair: each row's Σ (u − o)·a is then
                // one `vpdpbusd` accumulating onto it (the same i32, wrapping arithmetic).
                let mut y = [zero; N];
                let mut neg_o = [zero; N];
                for t in 0..N {
                    y[t] = act_pair(&ac[t][2 * p].qs, &ac[t][2 * p + 1].qs);
                    neg_o[t] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, off, y[t]));
                }
                for m in 0..M {
                    let u = W::codes2(&wc[m][2 * p], &wc[m][2 * p + 1]);
                    for t in 0..N {
                        let s = _mm512_dpbusd_epi32(neg_o[t], u, y[t]);
                        scale_add(s, d[m][t], &pairs[p], &mut acc[m][t][p % 2]);
                    }
                }
            }
        }
        let done = chunks * CHUNK;
        let mut out = [[0.0f32; N]; M];
        for m in 0..M {
            for t in 0..N {
                let tail = simd::dot_type0::<Vnni, W>(&w[m][done..], &a[t][done..]);
                out[m][t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][t][0], acc[m][t][1])) + tail;
            }
        }
        out
    }
}

/// Lane mask of the floats [`gather_f16`] fills for a plan (`2k + odd[k]`).
const fn used_lanes(g: &Gather) -> u16 {
    let mut m = 0u16;
    let mut k = 0;
    while k < CHUNK {
        m |= 1 << (2 * k + g.odd[k] as usize);
        k += 1;
    }
    m
}

/// Type-1 weights (q4_1) · q8_1: Σ_b d_w·d_a·Σ q·a + m_w·s_a, 8 blocks per iteration; the
/// `m·s` terms of a chunk are one masked FMA. The last `len % 8` blocks go through the 256-bit
/// body.
///
/// # Safety
/// See the module docs; `w.len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type1<W: Pair512 + Type1>(w: &[W], a: &[BlockQ8_1]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_type1_rows::<W, 1>([w], a, 0)[0] }
}

/// Four type-1 weight rows · one q8_1 row, each pair of activation blocks loaded once; row
/// r's result is `dot_type1(w[r], a)` bit for bit. Each chunk of W read is followed by a
/// prefetch of the bytes `ahead` further (0: none).
///
/// # Safety
/// See the module docs; every `w[r].len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type1_4rows<W: Pair512 + Type1>(
    w: [&[W]; 4],
    a: &[BlockQ8_1],
    ahead: usize,
) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_type1_rows::<W, 4>(w, a, ahead) }
}

/// `M` type-1 weight rows · one q8_1 row (see [`dot_type1`]); every row goes through the
/// same operations in the same order whatever `M` is.
///
/// # Safety
/// See the module docs; all slices have the same length.
#[inline(always)]
unsafe fn dot_type1_rows<W: Pair512 + Type1, const M: usize>(
    w: [&[W]; M],
    a: &[BlockQ8_1],
    ahead: usize,
) -> [f32; M] {
    let gd = const { Gather::new(size_of::<W>(), 0) };
    let gad = const { Gather::new(size_of::<BlockQ8_1>(), 0) };
    let gm = const { Gather::new(size_of::<W>(), 2) };
    let gas = const { Gather::new(size_of::<BlockQ8_1>(), 2) };
    // q4_1's `d` and `m` (and q8_1's `d` and `s`) are adjacent f16 in one dword, so one gather
    // yields both: d in the lanes `pairs` reads, m in `m_lanes`. Then the weight side needs one
    // gather per chunk and row instead of two (the result is the same register either way).
    let shared_w =
        const { Gather::new(size_of::<W>(), 0).same_dwords(&Gather::new(size_of::<W>(), 2)) };
    let shared_a = const { Gather::new(36, 0).same_dwords(&Gather::new(36, 2)) };
    let (pairs, m_lanes) = const {
        let (d, ad) = (Gather::new(size_of::<W>(), 0), Gather::new(36, 0));
        let (m, s) = (Gather::new(size_of::<W>(), 2), Gather::new(36, 2));
        assert!(d.aligned_with(&ad) && m.aligned_with(&s));
        (d.pair_indices(), used_lanes(&m))
    };
    // SAFETY: features per the caller; chunks are whole blocks of all slices (equal lengths).
    unsafe {
        let zero = _mm512_setzero_si512();
        let mut acc = [[_mm512_setzero_ps(); 2]; M];
        let mut acc_m = [_mm512_setzero_ps(); M];
        let chunks = a.len() / CHUNK;
        for c in 0..chunks {
            let ac = &a[c * CHUNK..][..CHUNK];
            let pa = ac.as_ptr().cast::<u8>();
            let ad = gather_f16(pa, &gad);
            let as_ = if shared_a { ad } else { gather_f16(pa, &gas) };
            let wc: [&[W]; M] = core::array::from_fn(|m| &w[m][c * CHUNK..][..CHUNK]);
            let mut d = [_mm512_setzero_ps(); M];
            for m in 0..M {
                let pw = wc[m].as_ptr().cast::<u8>();
                prefetch_ahead(pw, ahead, CHUNK * size_of::<W>());
                let wd = gather_f16(pw, &gd);
                let wm = if shared_w { wd } else { gather_f16(pw, &gm) };
                d[m] = _mm512_mul_ps(wd, ad);
                acc_m[m] = _mm512_mask3_fmadd_ps(wm, as_, acc_m[m], m_lanes);
            }
            for p in 0..CHUNK / 2 {
                let y = act_pair(&ac[2 * p].qs, &ac[2 * p + 1].qs);
                for m in 0..M {
                    let u = W::codes2(&wc[m][2 * p], &wc[m][2 * p + 1]);
                    let s = _mm512_dpbusd_epi32(zero, u, y);
                    scale_add(s, d[m], &pairs[p], &mut acc[m][p % 2]);
                }
            }
        }
        let done = chunks * CHUNK;
        let mut out = [0.0f32; M];
        for m in 0..M {
            let tail = simd::dot_type1::<Vnni, W>(&w[m][done..], &a[done..]);
            let ms = _mm512_reduce_add_ps(_mm512_maskz_mov_ps(m_lanes, acc_m[m]));
            out[m] = _mm512_reduce_add_ps(_mm512_add_ps(acc[m][0], acc[m][1])) + ms + tail;
        }
        out
    }
}
