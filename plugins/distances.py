"""Built-in latent-space distances: score samples (N, k) against class references (C, k).

Every distance returns (N, C) scores where higher means closer, so a classifier takes
the argmax over references. Inputs may be float32 or float64, on the CPU or CUDA. The
scores are computed with matrix products over the whole batch and never build an
(N, C, k) difference tensor.

NOTE: the CUDA code paths have not run on a GPU yet, and their tests skip without one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from zsl_cl.hookspecs import hookimpl

__all__ = ["Euclidean", "Cosine", "ZScoreCosine", "Mahalanobis", "ledoit_wolf_shrinkage", "register_distances"]


def _validate_pair(samples: torch.Tensor, references: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return samples (N, k) and references (C, k) in their common floating dtype, or raise ValueError."""
    for name, tensor in (("samples", samples), ("references", references)):
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 2:
            raise ValueError(f"{name} must be a 2-D torch.Tensor (rows, k), got {type(tensor).__name__} {getattr(tensor, 'shape', '')}")
    if samples.shape[1] != references.shape[1]:
        raise ValueError(f"samples have k={samples.shape[1]} columns but references have k={references.shape[1]}: encode both with the same SAE")
    if samples.device != references.device:
        raise ValueError(f"samples are on {samples.device} but references are on {references.device}: move them to one device")
    dtype = torch.promote_types(samples.dtype, references.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return samples.to(dtype), references.to(dtype)


def _cosine_similarity(samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Return the (N, C) cosine similarities. A zero vector gets similarity 0 to everything."""
    return F.normalize(samples, dim=1) @ F.normalize(references, dim=1).T


class Euclidean:
    """Negative Euclidean distance ``−‖s − r‖₂`` in the k-dimensional latent space."""

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Do nothing: the Euclidean distance has no statistics to estimate."""

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        samples, references = _validate_pair(samples, references)
        return -torch.cdist(samples, references)  # (N, C)


class Cosine:
    """Cosine similarity ``s·r / (‖s‖ ‖r‖)``, which ignores the length of either vector."""

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Do nothing: cosine similarity has no statistics to estimate."""

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        samples, references = _validate_pair(samples, references)
        return _cosine_similarity(samples, references)  # (N, C)


class ZScoreCosine:
    """Cosine similarity z-scored per reference over the evaluated batch.

    This follows the SAE authors' MATLAB evaluation code. It computes the (N, C) cosine
    similarity matrix and standardises each reference's column over the N samples: it
    subtracts the column mean and divides by the column standard deviation, with N − 1
    in the denominator as in MATLAB's ``zscore``. The argmax then picks the class. A
    column with zero standard deviation is only centred, as in ``zscore``. The
    standardisation stops a reference that is close to every sample from winning
    for all of them.

    The distance is transductive. A sample's scores depend on the other samples in
    the same call, so score the whole evaluation set in one call. Splitting it into
    mini-batches changes the predictions.
    """

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Do nothing: the statistics come from the evaluated batch, not the training set."""

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        samples, references = _validate_pair(samples, references)
        if samples.shape[0] < 2:
            raise ValueError(
                f"zscore-cosine z-scores over the evaluated samples and needs at least 2, got {samples.shape[0]}: "
                f"score the whole evaluation set in one call or use the 'cosine' distance"
            )
        similarity = _cosine_similarity(samples, references)  # (N, C)
        mean = similarity.mean(dim=0, keepdim=True)  # (1, C)
        std = similarity.std(dim=0, correction=1, keepdim=True)  # (1, C)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return (similarity - mean) / std


def _within_class_residuals(latents: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Return latents (N, k) minus the mean of each one's class."""
    classes, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(classes), latents.shape[1], dtype=latents.dtype, device=latents.device)
    sums.index_add_(0, inverse, latents)
    counts = torch.bincount(inverse, minlength=len(classes)).to(latents.dtype)
    means = sums / counts[:, None]  # (classes, k)
    return latents - means[inverse]


def ledoit_wolf_shrinkage(residuals: torch.Tensor, covariance: torch.Tensor | None = None) -> float:
    """Return the Ledoit–Wolf (2004) shrinkage intensity for zero-mean rows (n, p).

    The estimator shrinks the sample covariance ``S = Xᵀ X / n`` toward ``μ I`` with
    ``μ = tr(S) / p``, and this is the analytic intensity in [0, 1] that minimises the
    expected Frobenius loss. It matches ``sklearn.covariance.ledoit_wolf_shrinkage``
    with ``assume_centered=True`` (the tests compare with scikit-learn 1.9.1 when installed). Pass ``covariance`` when it is already computed.
    """
    n, p = residuals.shape
    if covariance is None:
        covariance = residuals.T @ residuals / n  # (p, p)
    mu = torch.trace(covariance) / p
    # delta² = ‖S − μI‖²_F / p is how far S is from the target.
    delta = (covariance.square().sum() - 2 * mu * torch.trace(covariance) + p * mu**2) / p
    # beta² = Σ_i ‖x_i x_iᵀ − S‖²_F / (n² p) is the estimation noise of S. Expanding the
    # sum gives Σ_i ‖x_i‖⁴ − n ‖S‖²_F, which avoids forming n outer products.
    beta = (residuals.square().sum(dim=1).square().sum() / n - covariance.square().sum()) / (n * p)
    beta = torch.minimum(beta, delta)
    return 0.0 if delta.item() <= 0 else (beta / delta).item()


class Mahalanobis:
    """Negative squared Mahalanobis distance under a shared within-class covariance.

    ``fit`` pools the base-class latents after subtracting each class's mean, so the
    covariance describes the spread of samples around their class rather than the spread
    between classes. The pooled covariance S is shrunk toward ``μ I`` with ``μ = tr(S)/k``,
    giving ``Σ = (1 − ρ) S + ρ μ I``, which stays invertible when there are fewer
    residuals than dimensions. Scores are ``−(s − r)ᵀ Σ⁻¹ (s − r)``.

    Args:
        shrinkage: the intensity ρ in [0, 1]. The default ``None`` estimates it with
            the Ledoit–Wolf (2004) analytic formula.
    """

    def __init__(self, shrinkage: float | None = None) -> None:
        if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1] or None for Ledoit–Wolf, got {shrinkage}")
        self.shrinkage = shrinkage
        self.shrinkage_: float | None = None  # ρ used by the last fit
        self.covariance_: torch.Tensor | None = None  # (k, k) float64, shrunk
        self._whitening: torch.Tensor | None = None  # (k, k) float64, L⁻¹ with Σ = L Lᵀ

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Estimate the shrunk within-class covariance from latents (N, k) and labels (N,)."""
        _validate_fit_inputs(latents, labels)
        residuals = _within_class_residuals(latents.detach().to(torch.float64), labels)  # (N, k)
        k = residuals.shape[1]
        sample_covariance = residuals.T @ residuals / residuals.shape[0]  # (k, k)
        mu = torch.trace(sample_covariance) / k
        if mu.item() <= 0:
            raise ValueError("the within-class covariance of the latents is zero: fit on classes whose samples differ")

        rho = ledoit_wolf_shrinkage(residuals, sample_covariance) if self.shrinkage is None else self.shrinkage
        identity = torch.eye(k, dtype=torch.float64, device=residuals.device)
        covariance = (1 - rho) * sample_covariance + rho * mu * identity
        cholesky, info = torch.linalg.cholesky_ex(covariance)
        if info.item() != 0:
            raise ValueError(f"the shrunk covariance is singular with shrinkage={rho:.3g}: pass a shrinkage > 0 or fit on more samples")

        self.shrinkage_ = rho
        self.covariance_ = covariance
        # Whitening by L⁻¹ turns the Mahalanobis distance into a Euclidean one.
        self._whitening = torch.linalg.solve_triangular(cholesky, identity, upper=False)

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        if self._whitening is None:
            raise ValueError("mahalanobis distance is not fitted: call fit(latents, labels) on the base-class latents before scores()")
        samples, references = _validate_pair(samples, references)
        k = self._whitening.shape[0]
        if samples.shape[1] != k:
            raise ValueError(f"mahalanobis distance was fitted on k={k} latents but got k={samples.shape[1]}: refit after changing the SAE")
        whitening = self._whitening.to(device=samples.device, dtype=samples.dtype)
        whitened_samples = samples @ whitening.T  # (N, k)
        whitened_references = references @ whitening.T  # (C, k)
        return -torch.cdist(whitened_samples, whitened_references).square()  # (N, C)


def _validate_fit_inputs(latents: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(latents, torch.Tensor) or latents.ndim != 2:
        raise ValueError(f"latents must be a 2-D torch.Tensor (N, k), got {type(latents).__name__} {getattr(latents, 'shape', '')}")
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.shape[0] != latents.shape[0]:
        raise ValueError(f"labels must be a 1-D torch.Tensor with one label per latent ({latents.shape[0]}), got shape {tuple(getattr(labels, 'shape', ()))}")
    if labels.device != latents.device:
        raise ValueError(f"latents are on {latents.device} but labels are on {labels.device}: move them to one device")
    if not torch.isfinite(latents).all():
        raise ValueError("latents contain NaN or infinite values: check the SAE encoder output")


@hookimpl
def register_distances(register):
    register("euclidean", Euclidean, "Negative Euclidean distance in the latent space")
    register("cosine", Cosine, "Cosine similarity in the latent space")
    register("zscore-cosine", ZScoreCosine, "Cosine similarity z-scored per reference over the evaluated batch (transductive)")
    register("mahalanobis", Mahalanobis, "Negative squared Mahalanobis distance, within-class covariance with Ledoit–Wolf shrinkage")
