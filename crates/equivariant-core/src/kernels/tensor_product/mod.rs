//! CPU kernels of [`TensorProductPlan`]: forward, and the backward to both inputs and the
//! weights, over batches of rows, parallel over fixed chunks of rows (deterministic for
//! any thread count).
//!
//! Every path runs over the nonzeros of its Clebsch-Gordan list only. For one multiplicity
//! pair `(u, v)` of a path, the forward is `t[k] = sum c x1[u, i] x2[v, j]` followed by
//! `out[o] += W t`. The backward uses the same contraction with operands permuted:
//! with `h[k] = sum_o W g[o, k]`, `g1[u, i] += sum c x2[v, j] h[k]` and
//! `g2[v, j] += sum c x1[u, i] h[k]` (the lists `backward1`, `backward2` are `C` with its
//! indices permuted), and `gW = t . g[o]`.
//!
//! Each chunk of [`CHUNK`] rows runs in groups of eight rows, lane-major ([`lanes`]), and
//! its last `< 8` rows one by one ([`rows`]); plans whose row kernels are faster run every
//! row by them (`forward_by_rows`, `backward_by_rows`), among them `uvu` products of degree
//! 4 to 7, whose row kernels are sixteen components wide ([`wide`]; in `f32` on AVX-512,
//! written with its intrinsics, [`wide_avx512`]).

/// `[f::<G.., 0, 0>, f::<G.., 1, 1>, f::<G.., 1, 3>, .., f::<G.., 7, 7>]`: the instances of a
/// contracted kernel `f` (leading generic arguments `G..`) in the order of
/// [`Dims::index`](crate::o3::tensor_product::Dims::index): run-time dimensions first, then
/// `(d1, d3)` over `{1, 3, 5, 7}`, `d3` fastest.
macro_rules! dims_table {
    ($($f:ident)::+ [$($g:tt)*]) => {
        [
            $($f)::+::<$($g)* 0, 0>,
            $($f)::+::<$($g)* 1, 1>,
            $($f)::+::<$($g)* 1, 3>,
            $($f)::+::<$($g)* 1, 5>,
            $($f)::+::<$($g)* 1, 7>,
            $($f)::+::<$($g)* 3, 1>,
            $($f)::+::<$($g)* 3, 3>,
            $($f)::+::<$($g)* 3, 5>,
            $($f)::+::<$($g)* 3, 7>,
            $($f)::+::<$($g)* 5, 1>,
            $($f)::+::<$($g)* 5, 3>,
            $($f)::+::<$($g)* 5, 5>,
            $($f)::+::<$($g)* 5, 7>,
            $($f)::+::<$($g)* 7, 1>,
            $($f)::+::<$($g)* 7, 3>,
            $($f)::+::<$($g)* 7, 5>,
            $($f)::+::<$($g)* 7, 7>,
        ]
    };
}

/// Defines `$isa::f<T, D1, D3>` for each kernel `f<T, G.., D1, D3>` of the enclosing module:
/// `f` compiled for the target features `$features` (inlined into a `#[target_feature]`
/// function), for the kernel table of that instruction set (`$token` proves the CPU has
/// them). With `portable` instead, `portable::f<T, D1, D3>`: `f` for any CPU, inlined into a
/// function that is never inlined.
///
/// Why the portable tables take such instances rather than `f` itself: `f` is
/// `#[inline(always)]`, and a table is a `const` that each codegen unit using it names anew,
/// so every such unit compiled its own copy of every instance (in the dev build, four of
/// each row kernel and three of each lane kernel: a third of the core crate's LLVM IR). A
/// function that is never inlined is compiled once, in one unit.
macro_rules! simd_instances {
    (portable {
        $($f:ident[$($g:tt)*]($($a:ident: $t:ty),*);)*
    }) => {
        mod portable {
            use super::*;
            $(
                #[doc = concat!("`", stringify!($f), "` for any CPU, compiled once.")]
                #[inline(never)]
                #[allow(clippy::too_many_arguments)]
                pub(super) fn $f<T: Real, const D1: usize, const D3: usize>($($a: $t),*) {
                    super::$f::<T, $($g)* D1, D3>($($a),*)
                }
            )*
        }
    };
    ($isa:ident($features:literal, $token:literal) {
        $($f:ident[$($g:tt)*]($($a:ident: $t:ty),*);)*
    }) => {
        #[cfg(target_arch = "x86_64")]
        mod $isa {
            use super::*;
            $(
                #[doc = concat!("`", stringify!($f), "` compiled for ", $features, ".")]
                ///
                /// # Safety
                ///
                #[doc = concat!("The CPU must have these features, as an `", $token, "` token proves.")]
                #[target_feature(enable = $features)]
                #[allow(clippy::too_many_arguments)]
                pub(super) unsafe fn $f<T: Real, const D1: usize, const D3: usize>($($a: $t),*) {
                    super::$f::<T, $($g)* D1, D3>($($a),*)
                }
            )*
        }
    };
}

/// The contracted (`uvu`, `uvw`) kernels of one family ([`rows`] or [`lanes`]) and one
/// instruction set, one instance per [`Dims`](crate::o3::tensor_product::Dims): a path runs
/// the entry its plan chose, with no dispatch on its shape per row. `F` and `B` are the
/// family's forward and backward signatures.
struct ContractedKernels<F: 'static, B: 'static> {
    uvu_forward: [F; Dims::COUNT],
    uvw_forward: [F; Dims::COUNT],
    uvu_backward: [B; Dims::COUNT],
    uvw_backward: [B; Dims::COUNT],
}

impl<F: Copy, B: Copy> ContractedKernels<F, B> {
    /// The forward instance of a path, `None` for one that runs pair by pair.
    #[inline(always)]
    fn forward(&self, kernel: PathKernel) -> Option<F> {
        match kernel {
            PathKernel::Uvu(dims) => Some(self.uvu_forward[dims.index()]),
            PathKernel::Uvw(dims) => Some(self.uvw_forward[dims.index()]),
            PathKernel::Pairs => None,
        }
    }

    /// The backward instance of a path, `None` for one that runs pair by pair.
    #[inline(always)]
    fn backward(&self, kernel: PathKernel) -> Option<B> {
        match kernel {
            PathKernel::Uvu(dims) => Some(self.uvu_backward[dims.index()]),
            PathKernel::Uvw(dims) => Some(self.uvw_backward[dims.index()]),
            PathKernel::Pairs => None,
        }
    }
}

/// A family's [`ContractedKernels`] for each instruction set.
trait KernelTables: Sized + 'static {
    /// The portable instances (safe to call on any CPU).
    const PORTABLE: &'static Self;
    /// The instances compiled for AVX2 and FMA (to call with an `Avx2Fma` token only).
    #[cfg(target_arch = "x86_64")]
    const AVX2: &'static Self;
    /// The instances for a CPU with AVX-512 (to call with an `Avx512` token only): the
    /// `uvu` kernels compiled for AVX-512, the `uvw` ones for AVX2. Measured with `bench tp
    /// --isa`, in cache on one thread, the `uvu` configurations ran 0-18% faster compiled
    /// for AVX-512, and the `uvw` forwards 5-12% slower (diffdock-l1/l2, e3tools-conv).
    /// (The wide `uvu` paths in `f32` bypass the table there: [`wide_avx512`].)
    #[cfg(target_arch = "x86_64")]
    const AVX512: &'static Self;

    /// The table of `simd`'s instruction set. Every entry of the result may be called on
    /// this CPU: the token in `simd` proves it.
    #[inline(always)]
    fn of(simd: Simd) -> &'static Self {
        match simd {
            Simd::Portable => Self::PORTABLE,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(_) => Self::AVX2,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(_) => Self::AVX512,
            #[cfg(not(target_arch = "x86_64"))]
            _ => Self::PORTABLE,
        }
    }
}

mod lanes;
pub(crate) mod rows;
mod wide;
#[cfg(target_arch = "x86_64")]
mod wide_avx512;

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::kernels::buffers::{as_uninit, split, uninit_gradients, zeroed_uninit};
use crate::kernels::simd::Simd;
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::{Avx2Fma, Avx512};
use crate::o3::tensor_product::{Dims, PathKernel, TensorProductGradients, TensorProductPlan};
use crate::{Error, Real, Result};
use lanes::{L, LaneBuffers, lanes_to_rows, rows_to_lanes};
pub(crate) use rows::Coefficients;
use rows::Scratch;

/// The per-row weights per path, on average, from which a `uvw` forward streams its
/// weights row by row ([`TensorProductPlan::forward_by_rows`]).
const ROW_WEIGHTS_PER_PATH: usize = 256;

/// Rows per parallel task. Fixed, so the order of every floating-point sum (including the
/// sum of shared-weight gradients over chunks) does not depend on the number of threads.
const CHUNK: usize = 32;

impl TensorProductPlan {
    /// The batch size implied by the buffers, checking every length.
    fn batch_size<T>(&self, x1: &[T], x2: &[T], weight: &[T], out_len: usize) -> Result<usize> {
        let dims = [
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
        ];
        let lens = [x1.len(), x2.len(), out_len];
        let batch = dims
            .iter()
            .zip(&lens)
            .find(|(d, _)| **d > 0)
            .map(|(d, l)| l / d)
            .unwrap_or(0);
        let names = [
            "x1 [batch, irreps_in1.dim]",
            "x2 [batch, irreps_in2.dim]",
            "out [batch, irreps_out.dim]",
        ];
        for ((d, l), what) in dims.iter().zip(lens).zip(names) {
            if d * batch != l {
                return Err(Error::ShapeMismatch {
                    what,
                    expected: d * batch,
                    got: l,
                });
            }
        }
        let expected = if self.shared_weights {
            self.weight_numel
        } else {
            batch * self.weight_numel
        };
        if weight.len() != expected {
            return Err(Error::ShapeMismatch {
                what: if self.shared_weights {
                    "weight [weight_numel]"
                } else {
                    "weight [batch, weight_numel]"
                },
                expected,
                got: weight.len(),
            });
        }
        Ok(batch)
    }

    /// The weight vector of row `z`.
    #[inline]
    fn row_weight<'a, T>(&self, weight: &'a [T], z: usize) -> &'a [T] {
        if self.shared_weights {
            weight
        } else {
            &weight[z * self.weight_numel..(z + 1) * self.weight_numel]
        }
    }

    /// [`forward`](TensorProductPlan::forward) into a possibly uninitialized buffer, with the
    /// kernels' instances of `isa`'s instruction set: every row is written, so all of `out`
    /// is initialized on success.
    pub(super) fn forward_uninit<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        out: &mut [MaybeUninit<T>],
        isa: Simd,
    ) -> Result<()> {
        let batch = self.batch_size(x1, x2, weight, out.len())?;
        let d_out = self.irreps_out.dim();
        if batch == 0 || d_out == 0 {
            return Ok(());
        }
        let coefs = self.coefficients::<T>();
        out.par_chunks_mut(CHUNK * d_out).enumerate().for_each_init(
            // A forward by rows needs no lane buffers: sized as for a batch of none.
            || self.workspace(weight, false, self.forward_lanes_batch(batch)),
            |ws, (chunk, out)| {
                let a = (&coefs[..], x1, x2, weight);
                self.forward_chunk_on(isa, a, chunk * CHUNK, out, ws)
            },
        );
        Ok(())
    }

    /// [`forward`](TensorProductPlan::forward) on the calling thread alone, for a caller
    /// that is parallel already (a task of the expanded convolution): the same chunks and
    /// kernels as the parallel forward, so the same results, with the caller's coefficients
    /// (`self.coefficients()`) and buffers, kept from call to call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_serial<T: Real>(
        &self,
        coefs: &[Coefficients<T>],
        x1: &[T],
        x2: &[T],
        weight: &[T],
        out: &mut [T],
        work: &mut SerialWork<T>,
        isa: Simd,
    ) -> Result<()> {
        let batch = self.batch_size(x1, x2, weight, out.len())?;
        let d_out = self.irreps_out.dim();
        if batch == 0 || d_out == 0 {
            return Ok(());
        }
        let ws = &mut work.0;
        self.fit_workspace(ws, weight, false, self.forward_lanes_batch(batch));
        // SAFETY: the kernels store only initialized values (they write every row of `out`).
        let out = unsafe { as_uninit(out) };
        for (chunk, out) in out.chunks_mut(CHUNK * d_out).enumerate() {
            self.forward_chunk_on(isa, (coefs, x1, x2, weight), chunk * CHUNK, out, ws);
        }
        Ok(())
    }

    /// The batch the forward's lane buffers are sized for: none for a forward by rows.
    fn forward_lanes_batch(&self, batch: usize) -> usize {
        if self.forward_by_rows() { 0 } else { batch }
    }

    /// [`Self::forward_chunk`] with the instances of `isa`.
    #[inline]
    #[allow(clippy::type_complexity)]
    fn forward_chunk_on<T: Real>(
        &self,
        isa: Simd,
        a: (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        ws: &mut Workspace<T>,
    ) {
        match isa {
            // SAFETY: the CPU has the features `forward_chunk_avx2` is compiled for: `token`
            // is an `Avx2Fma`, which is made only on such a CPU.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(token) => unsafe { self.forward_chunk_avx2(token, a, first, out, ws) },
            // SAFETY: as above, with an `Avx512` and `forward_chunk_avx512`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(token) => unsafe { self.forward_chunk_avx512(token, a, first, out, ws) },
            _ => self.forward_chunk::<T, false>(Simd::Portable, a, first, out, ws),
        }
    }

    /// Whether the forward runs row by row ([`Self::forward_row`]) rather than eight rows
    /// lane-major. Three kinds of plans do, measured on the standard configurations (`bench
    /// tp`, 2 threads, forward, ms, lanes -> rows):
    /// - every path `uvu` of irreps of degree 0 or 1 in `x1` (sizes the row kernel has as
    ///   constants): its channels then fill the vector lanes, and the transposes of eight
    ///   rows into lanes cost more than they save. nequip-aspirin 6.3-6.5 -> 4.8-5.0,
    ///   mace-medium 12.4-12.6 -> 9.5-9.9, nequip-water 3.4-4.0 -> 2.6; with degree 2 or 3 in
    ///   `x1` the lanes stay faster (mace-large 31 against 41, nequip-benzene 70 against 111).
    ///   Not with 8 channels or fewer, where a row fills one vector at most and its fixed
    ///   costs per path (the `x2` contraction, the kernel call, the scattered stores) exceed
    ///   the transposes: the expanded convolution of an 8-channel NequIP potential
    ///   (`equivariant md`, 108 atoms, 200 steps, one thread, callgrind) went from 3.97 to
    ///   3.55 billion instructions on lanes, and at 1000 atoms from 203 to 214 steps/s
    ///   (2 threads, three alternated rounds).
    /// - every path `uvu` with run-time sizes (degree 4 and up) and at most 16 components
    ///   in `x1` and the output ([`wide::wide_uvu`]): the row kernel takes `yT` sixteen components wide
    ///   and four channels at a time, without the transposes of `x1` and `out` (medians of
    ///   three alternated runs: roofline-l5 9.1 -> 6.7, roofline-l7 14.6 -> 12.9).
    /// - every path `uvw` with per-row weights of at least [`ROW_WEIGHTS_PER_PATH`] per path
    ///   on average: the forward streams its weights from memory, and the row kernel reads
    ///   them once, in order, where the lanes transpose them through a buffer first
    ///   (medians of five alternated runs: diffdock-l1 11.7 -> 9.4, diffdock-l2 13.5 ->
    ///   9.1, e3tools-conv 13.2 -> 10.5). The guide's product (133 weights per path) stays
    ///   in the lanes, which run its short paths faster (1000 rows in cache, 1 thread: 0.13
    ///   against 0.21 ms).
    fn forward_by_rows(&self) -> bool {
        let streamed =
            !self.shared_weights && self.weight_numel >= ROW_WEIGHTS_PER_PATH * self.paths.len();
        self.paths.iter().all(|p| match p.kernel {
            PathKernel::Uvu(dims) => {
                (dims.index() != 0 && p.d1 <= 3 && p.m1 > 8) || wide::wide_uvu(p)
            }
            PathKernel::Uvw(dims) => dims.index() != 0 && streamed,
            _ => false,
        })
    }

    /// Whether the backward runs row by row ([`Self::backward_row`]) rather than eight rows
    /// lane-major: where every path is [`wide::wide_uvu`], whose row kernel takes `y` and the
    /// sums for `x2`'s gradient sixteen components wide, without the transposes of `x1`,
    /// the output gradient and `x1`'s gradient. Forward+backward, `bench tp`, 2 threads,
    /// three alternated runs, ms, lanes -> rows: roofline-l5 32-36 -> 26-28, roofline-l7
    /// 46-48 -> 38-40; f64, 32 rows in cache, 1 thread: 0.27 -> 0.19, 0.53 -> 0.29.
    fn backward_by_rows(&self) -> bool {
        self.paths.iter().all(wide::wide_uvu)
    }

    /// Rows `first..` of the forward into `out`: groups of eight rows lane-major
    /// ([`Self::forward_lanes`]), or none ([`Self::forward_by_rows`]), the last `< 8`
    /// rows (or all of them) one by one, with `simd`'s kernel instances (the transposes may
    /// use AVX2 intrinsics; `FMA`: the caller is compiled for AVX2 and FMA).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn forward_chunk<T: Real, const FMA: bool>(
        &self,
        simd: Simd,
        (coefs, x1, x2, weight): (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        (b, s): &mut Workspace<T>,
    ) {
        let (d1, d2, d_out, numel) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let avx2 = simd.avx2();
        let groups = if self.forward_by_rows() {
            0
        } else {
            out.len() / d_out / L
        };
        let (grouped, rest) = out.split_at_mut(groups * L * d_out);
        if groups > 0 {
            for (g, out) in grouped.chunks_exact_mut(L * d_out).enumerate() {
                let z = first + g * L;
                rows_to_lanes(avx2, &x1[z * d1..], d1, &mut b.x1);
                rows_to_lanes(avx2, &x2[z * d2..], d2, &mut b.x2);
                if !self.shared_weights {
                    rows_to_lanes(avx2, &weight[z * numel..], numel, &mut b.w);
                }
                self.forward_lanes::<T, FMA>(simd, coefs, b);
                lanes_to_rows(avx2, &b.out, d_out, out);
            }
        }
        for (r, out) in rest.chunks_exact_mut(d_out).enumerate() {
            let z = first + groups * L + r;
            let out = zeroed_uninit(out);
            let (x1, x2) = (&x1[z * d1..(z + 1) * d1], &x2[z * d2..(z + 1) * d2]);
            self.forward_row(simd, coefs, x1, x2, self.row_weight(weight, z), out, s);
        }
    }

    /// [`Self::forward_chunk`] compiled for AVX2 (the row kernels, inlined here, then run on
    /// 256-bit vectors; the arithmetic and its order are the same). Takes the token that
    /// proves the CPU runs it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn forward_chunk_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        a: (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        ws: &mut Workspace<T>,
    ) {
        self.forward_chunk::<T, true>(Simd::Avx2(token), a, first, out, ws)
    }

    /// [`Self::forward_chunk`] compiled for AVX-512 (the same code, the compiler's vectors
    /// up to 512 bits wide), with the AVX-512 kernel instances. Takes the token that proves
    /// the CPU runs it.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn forward_chunk_avx512<T: Real>(
        &self,
        token: Avx512,
        a: (&[Coefficients<T>], &[T], &[T], &[T]),
        first: usize,
        out: &mut [MaybeUninit<T>],
        ws: &mut Workspace<T>,
    ) {
        self.forward_chunk::<T, true>(Simd::Avx512(token), a, first, out, ws)
    }

    /// [`backward`](TensorProductPlan::backward) into possibly uninitialized buffers `[x1, x2,
    /// weight]`, with the kernels' instances of `isa`'s instruction set: every row (and a
    /// shared weight gradient) is written.
    pub(super) fn backward_uninit<T: Real>(
        &self,
        x1: &[T],
        x2: &[T],
        weight: &[T],
        grad_out: &[T],
        grads: [Option<&mut [MaybeUninit<T>]>; 3],
        isa: Simd,
    ) -> Result<()> {
        let coefs = self.coefficients::<T>();
        self.backward_with(&coefs, (x1, x2, weight, grad_out), grads, isa, None)
    }

    /// [`backward`](TensorProductPlan::backward) on the calling thread alone, as
    /// [`Self::forward_serial`] is the forward: the same chunks, kernels and sums (a shared
    /// weight gradient summed over the chunks in order), the caller's coefficients and
    /// buffers.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_serial<T: Real>(
        &self,
        coefs: &[Coefficients<T>],
        x1: &[T],
        x2: &[T],
        weight: &[T],
        grad_out: &[T],
        grads: TensorProductGradients<'_, T>,
        work: &mut SerialWork<T>,
        isa: Simd,
    ) -> Result<()> {
        // SAFETY: the kernels store only initialized values through these views.
        let grads = unsafe { uninit_gradients(grads) };
        let inputs = (x1, x2, weight, grad_out);
        self.backward_with(coefs, inputs, grads, isa, Some(&mut work.0))
    }

    /// The backward over chunks of [`CHUNK`] rows: in parallel, each task with its own
    /// buffers, or (`serial`) one after the other with those buffers.
    #[allow(clippy::type_complexity)]
    fn backward_with<T: Real>(
        &self,
        coefs: &[Coefficients<T>],
        (x1, x2, weight, grad_out): (&[T], &[T], &[T], &[T]),
        [g1, g2, gw]: [Option<&mut [MaybeUninit<T>]>; 3],
        isa: Simd,
        serial: Option<&mut Workspace<T>>,
    ) -> Result<()> {
        let batch = self.batch_size(x1, x2, weight, grad_out.len())?;
        let (d1, d2) = (self.irreps_in1.dim(), self.irreps_in2.dim());
        let check = |g: &Option<&mut [MaybeUninit<T>]>, expected: usize, what: &'static str| match g
        {
            Some(g) if g.len() != expected => Err(Error::ShapeMismatch {
                what,
                expected,
                got: g.len(),
            }),
            _ => Ok(()),
        };
        check(&g1, batch * d1, "grad x1 [batch, irreps_in1.dim]")?;
        check(&g2, batch * d2, "grad x2 [batch, irreps_in2.dim]")?;
        check(&gw, weight.len(), "grad weight (the weight's shape)")?;
        let want_gw = gw.is_some();
        let (shared_gw, gw) = if self.shared_weights {
            (gw.map(zeroed_uninit), None)
        } else {
            (None, gw)
        };
        if batch == 0 {
            return Ok(());
        }
        let numel = self.weight_numel;

        let chunks = batch.div_ceil(CHUNK);
        // Each chunk owns its rows of g1, g2 (and of per-row gW); shared gW is summed over
        // chunks afterwards, in chunk order.
        let mut g1_chunks = split(g1, CHUNK * d1, chunks);
        let mut g2_chunks = split(g2, CHUNK * d2, chunks);
        let per_row_gw = want_gw && !self.shared_weights;
        let mut gw_chunks = if per_row_gw {
            split(gw, CHUNK * numel, chunks)
        } else {
            (0..chunks).map(|_| None).collect()
        };
        let lanes_batch = self.backward_lanes_batch(batch);
        type Grads<'a, T> = &'a mut Option<&'a mut [MaybeUninit<T>]>;
        let run =
            |ws: &mut Workspace<T>,
             (chunk, ((g1, g2), gw_rows)): (usize, ((Grads<T>, Grads<T>), Grads<T>))| {
                let a = (coefs, x1, x2, weight, grad_out);
                let rows = (chunk * CHUNK, CHUNK.min(batch - chunk * CHUNK));
                let grads = [g1.as_deref_mut(), g2.as_deref_mut(), gw_rows.as_deref_mut()];
                self.backward_chunk_on(isa, a, rows, grads, want_gw, ws)
            };
        let shared_partials: Vec<Vec<T>> = match serial {
            Some(ws) => {
                self.fit_workspace(ws, weight, true, lanes_batch);
                g1_chunks
                    .iter_mut()
                    .zip(g2_chunks.iter_mut())
                    .zip(gw_chunks.iter_mut())
                    .enumerate()
                    .map(|item| run(ws, item))
                    .collect()
            }
            None => g1_chunks
                .par_iter_mut()
                .zip(g2_chunks.par_iter_mut())
                .zip(gw_chunks.par_iter_mut())
                .enumerate()
                .map_init(
                    || self.workspace(weight, true, lanes_batch),
                    |ws, item| run(ws, item),
                )
                .collect(),
        };
        if let Some(gw) = shared_gw {
            for partial in shared_partials {
                gw.iter_mut().zip(partial).for_each(|(a, b)| *a += b);
            }
        }
        Ok(())
    }

    /// The batch the backward's lane buffers are sized for: none for a backward by rows, as
    /// [`Self::forward_lanes_batch`].
    fn backward_lanes_batch(&self, batch: usize) -> usize {
        if self.backward_by_rows() { 0 } else { batch }
    }

    /// [`Self::backward_chunk`] with the instances of `isa`, as [`Self::forward_chunk_on`].
    #[inline]
    #[allow(clippy::type_complexity)]
    fn backward_chunk_on<T: Real>(
        &self,
        isa: Simd,
        a: (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        rows: (usize, usize),
        grads: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        ws: &mut Workspace<T>,
    ) -> Vec<T> {
        match isa {
            // SAFETY: as in `forward_chunk_on`, `token` proves the CPU has the features
            // `backward_chunk_avx2` is compiled for.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2(token) => unsafe {
                self.backward_chunk_avx2(token, a, rows, grads, want_gw, ws)
            },
            // SAFETY: as above, with an `Avx512` and `backward_chunk_avx512`.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512(token) => unsafe {
                self.backward_chunk_avx512(token, a, rows, grads, want_gw, ws)
            },
            _ => self.backward_chunk::<T, false>(Simd::Portable, a, rows, grads, want_gw, ws),
        }
    }

    /// Rows `first..first + count` of the backward: per-row gradients into the chunk's
    /// rows of `[g1, g2, gw]` (each row written once, while in cache), groups of eight rows
    /// lane-major ([`Self::backward_lanes`]) or none ([`Self::backward_by_rows`]), the last
    /// `< 8` rows (or all of them) one by one; returns the
    /// chunk's partial shared-weight gradient (empty unless shared and wanted).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn backward_chunk<T: Real, const FMA: bool>(
        &self,
        simd: Simd,
        (coefs, x1, x2, weight, grad_out): (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        (first, count): (usize, usize),
        [g1, g2, gw_rows]: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        (b, s): &mut Workspace<T>,
    ) -> Vec<T> {
        let (d1, d2, d_out, numel) = (
            self.irreps_in1.dim(),
            self.irreps_in2.dim(),
            self.irreps_out.dim(),
            self.weight_numel,
        );
        let avx2 = simd.avx2();
        let (mut g1, mut g2, mut gw_rows) = (g1, g2, gw_rows);
        let shared_len = if want_gw && self.shared_weights {
            numel
        } else {
            0
        };
        let mut shared = vec![T::zero(); shared_len];
        let groups = if self.backward_by_rows() {
            0
        } else {
            count / L
        };
        if groups > 0 {
            let want = [g1.is_some(), g2.is_some(), want_gw];
            for g in 0..groups {
                let (r, z) = (g * L, first + g * L);
                rows_to_lanes(avx2, &x1[z * d1..], d1, &mut b.x1);
                rows_to_lanes(avx2, &x2[z * d2..], d2, &mut b.x2);
                rows_to_lanes(avx2, &grad_out[z * d_out..], d_out, &mut b.out);
                if !self.shared_weights {
                    rows_to_lanes(avx2, &weight[z * numel..], numel, &mut b.w);
                }
                self.backward_lanes::<T, FMA>(simd, coefs, b, want);
                if let Some(g1) = g1.as_deref_mut() {
                    lanes_to_rows(avx2, &b.g1, d1, &mut g1[r * d1..]);
                }
                if let Some(g2) = g2.as_deref_mut() {
                    lanes_to_rows(avx2, &b.g2, d2, &mut g2[r * d2..]);
                }
                if let Some(gw) = gw_rows.as_deref_mut() {
                    lanes_to_rows(avx2, &b.gw, numel, &mut gw[r * numel..]);
                }
                for (s, lanes) in shared.iter_mut().zip(&b.gw) {
                    *s += lanes.iter().fold(T::zero(), |a, &x| a + x);
                }
            }
        }
        for r in groups * L..count {
            let z = first + r;
            let (x1, x2) = (&x1[z * d1..(z + 1) * d1], &x2[z * d2..(z + 1) * d2]);
            let g = &grad_out[z * d_out..(z + 1) * d_out];
            let g1_row = g1
                .as_deref_mut()
                .map(|g| zeroed_uninit(&mut g[r * d1..(r + 1) * d1]));
            let g2_row = g2
                .as_deref_mut()
                .map(|g| zeroed_uninit(&mut g[r * d2..(r + 1) * d2]));
            let gw_row: Option<&mut [T]> = if self.shared_weights {
                want_gw.then_some(&mut shared[..])
            } else {
                gw_rows
                    .as_deref_mut()
                    .map(|g| zeroed_uninit(&mut g[r * numel..(r + 1) * numel]))
            };
            let w = self.row_weight(weight, z);
            self.backward_row(simd, coefs, x1, x2, w, g, g1_row, g2_row, gw_row, s);
        }
        shared
    }

    /// [`Self::backward_chunk`] compiled for AVX2, as [`Self::forward_chunk_avx2`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn backward_chunk_avx2<T: Real>(
        &self,
        token: Avx2Fma,
        a: (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        rows: (usize, usize),
        grads: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        ws: &mut Workspace<T>,
    ) -> Vec<T> {
        self.backward_chunk::<T, true>(Simd::Avx2(token), a, rows, grads, want_gw, ws)
    }

    /// [`Self::backward_chunk`] compiled for AVX-512, as [`Self::forward_chunk_avx512`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[allow(clippy::type_complexity)]
    fn backward_chunk_avx512<T: Real>(
        &self,
        token: Avx512,
        a: (&[Coefficients<T>], &[T], &[T], &[T], &[T]),
        rows: (usize, usize),
        grads: [Option<&mut [MaybeUninit<T>]>; 3],
        want_gw: bool,
        ws: &mut Workspace<T>,
    ) -> Vec<T> {
        self.backward_chunk::<T, true>(Simd::Avx512(token), a, rows, grads, want_gw, ws)
    }
}

/// A worker's buffers, made once per rayon job and reused by its tasks: the lane
/// kernels' (with shared weights splatted across the lanes) and the row kernels'.
type Workspace<T> = (LaneBuffers<T>, Scratch<T>);

impl TensorProductPlan {
    /// A [`Workspace`] for the forward (or, when `backward`, the backward) of `batch` rows
    /// with `weight`. A batch of fewer than eight rows runs on the row kernels alone, so
    /// its lane buffers stay empty (nothing to allocate or splat per call).
    fn workspace<T: Real>(&self, weight: &[T], backward: bool, batch: usize) -> Workspace<T> {
        let mut ws = (LaneBuffers::default(), Scratch::default());
        self.fit_workspace(&mut ws, weight, backward, batch);
        ws
    }

    /// `ws` made what [`Self::workspace`] makes, in the allocations it has (lane buffers
    /// of a batch of fewer than eight rows are left as they are: unread).
    fn fit_workspace<T: Real>(
        &self,
        (b, s): &mut Workspace<T>,
        weight: &[T],
        backward: bool,
        batch: usize,
    ) {
        if batch >= L {
            b.fit(self, backward);
            if self.shared_weights {
                b.splat_weights(weight);
            }
        }
        s.fit(self);
    }
}

/// The buffers of [`TensorProductPlan::forward_serial`] and
/// [`TensorProductPlan::backward_serial`], kept by their caller from call to call; each call
/// fits them to its plan.
pub(crate) struct SerialWork<T>(Workspace<T>);

impl<T: Real> Default for SerialWork<T> {
    fn default() -> Self {
        SerialWork((LaneBuffers::default(), Scratch::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::o3::tensor_product::uvu_tensor_product;
    use crate::o3::tensor_product::{TensorProductOptions, fully_connected_tensor_product};

    /// The serial entry points give the parallel ones' results bit for bit (the same chunks
    /// and kernels), with one [`SerialWork`] refitted from plan to plan: `uvu` of 8 channels
    /// (lanes), of 32 (rows), and a fully connected product with shared weights (its weight
    /// gradient summed over the chunks).
    #[test]
    fn serial_products_match_the_parallel_ones() {
        let i = |s: &str| s.parse::<crate::o3::irreps::Irreps>().unwrap();
        let shared = TensorProductOptions {
            shared_weights: true,
            ..Default::default()
        };
        let plans = [
            uvu_tensor_product(&i("8x0e+8x1o"), &i("0e+1o"), &i("0e+1o"), false).unwrap(),
            uvu_tensor_product(&i("32x0e+32x1o"), &i("0e+1o"), &i("0e+1o"), false).unwrap(),
            fully_connected_tensor_product(&i("3x0e+2x1o"), &i("0e+1o"), &i("2x0e+3x1o"), shared)
                .unwrap(),
        ];
        let value = |i: usize| ((i * 37 + 11) % 23) as f64 / 7.0 - 1.5;
        let values = |n: usize, at: usize| (0..n).map(|k| value(k + at)).collect::<Vec<_>>();
        let isa = Simd::detect();
        let mut work = SerialWork::default();
        // Each plan twice, after another one: the buffers are refitted, never stale.
        for tp in plans.iter().chain(&plans) {
            let batch = 77;
            let (d1, d2, d3) = (
                tp.irreps_in1.dim(),
                tp.irreps_in2.dim(),
                tp.irreps_out.dim(),
            );
            let numel = tp.weight_numel * if tp.shared_weights { 1 } else { batch };
            let (x1, x2) = (values(batch * d1, 1), values(batch * d2, 2));
            let (w, g) = (values(numel, 3), values(batch * d3, 4));
            let coefs = tp.coefficients::<f64>();
            let (mut want, mut got) = (vec![0.0; batch * d3], vec![1.0; batch * d3]);
            tp.forward(&x1, &x2, &w, &mut want).unwrap();
            tp.forward_serial(&coefs, &x1, &x2, &w, &mut got, &mut work, isa)
                .unwrap();
            assert_eq!(want, got);
            let zeros = || [vec![0.0; x1.len()], vec![0.0; x2.len()], vec![0.0; w.len()]];
            let (mut want, mut got) = (zeros(), zeros().map(|v| v.iter().map(|_| 1.0).collect()));
            for (grads, serial) in [(&mut want, false), (&mut got, true)] {
                let [g1, g2, gw] = grads;
                let grads = TensorProductGradients {
                    x1: Some(g1),
                    x2: Some(g2),
                    weight: Some(gw),
                };
                if serial {
                    tp.backward_serial(&coefs, &x1, &x2, &w, &g, grads, &mut work, isa)
                        .unwrap();
                } else {
                    tp.backward(&x1, &x2, &w, &g, grads).unwrap();
                }
            }
            assert_eq!(want, got);
        }
    }
}
