"""Procedural forward-camera road scenes with exact Cityscapes train-id labels.

No real driving data can be downloaded where this package is built, so the shipped checkpoint
learns from these scenes. A scene is a small 3-D world (a road with lanes, curbs, sidewalks,
grass, building facades, walls, fences, trees, poles with signs and traffic lights, parked and
moving vehicles, pedestrians and cyclists) seen by a pinhole camera; every shape is projected
once and filled into the image and the label map by the same ``cv2.fillPoly`` call, so labels
are exact. Texture, lighting, blur and noise are applied to the image only, afterwards.

Geometry is expressed in normalised image coordinates (the focal length is a fraction of the
width), so a seed gives the same scene at any resolution. Randomness comes only from
``np.random.default_rng`` streams keyed by the seed: the world is cut into 60 m chunks along
the road, each with its own stream, so a drive (:func:`generate_sequence`) can move through it
frame by frame. Seed ranges: training uses :data:`TRAIN_SEED_RANGE`, held-out evaluation uses
seeds from :data:`HELDOUT_SEED_START` on; sequences draw from a separate stream, so sequence
frames never repeat a training frame.

Modules, in dependency order: ``palette``, ``labels``, ``layout`` (scene-wide parameters),
``camera``, ``canvas``, ``shapes`` (world objects and projected primitives), the object kinds
``vehicles``, ``people``, ``two_wheelers``, ``furniture``, ``frontage``, then ``world``
(chunks), ``backdrop``, ``ground``, ``finish``, ``render`` and ``generate`` (the entry points).
Object kinds are described by spec tables keyed by kind (``VEHICLES``, ``TWO_WHEELERS``,
``POSES``, ``POLES``, ``SIGNS``, ``FRONTAGES``, ``TRAFFIC``).
"""

from .generate import HELDOUT_SEED_START, TRAIN_SEED_RANGE, generate_scene, generate_sequence
from .render import SyntheticFrame

__all__ = [
    "HELDOUT_SEED_START",
    "TRAIN_SEED_RANGE",
    "SyntheticFrame",
    "generate_scene",
    "generate_sequence",
]
