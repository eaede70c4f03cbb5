//! The factorized convolution and its tangent in one pass: for inputs moving along `dx1`,
//! `dx2` and `dh` (the linear layer `L` fixed), the product rule on the trilinear
//! convolution gives
//!
//! `d out_i = scale sum_q L[k, q] dS_i[k, q]`, `dS_i = T_a^T H_i + T_i^T dH_i`,
//!
//! with `T_a = t(dx1, x2) + t(x1, dx2)` the pair products along the features' and the edge
//! attributes' tangents. Run as three separate convolutions, each term gathered the node
//! again, formed its own pair products and contracted with `L` on its own; here a node
//! gathers once, forms `Y(x2)` and `Y(dx2)` once, and the output and its tangent share the
//! hidden rows `H`. The backward, given `g = dL/d out` and `dg = dL/d(d out)`, runs the same
//! way: `G = L^T g`, `dG = L^T dg`, then per node `dT = G H^T + dG dH^T`, `dT_a = dG H^T`,
//! `dH = T^T G + T_a^T dG`, `d(dH) = T^T dG`, and both `dT` back through the Clebsch-Gordan
//! blocks. The `One` pairs (uvu, ...) form their per-edge weights `W = H L_one` and `dW = dH
//! L_one` and run their three tangent terms (along `dx1`, `dx2` and, for weighted pairs,
//! `dW`) with the convolution's own lane kernels.
//!
//! `dL/dL` needs every node's `S` and `dS` again. The forward can keep them (`2 N rows_pad
//! width` numbers, 9 MB per layer for 1000 nodes of the guide's convolution) for the
//! backward to read, saving three of its per-node products; without them the backward forms
//! them again.

use super::*;
use crate::o3::tensor_product::ConvTangentGradients;

/// The arguments of a tangent convolution: the convolution's, and the tangents of its
/// inputs (`None`: constant).
pub(in crate::kernels::convolution) struct TangentConv<'a, T> {
    pub a: LinearConv<'a, T>,
    pub dx1: Option<&'a [T]>,
    pub dx2: Option<&'a [T]>,
    pub dhidden: Option<&'a [T]>,
}

impl<'a, T: Real> TangentConv<'a, T> {
    /// The tangents as the arguments of a convolution, a constant input standing in for
    /// its own tangent (not gathered: see `tangent_products`).
    pub(in crate::kernels::convolution) fn tangents(&self) -> LinearConv<'a, T> {
        let a = &self.a;
        LinearConv {
            edges: a.edges,
            x1: self.dx1.unwrap_or(a.x1),
            x2: self.dx2.unwrap_or(a.x2),
            hidden: self.dhidden.unwrap_or(a.hidden),
            linear: a.linear,
            width: a.width,
            scale: a.scale,
        }
    }

    /// Whether the pair products move (`T_a` is not zero).
    fn moving_products(&self) -> bool {
        self.dx1.is_some() || self.dx2.is_some()
    }
}

/// The per-edge gradient rows of the tangent backward's first pass.
struct TangentEdgeGrads<'a, T> {
    x1: Option<EdgeRows<'a, T>>,
    dx1: Option<EdgeRows<'a, T>>,
    x2: Option<EdgeRows<'a, T>>,
    dx2: Option<EdgeRows<'a, T>>,
    hidden: Option<EdgeRows<'a, T>>,
    dhidden: Option<EdgeRows<'a, T>>,
}

impl<T> TangentEdgeGrads<'_, T> {
    fn any(&self) -> bool {
        self.x1.is_some()
            || self.dx1.is_some()
            || self.x2.is_some()
            || self.dx2.is_some()
            || self.hidden.is_some()
            || self.dhidden.is_some()
    }
}

/// Where [`TensorProductPlan::tangent_ones_backward`] writes: `(dW^T, d(dW)^T, scratch)`
/// (`[nq][np]`, overwritten), and `(dx1, d(dx1), dY, d(dY))` of the node (added to).
struct OneGrads<'a, T> {
    dw: Option<(&'a mut [T], &'a mut [T], &'a mut Vec<T>)>,
    dxz: Option<[&'a mut [T]; 4]>,
}

/// `L_one^T` (`[nq][width]`) as a product's operand.
fn lone_t<T: Real>(plan: &Plan<T>) -> Rows<'_, T> {
    Rows {
        data: &plan.lone_t,
        stride: plan.width,
    }
}

/// Per-task buffers: the value's and the tangents' gathered inputs per node (`at`, `along`),
/// `T_a` per node, and the chunk's sums and gradients.
#[derive(Default)]
struct TangentWork<T> {
    at: Vec<NodeWork<T>>,
    along: Vec<NodeWork<T>>,
    ta: Vec<Vec<T>>,
    tb: Vec<T>,
    /// `S` and `dS` of every node, `[nodes][rows_pad][width]`; `G` and `dG`, the same shape.
    s: Vec<T>,
    ds: Vec<T>,
    g: Vec<T>,
    dg: Vec<T>,
    /// The scaled output gradients, `[nodes][d_out]`.
    gs: Vec<T>,
    dgs: Vec<T>,
    tmp: Vec<T>,
    /// Per node: `dT`, `dT_a` (`[rows][np]`); the gradients of the gathered `x1`, `dx1`
    /// (`[d1][np]`), of the `Y` blocks of `x2`, `dx2` (`[z_rows][np]`) and of `x2`, `dx2`
    /// (`[d2][np]`); one node's edge rows.
    dt: Vec<T>,
    dta: Vec<T>,
    dx: Vec<T>,
    ddx: Vec<T>,
    dz: Vec<T>,
    ddz: Vec<T>,
    dy: Vec<T>,
    by_edge: Vec<T>,
    /// The `One` pairs: `dL/dW^T`, `dL/d(dW)^T` and a term's (`[nq][np]`), and the chunk's
    /// `dL/dL_one^T` (`[nq][width]`).
    dwe: Vec<T>,
    dwd: Vec<T>,
    dwt: Vec<T>,
    dlone: Vec<T>,
}

impl TensorProductPlan {
    /// Node `i`'s gathered inputs and products: `x`, `y`, `h` (and `ht` if
    /// `transposed_h`), `Y(x2)` and `T` into `at`; the tangents' into `along` (`Y(dx2)` into
    /// its `z`); `T_a = t(x1, dx2) + t(dx1, x2)` into `ta` (`tb` a scratch row block).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tangent_products<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        i: usize,
        (at, along): (&mut NodeWork<T>, &mut NodeWork<T>),
        (ta, tb): (&mut Vec<T>, &mut Vec<T>),
        transposed_h: bool,
    ) {
        self.gather_node(avx2, &tc.a, i, at, Gather::all(transposed_h));
        self.node_pair_products::<T, FMA>(plan, at);
        if !tc.moving_products() && tc.dhidden.is_none() {
            return;
        }
        // Only the moving inputs' tangents (a constant one is never used).
        let parts = Gather {
            x1: tc.dx1.is_some(),
            x2: tc.dx2.is_some(),
            hidden: tc.dhidden.is_some(),
            transposed_h: transposed_h && tc.dhidden.is_some(),
        };
        self.gather_node(avx2, &tc.tangents(), i, along, parts);
        let np = at.np;
        let ta = overwritten(ta, plan.rows_pad * np);
        if tc.dx2.is_some() {
            let zd = overwritten(&mut along.z, plan.z_rows * np);
            self.node_z::<T, FMA>(plan, &along.y, np, zd);
            self.node_t::<T, FMA>(plan, &at.x, zd, np, ta);
        }
        if tc.dx1.is_some() {
            if tc.dx2.is_some() {
                let tb = overwritten(tb, plan.rows_pad * np);
                self.node_t::<T, FMA>(plan, &along.x, &at.z, np, tb);
                ta.iter_mut().zip(tb.iter()).for_each(|(y, &x)| *y += x);
            } else {
                self.node_t::<T, FMA>(plan, &along.x, &at.z, np, ta);
            }
        }
    }

    /// `dS = T_a H + T dH` of the node in `at`, `along`, `ta`.
    #[inline(always)]
    fn tangent_sums<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        (at, along, ta): (&NodeWork<T>, &NodeWork<T>, &[T]),
        ds: &mut [T],
    ) {
        let np = at.np;
        match (tc.moving_products(), tc.dhidden.is_some()) {
            (true, true) => {
                sums::<T, FMA, false>(avx2, plan, (ta, &at.h), np, ds);
                sums::<T, FMA, true>(avx2, plan, (&at.t, &along.h), np, ds);
            }
            (true, false) => sums::<T, FMA, false>(avx2, plan, (ta, &at.h), np, ds),
            (false, true) => sums::<T, FMA, false>(avx2, plan, (&at.t, &along.h), np, ds),
            (false, false) => ds.fill(T::zero()),
        }
    }

    /// The `One` pairs of one node: `acc += sum t(x, Y) W` and `d_acc +=` its tangent, the
    /// products along `dx1`, along `dx2` (with `W`), and the weighted pairs along `dW = dH
    /// L_one`.
    #[inline(always)]
    fn tangent_ones_forward<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        (at, along): (&mut NodeWork<T>, &mut NodeWork<T>),
        (acc, d_acc): (&mut [T], &mut [T]),
    ) {
        if !plan.one_q.is_empty() {
            self.node_one_weights::<T, FMA>(avx2, plan, at);
            if tc.dhidden.is_some() {
                self.node_one_weights::<T, FMA>(avx2, plan, along);
            }
        }
        let (np, all, weighted) = (
            at.np,
            (plan, &plan.ones[..]),
            (plan, &plan.weighted_ones[..]),
        );
        let (x, z, we) = (&at.x[..], &at.z[..], &at.we[..]);
        self.one_pairs_forward::<T, FMA>(avx2, all, [x, z, we], np, acc);
        if tc.dx1.is_some() {
            self.one_pairs_forward::<T, FMA>(avx2, all, [&along.x, z, we], np, d_acc);
        }
        if tc.dx2.is_some() {
            self.one_pairs_forward::<T, FMA>(avx2, all, [x, &along.z, we], np, d_acc);
        }
        if tc.dhidden.is_some() {
            self.one_pairs_forward::<T, FMA>(avx2, weighted, [x, z, &along.we], np, d_acc);
        }
    }

    /// Output rows `first..` of `out` and `d_out` (`[nodes, d_out]`); the nodes' `S` and
    /// `dS` into `saved` (`[nodes][rows_pad][width]` each) if given, for the backward.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tangent_forward_nodes<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        first: usize,
        (out, d_out): (&mut [T], &mut [T]),
        saved: Option<(&mut [T], &mut [T])>,
        work: &mut TangentWork<T>,
    ) {
        let (dim, w) = (self.irreps_out.dim(), plan.width);
        let nodes = out.len() / dim.max(1);
        let srow = plan.rows_pad * w;
        for v in [&mut work.at, &mut work.along] {
            if v.is_empty() {
                v.push(NodeWork::default());
            }
        }
        if work.ta.is_empty() {
            work.ta.push(Vec::new());
        }
        let (s_all, ds_all) = match saved {
            Some(sums) => sums,
            None => (
                overwritten(&mut work.s, nodes * srow),
                overwritten(&mut work.ds, nodes * srow),
            ),
        };
        let weighted = !plan.one_q.is_empty();
        out.fill(T::zero());
        d_out.fill(T::zero());
        for r in 0..nodes {
            let (at, along) = (&mut work.at[0], &mut work.along[0]);
            let ta = &mut work.ta[0];
            self.tangent_products::<T, FMA>(
                avx2,
                plan,
                tc,
                first + r,
                (at, along),
                (ta, &mut work.tb),
                weighted,
            );
            let s = &mut s_all[r * srow..(r + 1) * srow];
            sums::<T, FMA, false>(avx2, plan, (&at.t, &at.h), at.np, s);
            let ds = &mut ds_all[r * srow..(r + 1) * srow];
            self.tangent_sums::<T, FMA>(avx2, plan, tc, (at, along, ta), ds);
            if !plan.ones.is_empty() {
                let rows = r * dim..(r + 1) * dim;
                let accs = (&mut out[rows.clone()], &mut d_out[rows]);
                self.tangent_ones_forward::<T, FMA>(avx2, plan, tc, (at, along), accs);
            }
        }
        for (o, s) in [(&mut *out, &*s_all), (&mut *d_out, &*ds_all)] {
            self.contract_nodes::<T, FMA>(avx2, plan, s, o, &mut work.tmp);
            o.iter_mut().for_each(|y| *y *= tc.a.scale);
        }
    }

    /// [`Self::tangent_forward_nodes`] compiled for AVX2, for a CPU that has it (`token`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn tangent_forward_nodes_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        first: usize,
        outs: (&mut [T], &mut [T]),
        saved: Option<(&mut [T], &mut [T])>,
        work: &mut TangentWork<T>,
    ) {
        self.tangent_forward_nodes::<T, true>(Some(token), plan, tc, first, outs, saved, work)
    }

    /// The convolution `out` and its tangent `d_out` (`[N, irreps_out.dim]` each), and the
    /// nodes' sums `[S; dS]` into `sums` if given (see [`TensorProductPlan::tangent_sums_len`]).
    pub(in crate::kernels::convolution) fn conv_tangent_forward_linear<T: Real>(
        &self,
        tc: &TangentConv<'_, T>,
        (out, d_out): (&mut [T], &mut [T]),
        sums: Option<&mut [T]>,
    ) {
        let isa = Avx2Fma::detect();
        let dim = self.irreps_out.dim();
        let plan = Plan::new(self, tc.a.linear, tc.a.width);
        // Each task's slices of the saved `S` and `dS` (one per task, empty ones included),
        // or `None`s.
        let tasks = out.len().div_ceil(NODE_CHUNK * dim);
        let chunk_sums = NODE_CHUNK * plan.rows_pad * plan.width;
        let saved: Vec<Option<(&mut [T], &mut [T])>> = match sums {
            Some(sums) => {
                let (mut s, mut ds) = sums.split_at_mut(sums.len() / 2);
                (0..tasks)
                    .map(|_| {
                        let len = chunk_sums.min(s.len());
                        let (s_task, s_rest) = std::mem::take(&mut s).split_at_mut(len);
                        let (ds_task, ds_rest) = std::mem::take(&mut ds).split_at_mut(len);
                        (s, ds) = (s_rest, ds_rest);
                        Some((s_task, ds_task))
                    })
                    .collect()
            }
            None => (0..tasks).map(|_| None).collect(),
        };
        out.par_chunks_mut(NODE_CHUNK * dim)
            .zip(d_out.par_chunks_mut(NODE_CHUNK * dim))
            .zip(saved)
            .enumerate()
            .for_each_init(
                Reused::<TangentWork<T>>::take,
                |work, (chunk, (outs, saved))| {
                    let work = &mut **work;
                    let first = chunk * NODE_CHUNK;
                    #[cfg(target_arch = "x86_64")]
                    if let Some(token) = isa {
                        // SAFETY: `token` proves the CPU has the AVX2 and FMA
                        // `tangent_forward_nodes_avx2` is compiled for (only `Avx2Fma::detect`
                        // makes one, on such a CPU).
                        return unsafe {
                            self.tangent_forward_nodes_avx2(
                                token, &plan, tc, first, outs, saved, work,
                            )
                        };
                    }
                    let _ = isa;
                    self.tangent_forward_nodes::<T, false>(
                        None, &plan, tc, first, outs, saved, work,
                    )
                },
            );
    }

    /// The first backward pass over nodes `first..first + count`: the partial `dL/dL` into
    /// `dlin`, and the edge gradients (see the module docs). `saved`: the forward's `[S; dS]`
    /// of all nodes, if it kept them (else they are formed again).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tangent_backward_nodes<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        (grad_out, grad_d_out): (&[T], &[T]),
        saved: Option<&[T]>,
        (first, count): (usize, usize),
        mut dlin: Option<&mut [T]>,
        edge: &TangentEdgeGrads<'_, T>,
        work: &mut TangentWork<T>,
    ) {
        let (d1, d2, dim, w) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            plan.width,
        );
        let srow = plan.rows_pad * w;
        let (want_lin, need_edge) = (dlin.is_some(), edge.any());
        for v in [&mut work.at, &mut work.along] {
            if v.len() < count {
                v.resize_with(count, NodeWork::default);
            }
        }
        if work.ta.len() < count {
            work.ta.resize_with(count, Vec::new);
        }
        let scale = tc.a.scale;
        for (gs, g) in [(&mut work.gs, grad_out), (&mut work.dgs, grad_d_out)] {
            let gs = overwritten(gs, count * dim);
            gs.iter_mut()
                .zip(&g[first * dim..(first + count) * dim])
                .for_each(|(y, &g)| *y = g * scale);
        }
        let form_sums = want_lin && saved.is_none();
        let s_all = overwritten(&mut work.s, if form_sums { count * srow } else { 0 });
        let ds_all = overwritten(&mut work.ds, if form_sums { count * srow } else { 0 });
        let (nq, has_ones) = (plan.one_q.len(), !plan.ones.is_empty());
        let weighted = nq > 0;

        // Phase 1, per node: inputs, T, T_a, and S, dS for dL/dL unless saved.
        let products = form_sums || need_edge || has_ones && want_lin;
        for r in 0..if products { count } else { 0 } {
            let (at, along) = (&mut work.at[r], &mut work.along[r]);
            let ta = &mut work.ta[r];
            self.tangent_products::<T, FMA>(
                avx2,
                plan,
                tc,
                first + r,
                (at, along),
                (ta, &mut work.tb),
                need_edge || weighted,
            );
            if form_sums {
                let s = &mut s_all[r * srow..(r + 1) * srow];
                sums::<T, FMA, false>(avx2, plan, (&at.t, &at.h), at.np, s);
                let ds = &mut ds_all[r * srow..(r + 1) * srow];
                self.tangent_sums::<T, FMA>(avx2, plan, tc, (at, along, ta), ds);
            }
        }
        let (s_all, ds_all): (&[T], &[T]) = match saved {
            Some(sums) => {
                let (s, ds) = sums.split_at(sums.len() / 2);
                let nodes = first * srow..(first + count) * srow;
                (&s[nodes.clone()], &ds[nodes])
            }
            None => (s_all, ds_all),
        };

        // Phase 2: dL/dL from both outputs' gradients, and G, dG.
        let g_all = zeros(&mut work.g, if need_edge { count * srow } else { 0 });
        let dg_all = zeros(&mut work.dg, if need_edge { count * srow } else { 0 });
        for (gs, sums, g) in [
            (&work.gs, s_all, &mut *g_all),
            (&work.dgs, ds_all, &mut *dg_all),
        ] {
            let g = need_edge.then_some(g);
            let (dl, tmp) = (dlin.as_deref_mut(), &mut work.tmp);
            self.sum_gradients::<T, FMA>(avx2, plan, gs, count, (sums, dl), g, tmp);
        }
        // Without edge gradients only the `One` pairs' dL/dL needs the nodes again.
        if !(need_edge || has_ones && want_lin) {
            return;
        }
        let dlone = zeros(&mut work.dlone, if want_lin { nq * w } else { 0 });
        let want_dw = weighted && (want_lin || edge.hidden.is_some() || edge.dhidden.is_some());

        // Phase 3, per node: dH, d(dH), dT, dT_a, and back to x1, dx1, x2, dx2.
        let (moving, dh_moves) = (tc.moving_products(), tc.dhidden.is_some());
        let (want_x1, want_dx1) = (edge.x1.is_some(), edge.dx1.is_some());
        let (want_x2, want_dx2) = (edge.x2.is_some(), edge.dx2.is_some());
        let want_t = want_x1 || want_dx1 || want_x2 || want_dx2;
        let (with_dx1, with_dx2) = (tc.dx1.is_some(), tc.dx2.is_some());
        for r in 0..count {
            let (np, ne) = (work.at[r].np, work.at[r].ne);
            let dx = zeros(&mut work.dx, if want_t { d1 * np } else { 0 });
            let ddx = zeros(&mut work.ddx, if want_t && with_dx1 { d1 * np } else { 0 });
            let dz = zeros(&mut work.dz, if want_t { plan.z_rows * np } else { 0 });
            let ddz = zeros(
                &mut work.ddz,
                if want_t && with_dx2 {
                    plan.z_rows * np
                } else {
                    0
                },
            );
            let dwe = overwritten(&mut work.dwe, if want_dw { nq * np } else { 0 });
            let dwd = overwritten(&mut work.dwd, if want_dw && dh_moves { nq * np } else { 0 });
            if has_ones {
                let (at, along) = (&mut work.at[r], &mut work.along[r]);
                let gs = (
                    &work.gs[r * dim..(r + 1) * dim],
                    &work.dgs[r * dim..(r + 1) * dim],
                );
                let bufs = OneGrads {
                    dw: want_dw.then_some((&mut *dwe, &mut *dwd, &mut work.dwt)),
                    dxz: want_t.then_some([&mut *dx, &mut *ddx, &mut *dz, &mut *ddz]),
                };
                self.tangent_ones_backward::<T, FMA>(avx2, plan, tc, (at, along), gs, bufs);
                if want_lin {
                    let (at, along) = (&work.at[r], &work.along[r]);
                    self.one_linear_grad::<T, FMA>(avx2, plan, (&at.h, np), dwe, dlone);
                    if dh_moves {
                        self.one_linear_grad::<T, FMA>(avx2, plan, (&along.h, np), dwd, dlone);
                    }
                }
            }
            if !need_edge {
                continue;
            }
            let (at, along, ta) = (&work.at[r], &work.along[r], &work.ta[r][..]);
            let (g, dg) = (
                &g_all[r * srow..(r + 1) * srow],
                &dg_all[r * srow..(r + 1) * srow],
            );
            let edges = tc.a.edges.by_dst(first + r);
            let t_rows = |t| Rows {
                data: t,
                stride: np,
            };
            let g_rows = |g| Rows { data: g, stride: w };
            if let Some(gh) = &edge.hidden {
                // dH = T^T G + T_a^T dG, [edges][w].
                let dh = overwritten(&mut work.by_edge, ne * w);
                gemm_tn::<T, FMA, false>(avx2, (ne, w, plan.rows), t_rows(&at.t), g_rows(g), dh, w);
                if moving {
                    gemm_tn::<T, FMA, true>(
                        avx2,
                        (ne, w, plan.rows),
                        t_rows(ta),
                        g_rows(dg),
                        dh,
                        w,
                    );
                }
                if want_dw {
                    // + dW^T L_one^T.
                    gemm_tn::<T, FMA, true>(avx2, (ne, w, nq), t_rows(dwe), lone_t(plan), dh, w);
                }
                // SAFETY: these edges enter node `first + r`, which only this task visits.
                unsafe { write_rows(gh, edges, dh) };
            }
            if let Some(gdh) = &edge.dhidden {
                // d(dH) = T^T dG.
                let ddh = overwritten(&mut work.by_edge, ne * w);
                gemm_tn::<T, FMA, false>(
                    avx2,
                    (ne, w, plan.rows),
                    t_rows(&at.t),
                    g_rows(dg),
                    ddh,
                    w,
                );
                if want_dw {
                    gemm_tn::<T, FMA, true>(avx2, (ne, w, nq), t_rows(dwd), lone_t(plan), ddh, w);
                }
                // SAFETY: as above.
                unsafe { write_rows(gdh, edges, ddh) };
            }
            if !want_t {
                continue;
            }
            let ht_rows = |ht| Rows {
                data: ht,
                stride: np,
            };
            // dT = G H^T + dG dH^T; dT_a = dG H^T.
            let dt = overwritten(&mut work.dt, plan.rows_pad * np);
            let prod = (plan.rows_pad, np, w);
            gemm::<T, FMA, false>(avx2, prod, g_rows(g), ht_rows(&at.ht), dt, np);
            if dh_moves {
                gemm::<T, FMA, true>(avx2, prod, g_rows(dg), ht_rows(&along.ht), dt, np);
            }
            let dta = overwritten(&mut work.dta, if moving { plan.rows_pad * np } else { 0 });
            if moving {
                gemm::<T, FMA, false>(avx2, prod, g_rows(dg), ht_rows(&at.ht), dta, np);
            }
            let (x, z, xd, zd) = (&at.x, &at.z, &along.x, &along.z);
            for (p, cg) in self.paths.iter().zip(&plan.cg).filter(|(_, cg)| cg.all) {
                let nb = cg.blocks.len();
                for (pr, &(u, v, _)) in p.pairs.iter().enumerate() {
                    let (u, v) = (u as usize, v as usize);
                    for (c, range) in cg.by_k.iter().enumerate() {
                        let row = (cg.first + c * cg.npairs + pr) * np;
                        let d0 = &dt[row..row + np];
                        let da = if moving { &dta[row..row + np] } else { d0 };
                        for b in range.clone() {
                            let xi = (p.in1 + u * p.d1 + cg.blocks[b].i) * np;
                            let zb = (cg.z_first + v * nb + b) * np;
                            let (xi, zb) = (xi..xi + np, zb..zb + np);
                            // T = t(x, z): dT to x and z.
                            if want_x1 {
                                mul_acc::<T, FMA>(&mut dx[xi.clone()], &z[zb.clone()], d0);
                            }
                            if want_x2 {
                                mul_acc::<T, FMA>(&mut dz[zb.clone()], &x[xi.clone()], d0);
                            }
                            // T_a = t(x, zd) + t(xd, z): dT_a to each factor.
                            if with_dx2 {
                                if want_x1 {
                                    mul_acc::<T, FMA>(&mut dx[xi.clone()], &zd[zb.clone()], da);
                                }
                                if want_dx2 {
                                    mul_acc::<T, FMA>(&mut ddz[zb.clone()], &x[xi.clone()], da);
                                }
                            }
                            if with_dx1 {
                                if want_dx1 {
                                    mul_acc::<T, FMA>(&mut ddx[xi.clone()], &z[zb.clone()], da);
                                }
                                if want_x2 {
                                    mul_acc::<T, FMA>(&mut dz[zb], &xd[xi], da);
                                }
                            }
                        }
                    }
                }
            }
            for (rows, dzs) in [(&edge.x2, &*dz), (&edge.dx2, &*ddz)] {
                if let Some(rows) = rows {
                    let dy = zeros(&mut work.dy, d2 * np);
                    self.node_dy::<T, FMA>(plan, dzs, np, dy);
                    // SAFETY: as above.
                    unsafe { write_edge_rows(avx2, rows, edges, dy, np, &mut work.by_edge) };
                }
            }
            for (rows, dxs) in [(&edge.x1, &*dx), (&edge.dx1, &*ddx)] {
                if let Some(rows) = rows {
                    // SAFETY: as above.
                    unsafe { write_edge_rows(avx2, rows, edges, dxs, np, &mut work.by_edge) };
                }
            }
        }
        if let Some(dlin) = dlin {
            add_one_linear_grad(plan, dlone, dlin);
        }
    }

    /// The backward of [`Self::tangent_ones_forward`] for one node with scaled output
    /// gradients `(gs, dgs)`: `dL/dW^T` (`dwe`) and `dL/d(dW)^T` (`dwd`, `tmp` a scratch) if
    /// asked, and the gradients of the gathered `x1`, `dx1` and of the `Y` blocks of `x2`,
    /// `dx2` added to `dxz` if asked.
    #[inline(always)]
    fn tangent_ones_backward<T: Real, const FMA: bool>(
        &self,
        avx2: Option<Avx2Fma>,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        (at, along): (&mut NodeWork<T>, &mut NodeWork<T>),
        (gs, dgs): (&[T], &[T]),
        bufs: OneGrads<'_, T>,
    ) {
        let OneGrads { mut dw, mut dxz } = bufs;
        let dh_moves = tc.dhidden.is_some();
        // `W` (and `dW`) enter only the way back to `x` and `Y`.
        if !plan.one_q.is_empty() && dxz.is_some() {
            self.node_one_weights::<T, FMA>(avx2, plan, at);
            if dh_moves {
                self.node_one_weights::<T, FMA>(avx2, plan, along);
            }
        }
        let np = at.np;
        let (all, weighted) = ((plan, &plan.ones[..]), (plan, &plan.weighted_ones[..]));
        let (x, z, we) = (&at.x[..], &at.z[..], &at.we[..]);
        // Each term: its inputs, its gradient, and where its input gradients go (`dx` or
        // `ddx`, `dz` or `ddz`).
        let terms = [
            (true, all, [x, z, we], gs, (false, false)),
            (
                tc.dx1.is_some(),
                all,
                [&along.x[..], z, we],
                dgs,
                (true, false),
            ),
            (
                tc.dx2.is_some(),
                all,
                [x, &along.z[..], we],
                dgs,
                (false, true),
            ),
        ];
        for (k, (on, ones, inputs, g, (to_dx1, to_dx2))) in terms.into_iter().enumerate() {
            if !on {
                continue;
            }
            let dw_k = dw.as_mut().map(|(dwe, _, tmp)| {
                if k == 0 {
                    &mut **dwe
                } else {
                    overwritten(tmp, dwe.len())
                }
            });
            let dxz_k = dxz.as_mut().map(|[dx, ddx, dz, ddz]| {
                let x: &mut [T] = if to_dx1 { ddx } else { dx };
                let z: &mut [T] = if to_dx2 { ddz } else { dz };
                (x, z)
            });
            self.one_pairs_backward::<T, FMA>(avx2, ones, inputs, np, g, dw_k, dxz_k);
            if k > 0
                && let Some((dwe, _, tmp)) = dw.as_mut()
            {
                dwe.iter_mut().zip(tmp.iter()).for_each(|(y, &v)| *y += v);
            }
        }
        if dh_moves {
            let dw_d = dw.as_mut().map(|(_, dwd, _)| &mut **dwd);
            let dxz_d = dxz.as_mut().map(|[dx, _, dz, _]| (&mut **dx, &mut **dz));
            self.one_pairs_backward::<T, FMA>(
                avx2,
                weighted,
                [x, z, &along.we],
                np,
                dgs,
                dw_d,
                dxz_d,
            );
        }
    }

    /// [`Self::tangent_backward_nodes`] compiled for AVX2, for a CPU that has it (`token`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn tangent_backward_nodes_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        plan: &Plan<T>,
        tc: &TangentConv<'_, T>,
        grads_out: (&[T], &[T]),
        saved: Option<&[T]>,
        nodes: (usize, usize),
        dlin: Option<&mut [T]>,
        edge: &TangentEdgeGrads<'_, T>,
        work: &mut TangentWork<T>,
    ) {
        self.tangent_backward_nodes::<T, true>(
            Some(token),
            plan,
            tc,
            grads_out,
            saved,
            nodes,
            dlin,
            edge,
            work,
        )
    }

    /// The gradients of the tangent convolution's inputs given `grad_out` and
    /// `grad_d_out` (`[N, irreps_out.dim]` each), with the forward's `[S; dS]` if it saved
    /// them.
    pub(in crate::kernels::convolution) fn conv_tangent_backward_linear<T: Real>(
        &self,
        tc: &TangentConv<'_, T>,
        (grad_out, grad_d_out): (&[T], &[T]),
        saved: Option<&[T]>,
        grads: ConvTangentGradients<'_, T>,
    ) {
        let isa = Avx2Fma::detect();
        let (d1, numel, w) = (self.irreps_in1.dim(), self.weight_numel, tc.a.width);
        let (n, e) = (tc.a.edges.num_nodes(), tc.a.edges.num_edges());
        let plan = Plan::new(self, tc.a.linear, w);
        let ConvTangentGradients {
            x1: g1,
            dx1: gd1,
            x2: g2,
            dx2: gd2,
            hidden: gh,
            dhidden: gdh,
            linear: glin,
        } = grads;
        // Per-edge rows of the x1 and dx1 gradients, summed per source below.
        let (mut g1_edges, mut gd1_edges) = (
            edge_rows(g1.is_some(), e, d1),
            edge_rows(gd1.is_some(), e, d1),
        );
        let edge = TangentEdgeGrads {
            x1: EdgeRows::new(g1.is_some().then_some(&mut g1_edges[..])),
            dx1: EdgeRows::new(gd1.is_some().then_some(&mut gd1_edges[..])),
            x2: EdgeRows::new(g2),
            dx2: EdgeRows::new(gd2),
            hidden: EdgeRows::new(gh),
            dhidden: EdgeRows::new(gdh),
        };
        let len = glin.is_some().then_some(w * numel);
        let grads_out = (grad_out, grad_d_out);
        let sum = backward_chunks(n, len, |work: &mut TangentWork<T>, nodes, dlin| {
            #[cfg(target_arch = "x86_64")]
            if let Some(token) = isa {
                // SAFETY: as in `conv_tangent_forward_linear`.
                return unsafe {
                    self.tangent_backward_nodes_avx2(
                        token, &plan, tc, grads_out, saved, nodes, dlin, &edge, work,
                    )
                };
            }
            let _ = isa;
            self.tangent_backward_nodes::<T, false>(
                None, &plan, tc, grads_out, saved, nodes, dlin, &edge, work,
            )
        });
        if let (Some(glin), Some(sum)) = (glin, sum) {
            self.linear_gradient(&plan, &sum, glin);
        }
        for (g, rows) in [(g1, &g1_edges), (gd1, &gd1_edges)] {
            if let Some(g) = g {
                sum_rows_by_source(tc.a.edges, rows, g);
            }
        }
    }
}
