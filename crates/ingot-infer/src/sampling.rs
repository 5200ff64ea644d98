//! Token sampling: greedy, or top-k → top-p → temperature → draw, the order of llama.cpp's
//! default sampler chain (`common/sampling.cpp`: top_k, top_p, then temperature and `dist`).
//!
//! The random source is SplitMix64 (Steele, Lea and Flood, 2014) seeded by the caller, so a
//! seed reproduces a generation exactly.

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerOptions {
    /// Temperature; `<= 0` means greedy (always the most likely token).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p` (1 = all).
    pub top_p: f32,
    /// Random seed.
    pub seed: u64,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        // llama.cpp's defaults.
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            seed: 0,
        }
    }
}

/// SplitMix64 pseudo-random numbers.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Picks tokens from logits.
#[derive(Debug, Clone)]
pub struct Sampler {
    opts: SamplerOptions,
    rng: SplitMix64,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler with the given settings.
    pub fn new(opts: SamplerOptions) -> Self {
        Self {
            opts,
            rng: SplitMix64::new(opts.seed),
            candidates: Vec::new(),
        }
    }

    /// Chooses the next token from one row of logits.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.opts.temperature <= 0.0 || self.opts.top_k == 1 {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if self.opts.top_k > 0 && self.opts.top_k < c.len() {
            c.select_nth_unstable_by(self.opts.top_k - 1, by_logit);
            c.truncate(self.opts.top_k);
        }
        c.sort_by(by_logit);
        // Probabilities at temperature 1 decide top-p (llama.cpp applies top-p before temp).
        let max = c[0].1;
        let probs: Vec<f64> = c.iter().map(|&(_, l)| f64::from(l - max).exp()).collect();
        let total: f64 = probs.iter().sum();
        if self.opts.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = c.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p / total;
                if acc >= f64::from(self.opts.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep.max(1));
        }
        let t = f64::from(self.opts.temperature);
        let weights: Vec<f64> = c
            .iter()
            .map(|&(_, l)| (f64::from(l - max) / t).exp())
            .collect();
        let sum: f64 = weights.iter().sum();
        let mut r = self.rng.next_f64() * sum;
        for (&(id, _), w) in c.iter().zip(&weights) {
            if r < *w {
                return id;
            }
            r -= w;
        }
        c.last().map_or(0, |&(id, _)| id)
    }
}

/// Index of the largest logit (the first one on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_argmax() {
        let mut s = Sampler::new(SamplerOptions {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_k_limits_choices() {
        let logits = [1.0f32, 0.9, 0.8, 0.7, 0.6];
        let mut s = Sampler::new(SamplerOptions {
            temperature: 1.0,
            top_k: 2,
            top_p: 1.0,
            seed: 7,
        });
        let mut seen = [0usize; 5];
        for _ in 0..2000 {
            seen[s.sample(&logits) as usize] += 1;
        }
        assert!(seen[0] > 0 && seen[1] > 0);
        assert_eq!(seen[2] + seen[3] + seen[4], 0);
        // Frequencies follow softmax: p0/p1 = e^0.1.
        let ratio = seen[0] as f64 / seen[1] as f64;
        assert!((ratio - 0.1f64.exp()).abs() < 0.15, "{ratio}");
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // p ≈ [0.997, ...]: with top_p = 0.9 only the first survives.
        let logits = [10.0f32, 4.0, 3.0, 2.0];
        let mut s = Sampler::new(SamplerOptions {
            temperature: 1.5,
            top_k: 0,
            top_p: 0.9,
            seed: 1,
        });
        for _ in 0..200 {
            assert_eq!(s.sample(&logits), 0);
        }
    }

    #[test]
    fn same_seed_same_draws() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let o = SamplerOptions {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 42,
        };
        let (mut a, mut b) = (Sampler::new(o), Sampler::new(o));
        let xa: Vec<u32> = (0..20).map(|_| a.sample(&logits)).collect();
        let xb: Vec<u32> = (0..20).map(|_| b.sample(&logits)).collect();
        assert_eq!(xa, xb);
        assert!(
            xa.iter().any(|&t| t != xa[0]),
            "temperature 1 over 50 similar logits must vary"
        );
    }
}
