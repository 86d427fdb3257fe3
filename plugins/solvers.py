"""Built-in Sylvester solvers for the semantic auto-encoder: ``A W + W B = C``.

The SAE encoder W (k, d) solves ``S Sᵀ W + W (λ X Xᵀ) = (1 + λ) S Xᵀ``, where S (k, N)
are latent codes and X (d, N) the data. A = S Sᵀ is symmetric positive semi-definite
(rank-deficient when S repeats a few class codes) and B = λ X Xᵀ is symmetric positive
definite when X has rank d, so every ``la_i + lb_j`` is positive and W is unique.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch

from zsl_cl.hookspecs import hookimpl

__all__ = ["ScipySolver", "EighSolver", "relative_residual", "solve_eigh", "solve_tridiagonal_cpu", "register_solvers"]


def relative_residual(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> float:
    """Return ``‖A W + W B − C‖_F / ‖C‖_F``, computed in float64.

    When C is zero the relative residual is undefined, so the absolute ``‖A W + W B‖_F``
    is returned instead.
    """
    a, b, c, w = (t.to(torch.float64) for t in (a, b, c, w))
    residual = torch.linalg.matrix_norm(a @ w + w @ b - c).item()
    c_norm = torch.linalg.matrix_norm(c).item()
    return residual / c_norm if c_norm > 0 else residual


def _validate_inputs(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> None:
    """Raise ValueError unless A (k, k), B (d, d) and C (k, d) are finite and on one device."""
    for name, matrix in (("A", a), ("B", b), ("C", c)):
        if not isinstance(matrix, torch.Tensor) or matrix.ndim != 2:
            raise ValueError(f"{name} must be a 2-D torch.Tensor, got {type(matrix).__name__} {getattr(matrix, 'shape', '')}")
        if not torch.isfinite(matrix).all():
            raise ValueError(f"{name} contains NaN or infinite values: check the latent codes and data it was built from")
    if a.shape[0] != a.shape[1] or b.shape[0] != b.shape[1]:
        raise ValueError(f"A and B must be square, got A {tuple(a.shape)} and B {tuple(b.shape)}")
    if c.shape != (a.shape[0], b.shape[0]):
        raise ValueError(f"C must have shape (k, d) = {(a.shape[0], b.shape[0])} to match A and B, got {tuple(c.shape)}")
    if not a.device == b.device == c.device:
        raise ValueError(f"A, B and C must be on one device, got {a.device}, {b.device} and {c.device}")


class ScipySolver:
    """Bartels–Stewart solver from ``scipy.linalg.solve_sylvester``: the reference implementation.

    Works for any square A and B, symmetric or not. It runs on the CPU in float64, so
    CUDA inputs are copied to the host and W is copied back to C's device and dtype.
    """

    def __call__(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        _validate_inputs(a, b, c)
        a_np, b_np, c_np = (t.detach().to("cpu", torch.float64).numpy() for t in (a, b, c))
        w = scipy.linalg.solve_sylvester(a_np, b_np, c_np)  # (k, d)
        return torch.from_numpy(np.ascontiguousarray(w)).to(device=c.device, dtype=c.dtype)


def _asymmetry(matrix: torch.Tensor) -> float:
    """Return ``‖M − Mᵀ‖_F / ‖M‖_F``, or 0 for a zero matrix."""
    norm = torch.linalg.matrix_norm(matrix).item()
    if norm == 0:
        return 0.0
    return torch.linalg.matrix_norm(matrix - matrix.T).item() / norm


class EighSolver:
    """Solver for symmetric A and B from their eigendecompositions.

    With ``A = Ua diag(la) Uaᵀ`` and ``B = Ub diag(lb) Ubᵀ``, the equation becomes
    ``la_i W̃_ij + W̃_ij lb_j = C̃_ij`` in the eigenbases, so
    ``W = Ua [(Uaᵀ C Ub) / (la_i + lb_j)] Ubᵀ``. This needs no real Schur form, which
    is what makes Bartels–Stewart slow for large d.

    CUDA inputs use ``torch.linalg.eigh`` for both matrices (:func:`solve_eigh`). CPU inputs
    with d > k take the LAPACK path of :func:`solve_tridiagonal_cpu`, which never forms Ub.
    NOTE: the CUDA path has not run on a GPU yet, and its test skips without one.

    Args:
        symmetry_rtol: maximum ``‖M − Mᵀ‖_F / ‖M‖_F`` for A or B to count as symmetric.
            Above it, the solver warns once and falls back to :class:`ScipySolver`.
        singular_rtol: the equation counts as singular when ``min |la_i + lb_j|`` is at
            most ``singular_rtol · max |la_i + lb_j|``. The default ``None`` uses
            ``max(k, d) · eps`` of float64, the numerical-rank tolerance of
            ``numpy.linalg.matrix_rank``. A smaller denominator cannot be distinguished
            from zero in float64.
        cpu_backend: ``"lapack"`` for :func:`solve_tridiagonal_cpu`, ``"torch"`` for
            :func:`solve_eigh`, or ``"auto"`` (default) for the LAPACK path when d > k.
            Skipping B's eigenvectors saves time only when B is the larger matrix. For
            d <= k both paths cost about the same, and the torch path avoids a second
            BLAS library (scipy's), whose threads compete with torch's on a busy CPU.
    """

    def __init__(self, symmetry_rtol: float = 1e-10, singular_rtol: float | None = None, cpu_backend: str = "auto") -> None:
        if symmetry_rtol < 0:
            raise ValueError(f"symmetry_rtol must be >= 0, got {symmetry_rtol}")
        if singular_rtol is not None and singular_rtol < 0:
            raise ValueError(f"singular_rtol must be >= 0 or None, got {singular_rtol}")
        if cpu_backend not in CPU_BACKENDS:
            raise ValueError(f"unknown cpu_backend {cpu_backend!r}: choose one of {', '.join(CPU_BACKENDS)}")
        self.symmetry_rtol = symmetry_rtol
        self.singular_rtol = singular_rtol
        self.cpu_backend = cpu_backend

    def __call__(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        _validate_inputs(a, b, c)
        a64, b64, c64 = (t.detach().to(torch.float64) for t in (a, b, c))

        asymmetries = {"A": _asymmetry(a64), "B": _asymmetry(b64)}
        offending = {name: value for name, value in asymmetries.items() if value > self.symmetry_rtol}
        if offending:
            self._warn_fallback(offending)
            return ScipySolver()(a, b, c)

        # eigh and dsytrd read only one triangle, so symmetrise to split rounding-level asymmetry evenly.
        a64 = (a64 + a64.T) / 2
        b64 = (b64 + b64.T) / 2
        if self._uses_lapack(a64, b64):
            w = solve_tridiagonal_cpu(a64, b64, c64, self._check_not_singular)
        else:
            w = solve_eigh(a64, b64, c64, self._check_not_singular)
        return w.to(dtype=c.dtype)

    def _uses_lapack(self, a: torch.Tensor, b: torch.Tensor) -> bool:
        if a.device.type != "cpu" or self.cpu_backend == "torch":
            return False
        return self.cpu_backend == "lapack" or b.shape[0] > a.shape[0]

    def _warn_fallback(self, offending: dict[str, float]) -> None:
        details = " and ".join(f"{name} (relative asymmetry {value:.1e})" for name, value in offending.items())
        verb = "is" if len(offending) == 1 else "are"
        warnings.warn(
            f"eigh solver: {details} {verb} not symmetric within symmetry_rtol={self.symmetry_rtol:.0e}, "
            f"so it fell back to the scipy solver",
            RuntimeWarning,
            stacklevel=3,
        )

    def _check_not_singular(self, denominators: torch.Tensor) -> None:
        """Raise ValueError when some ``la_i + lb_j`` in denominators (k, d) is zero at float64 precision."""
        magnitudes = denominators.abs()
        smallest = magnitudes.min().item()
        largest = magnitudes.max().item()
        rtol = self.singular_rtol
        if rtol is None:
            rtol = max(denominators.shape) * torch.finfo(torch.float64).eps
        if smallest <= rtol * largest:
            raise ValueError(
                f"Sylvester equation A W + W B = C is singular: the smallest |la_i + lb_j| is {smallest:.3e}, "
                f"at most {rtol:.1e} x the largest ({largest:.3e}). Use λ > 0 and check that X has rank d "
                f"(at least d samples, no collinear features) so that B = λ X Xᵀ is positive definite"
            )


CPU_BACKENDS = ("auto", "lapack", "torch")


def solve_eigh(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, check_denominators) -> torch.Tensor:
    """Solve symmetric float64 ``A W + W B = C`` with ``torch.linalg.eigh`` on the inputs' device.

    ``check_denominators`` receives the (k, d) matrix of ``la_i + lb_j`` before the division.
    """
    la, ua = torch.linalg.eigh(a)  # (k,), (k, k)
    lb, ub = torch.linalg.eigh(b)  # (d,), (d, d)
    denominators = la[:, None] + lb[None, :]  # (k, d)
    check_denominators(denominators)

    c_tilde = ua.T @ c @ ub  # (k, d), C in the eigenbases
    return ua @ (c_tilde / denominators) @ ub.T  # (k, d)


def solve_tridiagonal_cpu(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, check_denominators) -> torch.Tensor:
    """Solve symmetric float64 CPU ``A W + W B = C`` without forming B's eigenvectors.

    B is only reduced to tridiagonal form ``B = Q T Qᵀ`` (LAPACK ``dsytrd``), with Q kept as
    Householder reflectors. In A's eigenbasis, row i of ``Y = Uaᵀ W Q`` then solves the
    tridiagonal system ``Y_i (T + la_i I) = (Uaᵀ C Q)_i``. This is the Hessenberg–Schur
    method of Golub, Nash and Van Loan (1979) for a symmetric B. It gives the same W as
    :func:`solve_eigh` but skips the eigenvector stage of ``eigh(B)``, which is most of its
    cost on the CPU. T has the eigenvalues lb of B, so ``check_denominators`` still receives
    every ``la_i + lb_j``.
    """
    la, ua = torch.linalg.eigh(a)  # (k,), (k, k)
    reflectors, diagonal, off_diagonal, tau = _tridiagonalize(b.numpy())
    lb = scipy.linalg.eigvalsh_tridiagonal(diagonal, off_diagonal)  # (d,), O(d²)
    check_denominators(la[:, None] + torch.from_numpy(lb)[None, :])

    rhs = _multiply_by_q((ua.T @ c).numpy(), reflectors, tau, transpose=False)  # (k, d) = Uaᵀ C Q
    y = _solve_shifted_tridiagonal(diagonal, off_diagonal, la.numpy(), rhs)  # (k, d) = Uaᵀ W Q
    w = _multiply_by_q(y, reflectors, tau, transpose=True)  # (k, d) = Uaᵀ W
    return ua @ torch.from_numpy(w)


def _solve_shifted_tridiagonal(diagonal: np.ndarray, off_diagonal: np.ndarray, shifts: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Return y (k, d) with ``y_i (T + shifts_i I) = rhs_i`` for symmetric tridiagonal T (d, d)."""
    if diagonal.shape[0] == 1:
        return rhs / (diagonal[0] + shifts[:, None])  # dgtsv's wrapper rejects an empty off-diagonal.
    y = np.empty_like(rhs)
    for i, shift in enumerate(shifts):
        # T is symmetric, so y_i (T + shift I) = rhs_i is the column system (T + shift I) y_iᵀ = rhs_iᵀ.
        *_, solution, info = scipy.linalg.lapack.dgtsv(off_diagonal, diagonal + shift, off_diagonal, rhs[i])
        if info != 0:
            raise ValueError(
                f"Sylvester equation A W + W B = C is singular: T + la_{i} I has a zero pivot at row {info}. "
                f"Use λ > 0 and check that X has rank d so that B = λ X Xᵀ is positive definite"
            )
        y[i] = solution
    return y


def _tridiagonalize(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce symmetric b (d, d) to ``Q T Qᵀ``: return the reflectors, T's diagonal and off-diagonal, and tau."""
    lwork, info = scipy.linalg.lapack.dsytrd_lwork(b.shape[0], lower=1)
    # The wrapper's default workspace of d makes dsytrd run unblocked, several times slower.
    reflectors, diagonal, off_diagonal, tau, info = scipy.linalg.lapack.dsytrd(np.asfortranarray(b), lower=1, lwork=int(lwork))
    if info != 0:
        raise ValueError(f"LAPACK dsytrd failed with info={info} on B of shape {b.shape}: check that B is finite and square")
    return reflectors, diagonal, off_diagonal, tau


def _multiply_by_q(g: np.ndarray, reflectors: np.ndarray, tau: np.ndarray, transpose: bool) -> np.ndarray:
    """Return g (k, d) times Q, or times Qᵀ when transpose, for Q from a lower ``dsytrd``.

    Q's reflectors act on indices 1..d−1 only, as a QR factor stored in ``reflectors[1:, :-1]``,
    which is what LAPACK ``dormtr`` does internally (scipy does not wrap dormtr).
    """
    trans = "T" if transpose else "N"
    out = np.array(g, dtype=np.float64, order="C", copy=True)
    if g.shape[1] < 2:
        return out  # Q is the identity for d = 1.
    block = np.asfortranarray(g[:, 1:])  # (k, d − 1)
    householder = reflectors[1:, :-1]  # (d − 1, d − 1)
    _, work, info = scipy.linalg.lapack.dormqr("R", trans, householder, tau, block, -1)
    product, _, info = scipy.linalg.lapack.dormqr("R", trans, householder, tau, block, int(work[0]))
    if info != 0:
        raise ValueError(f"LAPACK dormqr failed with info={info} on a block of shape {block.shape}: check that A, B and C are finite")
    out[:, 1:] = product
    return out


@hookimpl
def register_solvers(register):
    register("scipy", ScipySolver, "Bartels–Stewart via scipy.linalg.solve_sylvester (CPU, any square A and B); the reference")
    register("eigh", EighSolver, "Diagonalises symmetric A and B with torch.linalg.eigh (CPU or CUDA); falls back to scipy otherwise")
