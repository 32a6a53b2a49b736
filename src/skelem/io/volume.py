"""The :class:`Volume` type: a lazy ``(Z, Y, X)`` array with its physical voxel size."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from skelem.config.models import check_factor


@dataclass(frozen=True)
class Volume:
    """A 3-D volume with physical metadata.

    Parameters
    ----------
    data : array-like
        Lazy or in-memory array of shape ``(Z, Y, X)`` (numpy, memory-mapped TIFF, zarr array,
        h5py dataset). Indexing with slices returns numpy arrays; nothing is loaded until indexed.
    voxel_size : tuple of float or None
        Physical size of a voxel ``(z, y, x)`` in ``unit``; ``None`` when unknown.
    unit : str
        Unit of ``voxel_size`` as an OME-NGFF name (``"micrometer"``, ``"nanometer"``...).
    source : str
        Where the volume came from (path or URI), for messages.
    axes : str
        Always ``"ZYX"``.
    metadata : dict or None
        SkelEM metadata stored in the file by :func:`skelem.io.write_volume` (e.g. the
        experiment config that made it), ``None`` when absent.
    """

    data: Any
    voxel_size: tuple[float, float, float] | None = None
    unit: str = "micrometer"
    source: str = "<memory>"
    axes: str = "ZYX"
    metadata: dict | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # nested lists and other array-likes without a shape become a numpy array (what the
        # readers and validators index); what numpy cannot make an array of is refused here
        if not (hasattr(self.data, "shape") and hasattr(self.data, "dtype")):
            from skelem.errors import InputError

            try:
                array = np.asarray(self.data)
            except (TypeError, ValueError):
                raise InputError(
                    f"{self.source} is not an array of numbers (ragged or of mixed types)."
                ) from None
            object.__setattr__(self, "data", array)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Z, Y, X)``."""
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        """Data type of the stored array."""
        return np.dtype(self.data.dtype)

    def read(self) -> np.ndarray:
        """Load the whole volume into memory.

        Returns
        -------
        numpy.ndarray
            ``(Z, Y, X)`` in the stored dtype.
        """
        return np.asarray(self.data[...])

    @property
    def anisotropy(self) -> float | None:
        """Axial over lateral voxel size (``z / x``), or ``None`` when the voxel size is unknown."""
        if self.voxel_size is None:
            return None
        z, y, x = self.voxel_size
        return float(z) / float(x) if x else None

    def anisotropy_factor(self, factor: float | None = None) -> int:
        """The integer anisotropy factor: ``factor`` when given, else derived from the voxel size.

        Parameters
        ----------
        factor : float, optional
            An explicit factor (checked by :func:`~skelem.config.models.check_factor`).

        Returns
        -------
        int

        Raises
        ------
        ConfigError
            When neither gives a usable factor (one sentence).
        """
        from skelem.errors import ConfigError

        if factor is not None:
            return check_factor(factor)
        ratio = self.anisotropy
        if ratio is None:
            raise ConfigError(
                f"{self.source} has no voxel size, so the anisotropy factor is unknown; pass "
                "--factor."
            )
        return check_factor(ratio)

    def with_data(self, data: Any, **changes: Any) -> Volume:
        """A copy carrying other data (and optionally other metadata).

        Parameters
        ----------
        data : array-like
            The new ``(Z, Y, X)`` data.
        **changes
            Other fields to replace (``voxel_size``, ``unit``, ``source``, ``metadata``).

        Returns
        -------
        Volume
        """
        return replace(self, data=data, **changes)
