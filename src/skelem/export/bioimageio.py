"""Export a trained skeleton as a bioimage.io model (spec 0.5) zip package.

The package holds :class:`~skelem.export.network.SkeletonRestorer` (architecture imported from
``skelem``) with the skeleton's weights as a PyTorch state dict and its SHA-256, the model's
intensity normalisation as pre- and post-processing, input and output axes whose Z scales differ
by the anisotropy factor (the output's Z size is ``factor*(Z-1)+1``), a halo from the measured
receptive field, a test input cropped from the model's own training volume and the output the
network gives for it, citations and a license. ``bioimageio test model.zip`` (bioimageio.core)
reruns the test tensors.

Two restorations are exported (``method``): the skeleton alone (``--method skeleton``), and the
deterministic end of SkelEM (``--method skelem --detail 0``: the skeleton plus the residual
measured on the acquired slices, spread between them), which needs no sampling. The sampler with
detail is not: its noise is keyed by global voxel coordinates (so tiles and passes agree) and a
bioimage.io tile reaches the model without its position in the volume.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from skelem.atomic import commit_output, partial_path
from skelem.errors import InputError, ModelError
from skelem.io.writers import check_output

logger = logging.getLogger(__name__)

INPUT_ID = "raw"
OUTPUT_ID = "restored"
WEIGHTS_NAME = "skeleton_restorer.pt"
METHODS = ("skeleton", "skelem-detail0")
#: input slices on each side one interpolated output row depends on (Keys cubic: 1 before, 2 after)
_INTERPOLATION_REACH = 2

_CITATIONS = (
    (
        "Ronneberger, Fischer and Brox 2015, U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation (the skeleton's architecture).",
        "10.1007/978-3-319-24574-4_28",
    ),
    (
        "Keys 1981, Cubic convolution interpolation for digital image processing (the axial "
        "interpolation the skeleton corrects).",
        "10.1109/TASSP.1981.1163711",
    ),
)


def export_bioimageio(
    model_dir: str | Path,
    output: str | Path,
    test_input: str | Path | None = None,
    *,
    name: str | None = None,
    authors: tuple[str, ...] = ("SkelEM user",),
    license_id: str = "BSD-3-Clause",
    planes: str = "both",
    method: str = "skeleton",
    overwrite: bool = False,
) -> Path:
    """Write ``output`` (a ``.zip``), the bioimage.io package of the skeleton of ``model_dir``.

    Parameters
    ----------
    model_dir : str or Path
        A SkelEM model directory with a trained skeleton.
    output : str or Path
        The package to write (``model.zip``).
    test_input : str or Path, optional
        The volume the test input is cropped from; default the model's training volume (its
        manifest's ``trained_on``), which must still exist.
    name : str, optional
        The model's name; default ``SkelEM skeleton x<factor> (<model folder name>)``.
    authors : tuple of str
        Author names.
    license_id : str
        SPDX license of the weights.
    planes : {"both", "xz", "yz"}
        Which cross-sections the exported model restores (``both``: their mean, as ``skelem
        restore``).
    method : {"skeleton", "skelem-detail0"}
        ``skeleton``: ``skelem restore --method skeleton``. ``skelem-detail0``: ``skelem restore
        --method skelem --detail 0``, the deterministic end of SkelEM (skeleton plus the residual
        measured on the acquired slices spread between them; acquired slices kept exactly).
    overwrite : bool
        Replace an existing ``output``.

    Returns
    -------
    Path
        ``output``.

    Raises
    ------
    ModelError
        The folder is not a model or has no trained skeleton.
    InputError
        No usable test volume, or an output that is not a ``.zip`` or already exists.
    """
    import torch

    from skelem.export.network import SkeletonRestorer
    from skelem.models.artifact import load_artifact
    from skelem.models.unet import measured_receptive_field

    output = Path(output)
    if output.suffix.lower() != ".zip":
        raise InputError(f"The bioimage.io package {output} must be a .zip file.")
    check_output(output, overwrite)
    artifact = load_artifact(model_dir)
    if not artifact.has("skeleton"):
        raise ModelError(
            f"The model directory {model_dir} has no trained skeleton; train it with "
            "`skelem train --stages skeleton`."
        )
    if method not in METHODS:
        raise InputError(f"Unknown export method {method!r}; use one of {', '.join(METHODS)}.")
    factor = artifact.factor
    net_cfg = artifact.config.skeleton
    architecture = {
        "factor": factor,
        "channels": net_cfg.channels,
        "depth": net_cfg.depth,
        "planes": planes,
        "measured_residual": method != "skeleton",
    }
    if net_cfg.context:
        architecture["context"] = net_cfg.context
    network = SkeletonRestorer(**architecture)
    network.skeleton.load_state_dict(artifact.load_network("skeleton").state_dict())
    network.eval()
    multiple = network.skeleton.multiple
    reach = measured_receptive_field(network.skeleton, multiple)
    # in Z the interpolation adds its reach; bioimage.io needs a halo of whole input slices
    halo_z = -(-(reach + _INTERPOLATION_REACH * factor) // factor) * factor
    halo_yx = reach + net_cfg.context  # the neighbouring slices reach along the other axis
    minimum = _minimum_input(factor, (halo_z, halo_yx), multiple)
    raw = _test_crop(artifact, test_input, minimum)
    normalizer = artifact.normalizer
    with torch.no_grad():
        normalised = torch.from_numpy(normalizer.normalize(raw.astype(np.float32)))
        restored = network(normalised[None, None])[0, 0].numpy()
    expected = (restored * np.float32(normalizer.scale) + np.float32(normalizer.low)).astype(
        np.float32
    )
    logger.info("test input %s -> output %s", raw.shape, expected.shape)

    partial = partial_path(output)
    with tempfile.TemporaryDirectory(prefix=".skelem-bioimageio-", dir=output.parent) as tmp:
        folder = Path(tmp)
        np.save(folder / "test_input.npy", raw[None, None])
        np.save(folder / "test_output.npy", expected[None, None])
        torch.save(network.state_dict(), folder / WEIGHTS_NAME)
        (folder / "README.md").write_text(_documentation(artifact, factor, halo_z, halo_yx, method))
        description = _describe(
            folder,
            artifact,
            name or f"SkelEM {method} x{factor} ({Path(model_dir).resolve().name})",
            authors,
            license_id,
            architecture,
            (halo_z, halo_yx),
            (minimum, network.skeleton.multiple),
        )
        _save_package(description, partial)
    try:
        commit_output(partial, output, overwrite)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return output


def _minimum_input(factor: int, halos: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The smallest input ``(z, y=x)`` whose output is larger than twice the halo."""
    halo_z, halo_yx = halos
    return (2 * halo_z - 1) // factor + 2, (2 * halo_yx // multiple + 1) * multiple


def _test_crop(artifact, test_input: str | Path | None, minimum: tuple[int, int]) -> np.ndarray:
    """A centred crop of the training (or given) volume of the smallest input size."""
    from skelem.io import open_volume

    source = test_input if test_input is not None else artifact.provenance.get("trained_on")
    try:
        volume = open_volume(str(source))
    except InputError:
        if test_input is not None:
            raise
        raise InputError(
            f"The training volume of {artifact.directory} ({source}) cannot be read; pass "
            "--test-input with a volume of the same kind."
        ) from None
    z, y, x = volume.shape
    size_z, size_yx = minimum
    if z < size_z or min(y, x) < size_yx:
        raise InputError(
            f"{source} ({z}x{y}x{x}) is smaller than the exported model's smallest input "
            f"({size_z}x{size_yx}x{size_yx}, set by its halo); pass --test-input with a larger "
            "volume."
        )
    z0, y0, x0 = (z - size_z) // 2, (y - size_yx) // 2, (x - size_yx) // 2
    crop = np.asarray(volume.data[z0 : z0 + size_z, y0 : y0 + size_yx, x0 : x0 + size_yx])
    # float32 whatever the stored type: bioimage.io casts the pre-processed input back to the
    # declared input type, so a uint8 declaration would round the normalised values to 0 or 1
    return crop.astype(np.float32)


def _describe(
    folder: Path,
    artifact,
    name: str,
    authors: tuple[str, ...],
    license_id: str,
    architecture: dict,
    halos: tuple[int, int],
    minimum: tuple[tuple[int, int], int],
):
    import torch
    from bioimageio.spec.model.v0_5 import (
        ArchitectureFromLibraryDescr,
        Author,
        AxisId,
        BatchAxis,
        ChannelAxis,
        CiteEntry,
        FileDescr,
        Identifier,
        InputTensorDescr,
        IntervalOrRatioDataDescr,
        ModelDescr,
        OutputTensorDescr,
        ParameterizedSize,
        PytorchStateDictWeightsDescr,
        ScaleLinearDescr,
        ScaleLinearKwargs,
        SizeReference,
        SpaceInputAxis,
        SpaceOutputAxisWithHalo,
        TensorId,
        Version,
        WeightsDescr,
    )

    from skelem.models.artifact import file_sha256

    factor = artifact.factor
    halo_z, halo_yx = halos
    (min_z, min_yx), multiple = minimum
    normalizer = artifact.normalizer
    scale = float(normalizer.scale)
    low = float(normalizer.low)
    raw_id, out_id = TensorId(INPUT_ID), TensorId(OUTPUT_ID)
    channel = ChannelAxis(channel_names=[Identifier("intensity")])
    input_axes = [
        BatchAxis(),
        channel,
        SpaceInputAxis(id=AxisId("z"), size=ParameterizedSize(min=min_z, step=1), scale=factor),
        *(
            SpaceInputAxis(id=AxisId(a), size=ParameterizedSize(min=min_yx, step=multiple))
            for a in "yx"
        ),
    ]
    output_axes = [
        BatchAxis(),
        channel,
        SpaceOutputAxisWithHalo(
            id=AxisId("z"),
            size=SizeReference(tensor_id=raw_id, axis_id=AxisId("z"), offset=1 - factor),
            halo=halo_z,
            scale=1,
        ),
        *(
            SpaceOutputAxisWithHalo(
                id=AxisId(a), size=SizeReference(tensor_id=raw_id, axis_id=AxisId(a)), halo=halo_yx
            )
            for a in "yx"
        ),
    ]
    inputs = [
        InputTensorDescr(
            id=raw_id,
            description="anisotropic volume: Z step = factor x lateral pixel",
            axes=input_axes,
            test_tensor=FileDescr(source=folder / "test_input.npy"),
            data=IntervalOrRatioDataDescr(type="float32"),
            preprocessing=[
                ScaleLinearDescr(kwargs=ScaleLinearKwargs(gain=1.0 / scale, offset=-low / scale)),
            ],
        )
    ]
    outputs = [
        OutputTensorDescr(
            id=out_id,
            description=f"isotropic volume: {factor}*(Z-1)+1 slices, Z step = lateral pixel",
            axes=output_axes,
            test_tensor=FileDescr(source=folder / "test_output.npy"),
            data=IntervalOrRatioDataDescr(type="float32"),
            postprocessing=[ScaleLinearDescr(kwargs=ScaleLinearKwargs(gain=scale, offset=low))],
        )
    ]
    weights_file = folder / WEIGHTS_NAME
    weights = WeightsDescr(
        pytorch_state_dict=PytorchStateDictWeightsDescr(
            source=weights_file,
            sha256=file_sha256(weights_file),
            architecture=ArchitectureFromLibraryDescr(
                callable=Identifier("SkeletonRestorer"),
                import_from="skelem.export.network",
                kwargs=architecture,
            ),
            pytorch_version=Version(torch.__version__.split("+")[0]),
        )
    )
    return ModelDescr(
        name=name,
        description=(
            f"Axial super-resolution x{factor} for volume microscopy: SkelEM's skeleton U-Net "
            "restores the XZ and YZ sections of a cubic-interpolated anisotropic volume, "
            "self-supervised on the acquired volume's own lateral slices."
        ),
        authors=[Author(name=author) for author in authors],
        cite=[CiteEntry(text=text, doi=doi) for text, doi in _CITATIONS],
        license=license_id,
        documentation=FileDescr(source=folder / "README.md"),
        tags=["skelem", "isotropic", "super-resolution", "volume-em", "3d", "pytorch"],
        inputs=inputs,
        outputs=outputs,
        weights=weights,
    )


def _save_package(description, target: Path) -> None:
    from bioimageio.spec import save_bioimageio_package

    save_bioimageio_package(description, output_path=target)


def _documentation(artifact, factor: int, halo_z: int, halo_yx: int, method: str) -> str:
    provenance = artifact.provenance
    normalizer = artifact.normalizer
    what = (
        "this is `skelem restore --method skeleton`."
        if method == "skeleton"
        else "the residual measured on the acquired slices (input minus skeleton there) is then "
        "spread linearly to the slices in between and added, so acquired slices are kept "
        "exactly: this is `skelem restore --method skelem --detail 0`."
    )
    return f"""# SkelEM ({method}), anisotropy factor {factor}

Restores an isotropic volume from an anisotropic acquisition whose Z step is {factor} times its
lateral pixel: the input's `Z` slices become `{factor}*(Z-1)+1` slices on the lateral grid. The
network interpolates along Z (Keys cubic convolution) and restores every XZ and every YZ
cross-section with a 2-D U-Net (the SkelEM "skeleton"), averaging the two passes; {what}

- Trained with SkelEM {_skelem_version()} on `{provenance.get("trained_on")}` (shape
  {provenance.get("shape")}, voxel size {provenance.get("voxel_size")} {provenance.get("unit")}),
  self-supervised: lateral slices degraded along one axis, no ground truth.
- Intensities: the pre-processing maps the training volume's
  {normalizer.percentiles[0]}-{normalizer.percentiles[1]} percentiles ({normalizer.low:g},
  {normalizer.high:g}) to 0-1; the post-processing maps them back.
- Tiles: crop a halo of {halo_z} output slices in Z and {halo_yx} pixels in Y and X (the
  measured receptive field plus the interpolation's reach).
- Needs the `skelem` Python package (`pip install skelem`) for the architecture.

The SkelEM sampler with detail (`--detail` above 0: the diffusion refiner's draws) is not part of
this package: its noise is keyed by global voxel coordinates so that tiles and the two passes
agree, and a bioimage.io tile reaches the model without its position in the volume, so a tiled
run would not be the same restoration (nor a reproducible one). Use `skelem restore` for it.
"""


def _skelem_version() -> str:
    import skelem

    return skelem.__version__
