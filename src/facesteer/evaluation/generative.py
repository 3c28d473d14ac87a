"""How good is a generator? FID's Fréchet distance in a face space, precision and recall, faces found.

FID compares Inception features, and a discriminator built on ImageNet features can lower it without better
faces (Kynkäänniemi et al., ICLR 2023). So a generator is also judged in dlib's 128-d face-descriptor space,
which knows faces and no ImageNet class:

- :func:`frechet_of_embeddings`: the Fréchet distance between two sets of embeddings (FID's formula), over the
  rows where a face was found.
- :func:`precision_recall`: Kynkäänniemi et al. (NeurIPS 2019): each point's ball reaches its k-th nearest
  neighbour in its own set (k = 3); precision is the share of generated points inside some real point's ball,
  recall the share of real points inside some generated point's ball. Any embedding works: Inception's, dlib's.
- :func:`quality`: all of them for a generator's faces against photos, each set embedded once
  (:class:`Embeddings`), plus the share of images in which dlib's detector finds a face, against the photos' own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facesteer.attributes.identity import IdentityEmbedder
from facesteer.datasets import evenly_spaced, list_images_in, load_images
from facesteer.errors import FacesteerError
from facesteer.fid import frechet_distance, inception_features
from facesteer.generators.base import Generator

#: neighbours that set a point's ball (Kynkäänniemi et al.'s k)
K_NEAREST = 3


def frechet_of_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two sets of embeddings (N, d) and (M, d); NaN rows
    (no face found) are left out.

    Raises:
        FacesteerError: fewer than two found rows in a set.
    """
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    a, b = a[~np.isnan(a).any(axis=1)], b[~np.isnan(b).any(axis=1)]
    if len(a) < 2 or len(b) < 2:
        raise FacesteerError(f"a Fréchet distance needs two embeddings per set, got {len(a)} and {len(b)}")
    return frechet_distance(a.mean(axis=0), np.cov(a, rowvar=False), b.mean(axis=0), np.cov(b, rowvar=False))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), float64."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point of the same set."""
    distances = _pairwise(points, points)
    return np.partition(distances, k, axis=1)[:, k]  # column 0 of the sorted row is the point itself (0)


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = K_NEAREST) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of ``generated`` (M, d) against ``real`` (N, d);
    NaN rows are left out.

    Raises:
        FacesteerError: a set with k or fewer points.
    """
    real, generated = (np.asarray(x, dtype=np.float64) for x in (real, generated))
    real, generated = real[~np.isnan(real).any(axis=1)], generated[~np.isnan(generated).any(axis=1)]
    if min(len(real), len(generated)) <= k:
        raise FacesteerError(f"precision and recall with k = {k} need more than {k} points per set")
    across = _pairwise(generated, real)  # (M, N)
    precision = (across <= _radii(real, k)[None, :]).any(axis=1).mean()
    recall = (across <= _radii(generated, k)[:, None]).any(axis=0).mean()
    return float(precision), float(recall)


@dataclass
class Embeddings:
    """One image set in the two spaces: dlib's face descriptors (N, 128), NaN rows where no face was found, and
    Inception's pool features (N, 2048)."""

    faces: np.ndarray
    inception: np.ndarray

    @classmethod
    def of(cls, images: np.ndarray, embedder: IdentityEmbedder | None = None, batch_size: int = 64) -> Embeddings:
        """Embed uint8 RGB images (N, H, W, 3)."""
        embedder = embedder or IdentityEmbedder()
        inception = np.concatenate([inception_features(images[lo : lo + batch_size])
                                    for lo in range(0, len(images), batch_size)])  # fmt: skip
        return cls(faces=embedder.embed(images), inception=inception)

    @property
    def faces_found(self) -> float:
        return float((~np.isnan(self.faces).any(axis=1)).mean())


def quality(real: Embeddings, generated: Embeddings) -> dict[str, float]:
    """Every measure of this module for a generator's images against real photos, each set embedded once.

    Returns:
        ``dlib_frechet``, ``dlib_precision``, ``dlib_recall``, ``inception_precision``, ``inception_recall``,
        ``faces_found`` and ``real_faces_found`` (dlib's detector, shares of the images), and the set sizes.
        The dlib measures are NaN when dlib finds too few faces among the generated ones (early in training).
    """
    found = int((~np.isnan(generated.faces).any(axis=1)).sum())
    dlib_precision, dlib_recall = (
        precision_recall(real.faces, generated.faces) if found > K_NEAREST else (math.nan, math.nan)
    )
    inception_precision, inception_recall = precision_recall(real.inception, generated.inception)
    return {
        "dlib_frechet": frechet_of_embeddings(real.faces, generated.faces) if found > 1 else math.nan,
        "dlib_precision": dlib_precision,
        "dlib_recall": dlib_recall,
        "inception_precision": inception_precision,
        "inception_recall": inception_recall,
        "faces_found": generated.faces_found,
        "real_faces_found": real.faces_found,
        "generated": len(generated.faces),
        "real": len(real.faces),
    }


def real_images(
    folders: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], resolution: int, num: int
) -> np.ndarray:
    """``num`` photos spread evenly over the folders (in order), resized as a generator of ``resolution`` is
    trained on them: uint8 (num, R, R, 3)."""
    return load_images(evenly_spaced(list_images_in(folders), num), resolution, progress=False)


def generator_images(generator: Generator, num: int, seed: int = 0) -> np.ndarray:
    """``num`` faces of ``generator``, rows 0..num-1 of ``seed`` in z (the faces FID scores): uint8 (num, R, R, 3)."""
    return generator.synthesize(generator.sample_z(num, seed))
