"""A prepared restoration: the volume, its method and normaliser, and how its blocks are planned."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skelem.config.models import check_factor
from skelem.config.restore import RestoreOptions
from skelem.data.normalize import PercentileNormalizer
from skelem.events import ProgressCallback
from skelem.grid import restored_shape
from skelem.inference.methods import RestorationMethod, block_processor, build_method
from skelem.inference.planner import Block, plan_blocks
from skelem.inference.runner import run_in_memory
from skelem.io import Volume
from skelem.io.validate import validate_volume
from skelem.models.artifact import ModelArtifact

SINGLE_BLOCK_VOXELS = 96 * 2**20  # in-memory outputs up to this size run as one block
MEMORY_BLOCK = (128, 256, 256)  # output block of larger in-memory restorations

Shape3 = tuple[int, int, int]


@dataclass
class RestoreJob:
    """One volume to restore with one method.

    Attributes
    ----------
    volume : Volume
        The anisotropic input.
    method : RestorationMethod
        What restores each block (see :func:`~skelem.inference.methods.build_method`).
    normalizer : PercentileNormalizer
        Maps the input's intensities to the networks' normalised units and back.
    options : RestoreOptions
        The restore options.
    model_dir : str or None
        The folder of the model the method loaded (None: interpolation), from which Dask workers
        load it again.
    """

    volume: Volume
    method: RestorationMethod
    normalizer: PercentileNormalizer
    options: RestoreOptions
    model_dir: str | None = None

    @classmethod
    def prepare(
        cls,
        volume: Volume,
        artifact: ModelArtifact | None,
        factor: float | None,
        options: RestoreOptions,
    ) -> RestoreJob:
        """Check the volume, find its factor, build the method and choose the normaliser.

        Parameters
        ----------
        volume : Volume
            The anisotropic input.
        artifact : ModelArtifact or None
            The trained model (not needed for interpolation).
        factor : float, optional
            Anisotropy factor; default from the voxel size, or the model's without one.
        options : RestoreOptions
            The restore options.

        Returns
        -------
        RestoreJob
        """
        validate_volume(volume, min_slices=3)
        model_factor = artifact.factor if artifact and volume.voxel_size is None else None
        factor_int = volume.anisotropy_factor(factor if factor is not None else model_factor)
        method = build_method(artifact, check_factor(factor_int), options)
        if artifact is not None and options.normalize == "model":
            normalizer = artifact.normalizer
        else:
            percentiles = artifact.config.percentiles if artifact is not None else (0.5, 99.5)
            normalizer = PercentileNormalizer.fit(volume.data, percentiles=percentiles)
        model_dir = str(artifact.directory) if artifact is not None else None
        return cls(volume, method, normalizer, options, model_dir)

    @property
    def factor(self) -> int:
        """The integer anisotropy factor."""
        return self.method.factor

    @property
    def output_shape(self) -> Shape3:
        """The restored shape ``(s*(Z-1)+1, Y, X)``."""
        return restored_shape(self.volume.shape, self.factor)

    def plan(
        self, block_shape: Shape3 | None = None, chunks: Shape3 | None = None
    ) -> tuple[list[Block], Shape3]:
        """The block plan and output shape.

        Parameters
        ----------
        block_shape : tuple of int, optional
            Output block ``(z, y, x)``; default: the whole output when it has at most
            ``SINGLE_BLOCK_VOXELS`` voxels (a quarter of it for joint sampling, which holds about
            ten block arrays), else ``MEMORY_BLOCK``.
        chunks : tuple of int, optional
            Output chunks the write regions must start on (streamed outputs).

        Returns
        -------
        plan : list of Block
        out_shape : tuple of int
        """
        out_shape = self.output_shape
        method = self.method
        if block_shape is None:
            single = SINGLE_BLOCK_VOXELS // (4 if method.joint else 1)
            block_shape = out_shape if int(np.prod(out_shape)) <= single else MEMORY_BLOCK
        plan = plan_blocks(
            self.volume.shape,
            self.factor,
            block_shape,
            method.halo,
            align=method.align,
            chunks=chunks,
        )
        return plan, out_shape

    def read(self, read_slices: tuple[slice, slice, slice]) -> np.ndarray:
        """The normalised input region ``read_slices`` (z in input slices).

        Parameters
        ----------
        read_slices : tuple of slice
            The region ``(z, y, x)``.

        Returns
        -------
        numpy.ndarray
            float32 in normalised units.
        """
        return self.normalizer.normalize(np.asarray(self.volume.data[read_slices]))

    def run_in_memory(
        self, progress: ProgressCallback, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Restore the whole volume in memory, in normalised units.

        Parameters
        ----------
        progress : callable
            Receives one ``blocks`` event per block.
        return_std : bool
            Also return the per-voxel std over the samples (zeros with one sample).

        Returns
        -------
        numpy.ndarray or tuple of numpy.ndarray
            float32 ``(s*(Z-1)+1, Y, X)`` (and its std).
        """
        plan, out_shape = self.plan(self.options.block_shape)
        keep_std = return_std or self.options.samples > 1
        std_out = np.zeros(out_shape, np.float32) if keep_std else None

        def store_std(block: Block, std: np.ndarray) -> None:
            std_out[block.write] = std

        process = block_processor(self.method, store_std if std_out is not None else None)
        result = run_in_memory(self.read, process, plan, out_shape, np.float32, progress)
        if return_std:
            return result, std_out
        return result
