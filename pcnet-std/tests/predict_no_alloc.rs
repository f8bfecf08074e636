//! After the first call on a shape, `Network::predict_with` and
//! `Network::predict_classes_with` allocate nothing (and neither does pcnet-core's
//! `forward`, which they run).
//!
//! A counting global allocator (this test binary only) counts every allocation; each
//! check makes a warm-up call and then counts the allocations of later calls, on the same
//! batch and on a smaller one. The allocator is the only `unsafe` here: it forwards every
//! call to `System` unchanged.
#![allow(unsafe_code)]

use pcnet_core::{Activation, Conv2d, ImageShape, Layer, Loss, Op, Pool2d, Scalar};
use pcnet_std::network::{Network, Predictor};
use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::SeqCst) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: as `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let result = f();
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCATIONS.load(Ordering::SeqCst), result)
}

fn cnn<T: Scalar>() -> Network<T> {
    let image = ImageShape::new(1, 6, 6);
    let conv = Conv2d::new(image, 3, [3, 3]).with_padding([1, 1]);
    let pool = Pool2d::new(conv.output_shape(), [2, 2]);
    Network::<T>::builder(36)
        .layer(
            Layer::from_ops(&[
                Op::Conv2d(conv),
                Op::Activation(Activation::Relu),
                Op::MaxPool2d(pool),
                Op::Flatten,
            ])
            .unwrap(),
        )
        .dense(4, Activation::Identity)
        .loss(Loss::CrossEntropy)
        .seed(3)
        .build()
        .unwrap()
}

fn check<T: Scalar>(name: &str, net: &Network<T>, rows: usize)
where
    pcnet_std::fast::Fast: pcnet_std::batch::RunnerBackend<T>,
{
    let inputs: Vec<T> = (0..rows * net.input_len())
        .map(|i| T::from_f64(((i * 37 + 11) % 23) as f64 / 11.5 - 1.0))
        .collect();
    let mut predictor = Predictor::new();
    let first = net.predict_with(&mut predictor, &inputs).unwrap().to_vec();
    net.predict_classes_with(&mut predictor, &inputs).unwrap();
    let (again, same) = count(|| {
        let outputs = net.predict_with(&mut predictor, &inputs).unwrap();
        outputs == &first[..]
    });
    assert!(same, "{name}: a second call gives the same bits");
    assert_eq!(
        again, 0,
        "{name}, {rows} rows: predict_with allocated {again} times"
    );
    let (classes, _) = count(|| {
        net.predict_classes_with(&mut predictor, &inputs)
            .unwrap()
            .len()
    });
    assert_eq!(
        classes, 0,
        "{name}, {rows} rows: predict_classes_with allocated {classes} times"
    );
    let fewer = &inputs[..net.input_len()];
    let (smaller, _) = count(|| net.predict_with(&mut predictor, fewer).unwrap().len());
    assert_eq!(
        smaller, 0,
        "{name}: a smaller batch after a larger one allocated {smaller} times"
    );
}

fn main() {
    let dense = Network::<f64>::mlp("30-24-16-4", Activation::Tanh, Loss::Mse, 1).unwrap();
    for rows in [1, 150] {
        check("dense f64", &dense, rows);
        check("dense f32", &dense.cast::<f32>(), rows);
        check("CNN f64", &cnn::<f64>(), rows);
        check("CNN f32", &cnn::<f32>(), rows);
    }
    println!(
        "predict_no_alloc: predict_with and predict_classes_with allocated nothing after the \
         first call (dense and CNN; f32 and f64; 1 and 150 rows; then 1 row)"
    );
}
