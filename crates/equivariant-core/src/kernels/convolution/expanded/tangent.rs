//! The tangent convolution run expanded, for the small products the plain convolution
//! expands ([`TensorProductPlan::conv_expands`]): per chunk of nodes, every edge's weights
//! and their tangent (`W = H L`, `dW = dH L`), its inputs and their tangents gathered, and
//! the product rule on the trilinear product `t(x1, x2, W)` as batched tensor products,
//!
//! `out_e = t(x1, x2, W)`, `d out_e = t(dx1, x2, W) + t(x1, dx2, W) + t(x1, x2, dW)`
//!
//! (the term of a constant input skipped), summed per destination in edge order and scaled.
//! The backward takes the chunks by destination, as the expanded backward does: given `g =
//! dL/d out` and `dg = dL/d(d out)` repeated per edge, the backward of `t(x1, x2, W)` along `g`
//! and of each tangent term along `dg`, added per input; `dL/dH = dL/dW L^T`, `dL/d(dH) =
//! dL/d(dW) L^T` and `dL/dL = H^T dL/dW + dH^T dL/d(dW)`; the `x1` and `dx1` rows summed
//! per source at the end.
//!
//! The factorized tangent kernel ([`linear`](super::super::linear)) shares one gather and
//! one set of pair products among the terms, but for a potential of 8 channels (a radial
//! MLP of 16, 256 weight multiply-adds per edge) its per-node setup outweighs the products,
//! as in the plain convolution.

use super::*;
use crate::kernels::convolution::linear::TangentConv;
use crate::o3::tensor_product::ConvTangentGradients;

/// A task's buffers: the values' and the tangents' gathered rows (`at`, `along`), the
/// per-edge gradients of `x1` and `dx1` (`[m, d1]`), `x2` and `dx2` (`[m, d2]`), `W` and `dW`
/// (`[m, weight_numel]`), and one term's gradients of each before they are added
/// (`term1`, `term2`, `termw`).
struct TangentWork<T> {
    at: Work<T>,
    along: Work<T>,
    g1: Vec<T>,
    gd1: Vec<T>,
    g2: Vec<T>,
    gd2: Vec<T>,
    gw: Vec<T>,
    gdw: Vec<T>,
    term1: Vec<T>,
    term2: Vec<T>,
    termw: Vec<T>,
}

impl<T: Real> Default for TangentWork<T> {
    fn default() -> Self {
        TangentWork {
            at: Work::default(),
            along: Work::default(),
            g1: Vec::new(),
            gd1: Vec::new(),
            g2: Vec::new(),
            gd2: Vec::new(),
            gw: Vec::new(),
            gdw: Vec::new(),
            term1: Vec::new(),
            term2: Vec::new(),
            termw: Vec::new(),
        }
    }
}

/// `y += x`.
fn add<T: Real>(y: &mut [T], x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y += x);
}

impl TensorProductPlan {
    /// The tangent convolution's forward, expanded (see the module docs): `out` and `d_out`
    /// (`[N, irreps_out.dim]`) overwritten.
    pub(in crate::kernels::convolution) fn conv_tangent_forward_expanded<T: Real>(
        &self,
        tc: &TangentConv<'_, T>,
        (out, d_out): (&mut [T], &mut [T]),
    ) -> Result<()> {
        let (a, along) = (&tc.a, tc.tangents());
        let moving = [tc.dx1.is_some(), tc.dx2.is_some(), tc.dhidden.is_some()];
        let dim = self.irreps_out.dim();
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        out.par_chunks_mut(NODE_CHUNK * dim)
            .zip(d_out.par_chunks_mut(NODE_CHUNK * dim))
            .enumerate()
            .try_for_each_init(
                Reused::<TangentWork<T>>::take,
                |work, (chunk, (out, d_out))| {
                    let TangentWork {
                        at, along: tw, g1, ..
                    } = &mut **work;
                    let first = chunk * NODE_CHUNK;
                    let nodes = first..first + out.len() / dim;
                    edges_into(&mut at.edges, nodes.clone(), a.edges);
                    self.gather_edges(a, at);
                    tw.edges.clone_from(&at.edges);
                    self.gather_edges(&along, tw);
                    let m = at.edges.len();
                    resize(&mut at.out, m * dim);
                    resize(&mut tw.out, m * dim);
                    tw.out.fill(T::zero());
                    if m > 0 {
                        let product = &mut at.product;
                        self.forward_serial(
                            &coefs,
                            &at.x1,
                            &at.x2,
                            &at.w,
                            &mut at.out,
                            product,
                            isa,
                        )?;
                        // The terms one at a time into `g1` (a buffer of this task), added.
                        let terms = [
                            (&tw.x1, &at.x2, &at.w),
                            (&at.x1, &tw.x2, &at.w),
                            (&at.x1, &at.x2, &tw.w),
                        ];
                        resize(g1, m * dim);
                        for ((x1, x2, w), _) in terms.into_iter().zip(moving).filter(|(_, on)| *on)
                        {
                            self.forward_serial(&coefs, x1, x2, w, g1, product, isa)?;
                            add(&mut tw.out, g1);
                        }
                    }
                    let (mut rows, mut d_rows) =
                        (at.out.chunks_exact(dim), tw.out.chunks_exact(dim));
                    for (i, (acc, d_acc)) in
                        nodes.zip(out.chunks_exact_mut(dim).zip(d_out.chunks_exact_mut(dim)))
                    {
                        acc.fill(T::zero());
                        d_acc.fill(T::zero());
                        let edges = a.edges.by_dst(i).len();
                        for (m, dm) in rows.by_ref().zip(d_rows.by_ref()).take(edges) {
                            add(acc, m);
                            add(d_acc, dm);
                        }
                        acc.iter_mut()
                            .chain(d_acc.iter_mut())
                            .for_each(|y| *y *= a.scale);
                    }
                    Ok(())
                },
            )
    }

    /// The tangent convolution's backward, expanded (see the module docs): each requested
    /// gradient overwritten.
    pub(in crate::kernels::convolution) fn conv_tangent_backward_expanded<T: Real>(
        &self,
        tc: &TangentConv<'_, T>,
        (grad_out, grad_d_out): (&[T], &[T]),
        grads: ConvTangentGradients<'_, T>,
    ) -> Result<()> {
        let ConvTangentGradients {
            x1: g1_out,
            dx1: gd1_out,
            x2: g2_out,
            dx2: gd2_out,
            hidden: gh_out,
            dhidden: gdh_out,
            linear: glin,
        } = grads;
        let (a, along) = (&tc.a, tc.tangents());
        let [on1, on2, onh] = [tc.dx1.is_some(), tc.dx2.is_some(), tc.dhidden.is_some()];
        let (d1, d2, dim) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        );
        let (n, numel, width) = (a.edges.num_nodes(), self.weight_numel, a.width);
        let lt = transposed(a.linear, width, numel);
        let (want1, want_d1) = (g1_out.is_some(), gd1_out.is_some());
        let (want2, want_d2) = (g2_out.is_some(), gd2_out.is_some());
        let want_w = gh_out.is_some() || glin.is_some();
        let want_dw = onh && (gdh_out.is_some() || glin.is_some());
        // Per-edge rows of the x1 gradients, summed per source at the end (as in
        // `conv_backward_expanded`).
        let e = a.edges.num_edges();
        let (mut g1_edges, mut gd1_edges) = (edge_rows(want1, e, d1), edge_rows(want_d1, e, d1));
        let g1e = EdgeRows::new(want1.then_some(&mut g1_edges[..]));
        let gd1e = EdgeRows::new(want_d1.then_some(&mut gd1_edges[..]));
        let (g2_out, gd2_out) = (EdgeRows::new(g2_out), EdgeRows::new(gd2_out));
        let (gh_out, gdh_out) = (EdgeRows::new(gh_out), EdgeRows::new(gdh_out));
        let (coefs, isa) = (self.coefficients::<T>(), Simd::detect());
        let failed = Mutex::new(None::<Error>);
        let sum = backward_chunks(
            n,
            glin.is_some().then_some(width * numel),
            |work: &mut TangentWork<T>, (first, count), dlin| {
                let TangentWork {
                    at,
                    along: tw,
                    g1,
                    gd1,
                    g2,
                    gd2,
                    gw,
                    gdw,
                    term1,
                    term2,
                    termw,
                } = work;
                let nodes = first..first + count;
                edges_into(&mut at.edges, nodes.clone(), a.edges);
                self.gather_edges(a, at);
                tw.edges.clone_from(&at.edges);
                self.gather_edges(&along, tw);
                let m = at.edges.len();
                // `g` and `dg` of each edge's destination, scaled, in `at.out` and `tw.out`.
                destination_rows(&mut at.out, grad_out, nodes.clone(), a, dim);
                destination_rows(&mut tw.out, grad_d_out, nodes, a, dim);
                for (buf, on, len) in [
                    (&mut *g1, want1, m * d1),
                    (&mut *gd1, want_d1, m * d1),
                    (&mut *g2, want2, m * d2),
                    (&mut *gd2, want_d2, m * d2),
                    (&mut *gw, want_w, m * numel),
                    (&mut *gdw, want_dw, m * numel),
                    (&mut *term1, want1 || want_d1, m * d1),
                    (&mut *term2, want2 || want_d2, m * d2),
                    (&mut *termw, want_w, m * numel),
                ] {
                    resize(buf, if on { len } else { 0 });
                }
                // Each product's backward; a term's gradients of inputs shared with the
                // first term go through `term*` and are added.
                let mut products = || -> Result<()> {
                    if m == 0 {
                        return Ok(());
                    }
                    let product = &mut at.product;
                    // t(x1, x2, W) along g: the first term, written.
                    let grads = TensorProductGradients {
                        x1: want1.then_some(&mut g1[..]),
                        x2: want2.then_some(&mut g2[..]),
                        weight: want_w.then_some(&mut gw[..]),
                    };
                    self.backward_serial(
                        &coefs, &at.x1, &at.x2, &at.w, &at.out, grads, product, isa,
                    )?;
                    // t(dx1, x2, W) along dg: to dx1, x2 and W.
                    if on1 {
                        let grads = TensorProductGradients {
                            x1: want_d1.then_some(&mut gd1[..]),
                            x2: want2.then_some(&mut term2[..]),
                            weight: want_w.then_some(&mut termw[..]),
                        };
                        self.backward_serial(
                            &coefs, &tw.x1, &at.x2, &at.w, &tw.out, grads, product, isa,
                        )?;
                        add(g2, term2);
                        add(gw, termw);
                    }
                    // t(x1, dx2, W) along dg: to x1, dx2 and W.
                    if on2 {
                        let grads = TensorProductGradients {
                            x1: want1.then_some(&mut term1[..]),
                            x2: want_d2.then_some(&mut gd2[..]),
                            weight: want_w.then_some(&mut termw[..]),
                        };
                        self.backward_serial(
                            &coefs, &at.x1, &tw.x2, &at.w, &tw.out, grads, product, isa,
                        )?;
                        add(g1, term1);
                        add(gw, termw);
                    }
                    // t(x1, x2, dW) along dg: to x1, x2 and dW.
                    if onh {
                        let grads = TensorProductGradients {
                            x1: want1.then_some(&mut term1[..]),
                            x2: want2.then_some(&mut term2[..]),
                            weight: want_dw.then_some(&mut gdw[..]),
                        };
                        self.backward_serial(
                            &coefs, &at.x1, &at.x2, &tw.w, &tw.out, grads, product, isa,
                        )?;
                        add(g1, term1);
                        add(g2, term2);
                    }
                    Ok(())
                };
                if let Err(e) = products() {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return;
                }
                // SAFETY: the edges into the chunk's nodes are this task's alone.
                unsafe {
                    for (out, rows) in [
                        (&g1e, &*g1),
                        (&gd1e, &*gd1),
                        (&g2_out, &*g2),
                        (&gd2_out, &*gd2),
                    ] {
                        if let Some(out) = out {
                            write_rows(out, &at.edges, rows);
                        }
                    }
                    for (out, gw) in [(&gh_out, &*gw), (&gdh_out, &*gdw)] {
                        if let Some(out) = out {
                            hidden_gradient(out, gw, &lt, &at.edges, term1, width);
                        }
                    }
                }
                if let Some(dlin) = dlin {
                    linear_gradient(dlin, &at.h, gw, m, width);
                    if want_dw {
                        linear_gradient(dlin, &tw.h, gdw, m, width);
                    }
                }
            },
        );
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if let (Some(glin), Some(sum)) = (glin, sum) {
            glin.copy_from_slice(&sum);
        }
        for (out, rows) in [(g1_out, &g1_edges), (gd1_out, &gd1_edges)] {
            if let Some(out) = out {
                sum_rows_by_source(a.edges, rows, out);
            }
        }
        Ok(())
    }
}
