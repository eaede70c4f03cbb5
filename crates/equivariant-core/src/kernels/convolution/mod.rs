//! Fused convolution kernels: gather, tensor product and scatter in one pass, so that no
//! per-edge message (`[E, irreps_out.dim]`) and, with [`EdgeWeights::Linear`], no per-edge
//! weight (`[E, weight_numel]`) is ever stored.
//!
//! `out[i] = scale sum_{e : dst[e] = i} x1[src[e]] (x)_{w_e} x2[e]`
//!
//! The forward walks each destination's incoming edges and accumulates the messages in a
//! node-sized buffer; the backward walks each source's outgoing edges, so the gradient of
//! `x1[src]` also accumulates in place. Both are parallel over fixed chunks of nodes and sum
//! in edge order, so results are bit-identical for any number of threads.
//!
//! Per-edge weights from a radial MLP are `w_e = h_e W` (its last, linear layer, `h_e` the
//! hidden activations): [`EdgeWeights::Linear`]. Chosen by measurement (guide, 1000 nodes,
//! 47k edges, 2 threads): recomputing `w_e` per edge into an L1 buffer cost
//! `width x weight_numel` = 6400 multiply-adds per edge, six times the product itself, and
//! ran at 61 ms forward (unfused: 75-92 ms); the factorized kernel of
//! [`linear`] applies `W` once per node instead (see there); [`per_edge`] runs precomputed
//! weights. Where forming `w_e` is cheap (`width x weight_numel <= 512`, a small potential's
//! convolution), [`expanded`] forms them for every edge and runs one batched tensor product
//! instead ([`TensorProductPlan::conv_expands`] chooses). A `uvu` product of 16 channels
//! or more runs its forward with the channels in the vector lanes instead
//! ([`TensorProductPlan::conv_channels`]), and its backward too where its harmonics go to
//! degree 1 at most ([`TensorProductPlan::conv_channels_backward`]).
//!
//! Where the caller has the radial MLP's weights and the edge embedding rather than its
//! hidden activations, [`radial`] forms each edge's weights inside the convolution, the
//! whole chain sixteen edges at a time in the vector lanes
//! ([`TensorProductPlan::conv_forward_radial`]): what a small potential's MD step runs.

mod expanded;
mod linear;
mod per_edge;
mod radial;

use crate::error::check_len as mismatch;
use crate::graph::EdgeIndex;
use crate::o3::tensor_product::{
    ConvGradients, ConvTangentGradients, ConvTangentInputs, EdgeWeights, TensorProductPlan,
};
use crate::{Error, Real, Result};
use linear::{LinearConv, LinearConvGradients, TangentConv};

/// Shapes of a fused convolution call.
/// A convolution's weights as its kernel takes them.
enum Weights<'a, T> {
    /// `[E, weight_numel]`, for the per-edge kernel.
    PerEdge(&'a [T]),
    /// Every argument of the factorized kernel.
    Linear(LinearConv<'a, T>),
}

struct ConvShape {
    n: usize,
    e: usize,
    d1: usize,
    d2: usize,
    d_out: usize,
    numel: usize,
    /// MLP width for [`EdgeWeights::Linear`], 0 otherwise.
    width: usize,
}

impl TensorProductPlan {
    /// Checks a convolution's node features `x1` (`[N, irreps_in1.dim]`), edge inputs `x2`
    /// (`[E, irreps_in2.dim]`) and output (or output gradient) length (`[N,
    /// irreps_out.dim]`) against `edges`: `[N, E, d1, d2, d_out]`. Every fused convolution's
    /// check starts here.
    pub(super) fn conv_io_shape<T>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        out_len: usize,
    ) -> Result<[usize; 5]> {
        let (n, e) = (edges.num_nodes(), edges.num_edges());
        let (d1, d2, d_out) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        );
        mismatch("x1 [N, irreps_in1.dim]", n * d1, x1.len())?;
        mismatch("x2 [E, irreps_in2.dim]", e * d2, x2.len())?;
        mismatch("out [N, irreps_out.dim]", n * d_out, out_len)?;
        Ok([n, e, d1, d2, d_out])
    }

    /// Checks the arguments of a convolution call: their shapes, and the weights as the
    /// kernel that runs them takes them.
    fn conv_shape<'a, T>(
        &self,
        edges: &'a EdgeIndex,
        x1: &'a [T],
        x2: &'a [T],
        weights: EdgeWeights<'a, T>,
        scale: T,
        out_len: usize,
    ) -> Result<(ConvShape, Weights<'a, T>)> {
        if self.shared_weights {
            return Err(Error::InvalidArgument {
                name: "shared_weights",
                reason: "a fused convolution takes per-edge weights (shared_weights = false)"
                    .into(),
            });
        }
        let [n, e, d1, d2, d_out] = self.conv_io_shape(edges, x1, x2, out_len)?;
        let numel = self.weight_numel;
        let (width, weights) = match weights {
            EdgeWeights::PerEdge(w) => {
                mismatch("weights [E, weight_numel]", e * numel, w.len())?;
                (0, Weights::PerEdge(w))
            }
            EdgeWeights::Linear { hidden, linear } => {
                let width = linear.len().checked_div(numel).unwrap_or(0);
                mismatch("linear [width, weight_numel]", width * numel, linear.len())?;
                mismatch("hidden [E, width]", e * width, hidden.len())?;
                let a = LinearConv {
                    edges,
                    x1,
                    x2,
                    hidden,
                    linear,
                    width,
                    scale,
                };
                (width, Weights::Linear(a))
            }
        };
        let shape = ConvShape {
            n,
            e,
            d1,
            d2,
            d_out,
            numel,
            width,
        };
        Ok((shape, weights))
    }

    /// [`conv_forward`](TensorProductPlan::conv_forward)'s body: the shapes checked, then the
    /// per-edge kernel, or for weights from a linear layer the one its plan chooses.
    pub(super) fn conv_forward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        out: &mut [T],
    ) -> Result<()> {
        let (sh, weights) = self.conv_shape(edges, x1, x2, weights, scale, out.len())?;
        if sh.n == 0 || sh.d_out == 0 {
            return Ok(());
        }
        match weights {
            Weights::PerEdge(w) => self.conv_forward_per_edge(edges, x1, x2, w, scale, out),
            Weights::Linear(a) if self.conv_channels() => self.conv_forward_channels(&a, out),
            Weights::Linear(a) if self.conv_expands(a.width) => {
                self.conv_forward_expanded(&a, out)?
            }
            Weights::Linear(a) => self.conv_forward_linear(&a, out),
        }
        Ok(())
    }

    /// [`conv_backward`](TensorProductPlan::conv_backward)'s body: the shapes checked, then
    /// the per-edge kernel, or for weights from a linear layer the one its plan chooses.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_backward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        x1: &[T],
        x2: &[T],
        weights: EdgeWeights<'_, T>,
        scale: T,
        grad_out: &[T],
        grads: ConvGradients<'_, T>,
    ) -> Result<()> {
        let (sh, weights) = self.conv_shape(edges, x1, x2, weights, scale, grad_out.len())?;
        let ConvGradients {
            x1: g1,
            x2: g2,
            weight: gw,
            linear: glin,
        } = grads;
        let linear = matches!(weights, Weights::Linear(_));
        if let Some(g) = &g1 {
            mismatch("grad x1 [N, irreps_in1.dim]", sh.n * sh.d1, g.len())?;
        }
        if let Some(g) = &g2 {
            mismatch("grad x2 [E, irreps_in2.dim]", sh.e * sh.d2, g.len())?;
        }
        let gw_width = if linear { sh.width } else { sh.numel };
        if let Some(g) = &gw {
            mismatch("grad weight (the weights' shape)", sh.e * gw_width, g.len())?;
        }
        match (&glin, linear) {
            (Some(g), true) => mismatch(
                "grad linear [width, weight_numel]",
                sh.width * sh.numel,
                g.len(),
            )?,
            (Some(_), false) => {
                return Err(Error::InvalidArgument {
                    name: "grads.linear",
                    reason: "only EdgeWeights::Linear has a linear matrix".into(),
                });
            }
            _ => {}
        }
        match weights {
            Weights::PerEdge(w) => {
                self.conv_backward_per_edge(edges, (x1, x2, w), scale, grad_out, g1, g2, gw)
            }
            Weights::Linear(a) => {
                let grads = LinearConvGradients {
                    x1: g1,
                    x2: g2,
                    hidden: gw,
                    linear: glin,
                };
                if self.conv_channels_backward() {
                    self.conv_backward_channels(&a, grad_out, grads);
                } else if self.conv_expands(a.width) {
                    self.conv_backward_expanded(&a, grad_out, grads)?;
                } else {
                    self.conv_backward_linear(&a, grad_out, grads);
                }
            }
        }
        Ok(())
    }

    /// Checks a tangent convolution's arguments: the convolution's shapes, and each tangent
    /// as long as its input.
    fn tangent_args<'a, T>(
        &self,
        edges: &'a EdgeIndex,
        inputs: ConvTangentInputs<'a, T>,
        scale: T,
        out_len: usize,
    ) -> Result<(ConvShape, TangentConv<'a, T>)> {
        let ConvTangentInputs {
            x1,
            dx1,
            x2,
            dx2,
            hidden,
            dhidden,
            linear,
        } = inputs;
        let weights = EdgeWeights::Linear { hidden, linear };
        let (sh, weights) = self.conv_shape(edges, x1, x2, weights, scale, out_len)?;
        let Weights::Linear(a) = weights else {
            unreachable!("EdgeWeights::Linear checks as Weights::Linear")
        };
        for (what, tangent, len) in [
            ("dx1 (as x1)", dx1, x1.len()),
            ("dx2 (as x2)", dx2, x2.len()),
            ("dhidden (as hidden)", dhidden, hidden.len()),
        ] {
            if let Some(t) = tangent {
                mismatch(what, len, t.len())?;
            }
        }
        let tc = TangentConv {
            a,
            dx1,
            dx2,
            dhidden,
        };
        Ok((sh, tc))
    }

    /// [`conv_tangent_forward`](TensorProductPlan::conv_tangent_forward)'s body.
    pub(super) fn conv_tangent_forward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        inputs: ConvTangentInputs<'_, T>,
        scale: T,
        out: &mut [T],
        d_out: &mut [T],
        sums: Option<&mut [T]>,
    ) -> Result<()> {
        let (sh, tc) = self.tangent_args(edges, inputs, scale, out.len())?;
        mismatch("d_out [N, irreps_out.dim]", out.len(), d_out.len())?;
        if let Some(sums) = &sums {
            let len = self.tangent_sums_len(sh.n, sh.width);
            mismatch("sums (conv_tangent_sums_len)", len, sums.len())?;
        }
        if sh.n == 0 || sh.d_out == 0 {
            return Ok(());
        }
        if self.conv_tangent_expands(sh.width) {
            return self.conv_tangent_forward_expanded(&tc, (out, d_out));
        }
        self.conv_tangent_forward_linear(&tc, (out, d_out), sums);
        Ok(())
    }

    /// [`conv_tangent_backward`](TensorProductPlan::conv_tangent_backward)'s body.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_tangent_backward_kernel<T: Real>(
        &self,
        edges: &EdgeIndex,
        inputs: ConvTangentInputs<'_, T>,
        scale: T,
        grad_out: &[T],
        grad_d_out: &[T],
        sums: Option<&[T]>,
        grads: ConvTangentGradients<'_, T>,
    ) -> Result<()> {
        let (sh, tc) = self.tangent_args(edges, inputs, scale, grad_out.len())?;
        mismatch(
            "grad_d_out [N, irreps_out.dim]",
            grad_out.len(),
            grad_d_out.len(),
        )?;
        if let Some(sums) = sums {
            let len = self.tangent_sums_len(sh.n, sh.width);
            mismatch("sums (conv_tangent_sums_len)", len, sums.len())?;
        }
        let (n1, e2) = (sh.n * sh.d1, sh.e * sh.d2);
        let (eh, wl) = (sh.e * sh.width, sh.width * sh.numel);
        let (m1, m2, mh) = (tc.dx1.is_some(), tc.dx2.is_some(), tc.dhidden.is_some());
        let checks: [(&'static str, Option<&[T]>, bool, usize); 7] = [
            ("grad x1 [N, irreps_in1.dim]", grads.x1.as_deref(), true, n1),
            ("grad dx1 [N, irreps_in1.dim]", grads.dx1.as_deref(), m1, n1),
            ("grad x2 [E, irreps_in2.dim]", grads.x2.as_deref(), true, e2),
            ("grad dx2 [E, irreps_in2.dim]", grads.dx2.as_deref(), m2, e2),
            ("grad hidden [E, width]", grads.hidden.as_deref(), true, eh),
            ("grad dhidden [E, width]", grads.dhidden.as_deref(), mh, eh),
            (
                "grad linear [width, weight_numel]",
                grads.linear.as_deref(),
                true,
                wl,
            ),
        ];
        for (what, grad, allowed, len) in checks {
            let Some(grad) = grad else { continue };
            if !allowed {
                return Err(Error::InvalidArgument {
                    name: what,
                    reason: "a gradient of a tangent that is None (a constant input)".into(),
                });
            }
            mismatch(what, len, grad.len())?;
        }
        if sh.n == 0 || sh.d_out == 0 {
            // No output: every requested gradient is zero.
            let ConvTangentGradients {
                x1,
                dx1,
                x2,
                dx2,
                hidden,
                dhidden,
                linear,
            } = grads;
            for g in [x1, dx1, x2, dx2, hidden, dhidden, linear]
                .into_iter()
                .flatten()
            {
                g.fill(T::zero());
            }
            return Ok(());
        }
        if self.conv_tangent_expands(sh.width) {
            return self.conv_tangent_backward_expanded(&tc, (grad_out, grad_d_out), grads);
        }
        self.conv_tangent_backward_linear(&tc, (grad_out, grad_d_out), sums, grads);
        Ok(())
    }
}
