//! The radial embedding of edge vectors fused with the first layer of a radial MLP:
//!
//! `h[e, k] = c act(s sum_b B_b(|v_e|) W[b, k])`
//!
//! with `B_b = basis_scale f_b` a [`SoftOneHotLinspace`] basis (the guide's
//! `soft_one_hot_linspace(|v|, ...) * sqrt(num_basis)`), `W` `[num_basis, width]` the layer's
//! weight, `s` its scale (e3nn's `1 / sqrt(fan_in)`), and an optional activation `act` with
//! its output factor `c` (the `normalize2mom` constant). It is e3nn's
//! `FullyConnectedNet` first layer applied to the guide's `edge_length_embedded`, in one pass
//! over the edges: neither the `[E, num_basis]` embedding nor the `[E, width]`
//! pre-activation is stored, and only the basis functions that are nonzero at `|v_e|` (two of
//! ten for `smooth_finite` at the guide's settings) touch `W`.

use rayon::prelude::*;

use super::{ActivationFunction, SoftOneHotLinspace};
use crate::{Error, Real, Result};

/// Edges per parallel task (fixed: the weight gradient sums in a fixed order).
const EDGE_CHUNK: usize = 1024;

/// The fused radial embedding and first MLP layer (see the module docs).
///
/// ```
/// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
/// let basis = SoftOneHotLinspace::new(0.0, 2.0, 3, Basis::Gaussian, false)?;
/// let layer = RadialLayer::new(basis, 1.0, 1.0, None);
/// // One edge of length 1, a [3, 1] weight of ones: the sum of the three basis values.
/// let mut h = [0.0f64];
/// layer.forward(&[0.0, 1.0, 0.0], &[1.0, 1.0, 1.0], &mut h)?;
/// assert!(h[0] > 1.0);
/// # Ok::<(), equivariant_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RadialLayer {
    basis: SoftOneHotLinspace,
    basis_scale: f64,
    weight_scale: f64,
    activation: Option<(ActivationFunction, f64)>,
}

/// Shapes of one call: edges and layer width.
struct Shape {
    edges: usize,
    width: usize,
}

impl RadialLayer {
    /// `h = c act(weight_scale * (basis_scale basis(|v|)) W)`, with `activation` the pair
    /// `(act, c)` or `None` for a linear layer.
    ///
    /// ```
    /// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, true)?;
    /// let relu = ActivationFunction::Relu;
    /// let layer = RadialLayer::new(basis, 10f64.sqrt(), 1.0 / 10f64.sqrt(), Some((relu, relu.normalize2mom_constant())));
    /// assert_eq!(layer.num_basis(), 10);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn new(
        basis: SoftOneHotLinspace,
        basis_scale: f64,
        weight_scale: f64,
        activation: Option<(ActivationFunction, f64)>,
    ) -> Self {
        RadialLayer {
            basis,
            basis_scale,
            weight_scale,
            activation,
        }
    }

    /// The basis `f`.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis.clone(), 1.0, 1.0, None).basis(), &basis);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn basis(&self) -> &SoftOneHotLinspace {
        &self.basis
    }

    /// The factor on the basis values (`sqrt(num_basis)` in the guide).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 2.0, 0.5, None).basis_scale(), 2.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn basis_scale(&self) -> f64 {
        self.basis_scale
    }

    /// The factor on `W` (`1 / sqrt(fan_in)`).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 2.0, 0.5, None).weight_scale(), 0.5);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn weight_scale(&self) -> f64 {
        self.weight_scale
    }

    /// The activation and its output factor, `None` for a linear layer.
    ///
    /// ```
    /// use equivariant_core::math::{ActivationFunction, Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// let layer = RadialLayer::new(basis, 1.0, 1.0, Some((ActivationFunction::Silu, 1.5)));
    /// assert_eq!(layer.activation(), Some((ActivationFunction::Silu, 1.5)));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn activation(&self) -> Option<(ActivationFunction, f64)> {
        self.activation
    }

    /// The number of basis functions (the rows of `W`).
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let basis = SoftOneHotLinspace::new(0.0, 1.0, 4, Basis::Cosine, true)?;
    /// assert_eq!(RadialLayer::new(basis, 1.0, 1.0, None).num_basis(), 4);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn num_basis(&self) -> usize {
        self.basis.number()
    }

    fn shape(
        &self,
        vectors: usize,
        weight: usize,
        what: &'static str,
        out: usize,
    ) -> Result<Shape> {
        let nb = self.num_basis();
        if !vectors.is_multiple_of(3) {
            return Err(Error::ShapeMismatch {
                what: "vectors [E, 3]",
                expected: vectors / 3 * 3,
                got: vectors,
            });
        }
        let (edges, width) = (vectors / 3, weight / nb);
        if weight != nb * width {
            return Err(Error::ShapeMismatch {
                what: "weight [num_basis, width]",
                expected: nb * width,
                got: weight,
            });
        }
        if out != edges * width {
            return Err(Error::ShapeMismatch {
                what,
                expected: edges * width,
                got: out,
            });
        }
        Ok(Shape { edges, width })
    }

    /// `h` `[E, width]` from the edge vectors `[E, 3]` and `W` `[num_basis, width]`.
    ///
    /// Errors: [`Error::ShapeMismatch`] for inconsistent lengths; the basis's error for a
    /// NaN or infinite vector.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let layer = RadialLayer::new(SoftOneHotLinspace::new(0.0, 1.0, 2, Basis::Cosine, true)?, 1.0, 1.0, None);
    /// let mut h = [0.0f32; 2];
    /// assert!(layer.forward(&[0.0, 0.0, f32::NAN], &[1.0, 1.0], &mut h[..1]).is_err());
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward<T: Real>(&self, vectors: &[T], weight: &[T], out: &mut [T]) -> Result<()> {
        let sh = self.shape(vectors.len(), weight.len(), "out [E, width]", out.len())?;
        if sh.width == 0 {
            return Ok(());
        }
        let nb = self.num_basis();
        let scale = T::from_f64(self.basis_scale * self.weight_scale);
        out.par_chunks_mut(EDGE_CHUNK * sh.width)
            .zip(vectors.par_chunks(EDGE_CHUNK * 3))
            .try_for_each(|(out, v)| -> Result<()> {
                let lens: Vec<T> = v.chunks_exact(3).map(length).collect();
                let mut b = vec![T::zero(); lens.len() * nb];
                self.basis.compute(&lens, &mut b)?;
                for ((h, b), &len) in out
                    .chunks_exact_mut(sh.width)
                    .zip(b.chunks_exact(nb))
                    .zip(&lens)
                {
                    pre_activation(b, self.basis.support(len.to_f64()), weight, scale, h);
                    if let Some((act, c)) = self.activation {
                        let c = T::from_f64(c);
                        h.iter_mut().for_each(|y| *y = c * act.apply(*y));
                    }
                }
                Ok(())
            })
    }

    /// The gradients with respect to the vectors (`[E, 3]`) and `W` (`[num_basis, width]`)
    /// given `grad_out` `[E, width]`; `None` skips one. Buffers are overwritten. A vector of
    /// length zero gets gradient zero (as torch's `norm`).
    ///
    /// Errors: as [`forward`](RadialLayer::forward), and [`Error::ShapeMismatch`] for a
    /// gradient buffer of the wrong length.
    ///
    /// ```
    /// use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    /// let layer = RadialLayer::new(SoftOneHotLinspace::new(0.0, 2.0, 2, Basis::Gaussian, false)?, 1.0, 1.0, None);
    /// let (mut gv, mut gw) = ([0.0f64; 3], [0.0f64; 2]);
    /// layer.backward(&[0.0, 0.0, 0.5], &[1.0, 1.0], &[1.0], Some(&mut gv), Some(&mut gw))?;
    /// assert!(gv[0] == 0.0 && gv[2] != 0.0);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn backward<T: Real>(
        &self,
        vectors: &[T],
        weight: &[T],
        grad_out: &[T],
        grad_vectors: Option<&mut [T]>,
        grad_weight: Option<&mut [T]>,
    ) -> Result<()> {
        let sh = self.shape(
            vectors.len(),
            weight.len(),
            "grad_out [E, width]",
            grad_out.len(),
        )?;
        let nb = self.num_basis();
        if let Some(g) = &grad_vectors
            && g.len() != vectors.len()
        {
            return Err(Error::ShapeMismatch {
                what: "grad_vectors [E, 3]",
                expected: vectors.len(),
                got: g.len(),
            });
        }
        if let Some(g) = &grad_weight
            && g.len() != weight.len()
        {
            return Err(Error::ShapeMismatch {
                what: "grad_weight [num_basis, width]",
                expected: weight.len(),
                got: g.len(),
            });
        }
        let (w, scale) = (sh.width, T::from_f64(self.basis_scale * self.weight_scale));
        let want_weight = grad_weight.is_some();
        let chunks = sh.edges.div_ceil(EDGE_CHUNK);
        let mut gv_chunks: Vec<Option<&mut [T]>> = match grad_vectors {
            Some(g) => g.chunks_mut(EDGE_CHUNK * 3).map(Some).collect(),
            None => Vec::new(),
        };
        gv_chunks.resize_with(chunks, || None);
        let partials: Vec<Vec<T>> = gv_chunks
            .into_par_iter()
            .enumerate()
            .map(|(chunk, gv)| -> Result<Vec<T>> {
                let edges = chunk * EDGE_CHUNK..((chunk + 1) * EDGE_CHUNK).min(sh.edges);
                let v = &vectors[edges.start * 3..edges.end * 3];
                let go = &grad_out[edges.start * w..edges.end * w];
                let lens: Vec<T> = v.chunks_exact(3).map(length).collect();
                let (mut b, mut db) = (
                    vec![T::zero(); lens.len() * nb],
                    vec![T::zero(); lens.len() * nb],
                );
                self.basis.compute_with_derivative(&lens, &mut b, &mut db)?;
                let mut partial = vec![T::zero(); if want_weight { nb * w } else { 0 }];
                let mut gv = gv;
                let mut dpre = vec![T::zero(); w];
                for (n, &len) in lens.iter().enumerate() {
                    let (b, db) = (&b[n * nb..(n + 1) * nb], &db[n * nb..(n + 1) * nb]);
                    let go = &go[n * w..(n + 1) * w];
                    let support = self.basis.support(len.to_f64());
                    match self.activation {
                        Some((act, c)) => {
                            pre_activation(b, support.clone(), weight, scale, &mut dpre);
                            let c = T::from_f64(c);
                            for (d, &g) in dpre.iter_mut().zip(go) {
                                *d = g * c * act.derivative(*d);
                            }
                        }
                        None => dpre.copy_from_slice(go),
                    }
                    if want_weight {
                        for k in support.clone() {
                            let row = &mut partial[k * w..(k + 1) * w];
                            let sb = scale * b[k];
                            row.iter_mut().zip(&dpre).for_each(|(y, &d)| *y += sb * d);
                        }
                    }
                    if let Some(gv) = gv.as_deref_mut() {
                        // dL/d|v| = sum_k s f_k'(|v|) (W[k] . dpre), then along v / |v|.
                        let mut dlen = T::zero();
                        for k in support {
                            let dot = weight[k * w..(k + 1) * w]
                                .iter()
                                .zip(&dpre)
                                .fold(T::zero(), |s, (&x, &y)| s + x * y);
                            dlen += scale * db[k] * dot;
                        }
                        let row = &mut gv[n * 3..(n + 1) * 3];
                        let vn = &v[n * 3..(n + 1) * 3];
                        for (g, &x) in row.iter_mut().zip(vn) {
                            *g = if len > T::zero() {
                                dlen * x / len
                            } else {
                                T::zero()
                            };
                        }
                    }
                }
                Ok(partial)
            })
            .collect::<Result<_>>()?;
        if let Some(gw) = grad_weight {
            gw.fill(T::zero());
            for p in partials {
                gw.iter_mut().zip(p).for_each(|(y, x)| *y += x);
            }
        }
        Ok(())
    }
}

/// `|v|` of one vector.
pub(super) fn length<T: Real>(v: &[T]) -> T {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// `h = scale sum_k b[k] W[k]` over the basis functions that may be nonzero (`support`).
fn pre_activation<T: Real>(
    b: &[T],
    support: std::ops::Range<usize>,
    weight: &[T],
    scale: T,
    h: &mut [T],
) {
    let w = h.len();
    h.fill(T::zero());
    for k in support {
        let sb = scale * b[k];
        h.iter_mut()
            .zip(&weight[k * w..(k + 1) * w])
            .for_each(|(y, &x)| *y += sb * x);
    }
}
