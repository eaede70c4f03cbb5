//! The compute of [`LinearPlan`]: a tensor product with a constant second input of ones
//! (the plan's [`tensor_product`](LinearPlan::tensor_product)), plus the biases of the
//! `0e` outputs. In `f32` on AVX2, the map and its input gradient run by rows instead
//! (`rows_avx2`), block to block in the rows' own layout.

#[cfg(target_arch = "x86_64")]
mod rows_avx2;

use crate::o3::LinearPlan;
use crate::o3::tensor_product::TensorProductGradients;
use crate::{Error, Real, Result};
#[cfg(target_arch = "x86_64")]
use {
    super::simd::{Avx2Fma, as_f32, as_f32_mut},
    crate::o3::tensor_product::ConnectionMode,
    rayon::prelude::*,
    rows_avx2::BlockMap,
};

/// Rows per parallel task of the row kernel.
#[cfg(target_arch = "x86_64")]
const CHUNK: usize = 64;

/// `dst = start + maps(src)` in parallel tasks of [`CHUNK`] rows (each row alone: the same
/// results for any thread count); `start`: each row's first values (empty: zeros).
#[cfg(target_arch = "x86_64")]
fn run_rows(
    token: Avx2Fma,
    maps: &[BlockMap],
    (src, src_dim): (&[f32], usize),
    (dst, dst_dim): (&mut [f32], usize),
    start: &[f32],
) {
    (dst.par_chunks_mut(CHUNK * dst_dim))
        .zip(src.par_chunks(CHUNK * src_dim))
        .for_each(|(dst, src)| {
            if start.is_empty() {
                dst.fill(0.0);
            } else {
                dst.chunks_exact_mut(dst_dim)
                    .for_each(|row| row.copy_from_slice(start));
            }
            rows_avx2::apply(token, maps, src, src_dim, dst, dst_dim);
        });
}

impl LinearPlan {
    /// The plan's paths as block maps for `weight` (`transposed`: from the output blocks to
    /// the input ones, the input gradient's), where the row kernel takes them: shared
    /// weights, and every path a weighted `uvw` path whose second input is the one scalar
    /// and whose coefficients are diagonal, of an irrep of dimension at most 8 (what
    /// [`LinearPlan::new`] builds, to degree 3).
    #[cfg(target_arch = "x86_64")]
    fn block_maps(&self, weight: &[f32], transposed: bool) -> Option<Vec<BlockMap>> {
        let tp = self.tensor_product();
        if !tp.shared_weights || weight.len() != tp.weight_numel {
            return None;
        }
        let mut maps = Vec::with_capacity(tp.paths.len());
        for p in &tp.paths {
            let d = p.d1;
            let fits = p.mode == ConnectionMode::Uvw
                && p.has_weight
                && (p.d2, p.m2) == (1, 1)
                && p.d3 == d
                && (1..=8).contains(&d)
                && p.forward.idx.len() == d;
            if !fits {
                return None;
            }
            // The coefficients of `(m, 0, m)`, each component's (equal but for rounding).
            let identity = (p.forward.idx.iter().enumerate())
                .all(|(m, &[i, j, k])| [i, j, k] == [m as u16, 0, m as u16]);
            if !identity {
                return None;
            }
            let coef: Vec<f32> = p.forward.coef.iter().map(|&c| c as f32).collect();
            let w = &weight[p.weight_offset..p.weight_offset + p.m1 * p.mo];
            let (input, output) = ((p.in1, p.m1), (p.out, p.mo));
            let (src, dst) = if transposed {
                (output, input)
            } else {
                (input, output)
            };
            maps.push(BlockMap::new(src, dst, &coef, w, transposed));
        }
        Some(maps)
    }

    /// [`forward`](Self::forward)'s map by the row kernel into `out` (overwritten, each row
    /// from `start`: its biases, or empty for none), where it takes the call: `f32`, AVX2,
    /// a plan `block_maps` takes, and lengths that fit. `false` leaves the call to the
    /// tensor product, whose checks name a wrong length.
    fn forward_rows<T: Real>(&self, x: &[T], weight: &[T], start: &[T], out: &mut [T]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let (Some(token), Some(x), Some(weight), Some(start), Some(out)) = (
            Avx2Fma::detect(),
            as_f32(x),
            as_f32(weight),
            as_f32(start),
            as_f32_mut(out),
        ) {
            let (d_in, d_out) = (self.irreps_in().dim(), self.irreps_out().dim());
            if d_in == 0 || d_out == 0 || x.len() % d_in != 0 || out.len() != x.len() / d_in * d_out
            {
                return false;
            }
            let Some(maps) = self.block_maps(weight, false) else {
                return false;
            };
            run_rows(token, &maps, (x, d_in), (out, d_out), start);
            return true;
        }
        let _ = (x, weight, start, out);
        false
    }

    /// The input gradient by the row kernel, as [`Self::forward_rows`] (the transposed
    /// maps, from `grad_out` into `grad_x`, overwritten).
    fn backward_rows<T: Real>(
        &self,
        x: &[T],
        weight: &[T],
        grad_out: &[T],
        grad_x: &mut [T],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let (Some(token), Some(weight), Some(grad_out), Some(grad_x)) = (
            Avx2Fma::detect(),
            as_f32(weight),
            as_f32(grad_out),
            as_f32_mut(grad_x),
        ) {
            let (d_in, d_out) = (self.irreps_in().dim(), self.irreps_out().dim());
            let fits = d_in > 0
                && d_out > 0
                && grad_out.len() % d_out == 0
                && x.len() == grad_out.len() / d_out * d_in
                && grad_x.len() == x.len();
            if !fits {
                return false;
            }
            let Some(maps) = self.block_maps(weight, true) else {
                return false;
            };
            run_rows(token, &maps, (grad_out, d_out), (grad_x, d_in), &[]);
            return true;
        }
        let _ = (x, weight, grad_out, grad_x);
        false
    }

    fn ones<T: Real>(&self, x_len: usize) -> Vec<T> {
        let dim = self.irreps_in().dim();
        let batch = x_len.checked_div(dim).unwrap_or(0);
        vec![T::one(); batch]
    }

    fn check_bias<T>(&self, bias: &[T]) -> Result<()> {
        if bias.len() != self.bias_numel() {
            return Err(Error::ShapeMismatch {
                what: "bias [bias_numel]",
                expected: self.bias_numel(),
                got: bias.len(),
            });
        }
        Ok(())
    }

    /// `out = x W (+ b)`: `x` `[batch, dim_in]`, `weight` `[weight_numel]` or
    /// `[batch, weight_numel]`, `bias` `[bias_numel]`, `out` `[batch, dim_out]`.
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"1x0e".parse()?, &"1x0e".parse()?, true, Default::default(), true)?;
    /// let mut out = [0.0f32; 2];
    /// linear.forward(&[1.0, 2.0], &[3.0], &[0.5], &mut out)?;
    /// assert_eq!(out, [3.5, 6.5]);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, x: &[T], weight: &[T], bias: &[T], out: &mut [T]) -> Result<()> {
        self.check_bias(bias)?;
        let dim = self.irreps_out().dim();
        // The biases of a row, the other outputs zero.
        let mut start = vec![T::zero(); if bias.is_empty() { 0 } else { dim }];
        let mut b = bias.iter();
        for &(at, len) in self.bias_blocks() {
            if let Some(start) = start.get_mut(at..at + len) {
                start.iter_mut().zip(b.by_ref()).for_each(|(y, &b)| *y = b);
            }
        }
        // The row kernel starts each row from its biases; the tensor product's rows get
        // them added.
        if !self.forward_rows(x, weight, &start, out) {
            self.tensor_product()
                .forward(x, &self.ones::<T>(x.len()), weight, out)?;
            if !start.is_empty() {
                for row in out.chunks_exact_mut(dim) {
                    for &(at, len) in self.bias_blocks() {
                        let b = &start[at..at + len];
                        row[at..at + len]
                            .iter_mut()
                            .zip(b)
                            .for_each(|(y, &b)| *y += b);
                    }
                }
            }
        }
        Ok(())
    }

    /// Gradients given `grad_out` (`None` skips one): `x` `[batch, dim_in]`, `weight` as
    /// the weight, `bias` `[bias_numel]` (summed over the batch).
    ///
    /// ```
    /// let linear = equivariant_core::o3::LinearPlan::new(&"1x0e".parse()?, &"1x0e".parse()?, true, Default::default(), true)?;
    /// let (mut gx, mut gw, mut gb) = ([0.0f64; 2], [0.0f64; 1], [0.0f64; 1]);
    /// linear.backward(&[1.0, 2.0], &[3.0], &[1.0, 1.0], Some(&mut gx), Some(&mut gw), Some(&mut gb))?;
    /// assert_eq!((gx, gw, gb), ([3.0, 3.0], [3.0], [2.0]));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(
        &self,
        x: &[T],
        weight: &[T],
        grad_out: &[T],
        grad_x: Option<&mut [T]>,
        grad_weight: Option<&mut [T]>,
        grad_bias: Option<&mut [T]>,
    ) -> Result<()> {
        // The input gradient alone by rows where the row kernel takes it; a weight gradient
        // (training's) by the tensor product, with the input gradient beside it.
        let mut grad_x = grad_x;
        let by_rows = match grad_x.as_deref_mut() {
            Some(gx) if grad_weight.is_none() => self.backward_rows(x, weight, grad_out, gx),
            _ => false,
        };
        if !by_rows {
            let ones = self.ones::<T>(x.len());
            self.tensor_product().backward(
                x,
                &ones,
                weight,
                grad_out,
                TensorProductGradients {
                    x1: grad_x,
                    x2: None,
                    weight: grad_weight,
                },
            )?;
        }
        if let Some(gb) = grad_bias {
            self.check_bias(gb)?;
            gb.fill(T::zero());
            let dim = self.irreps_out().dim();
            if dim > 0 {
                for row in grad_out.chunks_exact(dim) {
                    let mut b = gb.iter_mut();
                    for &(start, len) in self.bias_blocks() {
                        row[start..start + len]
                            .iter()
                            .zip(b.by_ref())
                            .for_each(|(&g, b)| *b += g);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The plans the row kernel takes (every `LinearPlan` to degree 3 with shared weights,
    /// each path a map, both ways) and those it leaves to the tensor product: degree 4
    /// (dimension 9) and per-row weights.
    #[test]
    fn the_row_kernel_takes_the_linear_maps_to_degree_3() {
        let plan = |a: &str, b: &str, shared| {
            let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
            // Per-row weights come without biases (as in e3nn).
            LinearPlan::new(&a, &b, shared, Default::default(), shared).unwrap()
        };
        for (a, b) in [
            ("8x0e+8x1o", "8x0e+8x1o"),
            ("3x0e+8x1o+5x1o+2x3o", "4x0e+3x1o+6x3o"),
            ("5x1o+7x2e+3x3o+1x0e", "3x1o+4x2e+9x3o+2x0e"),
        ] {
            let p = plan(a, b, true);
            let w = vec![0.5f32; p.weight_numel()];
            let paths = p.tensor_product().paths.len();
            for transposed in [false, true] {
                let maps = p.block_maps(&w, transposed);
                assert_eq!(maps.map(|m| m.len()), Some(paths), "{a} -> {b}");
            }
            assert!(p.block_maps(&w[1..], false).is_none(), "a short weight");
        }
        let p = plan("3x4e+2x0e", "2x4e+1x0e", true);
        assert!(
            p.block_maps(&vec![0.5f32; p.weight_numel()], false)
                .is_none()
        );
        let p = plan("8x0e", "8x0e", false);
        assert!(
            p.block_maps(&vec![0.5f32; p.weight_numel()], false)
                .is_none()
        );
    }
}
