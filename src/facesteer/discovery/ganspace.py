"""GANSpace: principal components of sampled codes (Härkönen et al., NeurIPS 2020).

Style-based generators: incremental PCA of W codes sampled through the mapping network (harskish/ganspace
samples 300,000); each component is a direction in W, ranked by the variance it explains.

Generators without a mapping (the default DCGAN, PGGAN): PCA of the first layer's activations, and each
component mapped back to Z by least squares, as GANSpace does for BigGAN: regress z on the activations'
PCA coordinates over the same samples, z ~ c M, and take row k of M as component k's direction in Z.

Both passes read the samples a chunk at a time, so memory is bounded by the chunk and the components, however
many samples are asked for; samples are rows ``0 .. num-1`` of ``seed`` (:meth:`Generator.sample_z`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from sklearn.decomposition import IncrementalPCA
from tqdm.auto import tqdm

from facesteer.discovery.directions import Directions, canonical_signs
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator, weights_identity

DEFAULT_SAMPLES = 300_000
DEFAULT_COMPONENTS = 64


def _chunks(num: int, chunk: int, minimum: int = 1) -> Iterator[tuple[int, int]]:
    """(start, size) of consecutive chunks covering 0..num-1; a tail shorter than ``minimum`` joins the chunk
    before it (IncrementalPCA needs every batch at least as long as its components)."""
    starts = list(range(0, num, chunk))
    if len(starts) > 1 and num - starts[-1] < minimum:
        starts.pop()
    for index, start in enumerate(starts):
        yield start, (starts[index + 1] if index + 1 < len(starts) else num) - start


@torch.inference_mode()
def _features(generator: Generator, z: np.ndarray) -> np.ndarray:
    """What GANSpace analyses: W codes, or the first layer's activations for a generator without W."""
    if "w" in generator.spaces:
        return generator.map(z, "w")
    return generator.first_layer_features(torch.from_numpy(z)).numpy()


def ganspace(
    generator: Generator,
    num: int = DEFAULT_SAMPLES,
    components: int = DEFAULT_COMPONENTS,
    seed: int = 0,
    chunk: int | None = None,
    progress: bool = True,
) -> Directions:
    """GANSpace's directions of ``generator``.

    Args:
        num: samples (the incremental PCA sees them ``chunk`` at a time).
        components: directions to keep, at most the code's dimension.
        chunk: samples per incremental step (memory: about chunk x features floats). Default: 4,096 for W
            codes; 4 x components for wide activations, where each step's SVD costs (components + chunk)^2 x
            features and small steps are the fastest.

    Returns:
        :class:`Directions` in W (style-based) or Z, ``values`` = explained variance ratio; ``info`` holds the
        explained variance and each component's standard deviation (the natural step size).

    Raises:
        FacesteerError: too few samples or too many components.
    """
    dim = generator.space_shape(generator.edit_space)[0]
    if not 1 <= components <= dim:
        raise FacesteerError(f"components must be in 1..{dim} for {generator.name}, got {components}")
    features = _features(generator, generator.sample_z(1, seed)).shape[1]
    chunk = chunk or (4096 if features <= 1024 else 4 * components)
    if num <= components or chunk < components:  # num centred samples span at most num - 1 directions
        raise FacesteerError(f"num ({num}) must exceed components ({components}), and chunk ({chunk}) be at least it")
    pca = IncrementalPCA(n_components=components)
    bar = tqdm(total=num, unit="sample", desc="GANSpace PCA", disable=not progress)
    for start, size in _chunks(num, chunk, components):
        pca.partial_fit(_features(generator, generator.sample_z(size, seed, start)).astype(np.float64))
        bar.update(size)
    bar.close()
    if "w" in generator.spaces:
        vectors, space = pca.components_, "w"
    else:
        vectors, space = _regress_to_z(generator, pca, num, seed, chunk, progress), "z"
    info = {
        "samples": int(pca.n_samples_seen_),
        "seed": seed,
        "explained_variance": pca.explained_variance_.tolist(),
        "std": np.sqrt(pca.explained_variance_).tolist(),
        "features": int(pca.components_.shape[1]),
        "generator_weights": weights_identity(generator.config()),
    }
    return Directions(canonical_signs(vectors), "ganspace", generator.name, space,
                      values=pca.explained_variance_ratio_, info=info)  # fmt: skip


def _regress_to_z(
    generator: Generator, pca: IncrementalPCA, num: int, seed: int, chunk: int, progress: bool
) -> np.ndarray:
    """Least-squares M (K, z_dim) with z ~ c M over the samples (c: PCA coordinates), from the normal equations
    accumulated a chunk at a time; row k is component k's direction in Z."""
    components = pca.n_components_
    gram = np.zeros((components, components))
    cross = np.zeros((components, generator.z_dim))
    for start, size in tqdm(list(_chunks(num, chunk)), desc="GANSpace to Z", disable=not progress):
        z = generator.sample_z(size, seed, start).astype(np.float64)
        coordinates = pca.transform(_features(generator, z.astype(np.float32)).astype(np.float64))
        gram += coordinates.T @ coordinates
        cross += coordinates.T @ z
    return np.linalg.solve(gram, cross)
