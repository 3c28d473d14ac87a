"""facesteer: semantic face editing in the latent space of GANs.

The Python API the CLI, web app and bot are built on (``load_generator``, ``load_scorer``,
``sample_dataset``, ``LatentDataset`` are importable from here)::

>>> generator = load_generator("dcgan-digiface64")
>>> images = generator.synthesize(generator.sample_z(16, seed=0))   # (16, 64, 64, 3) uint8
>>> with load_scorer("teachers") as scorer:
...     scores = scorer.score(images)                               # (16, 5) float32, NaN = no face
"""

from facesteer.attributes import ATTRIBUTES, AttributeScorer, load_scorer
from facesteer.errors import FacesteerError
from facesteer.generators import Generator, load_generator
from facesteer.latents import LatentDataset, sample_dataset

__version__ = "0.1.0"

__all__ = [
    "ATTRIBUTES",
    "AttributeScorer",
    "FacesteerError",
    "Generator",
    "LatentDataset",
    "load_generator",
    "load_scorer",
    "sample_dataset",
]
