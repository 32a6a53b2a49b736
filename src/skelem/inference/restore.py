"""Volume restoration: interpolate along Z, restore every XZ and YZ slice, fuse, tile, write.

``restore_volume`` works in memory (tiled by the block planner to bound the networks' working set);
``restore_to_file`` writes TIFF/HDF5/NPY atomically, or streams blocks into an OME-Zarr store that a
killed run resumes without recomputing finished blocks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from skelem.config.models import check_factor
from skelem.data.interpolation import upsample
from skelem.data.normalize import PercentileNormalizer
from skelem.errors import ConfigError, InputError, ModelError, OutputExistsError
from skelem.events import ProgressCallback, no_progress
from skelem.inference.engine import SliceEngine
from skelem.inference.planner import block_output_origin, output_shape, plan_blocks
from skelem.inference.runner import (
    finalize_store,
    read_done_positions,
    run_in_memory,
    run_streaming,
)
from skelem.io import Volume
from skelem.io.validate import validate_volume
from skelem.models.artifact import ModelArtifact
from skelem.models.device import resolve_device
from skelem.models.unet import measured_receptive_field

log = logging.getLogger(__name__)

INTERPOLATION_METHODS = ("nearest", "linear", "cubic")
NETWORK_METHODS = ("skeleton", "skelem", "diffusion")
METHODS = INTERPOLATION_METHODS + NETWORK_METHODS
PLANES = ("both", "xz", "yz")
FUSE = ("end", "steps")
SINGLE_BLOCK_VOXELS = 96 * 2**20  # in-memory outputs up to this size run as one block
STREAM_BLOCK = (128, 512, 512)  # default output block of streamed (OME-Zarr) restorations
STREAM_BLOCK_JOINT = (64, 256, 256)  # ... with --fuse steps (joint sampling holds ~10 block arrays)


@dataclass
class RestoreOptions:
    """How to restore (defaults follow the model's config)."""

    method: str | None = None  # None: skelem when a refiner exists, else skeleton
    steps: int | None = None
    t0: int | None = None
    use_prior: bool = True
    use_consistency: bool = True
    aligned: bool = True  # False: the refiner from before the alignment stage (ablation)
    seed: int = 0
    samples: int = 1
    block_shape: tuple[int, int, int] | None = None
    normalize: str = "model"  # "input": the volume's own percentiles (another instrument, zero-shot)
    device: str = "auto"
    batch_size: int = 8
    planes: str = "both"  # "xz" or "yz": one cross-plane pass only (half the cost; no fusion)
    fuse: str = "end"  # skelem with both planes: "end" averages the passes, "steps" after every step


def default_method(artifact: ModelArtifact | None) -> str:
    if artifact is None:
        return "cubic"
    return "skelem" if artifact.has("refiner") else "skeleton"


class Restorer:
    """Restores normalised blocks ``(z, y, x)`` into ``(s*(z-1)+1, y, x)`` with one method."""

    def __init__(self, artifact: ModelArtifact | None, factor: int, options: RestoreOptions) -> None:
        method = options.method or default_method(artifact)
        if method not in METHODS:
            raise ConfigError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
        if options.planes not in PLANES:
            raise ConfigError(f"Unknown planes {options.planes!r}; choose one of {', '.join(PLANES)}.")
        if options.fuse not in FUSE:
            raise ConfigError(f"Unknown fusion {options.fuse!r}; choose one of {', '.join(FUSE)}.")
        self.method, self.factor, self.options = method, factor, options
        self.halo = (2 * factor, 0, 0)
        self.align = 1
        self.engine: SliceEngine | None = None
        if method in INTERPOLATION_METHODS:
            return
        if artifact is None:
            raise ModelError(f"The {method} method needs a trained model: pass --model MODEL_DIR.")
        if artifact.factor != factor:
            raise ModelError(
                f"The model in {artifact.directory} was trained for factor {artifact.factor}, "
                f"but this volume needs factor {factor}; train a model for this factor."
            )
        if options.samples > 1 and method == "skeleton":
            raise ConfigError("--samples needs a stochastic method (skelem or diffusion); the skeleton is deterministic.")
        device = resolve_device(options.device)
        cfg = artifact.config
        nets: dict[str, torch.nn.Module] = {}
        needed = {"skeleton": ["skeleton"], "skelem": ["skeleton", "refiner"], "diffusion": ["diffusion_peer"]}[method]
        for name in needed:
            stored = "refiner_unaligned" if name == "refiner" and not options.aligned else name
            if stored == "refiner_unaligned" and not artifact.has(stored):
                raise ModelError(f"The model in {artifact.directory} has no refiner from before alignment (alignment did not run).")
            nets[name] = artifact.load_network(stored, device)
        multiples = {"skeleton": cfg.skeleton.multiple, "refiner": cfg.refiner.multiple, "diffusion_peer": cfg.diffusion_peer.multiple}
        self.align = max(multiples[n] for n in needed)
        rf = sum(_receptive_field(nets[n], multiples[n], n == "skeleton") for n in needed)
        rf = int(np.ceil((rf + 1) / self.align) * self.align)
        self.halo = (rf + (factor if method == "skelem" else 0), rf, rf)
        self.engine = SliceEngine(
            method=method, device=device, multiple=self.align, diffusion=cfg.diffusion,
            skeleton=nets.get("skeleton"), refiner=nets.get("refiner"), peer=nets.get("diffusion_peer"),
            steps=options.steps, t0=options.t0, use_prior=options.use_prior,
            use_consistency=options.use_consistency, batch_size=options.batch_size,
            residual_scale=artifact.residual_scale,
        )

    @property
    def joint(self) -> bool:
        """SkelEM with both passes sampled jointly (``fuse="steps"``)."""
        return self.method == "skelem" and self.options.planes == "both" and self.options.fuse == "steps"

    def describe(self) -> dict:
        o = self.options
        out = {"method": self.method, "factor": self.factor}
        if o.planes != "both":
            out["planes"] = o.planes
        if self.engine is not None and self.method != "skeleton":
            out.update(timesteps=self.engine.timesteps, seed=o.seed, samples=o.samples)
        if self.method == "skelem":
            out.update(prior=o.use_prior, consistency=o.use_consistency, aligned=o.aligned)
            if o.planes == "both":
                out["fuse"] = o.fuse
        return out

    def restore_block(self, block: np.ndarray, origin: tuple[int, int, int], seed: int | None = None) -> np.ndarray:
        """Restore one normalised input block; ``origin`` is its global output coordinate (z, y, x)."""
        if self.engine is None:
            return upsample(block, self.factor, axis=0, method=self.method)
        interp = upsample(block, self.factor, axis=0, method="cubic")
        seed = self.options.seed if seed is None else seed
        z0, y0, x0 = origin
        ny, nx = interp.shape[1:]
        planes = self.options.planes
        if self.joint:
            return self.engine.restore_joint(interp, origin, self.factor, seed)
        if planes in ("both", "xz"):
            xz = self.engine.restore(interp.transpose(1, 0, 2), z0, self.factor, "xz", np.arange(y0, y0 + ny), x0, seed)
            xz = xz.transpose(1, 0, 2)
            if planes == "xz":
                return xz
        yz = self.engine.restore(interp.transpose(2, 0, 1), z0, self.factor, "yz", np.arange(x0, x0 + nx), y0, seed)
        yz = yz.transpose(1, 2, 0)
        if planes == "yz":
            return yz
        xz += yz  # fused in place: one block-sized temporary less at the peak
        xz *= 0.5
        return xz


def _receptive_field(model: torch.nn.Module, multiple: int, is_skeleton: bool) -> int:
    return int(measured_receptive_field(model, multiple, with_time=not is_skeleton))


def stream_block_shape(restorer: Restorer) -> tuple[int, int, int]:
    """Output block of a streamed (OME-Zarr) restoration: ``--block``, else ``STREAM_BLOCK``, or
    ``STREAM_BLOCK_JOINT`` (an eighth of it) for joint sampling, which holds about ten block-sized
    float32 arrays (~3 GB at 128 x 512 x 512 with its halo, ~0.4 GB at 64 x 256 x 256)."""
    if restorer.options.block_shape is not None:
        return tuple(restorer.options.block_shape)  # type: ignore[return-value]
    return STREAM_BLOCK_JOINT if restorer.joint else STREAM_BLOCK


def _plan(restorer: Restorer, shape: tuple[int, int, int], block_shape: tuple[int, int, int] | None, chunks=None):
    out_shape = output_shape(shape, restorer.factor)
    if block_shape is None:
        single = SINGLE_BLOCK_VOXELS // (4 if restorer.joint else 1)  # joint: ~10 block arrays held
        block_shape = out_shape if int(np.prod(out_shape)) <= single else (128, 256, 256)
    return plan_blocks(shape, restorer.factor, block_shape, restorer.halo, align=restorer.align, chunks=chunks), out_shape


def _prepare(volume: Volume, artifact: ModelArtifact | None, factor: float | None, options: RestoreOptions):
    validate_volume(volume, min_slices=3)
    factor_int = volume.anisotropy_factor(factor if factor is not None else (artifact.factor if artifact and volume.voxel_size is None else None))
    restorer = Restorer(artifact, check_factor(factor_int), options)
    if artifact is not None and options.normalize == "model":
        normalizer = artifact.normalizer
    else:
        percentiles = artifact.config.percentiles if artifact is not None else (0.5, 99.5)
        normalizer = PercentileNormalizer.fit(volume.data, percentiles=percentiles)
    return restorer, normalizer


def restore_volume(
    volume: Volume,
    artifact: ModelArtifact | None = None,
    factor: float | None = None,
    options: RestoreOptions | None = None,
    progress: ProgressCallback = no_progress,
    return_std: bool = False,
    input_units: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Restore ``volume`` in memory; returns float32 ``(s*(Z-1)+1, Y, X)`` (and the per-voxel std).

    Intensities are in normalised units (percentile 0.5 -> 0, 99.5 -> 1), or with ``input_units``
    in the input's intensity units (float32, not rounded or clipped).
    """
    options = options or RestoreOptions()
    restorer, normalizer = _prepare(volume, artifact, factor, options)
    plan, out_shape = _plan(restorer, volume.shape, options.block_shape)
    result = _run_memory(volume, restorer, normalizer, plan, out_shape, progress, return_std)
    if not input_units:
        return result
    if return_std:
        return normalizer.denormalize(result[0]).astype(np.float32), result[1] * np.float32(normalizer.scale)
    return normalizer.denormalize(result).astype(np.float32)


def _block_processor(restorer: Restorer, store_std=None):
    """``process(block_in, block)`` -> the restored block (mean of ``samples`` seeds, normalised units).

    With several samples, ``store_std(block, std)`` receives the per-voxel standard deviation of the
    block's write region before the mean is returned (so a resumed run never has a mean without it).
    """
    samples = restorer.options.samples

    def process(block_in, block):
        origin = block_output_origin(block, restorer.factor)
        if samples == 1:
            return restorer.restore_block(block_in, origin)
        runs = np.stack([restorer.restore_block(block_in, origin, restorer.options.seed + k) for k in range(samples)])
        if store_std is not None:
            store_std(block, runs.std(axis=0)[block.crop])
        return runs.mean(axis=0)

    return process


def _run_memory(volume, restorer, normalizer, plan, out_shape, progress, return_std):
    std_out = np.zeros(out_shape, np.float32) if return_std or restorer.options.samples > 1 else None

    def read(sl):
        return normalizer.normalize(np.asarray(volume.data[sl]))

    def store_std(block, std):
        std_out[block.write] = std

    process = _block_processor(restorer, store_std if std_out is not None else None)
    result = run_in_memory(read, process, plan, out_shape, np.float32, progress)
    if return_std:
        return result, std_out
    return result


def _output_dtype(volume: Volume, dtype: str) -> np.dtype:
    if dtype == "float32":
        return np.dtype(np.float32)
    if dtype == "input":
        return volume.dtype
    raise ConfigError(f"Unknown output dtype {dtype!r}; use input or float32.")


def restore_to_file(
    volume: Volume,
    output: str | Path,
    artifact: ModelArtifact | None = None,
    factor: float | None = None,
    options: RestoreOptions | None = None,
    dtype: str = "input",
    overwrite: bool = False,
    progress: ProgressCallback = no_progress,
    std_output: str | Path | None = None,
    max_blocks: int | None = None,
) -> dict:
    """Restore ``volume`` and write it to ``output`` (format by extension), voxel size updated.

    ``.zarr`` outputs are streamed block by block into ``OUTPUT.partial`` and renamed when complete;
    a run killed midway resumes from its finished blocks. Other formats are assembled in memory and
    written atomically. Returns a JSON-friendly summary; ``summary["complete"]`` is False when
    ``max_blocks`` (streamed outputs only: blocks to process in this call) stopped the run before
    the end, and the same call again continues it.
    """
    from skelem.io import restored_voxel_size, write_volume

    options = options or RestoreOptions()
    output = Path(output)
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} exists; pass --overwrite to replace it.")
    folder = Path(str(output).split(":/")[0]).parent
    if not folder.is_dir():
        raise InputError(f"The output folder {folder} does not exist; create it first.")
    restorer, normalizer = _prepare(volume, artifact, factor, options)
    out_dtype = _output_dtype(volume, dtype)
    voxel = restored_voxel_size(volume.voxel_size, restorer.factor) if volume.voxel_size else None
    meta = {"restore": restorer.describe(), "source": volume.source,
            "model": str(artifact.directory) if artifact else None,
            "config": artifact.config.model_dump(mode="json") if artifact else None}
    if _is_zarr(output):
        return _stream_to_zarr(volume, output, restorer, normalizer, options, out_dtype, voxel, meta, overwrite,
                               progress, std_output, max_blocks)

    plan, out_shape = _plan(restorer, volume.shape, options.block_shape)
    result = _run_memory(volume, restorer, normalizer, plan, out_shape, progress, std_output is not None)
    if std_output is not None:
        result, std = result
    write_volume(output, normalizer.denormalize(result, out_dtype), voxel_size=voxel, unit=volume.unit, overwrite=overwrite, metadata=meta)
    summary = {"output": str(output), "shape": list(out_shape), "complete": True, **restorer.describe()}
    if std_output is not None:
        write_volume(std_output, (std * np.float32(normalizer.scale)).astype(np.float32), voxel_size=voxel, unit=volume.unit, overwrite=overwrite, metadata=meta)
        summary["std_output"] = str(std_output)
    return summary


def _stream_to_zarr(volume, output: Path, restorer: Restorer, normalizer, options: RestoreOptions, out_dtype, voxel,
                    meta: dict, overwrite: bool, progress: ProgressCallback, std_output, max_blocks=None) -> dict:
    """Stream the restoration block by block into ``OUTPUT.partial`` (and the std beside it); resumable."""
    from skelem.io import create_ome_zarr

    def to_output(values: np.ndarray) -> np.ndarray:
        return normalizer.denormalize(values, out_dtype)

    block_shape = stream_block_shape(restorer)
    chunks = output_chunks(block_shape)
    plan, out_shape = _plan(restorer, volume.shape, block_shape, chunks=chunks)
    partial = output.with_name(output.name + ".partial")
    run_key = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()

    def create(path, shape, dt, ch):
        return create_ome_zarr(path, shape, dt, ch, voxel or (1.0, 1.0, 1.0), unit=volume.unit, metadata=meta)

    def read(sl):
        return normalizer.normalize(np.asarray(volume.data[sl]))

    std_partial = store_std = None
    if std_output is not None:
        if not _is_zarr(Path(std_output)):
            raise ConfigError(f"The per-voxel std of an OME-Zarr output must be OME-Zarr too, not {std_output}.")
        std_partial = Path(std_output).with_name(Path(std_output).name + ".partial")
        std_meta = {**meta, "content": f"per-voxel standard deviation over {options.samples} samples"}

        def create_std(path, shape, dt, ch):
            return create_ome_zarr(path, shape, dt, ch, voxel or (1.0, 1.0, 1.0), unit=volume.unit, metadata=std_meta)

        std_array = _std_store(std_partial, partial, out_shape, chunks, create_std)

        def store_std(block, std):
            std_array[block.write] = (std * np.float32(normalizer.scale)).astype(np.float32)

    restore_block = _block_processor(restorer, store_std)

    def process(block_in, block):
        return to_output(restore_block(block_in, block))

    run_streaming(read, process, plan, partial, out_shape, out_dtype, chunks, progress,
                  create_store=create, run_key=run_key, on_mismatch="restart", max_blocks=max_blocks)
    done = len(read_done_positions(partial) or [])
    summary = {"output": str(output), "shape": list(out_shape), "complete": done == len(plan),
               "blocks_done": done, "blocks": len(plan), **restorer.describe()}
    if done < len(plan):
        return summary
    if std_partial is not None:  # the std first: the mean's final name is the last thing written
        finalize_store(std_partial, std_output, overwrite=overwrite, require_complete=False)
        summary["std_output"] = str(std_output)
    finalize_store(partial, output, overwrite=overwrite)
    return summary


def _std_store(std_partial: Path, partial: Path, shape, chunks, create):
    """The partial store of the per-voxel std, reused when the mean's run resumes.

    When the std store cannot be reused (missing, or another shape), the mean's partial store is
    removed too, so that no finished block is left without its std.
    """
    import zarr

    if partial.exists() and std_partial.exists():
        try:
            array = zarr.open_group(str(std_partial), mode="r+")["0"]
            if tuple(array.shape) == tuple(shape) and array.dtype == np.float32:
                return array
        except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError):
            pass
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(std_partial, ignore_errors=True)
    return create(std_partial, shape, np.float32, chunks)


def output_chunks(block_shape: tuple[int, int, int], target: tuple[int, int, int] = (32, 256, 256)) -> tuple[int, int, int]:
    """OME-Zarr chunks of about ``target`` that tile ``block_shape`` exactly.

    Each block axis is cut into the fewest equal chunks no larger than the target (a few more when
    that divides it exactly), so the planner need not round the requested block up to a chunk
    multiple: a 128-voxel block gets 128-voxel chunks, not a 256-voxel block.
    """

    def chunk(b: int, t: int) -> int:
        n = math.ceil(b / t)
        exact = [b // k for k in range(n, n + 4) if b % k == 0]
        return exact[0] if exact else math.ceil(b / n)

    return tuple(chunk(b, t) for b, t in zip(block_shape, target, strict=True))


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr"  # also ".ome.zarr"

