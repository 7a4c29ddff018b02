"""Pinned generator output: a refactor of ``ddrnet_ros.data.synthetic`` must change no scene.

The hashes were taken from the generator before it was split into a package. Caches of rendered
frames, shipped checkpoints and held-out evaluations all assume a seed keeps its exact bytes, so
any change here is a change of the data set, not a refactor. If the scenes are changed on
purpose, recompute the hashes and say so in the commit.
"""

import hashlib

import cv2
import numpy as np
import pytest

from ddrnet_ros.data.synthetic import HELDOUT_SEED_START, generate_scene, generate_sequence

#: The bytes also depend on OpenCV's rasteriser and resampling and on NumPy: the hashes hold for the
#: versions scripts/constraints.txt pins (make test), not the NumPy 1.26 set of make test-compat.
PINNED_WITH = {"opencv": "5.1.0", "numpy": "2.4.6"}
pytestmark = pytest.mark.skipif(
    (cv2.__version__, np.__version__) != (PINNED_WITH["opencv"], PINNED_WITH["numpy"]),
    reason=f"scene bytes are pinned for OpenCV {PINNED_WITH['opencv']} and NumPy {PINNED_WITH['numpy']}, "
           f"this is OpenCV {cv2.__version__} and NumPy {np.__version__}")


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


# (seed, height, width) -> (sha256 of image bytes, sha256 of label bytes)
PINNED_SCENES = {
    (0, 128, 256): ("dfe8699c14c4088636346b9eac0ef674414dc09478b0391153212c3c555449fc",
                    "d38a4668e06a5b057594799956d5231c2099b8048f97c04246a8bebf4b8b66cb"),
    (1, 128, 256): ("498529e3cb53a25a3f5ba16766d7c35aebbb9720a996cac36960c2bdad955c5d",
                    "046dbd7b0923757a7f268df86123d65b5c75ef2173a43df08192910aaf862267"),
    (12345, 128, 256): ("7299769b077f7ae11a342987780c8c38b0dfc60858d674b3817f300bf9d526e6",
                        "a016a1f56a8822e4090e784db3cdf7595914ae738ddd9487e4be15664fff25f5"),
    (10_000_000, 128, 256): ("2cf921658a9b0db12210864be3b83d70575a5fc45f6bb7b82f4384025db6040a",
                             "5a396b17c349c72865f2e7cfc2d8021192eb0cb544cbb2a2596f8e37293704b4"),
    (0, 96, 160): ("ce849b9342fdb9b391cc291ef29ea7aa2522e60244ed8cc3d13c4ed501ab8ce9",
                   "45c7482da1dfb39f9dec494c6c60a813a9dc97deb23d09920bb8b4f7e60cd0f6"),
    (1, 96, 160): ("2cfebf715dd1d7207e4ba308d4ad1ced24f7b443fc9b356b6997915a5c0fe018",
                   "1790d3e2de3e23002688f0557b2f6baa508b5c95df2e0561c65dc851ec100490"),
    (12345, 96, 160): ("d00bf36b8490d802baa63ec718da2413939fffd97bfd722dc93924bef5984d41",
                       "c1798ab9d651370e08ad384c6685c57c4aadd97ee99a395a7e3029b77826b238"),
    (10_000_000, 96, 160): ("f79faef13015ab2b3d46d9cca83467aacffca2d1b6e3723c1a64aedf0a50ba9e",
                            "680789af03d323de38978205c88dec5c690b9f0769c0fc865e438b4782ce9ce9"),
}

# (seed, height, width) -> per frame (sha256 of image bytes, sha256 of label bytes)
PINNED_SEQUENCES = {
    (42, 96, 160): [
        ("cbea107881658465c050580632f3cc93d6a34fcf923b6cfd91bdf30901ec1fb8",
         "e66e889467918fb44d7e3a067d665ad3c336dbd1326cc22162a408858392cfe4"),
        ("175d8398b301946d6687e747f1152faf262b3057357e9f648993b8f016a4d69e",
         "fc758d41f8bce8d6e2ad6777a458938e8310fc5dd826169000ce9dc4a1d6df18"),
        ("49e48a11bbc065adba79b2169270c4846ce4c0068ed7785e0dfa76fca6b2bc0b",
         "68331a3c0099481ab2efac98ce4fcb0041ccc60eb6f96689ab0bf9e4909f1dc1"),
        ("822bd3ac3231c972a430f79ed1aceb71ad8f9280b03772564948c561ea84ef9c",
         "2a2abd7c11f19a34ccaa4186c3a56deb1bf30a592f5f68e2112e7972cef37abc"),
    ],
    (10_000_000, 128, 256): [
        ("baad2ed63af1a1e14dde1d8c470f4ce592a95726a34be7fc5bd1928d43dd36ac",
         "03ba5d2dfa4acdf7c602ad6ae90a3958de663b87fd33ccf3d598b189e8ca2df6"),
        ("ab4482d23ab9dcbb53608ce29d708c468229124d80b681e86daf037deb21b674",
         "d2c963b60c7e551b13257ec1f53bdab0fe2ce018e091549809b2c9b128abb770"),
        ("2c4940c2a8edb2439c02d7da453c4d2a850da4cd9608a29347ebfbdb9000c59d",
         "6e19da3253a59a5cef75f7411aded8f1d73c90d65fa49d2e5d97f2fc52c3142f"),
        ("2c76a47970b0694ec88fd6022f621303203cbbaf43bb3a38bb23d8d5631213ad",
         "29b836baf93540b45cf091e8083f808af2061be0494b005338eaec7a4cf0f60c"),
    ],
}


def test_pinned_cases_include_a_held_out_seed():
    assert any(seed >= HELDOUT_SEED_START for seed, _, _ in PINNED_SCENES)
    assert any(seed >= HELDOUT_SEED_START for seed, _, _ in PINNED_SEQUENCES)


@pytest.mark.parametrize("seed,height,width", sorted(PINNED_SCENES))
def test_a_seed_still_renders_the_exact_pinned_scene(seed, height, width):
    frame = generate_scene(seed, height, width)
    assert frame.image.shape == (height, width, 3) and frame.labels.shape == (height, width)
    assert (_sha256(frame.image), _sha256(frame.labels)) == PINNED_SCENES[(seed, height, width)]


@pytest.mark.parametrize("seed,height,width", sorted(PINNED_SEQUENCES))
def test_a_seed_still_drives_through_the_exact_pinned_sequence(seed, height, width):
    pinned = PINNED_SEQUENCES[(seed, height, width)]
    frames = list(generate_sequence(seed, len(pinned), height, width))
    assert [(_sha256(f.image), _sha256(f.labels)) for f in frames] == pinned

