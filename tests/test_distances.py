"""Tests for the built-in latent-space distances."""

from __future__ import annotations

import math

import pytest
import torch

from zsl_cl.plugin_manager import collect_components, get_plugin_manager
from zsl_cl.plugins.distances import Cosine, Euclidean, Mahalanobis, ZScoreCosine, ledoit_wolf_shrinkage

DISTANCE_NAMES = ["euclidean", "cosine", "zscore-cosine", "mahalanobis"]


@pytest.fixture(scope="module")
def distances():
    return collect_components(get_plugin_manager()).distance


def fitted(distances, name: str, k: int = 4):
    """Create a distance and fit it on clustered latents, so that mahalanobis can score."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat_interleave(20)
    latents = torch.randn(6, k, generator=generator)[labels] + 0.3 * torch.randn(120, k, generator=generator)
    distance = distances.create(name)
    distance.fit(latents, labels)
    return distance


def test_registry_lists_all_distances(distances):
    assert distances.names() == sorted(DISTANCE_NAMES)


def test_euclidean_known_values():
    samples = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    references = torch.tensor([[1.0, 0.0], [3.0, 3.0]])

    scores = Euclidean().scores(samples, references)

    expected = -torch.tensor([[1.0, math.sqrt(18.0)], [math.sqrt(20.0), 1.0]])
    torch.testing.assert_close(scores, expected)
    assert scores.argmax(dim=1).tolist() == [0, 1]


def test_cosine_known_values():
    samples = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    references = torch.tensor([[1.0, 1.0], [-3.0, 0.0]])

    scores = Cosine().scores(samples, references)

    expected = torch.tensor([[1 / math.sqrt(2.0), -1.0], [1 / math.sqrt(2.0), 0.0]])
    torch.testing.assert_close(scores, expected)


def test_cosine_invariant_to_scale():
    generator = torch.Generator().manual_seed(1)
    samples = torch.randn(7, 5, generator=generator)
    references = torch.randn(3, 5, generator=generator)

    scaled = Cosine().scores(2.5 * samples, 0.1 * references)

    torch.testing.assert_close(scaled, Cosine().scores(samples, references))


def test_cosine_zero_vector_scores_zero():
    scores = Cosine().scores(torch.zeros(1, 3), torch.tensor([[1.0, 2.0, 3.0]]))

    assert scores.item() == 0.0


def hub_case():
    """Samples that all lean toward reference 0, so raw cosine gives sample 0 to it as well.

    Reference 0 is e1, reference 1 is e2. Every sample has cosine 0.8 or 0.7 with e1, but
    only sample 0 has any e2 component (cosine 0.6).
    """
    samples = torch.tensor(
        [
            [0.8, 0.6, 0.0],
            [0.8, 0.0, 0.6],
            [0.8, 0.0, -0.6],
            [0.7, 0.0, math.sqrt(1 - 0.49)],
        ]
    )
    references = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return samples, references


def test_zscore_cosine_beats_dominant_reference():
    samples, references = hub_case()

    raw = Cosine().scores(samples, references)
    standardised = ZScoreCosine().scores(samples, references)

    assert raw[0].argmax().item() == 0
    assert standardised[0].argmax().item() == 1


def test_zscore_cosine_known_values():
    samples, references = hub_case()

    scores = ZScoreCosine().scores(samples, references)

    # Column 0 is [0.8, 0.8, 0.8, 0.7]: mean 0.775, sample std (N − 1) 0.05.
    # Column 1 is [0.6, 0, 0, 0]: mean 0.15, sample std 0.3.
    expected = torch.tensor([[0.5, 1.5], [0.5, -0.5], [0.5, -0.5], [-1.5, -0.5]])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)


def test_zscore_cosine_standardises_columns():
    generator = torch.Generator().manual_seed(2)
    samples = torch.randn(50, 8, generator=generator, dtype=torch.float64)
    references = torch.randn(5, 8, generator=generator, dtype=torch.float64)

    scores = ZScoreCosine().scores(samples, references)

    torch.testing.assert_close(scores.mean(dim=0), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(scores.std(dim=0), torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-12)


def test_zscore_cosine_constant_column_is_zero():
    # Every sample is orthogonal to reference 1, so its column has zero variance.
    samples = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]])
    references = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

    scores = ZScoreCosine().scores(samples, references)

    assert torch.isfinite(scores).all()
    assert scores[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_zscore_cosine_depends_on_batch():
    samples, references = hub_case()

    whole_batch = ZScoreCosine().scores(samples, references)
    half_batch = ZScoreCosine().scores(samples[:2], references)

    assert not torch.allclose(whole_batch[:2], half_batch)


def test_zscore_cosine_rejects_single_sample():
    with pytest.raises(ValueError, match="needs at least 2, got 1"):
        ZScoreCosine().scores(torch.ones(1, 3), torch.ones(2, 3))


def test_mahalanobis_scores_before_fit_raise():
    with pytest.raises(ValueError, match="not fitted: call fit"):
        Mahalanobis().scores(torch.ones(2, 3), torch.ones(2, 3))


def test_mahalanobis_isotropic_matches_euclidean_order():
    generator = torch.Generator().manual_seed(3)
    labels = torch.arange(4).repeat_interleave(50)
    latents = torch.randn(200, 6, generator=generator, dtype=torch.float64)
    samples = torch.randn(30, 6, generator=generator, dtype=torch.float64)
    references = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    # Full shrinkage makes the covariance exactly μ I.
    distance = Mahalanobis(shrinkage=1.0)
    distance.fit(latents, labels)
    mu = torch.trace(distance.covariance_) / 6

    scores = distance.scores(samples, references)
    euclidean = Euclidean().scores(samples, references)

    assert torch.equal(scores.argsort(dim=1), euclidean.argsort(dim=1))
    torch.testing.assert_close(scores, -euclidean.square() / mu)


def anisotropic_latents(n: int = 2000):
    """Two classes far apart along y, each spread with std 10 along x and std 1 along y."""
    generator = torch.Generator().manual_seed(4)
    labels = torch.arange(2).repeat_interleave(n // 2)
    means = torch.tensor([[0.0, -50.0], [0.0, 50.0]], dtype=torch.float64)
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * torch.tensor([10.0, 1.0], dtype=torch.float64)
    return means[labels] + noise, labels


def test_mahalanobis_anisotropic_differs_from_euclidean():
    latents, labels = anisotropic_latents()
    distance = Mahalanobis()
    distance.fit(latents, labels)
    sample = torch.tensor([[5.0, 0.0]], dtype=torch.float64)
    # Euclidean: 5 from reference 0 and 2.5 from reference 1. Along x, 5 is half a
    # standard deviation, while reference 1 is 2 standard deviations away along y.
    references = torch.tensor([[0.0, 0.0], [6.5, 2.0]], dtype=torch.float64)

    assert Euclidean().scores(sample, references).argmax().item() == 1
    assert distance.scores(sample, references).argmax().item() == 0


def test_mahalanobis_uses_within_class_covariance():
    latents, labels = anisotropic_latents()
    distance = Mahalanobis(shrinkage=0.0)
    distance.fit(latents, labels)

    # The class means differ by 100 along y, which must not inflate the y variance.
    expected = torch.diag(torch.tensor([100.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(distance.covariance_, expected, rtol=0.1, atol=0.5)


def test_mahalanobis_scores_are_squared_distances():
    latents, labels = anisotropic_latents()
    distance = Mahalanobis(shrinkage=0.0)
    distance.fit(latents, labels)
    samples = torch.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)
    references = torch.tensor([[0.0, 0.0], [2.0, -1.0], [4.0, 4.0]], dtype=torch.float64)

    scores = distance.scores(samples, references)

    precision = torch.linalg.inv(distance.covariance_)
    differences = samples[:, None, :] - references[None, :, :]  # (N, C, k)
    expected = -torch.einsum("nci,ij,ncj->nc", differences, precision, differences)
    torch.testing.assert_close(scores, expected, rtol=1e-10, atol=1e-10)


def test_ledoit_wolf_matches_outer_product_formula():
    generator = torch.Generator().manual_seed(5)
    residuals = torch.randn(15, 4, generator=generator, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.5, 0.2], dtype=torch.float64)
    n, p = residuals.shape
    covariance = residuals.T @ residuals / n
    mu = torch.trace(covariance) / p
    delta = torch.linalg.matrix_norm(covariance - mu * torch.eye(p, dtype=torch.float64)) ** 2 / p
    beta = sum(torch.linalg.matrix_norm(torch.outer(x, x) - covariance) ** 2 for x in residuals) / (n**2 * p)
    expected = (min(beta, delta) / delta).item()

    assert ledoit_wolf_shrinkage(residuals) == pytest.approx(expected, rel=1e-12)
    assert 0.0 < expected < 1.0


@pytest.mark.parametrize(("n", "p"), [(15, 4), (30, 100), (1000, 10)])
def test_ledoit_wolf_matches_sklearn(n, p):
    # scikit-learn is not a dependency; this cross-check runs only where it is installed.
    covariance = pytest.importorskip("sklearn.covariance")
    generator = torch.Generator().manual_seed(12)
    residuals = torch.randn(n, p, generator=generator, dtype=torch.float64) * torch.logspace(-1, 1, p, dtype=torch.float64)

    expected = covariance.ledoit_wolf_shrinkage(residuals.numpy(), assume_centered=True, block_size=10**6)

    assert ledoit_wolf_shrinkage(residuals) == pytest.approx(expected, rel=1e-10)


def test_ledoit_wolf_extremes():
    generator = torch.Generator().manual_seed(6)
    isotropic = torch.randn(200, 50, generator=generator, dtype=torch.float64)
    scales = torch.logspace(-2, 2, 10, dtype=torch.float64)
    anisotropic = torch.randn(5000, 10, generator=generator, dtype=torch.float64) * scales

    # Few samples of an isotropic variable: shrink hard. Many of a skewed one: barely.
    assert ledoit_wolf_shrinkage(isotropic) > 0.9
    assert ledoit_wolf_shrinkage(anisotropic) < 0.01


def test_mahalanobis_shrinkage_keeps_few_samples_invertible():
    generator = torch.Generator().manual_seed(7)
    labels = torch.arange(3).repeat_interleave(4)
    latents = torch.randn(12, 32, generator=generator)  # 9 residual degrees of freedom for k = 32
    distance = Mahalanobis()
    distance.fit(latents, labels)

    scores = distance.scores(latents, latents[:3])

    assert 0.0 < distance.shrinkage_ <= 1.0
    assert torch.isfinite(scores).all()


def test_mahalanobis_singular_without_shrinkage_raises():
    generator = torch.Generator().manual_seed(8)
    labels = torch.arange(3).repeat_interleave(4)
    latents = torch.randn(12, 32, generator=generator)

    with pytest.raises(ValueError, match="singular with shrinkage=0"):
        Mahalanobis(shrinkage=0.0).fit(latents, labels)


def test_mahalanobis_rejects_constant_classes():
    latents = torch.tensor([[1.0, 2.0], [1.0, 2.0], [3.0, 3.0]])

    with pytest.raises(ValueError, match="covariance of the latents is zero"):
        Mahalanobis().fit(latents, torch.tensor([0, 0, 1]))


@pytest.mark.parametrize("shrinkage", [-0.1, 1.5])
def test_mahalanobis_rejects_invalid_shrinkage(shrinkage):
    with pytest.raises(ValueError, match="shrinkage must be in"):
        Mahalanobis(shrinkage=shrinkage)


def test_mahalanobis_rejects_other_latent_size(distances):
    distance = fitted(distances, "mahalanobis", k=4)

    with pytest.raises(ValueError, match="fitted on k=4"):
        distance.scores(torch.ones(2, 5), torch.ones(3, 5))


@pytest.mark.parametrize("name", DISTANCE_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scores_shape_and_dtype(distances, name, dtype):
    distance = fitted(distances, name)
    generator = torch.Generator().manual_seed(9)
    samples = torch.randn(10, 4, generator=generator).to(dtype)
    references = torch.randn(3, 4, generator=generator).to(dtype)

    scores = distance.scores(samples, references)

    assert scores.shape == (10, 3)
    assert scores.dtype == dtype
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_scores_reference_itself_best(distances, name):
    # Samples that equal a reference must pick it, whatever the geometry.
    distance = fitted(distances, name)
    references = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])

    scores = distance.scores(references, references)

    assert scores.argmax(dim=1).tolist() == [0, 1, 2]


@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_rejects_mismatched_latent_size(distances, name):
    distance = fitted(distances, name)

    with pytest.raises(ValueError, match="samples have k=4 columns but references have k=3"):
        distance.scores(torch.ones(2, 4), torch.ones(2, 3))


@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_batched_scores_at_evaluation_size(distances, name):
    generator = torch.Generator().manual_seed(10)
    labels = torch.arange(35).repeat_interleave(20)
    latents = torch.randn(700, 256, generator=generator)
    distance = distances.create(name)
    distance.fit(latents, labels)
    samples = torch.randn(10_000, 256, generator=generator)

    scores = distance.scores(samples, latents[::20])

    assert scores.shape == (10_000, 35)
    assert torch.isfinite(scores).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", DISTANCE_NAMES)
def test_cuda_matches_cpu(distances, name):
    distance = fitted(distances, name)
    generator = torch.Generator().manual_seed(11)
    samples = torch.randn(20, 4, generator=generator)
    references = torch.randn(3, 4, generator=generator)

    on_gpu = distance.scores(samples.cuda(), references.cuda())

    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), distance.scores(samples, references), rtol=1e-4, atol=1e-4)
