"""Reading and writing volumes with their voxel size: TIFF (ImageJ), OME-Zarr, HDF5, NPY."""

from skelem.io.volume import Volume

__all__ = ["Volume"]
