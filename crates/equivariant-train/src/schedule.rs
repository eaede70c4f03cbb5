//! Learning-rate schedules, as torch's: `CosineAnnealingLR` (stepped per training step) and
//! `ReduceLROnPlateau` (stepped per epoch on the validation loss, mode `min`, relative
//! threshold 1e-4, no cooldown).

use serde::{Deserialize, Serialize};

/// The cosine schedule's rate at step `step` of `total`:
/// `lr_min + (lr - lr_min) (1 + cos(pi step / total)) / 2`.
///
/// ```
/// use equivariant_train::schedule::cosine;
/// assert_eq!(cosine(0.1, 0.0, 0, 10), 0.1);
/// assert!((cosine(0.1, 0.0, 5, 10) - 0.05).abs() < 1e-15);
/// ```
pub fn cosine(lr: f64, lr_min: f64, step: usize, total: usize) -> f64 {
    let done = step as f64 / total.max(1) as f64;
    lr_min + 0.5 * (lr - lr_min) * (1.0 + (std::f64::consts::PI * done).cos())
}

/// `ReduceLROnPlateau`: the rate times `factor` once the loss has not improved (by more than
/// a relative 1e-4 on the best) for more than `patience` epochs in a row.
///
/// ```
/// use equivariant_train::schedule::Plateau;
/// let mut plateau = Plateau::new(0.5, 1);
/// let rates: Vec<f64> = [1.0, 1.0, 1.0, 0.5].iter().map(|&loss| plateau.step(loss, 0.1)).collect();
/// assert_eq!(rates, [0.1, 0.1, 0.05, 0.1]); // two epochs without improvement, then better
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    factor: f64,
    patience: usize,
    best: f64,
    bad_epochs: usize,
}

impl Plateau {
    /// A schedule lowering the rate by `factor` after more than `patience` bad epochs.
    ///
    /// ```
    /// use equivariant_train::schedule::Plateau;
    /// let mut plateau = Plateau::new(0.1, 0);
    /// assert_eq!(plateau.step(2.0, 1.0), 1.0);
    /// assert_eq!(plateau.step(2.0, 1.0), 0.1); // one bad epoch is more than 0
    /// ```
    pub fn new(factor: f64, patience: usize) -> Self {
        Plateau {
            factor,
            patience,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The rate after an epoch with validation loss `loss` at rate `lr`.
    ///
    /// ```
    /// use equivariant_train::schedule::Plateau;
    /// let mut plateau = Plateau::new(0.5, 0);
    /// plateau.step(1.0, 0.2);
    /// // 0.99995 is not better than 1.0 by the relative threshold 1e-4.
    /// assert_eq!(plateau.step(0.99995, 0.2), 0.1);
    /// ```
    pub fn step(&mut self, loss: f64, lr: f64) -> f64 {
        if loss < self.best * (1.0 - 1e-4) {
            self.best = loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.patience {
            self.bad_epochs = 0;
            let lowered = lr * self.factor;
            // torch skips a change smaller than its eps, 1e-8.
            if lr - lowered > 1e-8 {
                return lowered;
            }
        }
        lr
    }
}
