//! Unit tests of the image ops' shape descriptions.

use super::{Conv2d, ImageShape, Pool2d};

#[test]
fn bad_shapes_are_named() {
    use crate::{Layer, Loss, NetworkSpec, Op, PcError};
    let image = ImageShape::new(1, 4, 4);
    let zero_stride = [Layer::from_ops(&[Op::Conv2d(
        Conv2d::new(image, 2, [3, 3]).with_stride([0, 1]),
    )])
    .unwrap()];
    assert!(matches!(
        NetworkSpec::new(&zero_stride, Loss::Mse).validate(),
        Err(PcError::InvalidOp {
            layer: 1,
            op: 0,
            ..
        })
    ));
    let too_big = [Layer::from_ops(&[
        Op::Conv2d(Conv2d::new(image, 2, [3, 3])),
        Op::MaxPool2d(Pool2d::new(ImageShape::new(2, 2, 2), [3, 3])),
    ])
    .unwrap()];
    assert!(matches!(
        NetworkSpec::new(&too_big, Loss::Mse).validate(),
        Err(PcError::InvalidOp {
            layer: 1,
            op: 1,
            ..
        })
    ));
    let mismatch = [
        Layer::from_ops(&[Op::Conv2d(Conv2d::new(image, 2, [3, 3])), Op::Flatten]).unwrap(),
        Layer::from_ops(&[Op::AvgPool2d(Pool2d::new(ImageShape::new(3, 2, 2), [2, 2]))]).unwrap(),
    ];
    assert_eq!(
        NetworkSpec::new(&mismatch, Loss::Mse).validate(),
        Err(PcError::ShapeMismatch {
            layer: 2,
            op: 0,
            expected: 12,
            given: 8
        })
    );
}
