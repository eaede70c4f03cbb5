//! Train / validation / test splits of a dataset by a seed.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};

/// The frame indices of each part of a dataset, each in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Frames to train on.
    pub train: Vec<usize>,
    /// Frames to choose the model and stop on.
    pub validation: Vec<usize>,
    /// Frames held out for the final figures.
    pub test: Vec<usize>,
}

/// `n` frames shuffled by `seed` and cut into test (`round(test n)` frames), validation
/// (`round(validation n)`) and training (the rest) parts; the same seed gives the same
/// split.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a fraction outside `[0, 1)` or not finite, fractions that
/// leave no training frame, or no frames at all.
///
/// ```
/// use equivariant_data::split::split;
/// let parts = split(10, 0.2, 0.1, 7)?;
/// assert_eq!((parts.train.len(), parts.validation.len(), parts.test.len()), (7, 2, 1));
/// assert_eq!(parts, split(10, 0.2, 0.1, 7)?);
/// assert!(split(10, 0.6, 0.5, 7).is_err());
/// # Ok::<(), equivariant_data::Error>(())
/// ```
pub fn split(n: usize, validation: f64, test: f64, seed: u64) -> Result<Split> {
    for (name, f) in [("validation", validation), ("test", test)] {
        if !(0.0..1.0).contains(&f) {
            return Err(Error::InvalidArgument {
                name,
                reason: format!("the fraction {f} is not in [0, 1)"),
            });
        }
    }
    let (n_val, n_test) = (
        (validation * n as f64).round() as usize,
        (test * n as f64).round() as usize,
    );
    if n_val + n_test >= n {
        return Err(Error::InvalidArgument {
            name: "validation + test",
            reason: format!(
                "{n_val} validation and {n_test} test frames leave none of {n} to train on"
            ),
        });
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let part = |range: std::ops::Range<usize>| {
        let mut v = order[range].to_vec();
        v.sort_unstable();
        v
    };
    Ok(Split {
        test: part(0..n_test),
        validation: part(n_test..n_test + n_val),
        train: part(n_test + n_val..n),
    })
}
