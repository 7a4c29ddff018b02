"""``ddrnet-ros export``: a DDRNet checkpoint as an ONNX file with a JSON sidecar (see
:mod:`ddrnet_ros.engine.onnx_export` for what the graph holds)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..engine.loading import LoadedModel, load_model
from ..engine.onnx_export import check_with_onnxruntime, export_metadata, export_onnx
from ..engine.quantize import calibrate, calibration_size, find_artifact
from ..model import INPUT_MULTIPLE, VARIANTS, DDRNet
from ..resources import DEFAULT_VARIANT
from .common import add_checkpoint_argument, fail


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    add_checkpoint_argument(parser)
    parser.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--height", type=int, default=1024, help="input height, a multiple of 8 (default 1024)")
    parser.add_argument("--width", type=int, default=2048, help="input width, a multiple of 8 (default 2048)")
    parser.add_argument("--dynamic", action="store_true", help="leave height and width free in the graph")
    parser.add_argument("--class-config", default=None, help="class YAML (default: from the checkpoint or Cityscapes)")
    parser.add_argument("--no-check", action="store_true", help="skip running the graph with ONNX Runtime")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="int8: also write the NNCF-quantized OpenVINO IR beside the ONNX file (<output>.int8.xml"
                             "/.bin), calibrated once per checkpoint and size (--height x --width) and cached for "
                             "the engine's precision int8 at that network size")
    parser.add_argument("--camvid-root", default=None, metavar="DIR",
                        help="int8: calibrate on CamVid training frames too (besides synthetic scenes)")


def main(args: argparse.Namespace) -> int:
    for name in ("height", "width"):
        value = getattr(args, name)
        if value < INPUT_MULTIPLE or value % INPUT_MULTIPLE:
            return fail("export", f"--{name} {value} must be a positive multiple of {INPUT_MULTIPLE}")
    if args.output.suffix != ".onnx":
        return fail("export", f"--output {args.output} should end in .onnx")
    try:
        loaded = load_model(args.variant, args.checkpoint, class_map=args.class_config)
        assert isinstance(loaded.module, DDRNet)  # load_model builds one
        loaded.class_map.check_num_classes(loaded.module.num_classes)
        data = export_onnx(loaded.module, args.height, args.width, dynamic=args.dynamic)
    except (ValueError, RuntimeError, OSError) as exc:  # config, checkpoint, class map and export errors
        return fail("export", exc)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(args.output)
    meta = export_metadata(loaded, args.height, args.width, args.dynamic)
    Path(str(args.output) + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    if not args.no_check:
        error = check_with_onnxruntime(loaded.module, args.output, args.height, args.width)
        if error is not None:
            return fail("export", error)
    size_mb = len(data) / 1e6
    shape = "dynamic HxW" if args.dynamic else f"{args.height}x{args.width}"
    print(f"wrote {args.output} ({size_mb:.1f} MB, {loaded.variant}, {loaded.num_classes} classes, {shape})")
    if args.precision == "int8":
        try:
            network_size = None if args.dynamic else (args.height, args.width)
            written, agreement = write_int8(loaded, data, args.output, args.camvid_root, network_size)
        except (RuntimeError, ImportError, OSError) as exc:
            return fail("export", exc)
        print(f"wrote {written} (int8, labels agree with fp32 on {agreement:.2%} of held-out pixels)")
    return 0


def write_int8(loaded: LoadedModel, onnx: bytes, output: Path, camvid_root: str | None,
               network_size: tuple[int, int] | None) -> tuple[Path, float]:
    """Calibrate at the exported size (or reuse the cached calibration of this checkpoint at that size)
    and copy the IR beside ``output``; a dynamic export is calibrated at the default size."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None:
        raise RuntimeError("--precision int8 needs the openvino and nncf packages: pip install openvino nncf")
    import openvino as ov

    key = loaded.weights_key
    size = calibration_size(network_size)
    artifact = find_artifact(key, size) or calibrate(ov.Core().read_model(onnx), key, size, camvid_root=camvid_root)
    target = output.with_suffix(".int8.xml")
    for suffix in (".xml", ".bin", ".json"):
        shutil.copyfile(artifact.xml.with_suffix(suffix), target.with_suffix(suffix))
    return target, artifact.agreement
