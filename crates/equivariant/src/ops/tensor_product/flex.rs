//! [`TensorProductBackend`] on [`Flex`]: the core kernels ([`TensorProductPlan::forward_vec`],
//! [`TensorProductPlan::backward_vec`]), f32 and f64.

use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{Flex, TensorMetadata};
use equivariant_core::o3::tensor_product::TensorProductPlan;

use super::{GradientMask, TensorProductBackend, TensorProductGrads};
use crate::ops::flex::{FlexFloat, contiguous, data, dispatch_float, from_vec};

impl TensorProductBackend for Flex {
    fn tensor_product(
        plan: Arc<TensorProductPlan>,
        x1: FlexTensor,
        x2: FlexTensor,
        weight: FlexTensor,
    ) -> FlexTensor {
        dispatch_float!(
            "tensor_product",
            &x1,
            flex_forward(&plan, &x1, &x2, &weight)
        )
    }

    fn tensor_product_backward(
        plan: Arc<TensorProductPlan>,
        x1: FlexTensor,
        x2: FlexTensor,
        weight: FlexTensor,
        grad_out: FlexTensor,
        mask: GradientMask,
    ) -> TensorProductGrads<Self> {
        dispatch_float!(
            "tensor_product_backward",
            &x1,
            flex_backward(&plan, &x1, &x2, &weight, &grad_out, mask)
        )
    }
}

/// The batch size, checking the ranks and row widths of the inputs against the plan.
fn check_shapes(op: &str, plan: &TensorProductPlan, x1: &FlexTensor, x2: &FlexTensor) -> usize {
    let (s1, s2) = (x1.shape(), x2.shape());
    let (d1, d2) = (plan.irreps_in1().dim(), plan.irreps_in2().dim());
    assert!(
        s1.num_dims() == 2 && s1[1] == d1,
        "{op}: x1 must be [batch, {d1}] (irreps_in1 {}), got {s1:?}",
        plan.irreps_in1()
    );
    assert!(
        s2.num_dims() == 2 && s2[1] == d2 && s2[0] == s1[0],
        "{op}: x2 must be [{}, {d2}] (irreps_in2 {}), got {s2:?}",
        s1[0],
        plan.irreps_in2()
    );
    s1[0]
}

fn flex_forward<T: FlexFloat>(
    plan: &TensorProductPlan,
    x1: &FlexTensor,
    x2: &FlexTensor,
    weight: &FlexTensor,
) -> FlexTensor {
    const OP: &str = "tensor_product";
    let batch = check_shapes(OP, plan, x1, x2);
    let (x1, x2, weight) = (
        contiguous::<T>(OP, "x1", x1),
        contiguous::<T>(OP, "x2", x2),
        contiguous::<T>(OP, "weight", weight),
    );
    let d_out = plan.irreps_out().dim();
    // A fresh, unzeroed buffer: the kernel writes each row once, while in cache.
    let out = plan
        .forward_vec(data::<T>(&x1), data::<T>(&x2), data::<T>(&weight))
        .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan})"));
    from_vec(out, [batch, d_out])
}

fn flex_backward<T: FlexFloat>(
    plan: &TensorProductPlan,
    x1: &FlexTensor,
    x2: &FlexTensor,
    weight: &FlexTensor,
    grad_out: &FlexTensor,
    [need_x1, need_x2, need_weight]: GradientMask,
) -> TensorProductGrads<Flex> {
    const OP: &str = "tensor_product_backward";
    let batch = check_shapes(OP, plan, x1, x2);
    let (x1_shape, x2_shape, weight_shape) = (x1.shape(), x2.shape(), weight.shape());
    let (x1, x2, weight, grad_out) = (
        contiguous::<T>(OP, "x1", x1),
        contiguous::<T>(OP, "x2", x2),
        contiguous::<T>(OP, "weight", weight),
        contiguous::<T>(OP, "grad_out", grad_out),
    );
    let [g1, g2, gw] = if need_x1 || need_x2 || need_weight {
        plan.backward_vec(
            data::<T>(&x1),
            data::<T>(&x2),
            data::<T>(&weight),
            data::<T>(&grad_out),
            [need_x1, need_x2, need_weight],
        )
        .unwrap_or_else(|e| panic!("{OP}: {e} (plan {plan}, batch {batch})"))
    } else {
        [None, None, None]
    };
    let wrap = |g: Option<Vec<T>>, shape| g.map(|g| from_vec(g, shape));
    (
        wrap(g1, x1_shape),
        wrap(g2, x2_shape),
        wrap(gw, weight_shape),
    )
}
