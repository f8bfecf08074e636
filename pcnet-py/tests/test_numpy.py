"""The numpy API: every bundled Torch2PC case (f64, 1e-9 as the Rust suite), float32
against float64, threads, and every class of bad input (a Python exception naming the
problem, never a crash)."""

import json
import pathlib
import threading

import numpy as np
import pytest

import pc_kernels

CASES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "torch2pc"
CASE_FILES = sorted(CASES.rglob("*.json"))
# A case passes when |actual - expected| / max(|expected|, 1e-3) <= 1e-9 everywhere
# (relative 1e-9, absolute 1e-12 near zero), as pc-bench/src/reference.rs compares.
RELATIVE = 1e-9
FLOOR = 1e-12 / RELATIVE
ALGORITHMS = {"exact": "Exact", "fixed_pred": "FixedPred", "strict": "Strict"}


def load(path):
    case = json.loads(path.read_text())
    layers, params = [], []
    for layer in case["layers"]:
        if "ops" in layer:
            ops = []
            for op in layer["ops"]:
                ops.append({k: v for k, v in op.items() if k not in ("weight", "bias")})
                if "weight" in op:
                    params += [np.array(op["weight"], dtype=np.float64), np.array(op["bias"], dtype=np.float64)]
            layers.append(ops)
        else:
            layers.append([{"op": "linear", "in": layer["in"], "out": layer["out"]}, layer["activation"]])
            params += [np.array(layer["weight"], dtype=np.float64), np.array(layer["bias"], dtype=np.float64)]
    x = np.array(case["x"], dtype=np.float64)
    if case["loss"] == "cross_entropy":
        y = np.array(case["y"], dtype=np.int64)
    else:
        y = np.array(case["y"], dtype=np.float64)
    return case, layers, params, x, y


def expected_updates(case):
    expected = case["expected"]
    if "grads" in expected:
        return [np.array(entry[key]) for layer in expected["grads"] for entry in layer for key in ("weight", "bias")]
    return [a for pair in zip(expected["grad_weight"], expected["grad_bias"]) for a in map(np.array, pair)]


def worst_error(actual, expected):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), FLOOR)))


def run_case(path, threads=1):
    case, layers, params, x, y = load(path)
    algorithm = ALGORITHMS[case["algorithm"]]
    result = pc_kernels.infer(
        layers,
        params,
        x,
        y,
        algorithm=algorithm,
        eta=case["eta"] if case["eta"] is not None else 0.1,
        n=case["n"] if case["n"] is not None else 0,
        loss=case["loss"],
        threads=threads,
        free_input=algorithm == "FixedPred",  # Torch2PC's FixedPred moves v[0]
    )
    return case, result


def compare(case, result):
    expected = case["expected"]
    fields = [("loss", result.loss, expected["loss"]), ("dldy", result.dldy, expected["dldy"])]
    for key in ("vhat", "v", "epsilon"):
        for layer, value in enumerate(expected[key]):
            if value is not None:
                fields.append((f"{key}[{layer}]", getattr(result, key)[layer], value))
    for index, (actual, value) in enumerate(zip(result.updates, expected_updates(case))):
        fields.append((f"updates[{index}]", actual, value))
    assert len(result.updates) == len(expected_updates(case))
    worst = {name: worst_error(actual, value) for name, actual, value in fields}
    field = max(worst, key=worst.get)
    assert worst[field] <= RELATIVE, f"{field}: scaled error {worst[field]:.3e} > {RELATIVE}"


def test_the_bundled_cases_are_found():
    assert len(CASE_FILES) >= 14, CASE_FILES


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_torch2pc_case_f64(path):
    case, result = run_case(path)
    compare(case, result)
    if case["algorithm"] != "exact":
        assert result.report.iterations == case["n"]


@pytest.mark.parametrize("path", CASE_FILES[:3], ids=[p.stem for p in CASE_FILES[:3]])
def test_network_object_and_flat_parameters_give_the_same_bits(path):
    case, layers, params, x, y = load(path)
    network = pc_kernels.Network(layers, x.shape[1:], case["loss"])
    algorithm = ALGORITHMS[case["algorithm"]]
    n = case["n"] or 0
    eta = case["eta"] or 0.1
    listed = network.infer(params, x, y, algorithm, eta, n)
    flat = network.infer(network.flatten_parameters(params), x, y, algorithm, eta, n)
    assert listed.loss == flat.loss
    for a, b in zip(listed.updates, flat.updates):
        assert np.array_equal(a, b)


def random_mlp(widths, activation, rng, dtype):
    layers = []
    params = []
    for index, (a, b) in enumerate(zip(widths, widths[1:])):
        ops = [{"op": "linear", "in": a, "out": b}]
        if index + 2 < len(widths):
            ops.append(activation)
        layers.append(ops)
        params += [rng.uniform(-1, 1, size=(b, a)) / np.sqrt(a), rng.uniform(-1, 1, size=b) / np.sqrt(a)]
    return layers, [p.astype(dtype) for p in params]


@pytest.mark.parametrize("algorithm", ["FixedPred", "Strict", "Exact"])
def test_float32_matches_float64_to_float32_precision(algorithm):
    rng = np.random.default_rng(7)
    layers, params = random_mlp([12, 16, 16, 5], "tanh", rng, np.float64)
    x = rng.normal(size=(9, 12))
    y = rng.integers(0, 5, size=9)
    wide = pc_kernels.infer(layers, params, x, y, algorithm, 0.1, 20, loss="cross_entropy")
    narrow = pc_kernels.infer(
        layers, [p.astype(np.float32) for p in params], x.astype(np.float32), y, algorithm, 0.1, 20, loss="cross_entropy"
    )
    assert narrow.updates[0].dtype == np.float32 and narrow.v[1].dtype == np.float32
    assert abs(narrow.loss - wide.loss) <= 1e-5 * abs(wide.loss)
    for a, b in zip(narrow.updates, wide.updates):
        # float32 rounding (2^-24 relative) grows over 20 iterations; 1e-4 of the largest.
        assert np.max(np.abs(a - b)) <= 1e-4 * max(np.max(np.abs(b)), 1e-6)
    for a, b in zip(narrow.v, wide.v):
        assert np.max(np.abs(a - b)) <= 1e-4 * max(np.max(np.abs(b)), 1e-6)


@pytest.mark.parametrize("algorithm", ["FixedPred", "Strict"])
def test_threads_change_no_bit(algorithm):
    rng = np.random.default_rng(3)
    layers, params = random_mlp([10, 32, 32, 4], "relu", rng, np.float32)
    x = rng.normal(size=(300, 10)).astype(np.float32)  # three row blocks of 128
    y = rng.normal(size=(300, 4)).astype(np.float32)
    one = pc_kernels.infer(layers, params, x, y, algorithm, threads=1)
    for threads in (2, 0):
        many = pc_kernels.infer(layers, params, x, y, algorithm, threads=threads)
        assert one.loss == many.loss
        for a, b in zip(one.updates + one.v + one.epsilon, many.updates + many.v + many.epsilon):
            assert np.array_equal(a, b)


def test_results_are_fresh_arrays_each_call():
    rng = np.random.default_rng(5)
    layers, params = random_mlp([3, 4, 2], "tanh", rng, np.float64)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 2))
    first = pc_kernels.infer(layers, params, x, y)
    kept = first.v[1].copy()
    pc_kernels.infer(layers, params, x * 2, y)
    assert np.array_equal(first.v[1], kept)
    assert not np.shares_memory(first.v[1], x)


def test_gil_is_released_so_calls_overlap_from_threads():
    rng = np.random.default_rng(11)
    layers, params = random_mlp([64, 64, 64, 8], "tanh", rng, np.float64)
    network = pc_kernels.Network(layers, (64,), "mse")
    flat = network.flatten_parameters(params)
    x, y = rng.normal(size=(256, 64)), rng.normal(size=(256, 8))
    reference = network.infer(flat, x, y, "Strict", 0.1, 50)
    outcomes = []

    def work():
        outcomes.append(network.infer(flat, x, y, "Strict", 0.1, 50))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert outcome.loss == reference.loss
        assert all(np.array_equal(a, b) for a, b in zip(outcome.updates, reference.updates))


def test_safe_step_size_is_in_range_and_keeps_strict_stable():
    rng = np.random.default_rng(2)
    layers, params = random_mlp([6, 12, 12, 3], "tanh", rng, np.float64)
    params = [p * 3 for p in params]
    x, y = rng.normal(size=(4, 6)), rng.normal(size=(4, 3))
    step = pc_kernels.safe_step_size(layers, params, x, y)
    assert 0 < step.step_size < 2 and step.lambda_max >= 0 and step.iterations >= 1
    assert abs(step.step_size - 0.9 * 2 / max(step.lambda_max, 1.0)) <= 1e-12
    result = pc_kernels.infer(layers, params, x, y, "Strict", eta=step.step_size, n=100)
    assert result.report.energy <= result.loss  # F starts at the loss and descends


def test_vinit_starts_strict_from_given_beliefs():
    rng = np.random.default_rng(4)
    layers, params = random_mlp([5, 7, 6, 2], "tanh", rng, np.float64)
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(3, 2))
    default = pc_kernels.infer(layers, params, x, y, "Strict", 0.1, 5)
    same = pc_kernels.infer(layers, params, x, y, "Strict", 0.1, 5, vinit=default.vhat)
    assert np.array_equal(default.v[1], same.v[1])
    moved = [v.copy() for v in default.vhat]
    moved[1] += 0.5
    other = pc_kernels.infer(layers, params, x, y, "Strict", 0.1, 5, vinit=moved)
    assert not np.allclose(other.v[1], default.v[1])


# ---- bad input: each class is a named Python exception ----


@pytest.fixture
def small():
    rng = np.random.default_rng(9)
    layers, params = random_mlp([4, 6, 3], "relu", rng, np.float32)
    x = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.normal(size=(5, 3)).astype(np.float32)
    return layers, params, x, y


def test_wrong_dtype_is_a_type_error(small):
    layers, params, x, y = small
    with pytest.raises(TypeError, match=r"x has dtype float64, expected float32"):
        pc_kernels.infer(layers, params, x.astype(np.float64), y)
    with pytest.raises(TypeError, match="float32 or float64"):
        pc_kernels.infer(layers, [p.astype(np.int32) for p in params], x, y)
    with pytest.raises(TypeError, match="mix dtypes"):
        pc_kernels.infer(layers, [params[0].astype(np.float64)] + params[1:], x, y)
    with pytest.raises(TypeError, match="x must be a numpy array"):
        pc_kernels.infer(layers, params, x.tolist(), y)
    with pytest.raises(TypeError, match="integer class indices"):
        pc_kernels.infer(layers, params, x, np.zeros(5, np.float32), loss="cross_entropy")


def test_non_contiguous_input_is_a_value_error(small):
    layers, params, x, y = small
    wide = np.zeros((5, 8), np.float32)
    with pytest.raises(ValueError, match="x is not C-contiguous"):
        pc_kernels.infer(layers, params, wide[:, ::2], y)
    with pytest.raises(ValueError, match="x is not C-contiguous"):
        pc_kernels.infer(layers, params, np.asfortranarray(x), y)


def test_shape_mismatches_are_value_errors(small):
    layers, params, x, y = small
    with pytest.raises(ValueError, match=r"params\[0\] has shape \(4, 6\), expected \(6, 4\)"):
        pc_kernels.infer(layers, [params[0].T.copy()] + params[1:], x, y)
    with pytest.raises(ValueError, match="params has 3 arrays"):
        pc_kernels.infer(layers, params[:3], x, y)
    with pytest.raises(ValueError, match="y has shape"):
        pc_kernels.infer(layers, params, x, y[:4])
    with pytest.raises(ValueError, match="in_features 5"):
        pc_kernels.infer([[{"op": "linear", "in": 5, "out": 3}]], params[:2], x, y)
    network = pc_kernels.Network(layers, (4,))
    with pytest.raises(ValueError, match=r"x has shape \[5, 3\]"):
        network.infer(params, x[:, :3].copy(), y)
    with pytest.raises(ValueError, match="Flatten"):
        pc_kernels.infer([[{"op": "linear", "in": 4, "out": 3}]], params[:2], x.reshape(5, 1, 2, 2), y)
    with pytest.raises(ValueError, match="unknown op"):
        pc_kernels.infer([["gelu"]], [], x, y)
    with pytest.raises(ValueError, match="class index"):
        pc_kernels.infer(layers, params, x, np.array([0, 1, -1, 2, 0]), loss="cross_entropy")


def test_nan_and_bad_hyperparameters_are_pc_errors_as_value_errors(small):
    layers, params, x, y = small
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="inputs"):
        pc_kernels.infer(layers, params, bad, y)
    nan_params = [p.copy() for p in params]
    nan_params[2][0, 0] = np.inf
    with pytest.raises(ValueError, match="parameters"):
        pc_kernels.infer(layers, nan_params, x, y)
    with pytest.raises(ValueError, match="step size"):
        pc_kernels.infer(layers, params, x, y, eta=2.5)
    with pytest.raises(ValueError, match="algorithm"):
        pc_kernels.infer(layers, params, x, y, algorithm="Backprop")
    with pytest.raises(ValueError, match="class"):
        pc_kernels.infer(layers, params, x, np.array([0, 1, 7, 2, 0]), loss="cross_entropy")
    with pytest.raises(ValueError, match="loss must be"):
        pc_kernels.infer(layers, params, x, y, loss="hinge")
    with pytest.raises(ValueError, match="no rows"):
        pc_kernels.infer(layers, params, x[:0], y[:0])


def test_a_read_only_input_is_read_in_place(small):
    layers, params, x, y = small
    x.flags.writeable = False
    result = pc_kernels.infer(layers, params, x, y)
    assert np.isfinite(result.loss)
