//! After the first call on a shape, a relaxation and a learning step allocate nothing.
//!
//! A counting global allocator (this test binary only) counts every allocation; each
//! check runs a warm-up call and then counts the allocations of later calls. The
//! allocator is the only `unsafe` here: it forwards every call to `System` unchanged.
#![allow(unsafe_code)]

mod families;

use pcnet_core::{
    Activation, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d, Portable,
    Settings, Sgd, Targets,
};
use pcnet_std::batch::{BatchRunner, Par};
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

fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(200));
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

const LAYERS: [Layer; 3] = [
    Layer::dense(30, 24, Activation::Relu),
    Layer::dense(24, 24, Activation::Tanh),
    Layer::dense(24, 4, Activation::Identity),
];

const IMAGE: ImageShape = ImageShape::new(2, 7, 7);
const CONV1: Conv2d = Conv2d::new(IMAGE, 3, [3, 3]).with_padding([1, 1]);
const POOL: Pool2d = Pool2d::new(CONV1.output_shape(), [2, 2]);
const CONV2: Conv2d = Conv2d::new(POOL.output_shape(), 2, [2, 2]);

/// A small CNN with 98 inputs (one 2 x 7 x 7 image per row), as the paper's CNN layers.
fn cnn_layers() -> [Layer; 3] {
    [
        Layer::from_ops(&[
            Op::Conv2d(CONV1),
            Op::Activation(Activation::Relu),
            Op::MaxPool2d(POOL),
        ])
        .expect("conv layer"),
        Layer::from_ops(&[
            Op::Conv2d(CONV2),
            Op::Activation(Activation::Tanh),
            Op::Flatten,
        ])
        .expect("conv layer"),
        Layer::dense(CONV2.output_shape().len(), 4, Activation::Identity),
    ]
}

fn check<B: pcnet_std::batch::RunnerBackend<f32>>(
    backend: B,
    (name, layers): (&str, &[Layer]),
    rows: usize,
    par: Par,
) {
    let spec = NetworkSpec::new(layers, Loss::CrossEntropy);
    let width = spec.input_len();
    let mut params: Vec<f32> = (0..spec.parameter_len())
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 40.0)
        .collect();
    let inputs: Vec<f32> = (0..rows * width)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
        .collect();
    let classes: Vec<usize> = (0..rows).map(|r| r % 4).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let mut runner = BatchRunner::with_backend(backend);
    let mut sgd = Sgd::new(0.01);
    let mut state = vec![0.0_f32; spec.parameter_len()];
    for settings in [
        Settings::exact(),
        Settings::fixed_pred(0.1, 20),
        Settings::strict(0.1, 20),
    ] {
        // First call on this shape: buffers (and a thread pool) are allocated here.
        runner.run(par, &spec, &params, batch, &settings).unwrap();
        runner
            .learn(
                par,
                &spec,
                &mut params,
                &mut sgd,
                &mut state,
                batch,
                &settings,
            )
            .unwrap();
        // Pool threads allocate their own state while they start (and exit); that is
        // set-up, not the loop: give them time to settle before counting.
        settle();
        let (relax, _) = count(|| {
            runner
                .run(par, &spec, &params, batch, &settings)
                .map(|o| o.loss())
        });
        let (learn, _) = count(|| {
            runner
                .learn(
                    par,
                    &spec,
                    &mut params,
                    &mut sgd,
                    &mut state,
                    batch,
                    &settings,
                )
                .map(|o| o.loss())
        });
        assert_eq!(
            (relax, learn),
            (0, 0),
            "{:?}, {name}, {rows} rows, {par:?}: allocations in a relaxation and a learning step",
            settings.algorithm
        );
    }
}

/// A plain `main` (`harness = false` in Cargo.toml): the counter is process-wide, and
/// libtest's own threads allocate now and then. Rayon's worker threads are counted too.
fn main() {
    // Chosen before counting: detection and the skipped-family lines allocate.
    let fast_families = families::families();
    let cnn = cnn_layers();
    for layers in [("dense", &LAYERS[..]), ("CNN", &cnn[..])] {
        check(Portable, layers, 1, Par::Seq);
        check(Portable, layers, 150, Par::Seq);
        check(Portable, layers, 150, Par::Rayon(2));
        settle(); // the dropped runner's pool threads exit
        for &fast in &fast_families {
            check(fast, layers, 1, Par::Seq);
            check(fast, layers, 150, Par::Seq);
            check(fast, layers, 150, Par::Rayon(2));
            settle();
        }
    }
    let names: Vec<String> = fast_families.iter().map(|f| f.isa().to_string()).collect();
    println!(
        "no_alloc: a relaxation and a learning step allocated nothing after the first call \
         (dense and CNN; Portable and Fast on the families {}; 1 and 150 rows; sequential \
         and 2 threads)",
        names.join(", ")
    );
}
