"""Editing directions found without labels: SeFa, GANSpace, latent discovery, and the penalties that
disentangle them (the Hessian penalty and OroJaR)."""

from facesteer.discovery.directions import Directions
from facesteer.discovery.ganspace import ganspace
from facesteer.discovery.hessian_penalty import hessian_penalty
from facesteer.discovery.orojar import orojar_penalty
from facesteer.discovery.sefa import sefa

__all__ = ["Directions", "ganspace", "hessian_penalty", "orojar_penalty", "sefa"]
