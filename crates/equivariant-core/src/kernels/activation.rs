//! e3nn's normalized activations over slices, `y = c f(x)` (and `c f'(x)` with it, for the
//! backward), elementwise and parallel over fixed chunks (so results do not depend on the
//! thread count).
//!
//! `silu` and `sigmoid` in f32 evaluate `exp` as a branch-free polynomial that the compiler
//! vectorizes (within 2 ulp of `expf`); the scalar `expf` behind the generic path cost ~5 ns
//! per element, the largest cost of a radial MLP after its products (a SimpleNetwork forward
//! at 1000 nodes spent 9-15% of its time in it). Other functions and f64 take
//! [`ActivationFunction::apply`] and [`ActivationFunction::derivative`].

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::error::check_len;
use crate::kernels::buffers::{as_uninit, assume_init_vec, uninit_vec};
#[cfg(target_arch = "x86_64")]
use crate::kernels::simd::Avx512;
use crate::kernels::simd::{Avx2Fma, Simd, as_f32, as_f32_uninit};
use crate::math::ActivationFunction;
use crate::math::exp::exp_nonpositive_f32;
use crate::{Real, Result};

/// Elements per parallel task; a slice this short runs on the calling thread.
const CHUNK: usize = 1 << 14;

impl ActivationFunction {
    /// `out = c f(x)`, elementwise (`out` overwritten, the length of `x`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when `out` is not as long as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let silu = ActivationFunction::Silu;
    /// let x = [-2.0f32, 0.0, 1.5];
    /// let mut y = [0.0f32; 3];
    /// silu.forward_slice(2.0, &x, &mut y)?;
    /// for (y, x) in y.iter().zip(x) {
    ///     assert!((y - 2.0 * silu.apply(x)).abs() < 1e-6);
    /// }
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward_slice<T: Real>(self, c: T, x: &[T], out: &mut [T]) -> Result<()> {
        check_len("out (the length of x)", x.len(), out.len())?;
        // SAFETY: the kernels store only initialized values.
        self.run_forward(c, x, unsafe { as_uninit(out) });
        Ok(())
    }

    /// [`forward_slice`](ActivationFunction::forward_slice) into a new vector (never
    /// zero-filled first: the kernel writes every element).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let y = ActivationFunction::Sigmoid.forward_vec(1.0f64, &[0.0, 100.0]);
    /// assert_eq!(y, [0.5, 1.0]);
    /// ```
    pub fn forward_vec<T: Real>(self, c: T, x: &[T]) -> Vec<T> {
        let mut out = uninit_vec(x.len());
        self.run_forward(c, x, &mut out);
        // SAFETY: `run_forward` wrote every element.
        unsafe { assume_init_vec(out) }
    }

    /// `out = c f(x)` over fixed chunks, in parallel above one (`out` as long as `x`).
    fn run_forward<T: Real>(self, c: T, x: &[T], out: &mut [MaybeUninit<T>]) {
        let isa = Avx2Fma::detect();
        let run = |(x, out): (&[T], &mut [MaybeUninit<T>])| {
            #[cfg(target_arch = "x86_64")]
            if let Some(token) = isa {
                // SAFETY: `token` proves the CPU has the AVX2 and FMA `forward_avx2` is
                // compiled for (only `Avx2Fma::detect` makes one, on such a CPU).
                return unsafe { forward_avx2(token, self, c, x, out) };
            }
            let _ = isa;
            forward(self, c, x, out)
        };
        if x.len() <= CHUNK {
            run((x, out));
        } else {
            x.par_chunks(CHUNK)
                .zip(out.par_chunks_mut(CHUNK))
                .for_each(run);
        }
    }

    /// [`forward_slice`](ActivationFunction::forward_slice) and the derivative with it: `out
    /// = c f(x)` and `slope = c f'(x)`, elementwise (both overwritten). The backward of the
    /// forward is then `slope grad`: an autodiff op keeps `slope` instead of `x` and
    /// evaluates `f` (an exponential, for `silu`) once per element instead of twice.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when `out` or `slope` is not as
    /// long as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let silu = ActivationFunction::Silu;
    /// let x = [-2.0f64, 0.0, 1.5];
    /// let (mut y, mut slope) = ([0.0; 3], [0.0; 3]);
    /// silu.forward_with_derivative_slice(2.0, &x, &mut y, &mut slope)?;
    /// for i in 0..3 {
    ///     assert!((y[i] - 2.0 * silu.apply(x[i])).abs() < 1e-15);
    ///     assert!((slope[i] - 2.0 * silu.derivative(x[i])).abs() < 1e-15);
    /// }
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn forward_with_derivative_slice<T: Real>(
        self,
        c: T,
        x: &[T],
        out: &mut [T],
        slope: &mut [T],
    ) -> Result<()> {
        check_len("out (the length of x)", x.len(), out.len())?;
        check_len("slope (the length of x)", x.len(), slope.len())?;
        // SAFETY: the kernels store only initialized values.
        let (out, slope) = unsafe { (as_uninit(out), as_uninit(slope)) };
        self.run_with_derivative(c, x, out, slope);
        Ok(())
    }

    /// [`forward_with_derivative_slice`](ActivationFunction::forward_with_derivative_slice)
    /// into new vectors `(c f(x), c f'(x))` (never zero-filled first).
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let (y, slope) = ActivationFunction::Sigmoid.forward_with_derivative_vec(2.0f64, &[0.0]);
    /// assert_eq!((y[0], slope[0]), (1.0, 0.5));
    /// ```
    pub fn forward_with_derivative_vec<T: Real>(self, c: T, x: &[T]) -> (Vec<T>, Vec<T>) {
        let (mut out, mut slope) = (uninit_vec(x.len()), uninit_vec(x.len()));
        self.run_with_derivative(c, x, &mut out, &mut slope);
        // SAFETY: `run_with_derivative` wrote every element of both.
        unsafe { (assume_init_vec(out), assume_init_vec(slope)) }
    }

    /// `out = c f(x)`, `slope = c f'(x)` over fixed chunks, in parallel above one (both as
    /// long as `x`).
    fn run_with_derivative<T: Real>(
        self,
        c: T,
        x: &[T],
        out: &mut [MaybeUninit<T>],
        slope: &mut [MaybeUninit<T>],
    ) {
        let isa = Simd::detect();
        type Chunk<'a, T> = (
            (&'a [T], &'a mut [MaybeUninit<T>]),
            &'a mut [MaybeUninit<T>],
        );
        let run = |((x, out), slope): Chunk<T>| {
            #[cfg(target_arch = "x86_64")]
            match isa {
                Simd::Avx512(token) => {
                    // SAFETY: the token proves the CPU has the AVX-512 the function is
                    // compiled for (only `Simd::detect` makes one, on such a CPU).
                    return unsafe { with_derivative_avx512(token, self, c, x, out, slope) };
                }
                Simd::Avx2(token) => {
                    // SAFETY: as in `run_forward`.
                    return unsafe { with_derivative_avx2(token, self, c, x, out, slope) };
                }
                Simd::Portable => {}
            }
            let _ = isa;
            with_derivative(self, c, x, out, slope)
        };
        if x.len() <= CHUNK {
            run(((x, out), slope));
        } else {
            x.par_chunks(CHUNK)
                .zip(out.par_chunks_mut(CHUNK))
                .zip(slope.par_chunks_mut(CHUNK))
                .for_each(run);
        }
    }
}

/// The elementwise inputs and outputs of the tangent kernels, one chunk's worth.
struct TangentChunk<'a, T> {
    x: &'a [T],
    dx: &'a [T],
    /// The backward's `dL/d(c f'(x) dx)`; empty in the forward.
    dg: &'a [T],
    /// Forward: `c f'(x) dx`; backward: `dL/dx`.
    out: &'a mut [MaybeUninit<T>],
    /// Backward: `dL/d(dx)`; empty in the forward.
    d_out: &'a mut [MaybeUninit<T>],
}

impl ActivationFunction {
    /// The tangent of `c f(x)` along `dx`, `out = c f'(x) dx`, elementwise (the tangent pass
    /// of a layer `c f(x W)`; the value is [`forward_slice`](ActivationFunction::forward_slice)'s).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when `dx` or `out` is not as
    /// long as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let silu = ActivationFunction::Silu;
    /// let (x, dx) = ([-2.0f64, 0.5], [1.0, 3.0]);
    /// let mut dy = [0.0; 2];
    /// silu.tangent_slice(2.0, &x, &dx, &mut dy)?;
    /// assert!((dy[1] - 2.0 * silu.derivative(0.5) * 3.0).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tangent_slice<T: Real>(self, c: T, x: &[T], dx: &[T], out: &mut [T]) -> Result<()> {
        check_len("dx (the length of x)", x.len(), dx.len())?;
        check_len("out (the length of x)", x.len(), out.len())?;
        // SAFETY: the kernels store only initialized values.
        self.run_tangent::<T, false>(c, x, dx, &[], unsafe { as_uninit(out) }, &mut []);
        Ok(())
    }

    /// [`tangent_slice`](ActivationFunction::tangent_slice) into a new vector (never
    /// zero-filled first).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when `dx` is not as long as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let dy = ActivationFunction::Sigmoid.tangent_vec(1.0f64, &[0.0], &[4.0])?;
    /// assert_eq!(dy, [1.0]); // sigmoid'(0) = 1/4
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tangent_vec<T: Real>(self, c: T, x: &[T], dx: &[T]) -> Result<Vec<T>> {
        check_len("dx (the length of x)", x.len(), dx.len())?;
        let mut out = uninit_vec(x.len());
        self.run_tangent::<T, false>(c, x, dx, &[], &mut out, &mut []);
        // SAFETY: `run_tangent` wrote every element.
        Ok(unsafe { assume_init_vec(out) })
    }

    /// The backward of [`tangent_slice`](ActivationFunction::tangent_slice): given `dg =
    /// dL/d out`, `gx = c f''(x) dx dg` and `gdx = c f'(x) dg`, elementwise (outputs
    /// overwritten).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when any slice is not as long
    /// as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let tanh = ActivationFunction::Tanh;
    /// let (x, dx, dg) = ([0.4f64], [2.0], [0.5]);
    /// let (mut gx, mut gdx) = ([0.0], [0.0]);
    /// tanh.tangent_backward_slice(1.0, &x, &dx, &dg, &mut gx, &mut gdx)?;
    /// assert!((gx[0] - tanh.second_derivative(0.4) * 2.0 * 0.5).abs() < 1e-15);
    /// assert!((gdx[0] - tanh.derivative(0.4) * 0.5).abs() < 1e-15);
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tangent_backward_slice<T: Real>(
        self,
        c: T,
        x: &[T],
        dx: &[T],
        dg: &[T],
        gx: &mut [T],
        gdx: &mut [T],
    ) -> Result<()> {
        for (what, len) in [
            ("dx (the length of x)", dx.len()),
            ("dg (the length of x)", dg.len()),
            ("gx (the length of x)", gx.len()),
            ("gdx (the length of x)", gdx.len()),
        ] {
            check_len(what, x.len(), len)?;
        }
        // SAFETY: the kernels store only initialized values.
        let (gx, gdx) = unsafe { (as_uninit(gx), as_uninit(gdx)) };
        self.run_tangent::<T, true>(c, x, dx, dg, gx, gdx);
        Ok(())
    }

    /// [`tangent_backward_slice`](ActivationFunction::tangent_backward_slice) into new
    /// vectors `(gx, gdx)` (never zero-filled first).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`](crate::Error::ShapeMismatch) when `dx` or `dg` is not as long
    /// as `x`.
    ///
    /// ```
    /// use equivariant_core::math::ActivationFunction;
    /// let (gx, gdx) = ActivationFunction::Sigmoid.tangent_backward_vec(1.0f64, &[0.0], &[2.0], &[1.0])?;
    /// assert_eq!((gx[0], gdx[0]), (0.0, 0.25)); // sigmoid''(0) = 0
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn tangent_backward_vec<T: Real>(
        self,
        c: T,
        x: &[T],
        dx: &[T],
        dg: &[T],
    ) -> Result<(Vec<T>, Vec<T>)> {
        check_len("dx (the length of x)", x.len(), dx.len())?;
        check_len("dg (the length of x)", x.len(), dg.len())?;
        let (mut gx, mut gdx) = (uninit_vec(x.len()), uninit_vec(x.len()));
        self.run_tangent::<T, true>(c, x, dx, dg, &mut gx, &mut gdx);
        // SAFETY: `run_tangent` wrote every element of both.
        Ok(unsafe { (assume_init_vec(gx), assume_init_vec(gdx)) })
    }

    /// The tangent kernels over fixed chunks, in parallel above one chunk.
    fn run_tangent<T: Real, const BACKWARD: bool>(
        self,
        c: T,
        x: &[T],
        dx: &[T],
        dg: &[T],
        out: &mut [MaybeUninit<T>],
        d_out: &mut [MaybeUninit<T>],
    ) {
        let isa = Avx2Fma::detect();
        let run = |chunk: TangentChunk<T>| {
            #[cfg(target_arch = "x86_64")]
            if let Some(token) = isa {
                // SAFETY: `token` proves the CPU has the AVX2 and FMA `tangent_avx2` is
                // compiled for (only `Avx2Fma::detect` makes one, on such a CPU).
                return unsafe { tangent_avx2::<T, BACKWARD>(token, self, c, chunk) };
            }
            let _ = isa;
            tangent::<T, BACKWARD>(self, c, chunk)
        };
        if x.len() <= CHUNK {
            run(TangentChunk {
                x,
                dx,
                dg,
                out,
                d_out,
            });
        } else {
            let d_outs: Vec<&mut [MaybeUninit<T>]> = if d_out.is_empty() {
                (0..x.len().div_ceil(CHUNK)).map(|_| &mut [][..]).collect()
            } else {
                d_out.chunks_mut(CHUNK).collect()
            };
            out.par_chunks_mut(CHUNK)
                .zip(d_outs)
                .enumerate()
                .for_each(|(k, (out, d_out))| {
                    run(TangentChunk {
                        x: piece(x, k),
                        dx: piece(dx, k),
                        dg: piece(dg, k),
                        out,
                        d_out,
                    })
                });
        }
    }
}

/// Chunk `k` of `s` (an empty `s` stays empty: the forward has no `dg`).
fn piece<T>(s: &[T], k: usize) -> &[T] {
    if s.is_empty() {
        s
    } else {
        &s[k * CHUNK..((k + 1) * CHUNK).min(s.len())]
    }
}

/// [`tangent`] compiled for AVX2 and FMA (`token` proves the CPU has them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn tangent_avx2<T: Real, const BACKWARD: bool>(
    token: Avx2Fma,
    f: ActivationFunction,
    c: T,
    chunk: TangentChunk<T>,
) {
    let _ = token;
    tangent::<T, BACKWARD>(f, c, chunk)
}

/// The forward (`c f'(x) dx`) or, with `BACKWARD`, the backward of the tangent on one
/// chunk; in f32 the sigmoid of silu and sigmoid is the vectorizable one.
#[inline(always)]
fn tangent<T: Real, const BACKWARD: bool>(f: ActivationFunction, c: T, t: TangentChunk<T>) {
    if let (Some(x), Some(dx), Some(dg)) = (as_f32(t.x), as_f32(t.dx), as_f32(t.dg))
        && let (Some(out), Some(d_out)) = (as_f32_uninit(&mut *t.out), as_f32_uninit(&mut *t.d_out))
    {
        let chunk = TangentChunk {
            x,
            dx,
            dg,
            out,
            d_out,
        };
        return tangent_with::<f32, BACKWARD>(f, c.to_f64() as f32, chunk, sigmoid_f32);
    }
    let one = T::one();
    tangent_with::<T, BACKWARD>(f, c, t, |x| one / (one + (-x).exp()));
}

/// [`tangent`] with `f'` and `f''` formed together, one loop per function (so each loop is
/// straight-line code the compiler can vectorize), `sigmoid` as given.
#[inline(always)]
fn tangent_with<T: Real, const BACKWARD: bool>(
    f: ActivationFunction,
    c: T,
    t: TangentChunk<T>,
    sigmoid: impl Fn(T) -> T,
) {
    let (zero, one, two) = (T::zero(), T::one(), T::from_f64(2.0));
    match f {
        ActivationFunction::Relu => {
            tangent_loop::<T, BACKWARD>(c, t, |x| (if x > zero { one } else { zero }, zero))
        }
        ActivationFunction::Silu => tangent_loop::<T, BACKWARD>(c, t, |x| {
            let s = sigmoid(x);
            let d1 = s * (one + x * (one - s));
            (d1, s * (one - s) * (two + x * (one - two * s)))
        }),
        ActivationFunction::Sigmoid => tangent_loop::<T, BACKWARD>(c, t, |x| {
            let s = sigmoid(x);
            let d1 = s * (one - s);
            (d1, d1 * (one - two * s))
        }),
        ActivationFunction::Tanh => tangent_loop::<T, BACKWARD>(c, t, |x| {
            let th = x.tanh();
            let d1 = one - th * th;
            (d1, -two * th * d1)
        }),
        ActivationFunction::Gelu | ActivationFunction::Abs => {
            tangent_loop::<T, BACKWARD>(c, t, |x| (f.derivative(x), f.second_derivative(x)))
        }
    }
}

/// The elementwise loop of [`tangent_with`] for one `x -> (f', f'')`.
#[inline(always)]
fn tangent_loop<T: Real, const BACKWARD: bool>(c: T, t: TangentChunk<T>, fd: impl Fn(T) -> (T, T)) {
    let TangentChunk {
        x,
        dx,
        dg,
        out,
        d_out,
    } = t;
    if BACKWARD {
        for i in 0..x.len() {
            let (d1, d2) = fd(x[i]);
            out[i].write(c * d2 * dx[i] * dg[i]);
            d_out[i].write(c * d1 * dg[i]);
        }
    } else {
        for i in 0..x.len() {
            out[i].write(c * fd(x[i]).0 * dx[i]);
        }
    }
}

/// [`forward`] compiled for AVX2 and FMA (`token` proves the CPU has them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2<T: Real>(
    token: Avx2Fma,
    f: ActivationFunction,
    c: T,
    x: &[T],
    out: &mut [MaybeUninit<T>],
) {
    let _ = token;
    forward(f, c, x, out)
}

/// [`with_derivative`] compiled for AVX2 and FMA (`token` proves the CPU has them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn with_derivative_avx2<T: Real>(
    token: Avx2Fma,
    f: ActivationFunction,
    c: T,
    x: &[T],
    out: &mut [MaybeUninit<T>],
    slope: &mut [MaybeUninit<T>],
) {
    let _ = token;
    with_derivative(f, c, x, out, slope)
}

/// [`with_derivative`] compiled for AVX-512 (`token` proves the CPU has it): the same
/// arithmetic per element (no operation is fused that the AVX2 instance leaves apart), so
/// the same bits, sixteen `f32` to a vector (the radial MLPs' hidden layers of a potential,
/// a tenth of an MD step).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
fn with_derivative_avx512<T: Real>(
    token: Avx512,
    f: ActivationFunction,
    c: T,
    x: &[T],
    out: &mut [MaybeUninit<T>],
    slope: &mut [MaybeUninit<T>],
) {
    let _ = token;
    with_derivative(f, c, x, out, slope)
}

/// `out = c f(x)` on one chunk (every element written).
#[inline(always)]
pub(in crate::kernels) fn forward<T: Real>(
    f: ActivationFunction,
    c: T,
    x: &[T],
    out: &mut [MaybeUninit<T>],
) {
    if matches!(f, ActivationFunction::Silu | ActivationFunction::Sigmoid)
        && let (Some(x), Some(out)) = (as_f32(x), as_f32_uninit(out))
    {
        let c = c.to_f64() as f32;
        if f == ActivationFunction::Silu {
            for (y, &x) in out.iter_mut().zip(x) {
                y.write(c * x * sigmoid_f32(x));
            }
        } else {
            for (y, &x) in out.iter_mut().zip(x) {
                y.write(c * sigmoid_f32(x));
            }
        }
        return;
    }
    for (y, &x) in out.iter_mut().zip(x) {
        y.write(c * f.apply(x));
    }
}

/// `out = c f(x)` and `slope = c f'(x)` on one chunk (every element of both written).
#[inline(always)]
pub(in crate::kernels) fn with_derivative<T: Real>(
    f: ActivationFunction,
    c: T,
    x: &[T],
    out: &mut [MaybeUninit<T>],
    slope: &mut [MaybeUninit<T>],
) {
    if matches!(f, ActivationFunction::Silu | ActivationFunction::Sigmoid)
        && let (Some(x), Some(out), Some(slope)) =
            (as_f32(x), as_f32_uninit(out), as_f32_uninit(slope))
    {
        let c = c.to_f64() as f32;
        if f == ActivationFunction::Silu {
            for ((y, d), &x) in out.iter_mut().zip(slope.iter_mut()).zip(x) {
                let s = sigmoid_f32(x);
                y.write(c * x * s);
                d.write(c * (s * (1.0 + x * (1.0 - s))));
            }
        } else {
            for ((y, d), &x) in out.iter_mut().zip(slope.iter_mut()).zip(x) {
                let s = sigmoid_f32(x);
                y.write(c * s);
                d.write(c * (s * (1.0 - s)));
            }
        }
        return;
    }
    for ((y, d), &x) in out.iter_mut().zip(slope.iter_mut()).zip(x) {
        y.write(c * f.apply(x));
        d.write(c * f.derivative(x));
    }
}

/// `1 / (1 + exp(-x))` from `e = exp(-|x|)` (never overflows): `1 / (1 + e)` for `x >= 0`,
/// `e / (1 + e)` below; NaN stays NaN. Branch-free, so a loop of it vectorizes.
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_nonpositive_f32(-x.abs());
    let r = 1.0 / (1.0 + e);
    let s = if x >= 0.0 { r } else { e * r };
    if x.is_nan() { x } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 sigmoid against f64's, at the ends, and with NaN.
    #[test]
    fn sigmoid_f32_matches_f64() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.05;
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            let got = sigmoid_f32(x) as f64;
            // Below -87.34 the f32 result is 0 where the exact one is under the normal floats.
            let tol = (4.0 * f32::EPSILON as f64 * exact).max(f32::MIN_POSITIVE as f64);
            assert!((got - exact).abs() <= tol, "x = {x}");
        }
        assert_eq!(sigmoid_f32(f32::INFINITY), 1.0);
        assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
        assert!(sigmoid_f32(f32::NAN).is_nan());
    }
}
