//! The normal samples of torch's CPU generator, bit for bit: e3nn's `normalize2mom` draws
//! its Monte-Carlo points with `torch.randn(1_000_000, generator=Generator().manual_seed(0),
//! dtype=float64)`, so its constant for a given function is reproduced only from the same
//! points.
//!
//! torch's CPU generator is MT19937 (seeded as `std::mt19937`). A double uniform takes two
//! 32-bit draws, `u = ((hi << 32 | lo) mod 2^53) / 2^53`; a contiguous `randn` of at least
//! 16 values first fills the tensor with uniforms, then maps each block of 16 by Box-Muller,
//! `x[j] = r cos(2 pi u[j + 8])`, `x[j + 8] = r sin(2 pi u[j + 8])`,
//! `r = sqrt(-2 ln(1 - u[j]))`, `j < 8`; when the length is not a multiple of 16 the last 16
//! values are drawn again and mapped (`aten/src/ATen/native/cpu/DistributionTemplates.h`,
//! `normal_fill`).

use crate::{Error, Result};

/// The Mersenne twister MT19937 (32-bit), as torch's `at::mt19937` and `std::mt19937`.
struct Mt19937 {
    state: [u32; 624],
    next: usize,
}

impl Mt19937 {
    fn new(seed: u64) -> Self {
        let mut state = [0u32; 624];
        // torch keeps the low 32 bits of the seed.
        state[0] = seed as u32;
        for j in 1..624 {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 { state, next: 624 }
    }

    fn twist(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.next = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.next == 624 {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// torch's `uniform_real_distribution<double>(0, 1)`: 53 bits of `random64()`.
    fn uniform_f64(&mut self) -> f64 {
        let hi = u64::from(self.next_u32());
        let lo = u64::from(self.next_u32());
        let bits = ((hi << 32) | lo) & ((1u64 << 53) - 1);
        bits as f64 / (1u64 << 53) as f64
    }
}

/// torch's `normal_fill_16`: Box-Muller on a block of 16 uniforms, in place.
fn box_muller_16(block: &mut [f64]) {
    for j in 0..8 {
        let u1 = 1.0 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        block[j] = radius * theta.cos();
        block[j + 8] = radius * theta.sin();
    }
}

/// `torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)` on
/// the CPU: the same `n` standard normal samples (to the last bit, up to the platform's
/// `ln`, `cos` and `sin`).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for `n < 16` (torch draws short tensors one by one, another
/// sequence, not reproduced here).
///
/// ```
/// use equivariant_core::math::torch_randn;
/// let z = torch_randn(0, 1_000)?;
/// assert_eq!(z.len(), 1_000);
/// let mean = z.iter().sum::<f64>() / 1e3;
/// assert!(mean.abs() < 0.2);
/// assert!(torch_randn(0, 3).is_err());
/// # Ok::<(), equivariant_core::Error>(())
/// ```
pub fn torch_randn(seed: u64, n: usize) -> Result<Vec<f64>> {
    if n < 16 {
        return Err(Error::InvalidArgument {
            name: "n",
            reason: format!("{n} samples: only torch's vectorized path (n >= 16) is reproduced"),
        });
    }
    let mut rng = Mt19937::new(seed);
    let mut data: Vec<f64> = (0..n).map(|_| rng.uniform_f64()).collect();
    for block in data.chunks_exact_mut(16) {
        box_muller_16(block);
    }
    if !n.is_multiple_of(16) {
        let tail = &mut data[n - 16..];
        for x in tail.iter_mut() {
            *x = rng.uniform_f64();
        }
        box_muller_16(tail);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first outputs of `std::mt19937` with its default seed 5489 (the C++ standard
    /// fixes the 10000th: 4123659995).
    #[test]
    fn mt19937_matches_the_standard_sequence() {
        let mut rng = Mt19937::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        let tenth_thousandth = (1..10_000).map(|_| rng.next_u32()).last();
        assert_eq!(tenth_thousandth, Some(4_123_659_995));
    }
}
