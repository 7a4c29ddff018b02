"""`ddrnet-ros train` end to end on tiny real images: loss, checkpoints, resume, fine-tuning."""

import json

import cv2
import numpy as np
import pytest
import torch

from ddrnet_ros.classes import CAMVID, ClassMap
from ddrnet_ros.commands import train as command
from ddrnet_ros.data.sources import VALIDATION_SEED_OFFSET
from ddrnet_ros.data.transforms import labels_to_tensor, normalize
from ddrnet_ros.model import CheckpointError, create_model, load_checkpoint, read_metadata, save_checkpoint
from ddrnet_ros.training import loop, train
from ddrnet_ros.training.checkpointing import init_from_checkpoint
from ddrnet_ros.training.data import EpochBatches
from ddrnet_ros.training.losses import DDRNetLoss, OhemCrossEntropy
from ddrnet_ros.training.schedule import poly_lr

HEIGHT, WIDTH = 64, 128


def scene(seed, num_classes=19):
    """A learnable toy road scene: sky on top, road below, a car-coloured box; class ids
    are folded into ``num_classes``."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    horizon = int(rng.integers(20, 36))
    labels[:horizon] = 10 % num_classes
    top, left = int(rng.integers(horizon, HEIGHT - 16)), int(rng.integers(0, WIDTH - 32))
    labels[top:top + 14, left:left + 30] = 13 % num_classes
    labels[:2] = 255
    colours = {0: (128, 64, 128), 10 % num_classes: (70, 130, 180), 13 % num_classes: (0, 0, 142)}
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for cls, colour in colours.items():
        image[labels == cls] = colour
    noise = rng.integers(-25, 26, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8), labels


@pytest.fixture
def cityscapes_root(tmp_path):
    return write_tree(tmp_path / "cityscapes", num_classes=19)


def write_tree(root, num_classes):
    for split, seeds in (("train", range(6)), ("val", range(100, 102))):
        for seed in seeds:
            image, labels = scene(seed, num_classes)
            for kind, data, suffix in (("leftImg8bit", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), "leftImg8bit"),
                                       ("gtFine", labels, "gtFine_labelTrainIds")):
                folder = root / kind / split / "town"
                folder.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(folder / f"town_{seed:06d}_000019_{suffix}.png"), data)
    return root


def run_args(root, output, *extra):
    return command.parse_args([
        "--data", "cityscapes", "--cityscapes-root", str(root), "--output", str(output),
        "--height", str(HEIGHT), "--width", str(WIDTH), "--crop", "64x64", "--batch-size", "2",
        "--min-kept", "2000", "--workers", "0", "--seed", "3", *extra])


def test_loss_decreases_over_a_few_sgd_steps_on_a_fixed_batch():
    torch.manual_seed(0)
    pairs = [scene(s) for s in range(2)]
    images = torch.stack([normalize(image) for image, _ in pairs])
    labels = torch.stack([labels_to_tensor(lab) for _, lab in pairs])
    model = create_model("ddrnet23_slim", aux=True).train()
    loss_fn = DDRNetLoss(OhemCrossEntropy(min_kept=2000), weights=(1.0, 0.4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    losses = []
    for _ in range(8):
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_training_saves_best_checkpoint_in_official_layout_with_sidecar(cityscapes_root, tmp_path):
    out = tmp_path / "run"
    summary = train(run_args(cityscapes_root, out, "--iterations", "4", "--val-every", "2"))
    assert summary["iterations"] == 4 and summary["stopped_by"] == "completed"

    state = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    official = create_model("ddrnet23_slim").state_dict()
    assert list(state) == list(official)  # same keys, same (registration) order
    assert len(state) == 333 and not any(k.startswith("seghead_extra") for k in state)
    loaded = create_model("ddrnet23_slim")
    meta = load_checkpoint(loaded, out / "best.pt")
    for key in ("variant", "num_classes", "class_names", "palette", "input_size", "training_data",
                "iterations", "val_miou", "val_per_class_iou", "command", "wall_time_s", "torch_version", "sha256"):
        assert key in meta, key
    assert meta["variant"] == "ddrnet23_slim" and meta["num_classes"] == 19
    assert meta["class_names"] == list(ClassMap.builtin().names)
    assert meta["palette"] == ClassMap.builtin().colors.tolist()
    assert meta["input_size"] == [HEIGHT, WIDTH]
    assert meta["training_data"]["train"] == {"source": "cityscapes", "root": str(cityscapes_root),
                                              "split": "train", "count": 6}
    assert "--iterations 4" in meta["command"]

    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [2, 4]
    best = max(history, key=lambda h: h["mIoU"])
    assert meta["val_miou"] == pytest.approx(best["mIoU"]) and meta["iterations"] == best["iteration"]
    assert read_metadata(out / "last.pt")["iterations"] == 4


def test_resume_continues_from_the_saved_iteration_with_the_same_optimizer_state(cityscapes_root, tmp_path):
    straight = tmp_path / "straight"
    train(run_args(cityscapes_root, straight, "--iterations", "4", "--threads", "1"))

    split = tmp_path / "split"
    # A time budget of ~0 stops cleanly after the first step, saving resume.pt.
    first = train(run_args(cityscapes_root, split, "--iterations", "4", "--threads", "1",
                                   "--time-budget", "1e-9"))
    assert first["iterations"] == 1 and first["stopped_by"].startswith("time budget")
    saved = torch.load(split / "resume.pt", map_location="cpu", weights_only=True)
    assert saved["iteration"] == 1
    assert any(k.startswith("seghead_extra.") for k in saved["model"])  # aux head kept for training
    assert all("momentum_buffer" in s for s in saved["optimizer"]["state"].values())

    second = train(run_args(cityscapes_root, split, "--iterations", "4", "--threads", "1", "--resume"))
    assert second["iterations"] == 4
    # Same data order, same augmentation, same momentum: the split run ends where the straight one did.
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(split / "last.pt", weights_only=True)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


def test_resume_without_a_saved_run_is_a_one_line_error(cityscapes_root, tmp_path, capsys):
    code = command.main(run_args(cityscapes_root, tmp_path / "empty", "--iterations", "2", "--resume"))
    err = capsys.readouterr().err.strip()
    assert code == 1 and "resume.pt not found" in err and len(err.splitlines()) == 1


def test_fine_tuning_to_fewer_classes_reinitialises_only_the_classifier(tmp_path):
    torch.manual_seed(1)
    source = create_model("ddrnet23_slim", num_classes=19)
    save_checkpoint(source, tmp_path / "official19.pt")
    target = create_model("ddrnet23_slim", num_classes=3, aux=True)
    fresh = init_from_checkpoint(target, tmp_path / "official19.pt")
    assert sorted(f.split(" ")[0] for f in fresh) == ["final_layer.conv2.bias", "final_layer.conv2.weight",
                                                      "seghead_extra.*"]
    loaded, original = target.state_dict(), source.state_dict()
    for key, value in original.items():
        if not key.startswith("final_layer.conv2."):
            assert torch.equal(loaded[key], value), key
    assert loaded["final_layer.conv2.weight"].shape[0] == 3


def test_fine_tuning_run_with_a_three_class_config_trains_and_saves_three_classes(tmp_path):
    root = write_tree(tmp_path / "three", num_classes=3)
    classes = tmp_path / "classes.yaml"
    classes.write_text("classes:\n  - {name: road, color: [128, 64, 128]}\n  - {name: sky, color: [70, 130, 180]}\n"
                       "  - {name: car, color: [0, 0, 142]}\n")
    torch.manual_seed(2)
    save_checkpoint(create_model("ddrnet23_slim"), tmp_path / "init19.pt")
    out = tmp_path / "ft"
    train(run_args(root, out, "--iterations", "2", "--classes", str(classes),
                           "--init", str(tmp_path / "init19.pt")))
    model = create_model("ddrnet23_slim", num_classes=3)
    meta = load_checkpoint(model, out / "best.pt")
    assert meta["num_classes"] == 3 and meta["class_names"] == ["road", "sky", "car"]
    assert set(meta["val_per_class_iou"]) == {"road", "sky", "car"}
    assert meta["recipe"]["init"] == str(tmp_path / "init19.pt")


def test_init_from_another_variant_names_the_mismatch(tmp_path):
    save_checkpoint(create_model("ddrnet23_slim"), tmp_path / "slim.pt")
    with pytest.raises(CheckpointError, match="cannot initialise ddrnet23.*shape mismatch"):
        init_from_checkpoint(create_model("ddrnet23", aux=True), tmp_path / "slim.pt")


def test_wrong_dataset_layout_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "notcityscapes").mkdir()
    code = command.main(run_args(tmp_path / "notcityscapes", tmp_path / "out", "--iterations", "1"))
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "leftImg8bit/train" in err


def test_poly_schedule_decays_from_base_to_zero():
    assert poly_lr(0.01, 0.0, 0.9) == pytest.approx(0.01)
    assert poly_lr(0.01, 0.5, 0.9) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert poly_lr(0.01, 1.0, 0.9) == 0.0
    assert poly_lr(0.01, 1.3, 0.9) == 0.0


def test_annealing_to_the_time_budget_ends_with_zero_learning_rate_before_the_iterations(cityscapes_root, tmp_path):
    out = tmp_path / "anneal"
    # 0.002 min = 0.12 s: far fewer than 1000 iterations fit, so time decides the schedule.
    summary = train(run_args(cityscapes_root, out, "--iterations", "1000", "--time-budget", "0.002",
                                     "--anneal-to-budget"))
    assert 1 <= summary["iterations"] < 1000 and summary["stopped_by"].startswith("time budget")
    saved = torch.load(out / "resume.pt", weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["lr"] < 0.01 * (1 - summary["iterations"] / 1000) ** 0.9


def test_epoch_batches_cover_every_sample_once_per_epoch_and_restart_mid_epoch():
    batches = list(EpochBatches(10, 3, seed=4, start_iteration=0, total_iterations=6))
    assert all(len(b) == 3 for b in batches)
    for epoch in (0, 1):
        keys = [k for b in batches[epoch * 3:(epoch + 1) * 3] for k in b]
        assert {e for e, _ in keys} == {epoch} and len({i for _, i in keys}) == 9  # one dropped
    resumed = list(EpochBatches(10, 3, seed=4, start_iteration=4, total_iterations=6))
    assert resumed == batches[4:]


def test_synthetic_run_records_training_and_held_out_validation_seeds(tmp_path):
    from ddrnet_ros.data.synthetic import HELDOUT_SEED_START

    out = tmp_path / "synthetic"
    args = command.parse_args(["--data", "synthetic", "--height", "64", "--width", "128", "--train-seeds", "4",
                               "--val-seeds", "2", "--crop", "64x64", "--batch-size", "2", "--iterations", "2",
                               "--min-kept", "1000", "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
                               "--output", str(out)])
    assert train(args)["iterations"] == 2
    data = read_metadata(out / "best.pt")["training_data"]
    assert data["train"] == {"source": "synthetic", "height": 64, "width": 128, "count": 4, "first_seed": 0,
                             "last_seed": 3}
    assert data["val"]["first_seed"] == HELDOUT_SEED_START + VALIDATION_SEED_OFFSET
    assert len(list((tmp_path / "cache").rglob("*_labels.png"))) == 6


def test_bag_run_trains_on_stamp_paired_frames(tmp_path):
    from ddrnet_ros.data.bags import BagWriter

    for name, seeds in (("train_bag", range(4)), ("val_bag", range(50, 52))):
        with BagWriter(tmp_path / name) as writer:
            for i, seed in enumerate(seeds):
                image, labels = scene(seed)
                writer.write_image("/cam/image", image, 1_000 + i, "cam")
                writer.write_image("/cam/labels", labels, 1_000 + i, "cam", encoding="mono8")
    out = tmp_path / "bagrun"
    args = command.parse_args(["--data", "bag", "--bag", str(tmp_path / "train_bag"), "--val-bag",
                               str(tmp_path / "val_bag"), "--image-topic", "/cam/image", "--label-topic",
                               "/cam/labels", "--height", str(HEIGHT), "--width", str(WIDTH), "--crop", "64x64",
                               "--batch-size", "2", "--iterations", "2", "--min-kept", "1000", "--workers", "0",
                               "--output", str(out)])
    train(args)
    data = read_metadata(out / "best.pt")["training_data"]
    assert data["train"]["source"] == "bag" and data["train"]["count"] == 4 and data["val"]["count"] == 2


def test_bf16_channels_last_training_lowers_the_loss_and_saves_the_plain_official_layout(cityscapes_root, tmp_path):
    out = tmp_path / "bf16"
    summary = train(run_args(cityscapes_root, out, "--iterations", "16", "--val-every", "4", "--lr", "0.02",
                                     "--threads", "1", "--precision", "bf16", "--channels-last"))
    assert summary["iterations"] == 16
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in history] == [4, 8, 12, 16]
    # Learning happens under autocast as in fp32 (there: 6.4 -> 3.8 over these steps).
    assert history[-1]["loss_ema"] < 0.75 * history[0]["loss_ema"], [h["loss_ema"] for h in history]
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert list(state) == list(create_model("ddrnet23_slim").state_dict())
    assert all(t.is_contiguous() and t.dtype in (torch.float32, torch.int64) for t in state.values())
    meta = read_metadata(out / "last.pt")
    assert meta["recipe"]["precision"] == "bf16" and meta["recipe"]["channels_last"] is True


def test_fp16_on_the_cpu_is_a_one_line_error(cityscapes_root, tmp_path, capsys):
    code = command.main(run_args(cityscapes_root, tmp_path / "fp16", "--iterations", "2", "--precision", "fp16"))
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--precision fp16 needs a CUDA --device" in err and len(err.splitlines()) == 1


def test_validating_at_a_network_input_size_records_it_for_the_engine(cityscapes_root, tmp_path, monkeypatch):
    from ddrnet_ros.engine import Segmenter, SegmenterConfig

    out = tmp_path / "small_input"
    args = run_args(cityscapes_root, out, "--iterations", "2", "--val-input-size", "32x64")
    val_images = []
    real_validate = loop.validate

    def recording_validate(model, loader, class_map, device, label_space=None):
        val_images.extend(tuple(images.shape[-2:]) for images, _ in loader)
        return real_validate(model, loader, class_map, device, label_space)

    monkeypatch.setattr(loop, "validate", recording_validate)
    train(args)
    assert val_images and set(val_images) == {(32, 64)}
    metadata = read_metadata(out / "best.pt")
    assert metadata["network_input_size"] == [32, 64] and metadata["input_size"] == [HEIGHT, WIDTH]
    segmenter = Segmenter(SegmenterConfig(variant="ddrnet23_slim", checkpoint=str(out / "best.pt"), device="cpu"))
    assert segmenter.input_size == (32, 64)
    assert segmenter.segment(scene(100)[0]).labels.shape == (HEIGHT, WIDTH)


def camvid_args(camvid_root, output, *extra):
    return command.parse_args([
        "--data", "camvid:3+synthetic:1", "--camvid-root", str(camvid_root), "--height", "64", "--width", "128",
        "--train-seeds", "3", "--crop", "48x64", "--batch-size", "2", "--camvid-scale-min", "1",
        "--camvid-scale-max", "1", "--min-kept", "500", "--workers", "0", "--output", str(output), *extra])


def test_mixed_camvid_and_synthetic_run_validates_in_camvid_classes_and_records_the_recipe(camvid_root, tmp_path):
    out = tmp_path / "mixed"
    summary = train(camvid_args(camvid_root, out, "--iterations", "2"))
    assert summary["iterations"] == 2
    meta = read_metadata(out / "best.pt")
    assert meta["num_classes"] == 19  # the node's contract stays Cityscapes' 19 classes
    assert set(meta["val_per_class_iou"]) == set(CAMVID.names)
    assert meta["training_data"]["val"]["source"] == "camvid" and meta["training_data"]["val"]["split"] == "val"
    sources = [(d["source"], d["weight"]) for d in meta["training_data"]["train"]]
    assert sources == [("camvid", 3.0), ("synthetic", 1.0)]
    recipe = meta["recipe"]
    assert recipe["camera_augmentation"]["on"] == "real" and recipe["camvid_scale_range"] == [1.0, 1.0]
    assert recipe["letterbox_p"] == 0.0


def test_letterbox_augmentation_pads_to_the_aspect_the_checkpoint_will_run_at(camvid_root, tmp_path):
    from ddrnet_ros.classes import CAMVID, ClassMap, TrainingLabelSets
    from ddrnet_ros.training.config import TrainConfig
    from ddrnet_ros.training.data import build_sources, training_set

    args = camvid_args(camvid_root, tmp_path, "--val-input-size", "96x128", "--letterbox-p", "0.4")
    config = TrainConfig.from_args(args)
    parts, _, _ = build_sources(config)
    mixed = training_set(config, parts, TrainingLabelSets.build(ClassMap.load(None), [CAMVID]), 255)
    augmentations = [pairs.augmentation for _, _, pairs in mixed.parts]
    assert [(a.letterbox, a.letterbox_p) for a in augmentations] == [((96, 128), 0.4)] * 2
    # the synthetic source (64x128, 2:1) shows the band under its frames; CamVid (4:3 as the network) none
    synthetic = mixed.parts[1][2]
    assert any(bool((synthetic[(0, i)][1] == 255).any()) for i in range(3))


def test_a_camvid_run_without_its_root_or_with_a_wrong_tree_is_one_line(camvid_root, tmp_path, capsys):
    args = camvid_args(camvid_root, tmp_path / "out", "--iterations", "1")
    args.camvid_root = None
    assert command.main(args) == 1
    assert "--data camvid needs --camvid-root" in capsys.readouterr().err
    args = camvid_args(tmp_path, tmp_path / "out", "--iterations", "1")
    assert command.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train/<name>.png" in err and "trainannot/<name>.png" in err


def test_the_train_command_restarts_itself_under_tcmalloc_when_the_system_has_it(camvid_root, tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    argv = [sys.executable, "-c", "import sys; from ddrnet_ros.commands import main; sys.exit(main())", "train",
               "--data", "camvid", "--camvid-root", str(camvid_root), "--output", str(tmp_path / "out"),
               "--iterations", "1", "--batch-size", "2", "--crop", "48x64", "--min-kept", "100", "--workers", "0",
               "--camvid-scale-min", "1", "--camvid-scale-max", "1"]
    # sys.argv[1] must be "train", as when started as `ddrnet-ros train`.
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    if command.find_tcmalloc():
        assert "restarting with" in done.stderr and done.stderr.count("allocator:") == 1
    else:
        assert "install libtcmalloc-minimal4" in done.stderr
    assert (tmp_path / "out" / "best.pt").is_file()


# --------------------------------------------------------------------------------------------
# resume state on its own, without a training run


def _optimizer_with_state(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(torch.randn(2, 3, 64, 64))[0].mean().backward()  # batch 2: BN needs more than one value
    optimizer.step()
    return optimizer


def test_resume_state_round_trips_model_optimizer_counters_and_rng(tmp_path):
    from ddrnet_ros.training import RunState, load_resume, save_resume

    model = create_model("ddrnet23_slim", aux=True).train()
    optimizer = _optimizer_with_state(model)
    state = RunState(iteration=7, best_miou=0.5, best_iteration=5, wall_time_s=12.5, last_val={"mIoU": 0.4})
    run_config = {"variant": "ddrnet23_slim", "num_classes": 19, "aux": True}
    torch.manual_seed(11)
    save_resume(tmp_path / "resume.pt", model, optimizer, state, run_config)
    expected_draw = torch.rand(3)

    fresh = create_model("ddrnet23_slim", aux=True).train()
    fresh_optimizer = torch.optim.SGD(fresh.parameters(), lr=0.01, momentum=0.9)
    torch.manual_seed(99)
    loaded = load_resume(tmp_path / "resume.pt", fresh, fresh_optimizer, run_config)
    assert loaded == state
    torch.testing.assert_close(torch.rand(3), expected_draw)  # the random stream continues where it was
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, msg=key)
    momentum = [s["momentum_buffer"] for s in fresh_optimizer.state_dict()["state"].values()]
    assert momentum and all(m is not None for m in momentum)
    assert not (tmp_path / "resume.pt.tmp").exists()  # written atomically


@pytest.mark.parametrize("key, value", [("variant", "ddrnet39"), ("num_classes", 3), ("aux", False)])
def test_resume_refuses_a_run_of_another_model_naming_what_differs(tmp_path, key, value):
    from ddrnet_ros.training import RunState, TrainingError, load_resume, save_resume

    model = create_model("ddrnet23_slim", aux=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    run_config = {"variant": "ddrnet23_slim", "num_classes": 19, "aux": True}
    save_resume(tmp_path / "resume.pt", model, optimizer, RunState(), run_config)
    with pytest.raises(TrainingError, match=f"{key}="):
        load_resume(tmp_path / "resume.pt", model, optimizer, {**run_config, key: value})


def test_the_train_config_is_the_parsed_command_line_typed_and_flattened(camvid_root, tmp_path):
    from ddrnet_ros.training.config import TrainConfig

    args = command.parse_args(["--data", "camvid:3", "--data", "synthetic", "--camvid-root", str(camvid_root),
                               "--output", str(tmp_path), "--crop", "48x64", "--class-config", "x.yaml"])
    config = TrainConfig.from_args(args)
    assert config.data == [("camvid", 3.0), ("synthetic", 1.0)] and config.crop == (48, 64)
    assert config.classes == "x.yaml" and config.argv[:2] == ("--data", "camvid:3")


# --------------------------------------------------------------------------------------------
# weight average


def test_the_weight_average_follows_the_live_weights_with_a_warming_up_decay():
    from ddrnet_ros.training.averaging import WeightAverage

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    first = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    model.train()(torch.randn(2, 3, 8, 8))  # moves the BN running stats and its integer counter
    second = {k: v.clone() for k, v in model.state_dict().items()}

    average.update(model)  # decay min(0.5, 1/10) = 0.1
    for key, value in average.model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.1 * first[key] + 0.9 * second[key], msg=key)
        else:
            assert torch.equal(value, second[key]), key  # num_batches_tracked is copied, not averaged
    average.update(model)  # decay min(0.5, 2/11)
    weight = average.model.state_dict()["0.weight"]
    expected = (2 / 11) * (0.1 * first["0.weight"] + 0.9 * second["0.weight"]) + (9 / 11) * second["0.weight"]
    torch.testing.assert_close(weight, expected)
    assert average.updates == 2 and not any(p.requires_grad for p in average.model.parameters())


def test_a_run_with_a_weight_average_validates_and_saves_the_average_and_resumes_it(cityscapes_root, tmp_path):
    straight = tmp_path / "straight"
    train(run_args(cityscapes_root, straight, "--iterations", "4", "--threads", "1", "--weight-average", "0.9"))
    saved = torch.load(straight / "resume.pt", map_location="cpu", weights_only=True)
    assert saved["weight_average"]["updates"] == 4
    averaged, live = saved["weight_average"]["weights"], saved["model"]
    last = torch.load(straight / "last.pt", weights_only=True)
    assert all(torch.equal(last[k], averaged[k]) for k in last)  # the file holds the average...
    assert any(not torch.equal(last[k], live[k]) for k in last if last[k].is_floating_point())  # ...not the live
    assert read_metadata(straight / "last.pt")["recipe"]["weight_average"] == 0.9

    split = tmp_path / "split"
    train(run_args(cityscapes_root, split, "--iterations", "4", "--threads", "1", "--weight-average", "0.9",
                   "--time-budget", "1e-9"))
    train(run_args(cityscapes_root, split, "--iterations", "4", "--threads", "1", "--weight-average", "0.9",
                   "--resume"))
    resumed = torch.load(split / "last.pt", weights_only=True)
    for key in last:
        torch.testing.assert_close(resumed[key], last[key], rtol=1e-4, atol=1e-5, msg=key)


def test_resuming_a_run_saved_without_an_average_starts_the_average_from_the_resumed_weights(tmp_path):
    from ddrnet_ros.training import RunState, load_resume, save_resume
    from ddrnet_ros.training.averaging import WeightAverage

    model = create_model("ddrnet23_slim", aux=True).train()
    optimizer = _optimizer_with_state(model)
    run_config = {"variant": "ddrnet23_slim", "num_classes": 19, "aux": True}
    save_resume(tmp_path / "resume.pt", model, optimizer, RunState(iteration=3), run_config)

    fresh = create_model("ddrnet23_slim", aux=True).train()
    average = WeightAverage(fresh, decay=0.99)
    average.updates = 50
    load_resume(tmp_path / "resume.pt", fresh, torch.optim.SGD(fresh.parameters(), lr=0.01, momentum=0.9),
                run_config, average)
    assert average.updates == 0
    for key, value in model.state_dict().items():
        assert torch.equal(average.model.state_dict()[key], value), key


@pytest.mark.parametrize("decay", ["1", "-0.5"])
def test_a_weight_average_decay_outside_zero_to_one_is_a_one_line_error(cityscapes_root, tmp_path, capsys, decay):
    code = command.main(run_args(cityscapes_root, tmp_path / "out", "--iterations", "2", "--weight-average", decay))
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--weight-average must be in [0, 1)" in err and len(err.splitlines()) == 1


def test_class_weights_are_named_checked_and_recorded(camvid_root, tmp_path, capsys):
    out = tmp_path / "weighted"
    train(camvid_args(camvid_root, out, "--iterations", "1", "--class-weight", "pole=2",
                      "--class-weight", "traffic_sign=1.5"))
    assert read_metadata(out / "best.pt")["recipe"]["class_weights"] == {"pole": 2.0, "traffic sign": 1.5}
    args = camvid_args(camvid_root, tmp_path / "bad", "--iterations", "1", "--class-weight", "lamppost=2")
    assert command.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no class 'lamppost'" in err and "pole" in err
    with pytest.raises(SystemExit):
        command.parse_args(["--output", "x", "--class-weight", "pole=-1"])


def test_validation_runs_an_unaligned_image_as_the_engine_does(trained_like_model):
    """Training validation scores what the node would publish: the same frame padded to multiples
    of 64, the same logits at the image's size (a 72x104 image runs in a 128x128 frame)."""
    from ddrnet_ros.engine import Segmenter, SegmenterConfig
    from ddrnet_ros.training.validation import aligned_logits

    model = trained_like_model()
    image = np.random.default_rng(5).integers(0, 256, (72, 104, 3), dtype=np.uint8)
    engine = Segmenter(SegmenterConfig(checkpoint="random", device="cpu"), model=model, optimize=False)
    assert engine.network_size(72, 104) == (128, 128)
    expected = engine.logits(image)
    with torch.inference_mode():
        got = aligned_logits(model.eval(), normalize(image)[None])[0].numpy()
    assert got.shape == expected.shape == (19, 72, 104)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    with torch.inference_mode():  # the unpadded frame is what it used to score, and it differs
        unaligned = torch.nn.functional.interpolate(model(normalize(image)[None]), size=(72, 104), mode="bilinear",
                                                    align_corners=False)[0].numpy()
    assert np.abs(unaligned - expected).max() > 1e-2 * np.abs(expected).max()
