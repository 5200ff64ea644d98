//! Text generation: the prompt goes through the model as one batch (GEMM), then each new token
//! is fed back alone (GEMV) until `max_tokens`, an end-of-generation token or a full cache.

use std::time::{Duration, Instant};

use crate::llama::{KvPrecision, LlamaModel};
use crate::sampling::{Sampler, SamplerOptions};
use crate::InferError;

/// Settings of a generation.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Tokens to generate at most.
    pub max_tokens: usize,
    /// Sampling.
    pub sampler: SamplerOptions,
    /// Tokens that end the generation (EOS, end-of-turn); they are not emitted.
    pub stop_tokens: Vec<u32>,
    /// KV cache size; `None` = prompt + max_tokens.
    pub n_ctx: Option<usize>,
    /// KV cache precision.
    pub kv_precision: KvPrecision,
}

/// Timing of a generation.
#[derive(Debug, Clone, Copy)]
pub struct GenerateStats {
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Time to process the prompt (including its first sampled token).
    pub prompt_time: Duration,
    /// Generated tokens.
    pub generated_tokens: usize,
    /// Single-token forward passes after the prompt.
    pub decode_steps: usize,
    /// Time spent in those passes (and sampling).
    pub generation_time: Duration,
}

impl GenerateStats {
    /// Prompt tokens per second.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }

    /// Single-token passes per second (the generation speed).
    pub fn generation_tokens_per_second(&self) -> f64 {
        self.decode_steps as f64 / self.generation_time.as_secs_f64().max(1e-9)
    }
}

/// Generates from `prompt`, calling `on_token` with each new token as soon as it is chosen;
/// `on_token` returning `false` stops early.
pub fn generate(
    model: &LlamaModel<'_>,
    prompt: &[u32],
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<GenerateStats, InferError> {
    if prompt.is_empty() {
        return Err(InferError::InvalidArgument {
            name: "prompt",
            reason: "must contain at least one token",
        });
    }
    let n_ctx = opts.n_ctx.unwrap_or(prompt.len() + opts.max_tokens);
    let mut cache = model.new_cache(n_ctx, opts.kv_precision);
    let mut sampler = Sampler::new(opts.sampler);
    let t0 = Instant::now();
    let logits = model.forward(&mut cache, prompt, prompt.len() - 1, None)?;
    let mut next = sampler.sample(&logits);
    let prompt_time = t0.elapsed();
    let t1 = Instant::now();
    let mut generated = 0;
    let mut decode_steps = 0;
    while generated < opts.max_tokens {
        if opts.stop_tokens.contains(&next) {
            break;
        }
        generated += 1;
        if !on_token(next) || generated == opts.max_tokens || cache.len() >= cache.capacity() {
            break;
        }
        let logits = model.forward(&mut cache, &[next], 0, None)?;
        decode_steps += 1;
        next = sampler.sample(&logits);
    }
    Ok(GenerateStats {
        prompt_tokens: prompt.len(),
        prompt_time,
        generated_tokens: generated,
        decode_steps,
        generation_time: t1.elapsed(),
    })
}
