// Network fixtures shared by pcnet-core's schedule tests: included (`include!`) by the
// unit tests in src/relax/tests.rs, which need the schedule's internals, and by the
// integration tests in tests/schedule.rs; the including file brings the names into scope
// (Activation, Layer, Loss, NetworkSpec, Targets, Vec, vec).

/// A deterministic pseudo-random sequence in [-1, 1) (a 64-bit LCG; quality is irrelevant,
/// only reproducibility).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f64) -> Vec<f64> {
        (0..len).map(|_| self.next() * scale).collect()
    }
}

struct Fixture {
    layers: Vec<Layer>,
    loss: Loss,
    params: Vec<f64>,
    inputs: Vec<f64>,
    values: Vec<f64>,
    classes: Vec<usize>,
}

impl Fixture {
    fn new(
        widths: &[usize],
        activations: &[Activation],
        loss: Loss,
        rows: usize,
        seed: u64,
    ) -> Fixture {
        let layers: Vec<Layer> = widths
            .windows(2)
            .zip(activations)
            .map(|(w, &a)| Layer::dense(w[0], w[1], a))
            .collect();
        let mut seq = Sequence(seed);
        let spec = NetworkSpec::new(&layers, loss);
        let params = seq.vec(spec.parameter_len(), 0.8);
        let inputs = seq.vec(rows * widths[0], 1.0);
        let out = *widths.last().unwrap();
        let values = seq.vec(rows * out, 1.0);
        let classes = (0..rows).map(|r| (r * 7 + seed as usize) % out).collect();
        Fixture {
            layers,
            loss,
            params,
            inputs,
            values,
            classes,
        }
    }

    fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec::new(&self.layers, self.loss)
    }

    fn rows(&self) -> usize {
        self.inputs.len() / self.spec().input_len()
    }

    fn targets(&self) -> Targets<'_, f64> {
        match self.loss {
            Loss::CrossEntropy => Targets::Classes(&self.classes),
            _ => Targets::Values(&self.values),
        }
    }
}

const SMOOTH: [Activation; 4] = [
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Softplus,
    Activation::Identity,
];

fn fixtures() -> Vec<Fixture> {
    vec![
        Fixture::new(
            &[3, 5, 4, 2],
            &SMOOTH[..3]
                .to_vec()
                .into_iter()
                .chain([Activation::Identity])
                .collect::<Vec<_>>(),
            Loss::Mse,
            3,
            1,
        ),
        Fixture::new(
            &[4, 6, 6, 5, 3],
            &[
                Activation::Tanh,
                Activation::Softplus,
                Activation::Sigmoid,
                Activation::Identity,
            ],
            Loss::CrossEntropy,
            4,
            2,
        ),
        Fixture::new(
            &[2, 3, 1],
            &[Activation::Sigmoid, Activation::Tanh],
            Loss::MseSum,
            2,
            3,
        ),
        Fixture::new(&[5, 4], &[Activation::Softplus], Loss::CrossEntropy, 2, 4),
    ]
}
