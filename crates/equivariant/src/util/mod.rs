//! Utilities, e3nn's `e3nn.util`: [`test`](mod@test) checks equivariance; [`cast`] changes the float
//! type of a module's parameters (torch's `module.to(dtype)`); [`on_pool`] runs a whole
//! computation (a model's step) on rayon's pool, so its kernels start on a worker thread;
//! [`limit_instruction_set`] caps the kernels' instruction set ([`InstructionSet`]) for the
//! process, e.g. to compare the AVX2 and AVX-512 paths.

pub mod test;

pub use equivariant_core::kernels::{InstructionSet, limit_instruction_set, on_pool};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Tensor};

/// `module` with every float parameter and buffer (running statistics included) converted
/// to `dtype`, as torch's `module.to(dtype)` / `module.double()`. Trainable parameters stay
/// trainable, as new leaves.
///
/// A device's default float type decides the dtype of new parameters (f32 for Flex unless
/// configured); this converts a built module instead, e.g. to run it in f64.
///
/// ```
/// use burn::tensor::{DType, Device, Tensor};
/// use equivariant::o3::LinearConfig;
/// use equivariant::util::cast;
///
/// let device = Device::flex();
/// let linear = LinearConfig::new(&"2x0e".parse()?, &"1x0e".parse()?).init(&device)?;
/// let linear = cast(linear, DType::F64);
/// assert_eq!(linear.weight.as_ref().unwrap().val().dtype(), DType::F64);
/// let x = Tensor::<2>::ones([3, 2], (&device, DType::F64));
/// assert_eq!(linear.forward(x, None)?.dtype(), DType::F64);
/// # Ok::<(), equivariant::Error>(())
/// ```
pub fn cast<M: Module>(module: M, dtype: DType) -> M {
    module.map(&mut Cast(dtype))
}

struct Cast(DType);

impl ModuleMapper for Cast {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| {
            let trainable = t.is_require_grad();
            let t = t.cast(dtype).detach();
            if trainable { t.require_grad() } else { t }
        })
    }
}
