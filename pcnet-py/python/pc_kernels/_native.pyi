"""Type stubs of the extension module pc_kernels._native (Rust, PyO3). Use the
pc_kernels API (pc_kernels.infer, pc_kernels.Network, pc_kernels.torch.PCInfer) instead
of calling this module directly."""

from typing import List, Optional, Sequence, Tuple

import numpy as np

__version__: str

#: One op as pc_kernels normalises it: (kind, integers, negative slope).
RawOp = Tuple[str, Sequence[int], float]

class Network:
    """A checked network with its reusable buffers (one runner per dtype)."""

    def __init__(self, layers: Sequence[Sequence[RawOp]], input_shape: Sequence[int], loss: str) -> None: ...
    @property
    def depth(self) -> int: ...
    @property
    def loss(self) -> str: ...
    @property
    def activation_shapes(self) -> List[List[int]]: ...
    @property
    def parameter_shapes(self) -> List[List[int]]: ...
    @property
    def parameter_len(self) -> int: ...
    def results_len(self, rows: int) -> int: ...
    def infer_into(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        algorithm: str,
        eta: float,
        n: int,
        free_input: bool,
        vinit: Optional[np.ndarray],
        threads: int,
        results: np.ndarray,
        updates: np.ndarray,
    ) -> Tuple[float, int, float, Optional[float], bool]:
        """Runs one relaxation with the GIL released; returns
        (loss, iterations, residual, energy, converged)."""
        ...
    def safe_step_size(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        margin: float,
        iterations: int,
        tolerance: float,
        loss_curvature: bool,
    ) -> Tuple[float, float, int]:
        """Returns (step_size, lambda_max, iterations)."""
        ...
