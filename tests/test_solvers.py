"""Tests for the built-in Sylvester solvers ``scipy`` and ``eigh``."""

from __future__ import annotations

import warnings

import pytest
import torch

from zsl_cl.plugin_manager import collect_components, get_plugin_manager
import zsl_cl.plugins.solvers as solvers_module
from zsl_cl.plugins.solvers import EighSolver, ScipySolver, relative_residual

# The eigh solver picks its CPU path by shape, and these variants force each path on every size.
# "eigh-torch" runs the torch.linalg.eigh path that CUDA inputs take.
SOLVER_VARIANTS = {
    "scipy": ("scipy", {}),
    "eigh": ("eigh", {}),
    "eigh-lapack": ("eigh", {"cpu_backend": "lapack"}),
    "eigh-torch": ("eigh", {"cpu_backend": "torch"}),
}
EIGH_BACKENDS = ["lapack", "torch"]


@pytest.fixture(scope="module")
def solvers():
    return collect_components(get_plugin_manager()).solver


@pytest.fixture(params=list(SOLVER_VARIANTS))
def solver(request, solvers):
    name, options = SOLVER_VARIANTS[request.param]
    return solvers.create(name, **options)


def make_sae_problem(k: int, d: int, n: int, classes: int, lam: float = 1.0, seed: int = 0):
    """Build A = S Sᵀ, B = λ X Xᵀ and C = (1 + λ) S Xᵀ with S repeating a few class codes."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(k, classes, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, classes, (n,), generator=generator)
    s = codes[:, labels]  # (k, n), rank <= classes
    x = torch.randn(d, n, generator=generator, dtype=torch.float64)  # (d, n), rank d when n >= d
    return s @ s.T, lam * x @ x.T, (1 + lam) * s @ x.T


def random_spd(size: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    m = torch.randn(size, size, generator=generator, dtype=torch.float64)
    return m @ m.T + size * torch.eye(size, dtype=torch.float64)


def kronecker_solve(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Solve A W + W B = C densely through (I ⊗ A + Bᵀ ⊗ I) vec(W) = vec(C), vec stacking columns."""
    k, d = c.shape
    # torch.kron raises on a transposed view in torch 2.14.1, hence the contiguous copy.
    operator = torch.kron(torch.eye(d, dtype=a.dtype), a) + torch.kron(b.T.contiguous(), torch.eye(k, dtype=a.dtype))
    vec_w = torch.linalg.solve(operator, c.T.reshape(-1))
    return vec_w.reshape(d, k).T


def test_registry_lists_both_solvers(solvers):
    assert "scipy" in solvers.names()
    assert "eigh" in solvers.names()
    assert solvers.get("eigh").plugin == "builtin-solvers"


def test_residual_on_spd_problem(solver):
    a, b = random_spd(40, seed=1), random_spd(17, seed=2)
    c = torch.randn(40, 17, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    w = solver(a, b, c)

    assert w.shape == (40, 17)
    assert w.dtype == torch.float64
    assert relative_residual(a, b, c, w) <= 1e-12


def test_residual_on_rank_deficient_sae_problem(solver):
    a, b, c = make_sae_problem(k=64, d=30, n=400, classes=5)
    assert torch.linalg.matrix_rank(a).item() == 5

    w = solver(a, b, c)

    assert relative_residual(a, b, c, w) <= 1e-10


def test_matches_kronecker_solve(solver):
    a, b = random_spd(5, seed=4), random_spd(3, seed=5)
    c = torch.randn(5, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    expected = kronecker_solve(a, b, c)

    w = solver(a, b, c)

    torch.testing.assert_close(w, expected, rtol=1e-10, atol=1e-12)


def test_kronecker_reference_satisfies_equation():
    # Guards the vec convention of the reference: a transposed Kronecker product would fail here.
    generator = torch.Generator().manual_seed(7)
    a = torch.randn(5, 5, generator=generator, dtype=torch.float64)
    b = torch.randn(3, 3, generator=generator, dtype=torch.float64)
    c = torch.randn(5, 3, generator=generator, dtype=torch.float64)

    w = kronecker_solve(a, b, c)

    torch.testing.assert_close(a @ w + w @ b, c, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", EIGH_BACKENDS)
@pytest.mark.parametrize("d", [26, 300])
def test_eigh_matches_scipy_at_study_size(solvers, backend, d):
    a, b, c = make_sae_problem(k=256, d=d, n=2000, classes=20)
    assert torch.linalg.matrix_rank(a).item() == 20

    w_eigh = solvers.create("eigh", cpu_backend=backend)(a, b, c)
    w_scipy = solvers.create("scipy")(a, b, c)

    difference = torch.linalg.matrix_norm(w_eigh - w_scipy) / torch.linalg.matrix_norm(w_scipy)
    assert difference.item() <= 1e-9
    assert relative_residual(a, b, c, w_eigh) <= 1e-10


@pytest.mark.parametrize("backend", EIGH_BACKENDS)
def test_eigh_no_warning_for_rounding_asymmetry(backend):
    a, b, c = make_sae_problem(k=32, d=10, n=200, classes=4)
    a = a + 1e-14 * torch.linalg.matrix_norm(a) * torch.triu(torch.ones_like(a), diagonal=1) / a.shape[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = EighSolver(cpu_backend=backend)(a, b, c)

    assert relative_residual(a, b, c, w) <= 1e-10


@pytest.mark.parametrize("asymmetric", ["A", "B"])
def test_eigh_falls_back_for_asymmetric_input(asymmetric):
    generator = torch.Generator().manual_seed(8)
    a, b = random_spd(6, seed=9), random_spd(4, seed=10)
    c = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    if asymmetric == "A":
        a = a + torch.triu(torch.ones_like(a), diagonal=1)
    else:
        b = b + torch.triu(torch.ones_like(b), diagonal=1)

    with pytest.warns(RuntimeWarning) as record:
        w = EighSolver()(a, b, c)

    assert len(record) == 1
    message = str(record[0].message)
    assert f"{asymmetric} (relative asymmetry" in message
    assert "fell back to the scipy solver" in message
    torch.testing.assert_close(w, kronecker_solve(a, b, c), rtol=1e-10, atol=1e-12)


def test_eigh_fallback_names_both_matrices():
    a = random_spd(4, seed=11) + torch.triu(torch.ones(4, 4, dtype=torch.float64), diagonal=1)
    b = random_spd(3, seed=12) + torch.triu(torch.ones(3, 3, dtype=torch.float64), diagonal=1)
    c = torch.ones(4, 3, dtype=torch.float64)

    with pytest.warns(RuntimeWarning, match=r"A \(relative asymmetry .*\) and B \(relative asymmetry .*\) are not symmetric"):
        w = EighSolver()(a, b, c)

    assert relative_residual(a, b, c, w) <= 1e-12


@pytest.mark.parametrize("backend", EIGH_BACKENDS)
def test_eigh_raises_for_opposite_eigenvalues(backend):
    # la = 2 and lb = -2 give the denominator la + lb = 0, so no unique W exists.
    a = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    b = torch.diag(torch.tensor([-2.0, 5.0], dtype=torch.float64))
    c = torch.ones(3, 2, dtype=torch.float64)

    with pytest.raises(ValueError, match=r"singular: the smallest \|la_i \+ lb_j\| is 0\.000e\+00.*Use λ > 0"):
        EighSolver(cpu_backend=backend)(a, b, c)


@pytest.mark.parametrize("backend", EIGH_BACKENDS)
def test_eigh_raises_when_b_is_rank_deficient(backend):
    # With fewer samples than feature dimensions, X Xᵀ is singular, and so is S Sᵀ.
    a, b, c = make_sae_problem(k=16, d=40, n=20, classes=3)

    with pytest.raises(ValueError, match="singular"):
        EighSolver(cpu_backend=backend)(a, b, c)


@pytest.mark.parametrize("backend", EIGH_BACKENDS)
def test_eigh_accepts_small_but_valid_denominator(backend):
    a = torch.diag(torch.tensor([0.0, 1.0], dtype=torch.float64))
    b = torch.diag(torch.tensor([1e-6, 1.0], dtype=torch.float64))
    c = torch.ones(2, 2, dtype=torch.float64)

    w = EighSolver(cpu_backend=backend)(a, b, c)

    torch.testing.assert_close(w, kronecker_solve(a, b, c), rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    "shapes",
    [((3, 3), (2, 2), (2, 3)), ((3, 2), (2, 2), (3, 2)), ((3, 3), (2, 2), (3, 3))],
    ids=["c-transposed", "a-not-square", "c-too-wide"],
)
def test_rejects_mismatched_shapes(solver, shapes):
    a, b, c = (torch.ones(shape, dtype=torch.float64) for shape in shapes)

    with pytest.raises(ValueError, match="must be square|must have shape"):
        solver(a, b, c)


def test_rejects_nan_input(solver):
    a, b = random_spd(3, seed=13), random_spd(2, seed=14)
    c = torch.ones(3, 2, dtype=torch.float64)
    c[1, 1] = float("nan")

    with pytest.raises(ValueError, match="C contains NaN"):
        solver(a, b, c)


def test_eigh_rejects_unknown_backend():
    with pytest.raises(ValueError, match="unknown cpu_backend 'cuda': choose one of auto, lapack, torch"):
        EighSolver(cpu_backend="cuda")


@pytest.mark.parametrize(("k", "d", "expected"), [(8, 20, True), (20, 8, False), (10, 10, False)])
def test_eigh_auto_backend_choice(monkeypatch, k, d, expected):
    calls = []
    original = solvers_module.solve_tridiagonal_cpu

    def spy(*args):
        calls.append(args[1].shape)
        return original(*args)

    monkeypatch.setattr(solvers_module, "solve_tridiagonal_cpu", spy)
    a, b, c = make_sae_problem(k=k, d=d, n=100, classes=3)

    w = EighSolver()(a, b, c)

    assert (len(calls) == 1) is expected
    assert relative_residual(a, b, c, w) <= 1e-10


def test_eigh_handles_single_column():
    a, b, c = make_sae_problem(k=6, d=1, n=30, classes=2)
    a = a + torch.eye(6, dtype=torch.float64)

    for backend in EIGH_BACKENDS:
        w = EighSolver(cpu_backend=backend)(a, b, c)
        torch.testing.assert_close(w, kronecker_solve(a, b, c), rtol=1e-10, atol=1e-12)


def test_relative_residual_detects_wrong_solution():
    a, b, c = make_sae_problem(k=20, d=8, n=100, classes=4)
    w = ScipySolver()(a, b, c)

    assert relative_residual(a, b, c, w) <= 1e-12
    assert relative_residual(a, b, c, w + 1e-3 * w.abs().max()) >= 1e-6


def test_relative_residual_of_zero_right_hand_side():
    a, b = random_spd(3, seed=15), random_spd(2, seed=16)
    c = torch.zeros(3, 2, dtype=torch.float64)

    assert relative_residual(a, b, c, torch.zeros(3, 2, dtype=torch.float64)) == 0.0
    assert relative_residual(a, b, c, torch.ones(3, 2, dtype=torch.float64)) > 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_eigh_on_cuda_matches_scipy():
    a, b, c = make_sae_problem(k=128, d=26, n=1000, classes=10)
    a_gpu, b_gpu, c_gpu = (t.cuda() for t in (a, b, c))

    w = EighSolver()(a_gpu, b_gpu, c_gpu)

    assert w.device.type == "cuda"
    torch.testing.assert_close(w.cpu(), ScipySolver()(a, b, c), rtol=1e-8, atol=1e-12)
