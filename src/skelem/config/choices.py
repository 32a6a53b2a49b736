"""The named choices of restoration (methods, planes, fusion, ...), as ``Literal`` types.

Kept free of pydantic so that the CLI can build its option lists (``typing.get_args``) without
importing the config models: ``skelem --help`` stays instant.
"""

from __future__ import annotations

from typing import Literal, get_args

NetworkMethod = Literal["skelem", "skeleton", "diffusion"]
InterpolationMethod = Literal["cubic", "linear", "nearest"]
Method = Literal[NetworkMethod, InterpolationMethod]
Planes = Literal["both", "xz", "yz"]
Fuse = Literal["end", "steps"]
Normalize = Literal["model", "input"]
OutputDtype = Literal["input", "float32"]

METHODS: tuple[str, ...] = get_args(Method)
NETWORK_METHODS: tuple[str, ...] = get_args(NetworkMethod)
INTERPOLATION_METHODS: tuple[str, ...] = get_args(InterpolationMethod)

#: Defaults of the restore options the CLI shows (``RestoreOptions`` takes its defaults from here).
#: How the networks run (skelem.inference.backends): PyTorch in channels_last layout (default),
#: PyTorch in the plain NCHW layout, or ONNX Runtime (optional dependency).
BACKENDS = ("torch", "torch-nchw", "onnxruntime")

RESTORE_DEFAULTS: dict[str, object] = {
    "samples": 1,
    "batch_size": 8,
    "planes": "both",
    "fuse": "end",
    "seed": 0,
    "normalize": "model",
    "device": "auto",
    "dtype": "input",
    "tta": False,
    "backend": "torch",
}
