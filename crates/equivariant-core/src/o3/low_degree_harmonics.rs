//! e3nn's spherical harmonics of degrees 0 to 3 as the explicit polynomials e3nn 0.6 writes
//! (`_spherical_harmonics`), with their partial derivatives, one vector at a time.
//!
//! For these degrees the polynomials cost fewer operations than the Legendre recursion of
//! [`spherical_harmonics`](super::spherical_harmonics), and a vector's values come out as
//! its own output row: the plan uses them for `lmax <= 3`, where the recursion's lanes had
//! to be transposed into rows. In e3nn's frame, `component` normalization:
//!
//! ```text
//! Y^0 = 1
//! Y^1 = sqrt3 (x, y, z)
//! Y^2 = (sqrt15 xz, sqrt15 xy, sqrt5 (y^2 - (x^2 + z^2) / 2), sqrt15 yz, sqrt15 / 2 (z^2 - x^2))
//! Y^3 = (a (3xz^2 - x^3), b xyz, d x (4y^2 - x^2 - z^2), e y (2y^2 - 3x^2 - 3z^2),
//!        d z (4y^2 - x^2 - z^2), f y (z^2 - x^2), a (z^3 - 3x^2 z))
//! a = sqrt630 / 12, b = sqrt105, d = sqrt168 / 8, e = sqrt7 / 2, f = sqrt105 / 2
//! ```

use crate::Real;

/// The largest degree written out here.
pub(crate) const LOW_LMAX: u32 = 3;

/// Components of the degrees `0..=LOW_LMAX`.
pub(crate) const LOW_DIM: usize = ((LOW_LMAX + 1) * (LOW_LMAX + 1)) as usize;

/// Where [`low_degrees`] hands its components.
pub(crate) trait Put<T> {
    /// Component `c` (e3nn's order: degree `l` at `l^2..(l+1)^2`), its value and its
    /// partial derivatives `d value / d (x, y, z)`. Implementations are `#[inline(always)]`,
    /// so each value goes straight to where they write it, and partials they do not read
    /// are never computed.
    fn put(&mut self, c: usize, l: usize, value: T, partials: [T; 3]);
}

/// Collects everything (a closure's captures), for tests and odd layouts.
impl<T, F: FnMut(usize, usize, T, [T; 3])> Put<T> for F {
    #[inline(always)]
    fn put(&mut self, c: usize, l: usize, value: T, partials: [T; 3]) {
        self(c, l, value, partials)
    }
}

/// The harmonics of degrees `0..=lmax` (`lmax <= 3`) of `(x, y, z)`, handed one component
/// at a time to `out` ([`Put`]).
#[inline(always)]
pub(crate) fn low_degrees<T: Real>(lmax: u32, (x, y, z): (T, T, T), out: &mut impl Put<T>) {
    debug_assert!(lmax <= LOW_LMAX);
    let k = |v: f64| T::from_f64(v);
    let zero = T::zero();
    out.put(0, 0, T::one(), [zero; 3]);
    if lmax == 0 {
        return;
    }
    let s3 = k(3f64.sqrt());
    out.put(1, 1, s3 * x, [s3, zero, zero]);
    out.put(2, 1, s3 * y, [zero, s3, zero]);
    out.put(3, 1, s3 * z, [zero, zero, s3]);
    if lmax == 1 {
        return;
    }
    let (s15, s5) = (k(15f64.sqrt()), k(5f64.sqrt()));
    let (x2, y2, z2) = (x * x, y * y, z * z);
    let (half, two) = (k(0.5), k(2.0));
    let (s15x, s15y, s15z) = (s15 * x, s15 * y, s15 * z);
    out.put(4, 2, s15x * z, [s15z, zero, s15x]);
    out.put(5, 2, s15x * y, [s15y, s15x, zero]);
    out.put(
        6,
        2,
        s5 * (y2 - half * (x2 + z2)),
        [-(s5 * x), two * s5 * y, -(s5 * z)],
    );
    out.put(7, 2, s15y * z, [zero, s15z, s15y]);
    out.put(8, 2, half * s15 * (z2 - x2), [-s15x, zero, s15z]);
    if lmax == 2 {
        return;
    }
    let a = k(630f64.sqrt() / 12.0);
    let b = k(105f64.sqrt());
    let dd = k(168f64.sqrt() / 8.0);
    let e = k(7f64.sqrt() / 2.0);
    let f = k(105f64.sqrt() / 2.0);
    let (three, six, eight) = (k(3.0), k(6.0), k(8.0));
    // 4y^2 - x^2 - z^2, and z^2 - x^2: shared by several components.
    let q = k(4.0) * y2 - x2 - z2;
    let zx = z2 - x2;
    let (xy, xz, yz) = (x * y, x * z, y * z);
    let a3zx = three * a * zx;
    out.put(9, 3, a * x * (three * z2 - x2), [a3zx, zero, six * a * xz]);
    out.put(10, 3, b * xy * z, [b * yz, b * xz, b * xy]);
    out.put(
        11,
        3,
        dd * x * q,
        [dd * (q - two * x2), eight * dd * xy, -(two * dd * xz)],
    );
    out.put(
        12,
        3,
        e * y * (two * y2 - three * (x2 + z2)),
        [
            -(six * e * xy),
            e * (six * y2 - three * (x2 + z2)),
            -(six * e * yz),
        ],
    );
    out.put(
        13,
        3,
        dd * z * q,
        [-(two * dd * xz), eight * dd * yz, dd * (q - two * z2)],
    );
    out.put(14, 3, f * y * zx, [-(two * f * xy), f * zx, two * f * yz]);
    out.put(
        15,
        3,
        a * z * (z2 - three * x2),
        [-(six * a * xz), zero, a3zx],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value and its partials (`[c][axis]`), collected.
    fn all(lmax: u32, p: (f64, f64, f64)) -> ([f64; LOW_DIM], [[f64; 3]; LOW_DIM]) {
        let (mut val, mut grad) = ([0.0; LOW_DIM], [[0.0; 3]; LOW_DIM]);
        low_degrees::<f64>(lmax, p, &mut |c, _, v, g| (val[c], grad[c]) = (v, g));
        (val, grad)
    }

    /// Each partial derivative against a central difference of the values, at a few points
    /// off the sphere (the polynomials are defined everywhere).
    #[test]
    fn the_partial_derivatives_are_those_of_the_values() {
        let h = 1e-6;
        for p in [(0.3, -0.7, 0.5), (-1.2, 0.4, 0.9), (0.0, 1.0, 0.0)] {
            let (_, grad) = all(3, p);
            for axis in 0..3 {
                let shifted = |s: f64| {
                    let mut q = [p.0, p.1, p.2];
                    q[axis] += s;
                    all(3, (q[0], q[1], q[2])).0
                };
                let (plus, minus) = (shifted(h), shifted(-h));
                for c in 0..LOW_DIM {
                    let fd = (plus[c] - minus[c]) / (2.0 * h);
                    assert!(
                        (fd - grad[c][axis]).abs() < 1e-8,
                        "d Y[{c}] / d x[{axis}] at {p:?}: {} against {fd}",
                        grad[c][axis]
                    );
                }
            }
        }
    }

    /// Exactly the components of degrees up to `lmax` are handed out, each once, in order,
    /// with its degree.
    #[test]
    fn each_component_up_to_lmax_is_handed_out_once() {
        for lmax in 0..=LOW_LMAX {
            let mut seen = Vec::new();
            low_degrees::<f32>(lmax, (0.1, 0.2, 0.3), &mut |c, l, _, _| seen.push((c, l)));
            let expected: Vec<(usize, usize)> = (0..=lmax as usize)
                .flat_map(|l| (l * l..(l + 1) * (l + 1)).map(move |c| (c, l)))
                .collect();
            assert_eq!(seen, expected);
        }
    }
}
