"""Reading and writing volumes with their voxel size: TIFF (ImageJ), OME-Zarr, HDF5, NPY."""

from skelem.io.paths import check_output_apart
from skelem.io.readers import open_volume
from skelem.io.validate import check_finite, validate_volume
from skelem.io.volume import Volume
from skelem.io.writers import (
    commit_output,
    create_ome_zarr,
    partial_path,
    restored_voxel_size,
    write_volume,
)

__all__ = [
    "Volume",
    "check_output_apart",
    "check_finite",
    "commit_output",
    "create_ome_zarr",
    "open_volume",
    "partial_path",
    "restored_voxel_size",
    "validate_volume",
    "write_volume",
]
