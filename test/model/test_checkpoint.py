"""Checkpoint I/O: round trips, official and wrapped files load, every bad file is one clear error."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict

import pytest
import torch

from ddrnet_ros.model import CheckpointError, create_model, load_checkpoint, read_metadata, save_checkpoint, sha256_of


@pytest.fixture(scope="module")
def slim(trained_like_model) -> torch.nn.Module:
    return trained_like_model()


def outputs(model: torch.nn.Module, seed: int = 3) -> torch.Tensor:
    x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return model.eval()(x)


def test_round_trip_gives_identical_outputs_in_a_fresh_model(slim, tmp_path):
    path = save_checkpoint(slim, tmp_path / "model.pt", metadata={"variant": "ddrnet23_slim", "num_classes": 19})
    fresh = create_model("ddrnet23_slim", num_classes=19)
    assert not torch.equal(outputs(fresh), outputs(slim))
    meta = load_checkpoint(fresh, path)
    assert torch.equal(outputs(fresh), outputs(slim))
    for key, value in slim.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert meta["variant"] == "ddrnet23_slim" and meta["sha256"] == sha256_of(path)
    assert read_metadata(path) == meta


def test_saved_file_is_a_plain_official_state_dict(slim, tmp_path):
    path = save_checkpoint(slim, tmp_path / "model.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == list(slim.state_dict())  # official order, no wrapper, no prefix
    assert not (tmp_path / "model.pt.json").exists()  # no metadata asked for, no sidecar


@pytest.mark.parametrize("wrap", [
    lambda s: {f"module.{k}": v for k, v in s.items()},
    lambda s: {f"model.{k}": v for k, v in s.items()},
    lambda s: {f"module.model.{k}": v for k, v in s.items()},
    lambda s: {"state_dict": s},
    lambda s: {"model": s, "epoch": 120, "best_mIoU": 0.77},
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}, "optimizer": {"lr": 0.01}},
    lambda s: OrderedDict({"model": OrderedDict({f"model.{k}": v for k, v in s.items()})}),
], ids=["module.", "model.", "module.model.", "state_dict", "model+epoch", "state_dict+module.", "nested"])
def test_prefixed_and_wrapped_checkpoints_load(slim, tmp_path, wrap):
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(slim.state_dict()), path)
    fresh = create_model("ddrnet23_slim", num_classes=19)
    load_checkpoint(fresh, path)
    expected = slim.state_dict()
    assert list(fresh.state_dict()) == list(expected)
    assert all(torch.equal(value, expected[key]) for key, value in fresh.state_dict().items())


@pytest.mark.parametrize("variant", ["ddrnet23_slim", "ddrnet23", "ddrnet39"])
def test_official_file_with_aux_head_loads_into_inference_model(variant, official_manifest, tmp_path):
    # Official Cityscapes checkpoints were trained with the aux head: their files carry seghead_extra.*.
    manifest = official_manifest(variant, augment=True)
    state = manifest.synthetic_state_dict()
    assert any(k.startswith("seghead_extra.") for k in state)
    path = tmp_path / "official.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # as saved from DataParallel
    model = create_model(variant, aux=False)
    load_checkpoint(model, path)
    loaded = model.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith("seghead_extra.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_official_file_without_aux_head_loads_and_aux_model_reports_missing_head(official_manifest, tmp_path):
    manifest = official_manifest("ddrnet23_slim")
    path = tmp_path / "official.pth"
    torch.save(manifest.synthetic_state_dict(), path)
    load_checkpoint(create_model("ddrnet23_slim"), path)
    with pytest.raises(CheckpointError, match=r"13 missing key\(s\): seghead_extra\."):
        load_checkpoint(create_model("ddrnet23_slim", aux=True), path)


def test_aux_model_round_trip_keeps_the_aux_head_when_asked(tmp_path):
    model = create_model("ddrnet23_slim", num_classes=4, aux=True)
    path = save_checkpoint(model, tmp_path / "aux.pt", include_aux=True)
    fresh = create_model("ddrnet23_slim", num_classes=4, aux=True)
    load_checkpoint(fresh, path)
    assert torch.equal(fresh.seghead_extra.conv2.weight, model.seghead_extra.conv2.weight)
    inference_only = save_checkpoint(model, tmp_path / "plain.pt")
    assert not any(k.startswith("seghead_extra.") for k in torch.load(inference_only, weights_only=True))


def test_missing_file_is_a_clear_error(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {path}$"):
        load_checkpoint(create_model("ddrnet23_slim"), path)


def test_non_checkpoint_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=f"{path} is not a loadable PyTorch checkpoint"):
        load_checkpoint(create_model("ddrnet23_slim"), path)


class Payload:
    """Stands for anything arbitrary a pickle could carry; unpickling must never construct it."""

    constructed = 0

    def __reduce__(self):
        return (os.getpid, ())  # a callable: only allowed by an unsafe (weights_only=False) load


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_with_arbitrary_objects_is_refused_by_weights_only(slim, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": slim.state_dict(), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt is not a loadable PyTorch checkpoint \(loaded with "
                                              r"weights_only=True\)"):
        load_checkpoint(create_model("ddrnet23_slim"), path)
    plain = tmp_path / "plain.pkl"  # a bare pickle of a non-tensor object, not even torch.save
    plain.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="not a loadable PyTorch checkpoint"):
        load_checkpoint(create_model("ddrnet23_slim"), plain)


def test_file_without_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "dict.pt"
    torch.save({"epoch": 3, "notes": "no weights here"}, path)
    with pytest.raises(CheckpointError, match=r"dict\.pt holds no state_dict"):
        load_checkpoint(create_model("ddrnet23_slim"), path)


def test_different_variant_is_one_error_naming_file_and_both_variants(slim, tmp_path):
    path = save_checkpoint(slim, tmp_path / "slim.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(create_model("ddrnet23"), path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert "does not fit ddrnet23 with 19 classes" in message
    assert "looks like ddrnet23_slim" in message
    assert "shape mismatch" in message


def test_deeper_variant_file_names_missing_and_unexpected_keys(tmp_path):
    path = save_checkpoint(create_model("ddrnet39", num_classes=19), tmp_path / "39.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(create_model("ddrnet23"), path)
    message = str(info.value)
    assert "looks like ddrnet39" in message
    assert "missing key(s): compression3.0.weight" in message
    assert "unexpected key(s): compression3_1." in message


def test_different_class_count_is_one_error_naming_file_and_counts(slim, tmp_path):
    path = save_checkpoint(slim, tmp_path / "19classes.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(create_model("ddrnet23_slim", num_classes=3), path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "with 3 classes" in message and "19 classes" in message
    assert "final_layer.conv2.weight: file (19, 64, 1, 1) vs model (3, 64, 1, 1)" in message


def test_partial_file_is_refused_not_loaded_silently(slim, tmp_path):
    state = dict(slim.state_dict())
    del state["layer1.0.conv1.weight"]
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    model = create_model("ddrnet23_slim")
    before = model.layer1[0].conv1.weight.clone()
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): layer1\.0\.conv1\.weight"):
        load_checkpoint(model, path)
    assert torch.equal(model.layer1[0].conv1.weight, before)


def test_unreadable_sidecar_is_a_clear_error(slim, tmp_path):
    path = save_checkpoint(slim, tmp_path / "m.pt")
    (tmp_path / "m.pt.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"m\.pt\.json: unreadable checkpoint metadata"):
        load_checkpoint(create_model("ddrnet23_slim"), path)
    (tmp_path / "m.pt.json").write_text(json.dumps({"variant": "ddrnet23_slim"}))
    assert load_checkpoint(create_model("ddrnet23_slim"), path) == {"variant": "ddrnet23_slim"}
