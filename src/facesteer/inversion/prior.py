"""A latent prior: how far a code lies from where the generator's own codes lie.

Inversion can reach codes that reconstruct a photo well but lie where the generator never samples; edits from
there look unreal (the Neural Face Editor's failure). The prior measures that distance so inversion can pay
for it, and encoders can be trained in its whitened coordinates:

- ``z``: z ~ N(0, I), so the whitened code is z itself.
- ``w``: a Gaussian fitted to the mapped codes of ``num`` sampled z (mean, covariance): the whitened code is
  L^-1 (w - mean), L the Cholesky factor of the covariance.
- ``wp``: each W+ row whitened as a w, plus the spread of the rows around their mean (e4e's idea: codes whose
  rows agree stay where the generator was trained).

``penalty(codes)`` is the mean squared whitened coordinate (about 1 for the generator's own codes, so a weight
reads the same in every space) plus, in W+, the mean squared whitened deviation of each row from the rows' mean.
"""

from __future__ import annotations

import torch

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator

PRIOR_SAMPLES = 10_000


class LatentPrior:
    """Whitening and penalty of codes in one space: ``space``, the Gaussian's ``mean`` (d,) and the Cholesky
    factor ``cholesky`` (d, d) of its covariance (d = w_dim or z_dim; a W+ code is whitened row by row).
    :meth:`fit` builds one for a generator."""

    def __init__(self, space: str, mean: torch.Tensor, cholesky: torch.Tensor) -> None:
        if space not in ("z", "w", "wp"):
            raise FacesteerError(f"a latent prior is for z, w or wp, not {space!r}")
        dim = mean.shape[-1] if mean.ndim == 1 else -1
        if mean.ndim != 1 or cholesky.shape != (dim, dim):
            raise FacesteerError(f"prior mean {tuple(mean.shape)} and Cholesky factor {tuple(cholesky.shape)} differ")
        self.space, self.mean, self.cholesky = space, mean.float(), cholesky.float()

    @classmethod
    def fit(cls, generator: Generator, space: str, num: int = PRIOR_SAMPLES, seed: int = 0) -> LatentPrior:
        """The prior of ``generator``'s ``space``: N(0, I) for z; for w and wp a Gaussian fitted to the mapped
        codes of ``num`` z drawn with ``seed``."""
        if space not in generator.spaces:
            raise FacesteerError(f"generator {generator.name} has no latent space {space!r}; it has {generator.spaces}")
        dim = generator.space_shape(space)[-1]
        if space == "z":
            return cls(space, torch.zeros(dim), torch.eye(dim))
        w = torch.from_numpy(generator.map(generator.sample_z(num, seed), "w")).double()
        covariance = torch.cov(w.T) + 1e-6 * torch.eye(dim, dtype=torch.float64)
        return cls(space, w.mean(dim=0), torch.linalg.cholesky(covariance))

    def whiten(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, *shape) -> whitened coordinates of the same shape (each W+ row whitened as a w)."""
        centred = (codes - self.mean).unsqueeze(-1)
        return torch.linalg.solve_triangular(self.cholesky, centred, upper=False).squeeze(-1)

    def unwhiten(self, whitened: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`whiten`."""
        return (self.cholesky @ whitened.unsqueeze(-1)).squeeze(-1) + self.mean

    def penalty(self, codes: torch.Tensor) -> torch.Tensor:
        """(N, *shape) -> (N,): mean squared whitened coordinate (+ W+ rows' spread around their mean)."""
        whitened = self.whiten(codes)
        distance = whitened.square().flatten(1).mean(dim=1)
        if self.space == "wp":
            distance = distance + (whitened - whitened.mean(dim=1, keepdim=True)).square().flatten(1).mean(dim=1)
        return distance
