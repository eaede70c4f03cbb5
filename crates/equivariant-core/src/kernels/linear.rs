//! The compute of [`LinearPlan`]: a tensor product with a constant second input of ones
//! (the plan's [`tensor_product`](LinearPlan::tensor_product)), plus the biases of the
//! `0e` outputs.

use crate::o3::LinearPlan;
use crate::o3::tensor_product::TensorProductGradients;
use crate::{Error, Real, Result};

impl LinearPlan {
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
        self.tensor_product()
            .forward(x, &self.ones::<T>(x.len()), weight, out)?;
        let dim = self.irreps_out().dim();
        if !bias.is_empty() && dim > 0 {
            for row in out.chunks_exact_mut(dim) {
                let mut b = bias.iter();
                for &(start, len) in self.bias_blocks() {
                    row[start..start + len]
                        .iter_mut()
                        .zip(b.by_ref())
                        .for_each(|(y, &b)| *y += b);
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
