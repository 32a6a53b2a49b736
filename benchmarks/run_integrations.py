"""Where microscopists work (issue 16): OME-Zarr pyramids, Fiji TIFF, bioimage.io export, measured.

1. **Pyramid**: ``skelem restore --method cubic`` of a phantom (x4) to an OME-Zarr (streamed)
   and to an NGFF 0.4 store through ``write_volume``; the levels written and the
   ``ome-zarr-models`` validation of each. Then the cost of :func:`skelem.io.pyramid.build_pyramid`
   on a larger store beside the cost of writing its full-resolution level, and an interrupted
   build resumed (chunks recomputed after the interruption).
2. **Fiji**: the restored TIFF's ImageJ metadata as tifffile reads it.
3. **bioimage.io**: ``skelem export`` of the shipped pretrained x4 model with a test input
   cropped from the embedded FIB-SEM sample (the model's training volume is not shipped), then
   ``bioimageio.core.test_model`` on the package; wall times of both.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_integrations.py -o bench-out/integrations \
        [--parts pyramid_and_fiji pyramid_cost bioimageio]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import zarr

REPO = Path(__file__).resolve().parents[1]
SKELEM = [sys.executable, "-m", "skelem.cli.main"]


def run(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - start


def pyramid_and_fiji(out: Path) -> dict:
    from skelem.data.phantoms import em_phantom
    from skelem.io import open_volume, write_volume
    from skelem.io.ngff import read_multiscales, validate_image

    truth, _ = em_phantom((16, 320, 320), seed=0)
    source = write_volume(
        out / "aniso.tif", truth.astype(np.float32), (0.04, 0.01, 0.01), "micrometer"
    )
    report: dict = {"input": "em_phantom (16, 320, 320) float32, voxel 0.04x0.01x0.01 um"}
    for name in ("restored.ome.zarr", "restored.tif"):
        seconds = run([*SKELEM, "restore", source, "-o", str(out / name), "--method", "cubic"])
        report[name] = {"seconds": round(seconds, 2)}
    store = out / "restored.ome.zarr"
    multiscale = read_multiscales(zarr.open_group(str(store), mode="r").attrs)
    group = zarr.open_group(str(store), mode="r")
    report["restored.ome.zarr"] |= {
        "levels": [list(group[d["path"]].shape) for d in multiscale["datasets"]],
        "scales": [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]],
        "validates_as": type(validate_image(store)).__module__,
        "provenance_keys": sorted(open_volume(store).metadata or {}),
    }
    level0 = open_volume(store).read()
    in_memory = write_volume(out / "v04.ome.zarr", level0, (0.01,) * 3, version="0.4")
    report["write_volume_v04"] = {
        "levels": len(read_multiscales(zarr.open_group(in_memory, mode="r").attrs)["datasets"]),
        "validates_as": type(validate_image(in_memory)).__module__,
    }
    with tifffile.TiffFile(out / "restored.tif") as tif:
        meta = dict(tif.imagej_metadata)
        meta.pop("Info", None)
        resolution = tif.pages[0].tags["XResolution"].value
    report["restored.tif"] |= {
        "imagej_metadata": meta,
        "x_pixels_per_unit": resolution[0] / resolution[1],
        "axes": "ZYX",
    }
    return report


def pyramid_cost(out: Path) -> dict:
    from skelem.io import create_ome_zarr
    from skelem.io.pyramid import build_pyramid

    shape = (192, 768, 768)
    volume = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    stores = []
    write_seconds = []
    for name in ("a.ome.zarr", "b.ome.zarr"):
        start = time.perf_counter()
        array = create_ome_zarr(out / name, shape, np.uint8, None, (0.01,) * 3, version="0.5")
        array[...] = volume
        write_seconds.append(time.perf_counter() - start)
        stores.append(out / name)
    start = time.perf_counter()
    levels = build_pyramid(stores[0])
    build_seconds = time.perf_counter() - start
    total = sum(level.n_chunks for level in levels)

    class Stop(Exception):
        pass

    def stop_halfway(event):
        if event.step >= total // 2:
            raise Stop

    try:
        build_pyramid(stores[1], progress=stop_halfway)
    except Stop:
        pass
    resumed: list[int] = []
    start = time.perf_counter()
    build_pyramid(stores[1], progress=lambda e: resumed.append(e.step))
    resume_seconds = time.perf_counter() - start
    same = all(
        np.array_equal(zarr.open_group(str(stores[0]))[lv.path][...],
                       zarr.open_group(str(stores[1]))[lv.path][...])
        for lv in levels
    )  # fmt: skip
    return {
        "shape": list(shape),
        "dtype": "uint8",
        "chunks": [16, 256, 256],
        "levels": [list(level.shape) for level in levels],
        "level0_write_seconds": round(float(np.mean(write_seconds)), 2),
        "pyramid_seconds": round(build_seconds, 2),
        "pyramid_over_level0_write": round(build_seconds / float(np.mean(write_seconds)), 2),
        "chunks_total": total,
        "resumed_from_chunk": resumed[0] if resumed else None,
        "resume_seconds": round(resume_seconds, 2),
        "resumed_equals_uninterrupted": same,
    }


def bioimageio_export(out: Path) -> dict:
    from bioimageio.core import test_model

    from skelem.models.pretrained import pretrained_model_dir

    model = pretrained_model_dir(4)
    sample = REPO / "src" / "skelem" / "sample_data" / "fibsem_medulla_crop.tif"
    package = out / "skelem_fibsem_x4.zip"
    seconds = run(
        [*SKELEM, "export", str(model), "-o", str(package), "--format", "bioimageio",
         "--test-input", str(sample), "--name", "SkelEM FIB-SEM x4 skeleton",
         "--author", "SkelEM developers"]
    )  # fmt: skip
    start = time.perf_counter()
    summary = test_model(package)
    test_seconds = time.perf_counter() - start
    import zipfile

    from ruyaml import YAML

    with zipfile.ZipFile(package) as archive:
        rdf = YAML(typ="safe").load(archive.read("rdf.yaml").decode())
    halos = {a["id"]: a["halo"] for a in rdf["outputs"][0]["axes"] if "halo" in a}
    return {
        "model": str(model.relative_to(REPO)),
        "package_bytes": package.stat().st_size,
        "export_seconds": round(seconds, 2),
        "bioimageio_test": summary.status,
        "bioimageio_test_seconds": round(test_seconds, 2),
        "halo": halos,
        "input_min_shape": {
            a["id"]: a["size"]["min"]
            for a in rdf["inputs"][0]["axes"]
            if "size" in a and isinstance(a["size"], dict) and "min" in a["size"]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True)
    parts = {
        "pyramid_and_fiji": pyramid_and_fiji,
        "pyramid_cost": pyramid_cost,
        "bioimageio": bioimageio_export,
    }
    parser.add_argument("--parts", nargs="+", choices=list(parts), default=list(parts))
    args = parser.parse_args()
    out = Path(args.output)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    report = {name: parts[name](out) for name in args.parts}
    text = json.dumps(report, indent=2, default=str)
    (out / "integrations.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
