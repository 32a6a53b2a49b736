"""The benchmark runner end to end on phantoms with tiny budgets: simulated and paired entries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skelem.data.phantoms import em_phantom
from skelem.errors import InputError
from skelem.evaluation.benchmark import (
    BenchmarkSpec,
    Budget,
    Case,
    Dataset,
    run_benchmark,
    simulate_acquisition,
)
from skelem.evaluation.evaluate import evaluate_volumes
from skelem.evaluation.membrane import load_membrane_predictor
from skelem.evaluation.report import write_report
from skelem.io import open_volume, write_volume

from .helpers import single_thread

TINY = Budget(skeleton_iterations=3, refiner_iterations=3, alignment_iterations=2, patch_size=16,
              batch_size=2, membrane_iterations=3, eval_lateral=None, step_sweep=(2,),
              t0_sweep=(50,), knob_sweep=(0.5,), ablations=True,
              timing_repeat_below=1e9)  # repeats independent of the machine's load


@pytest.fixture(scope="module")
def phantom_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    image, labels = em_phantom((41, 48, 48), seed=3)
    iso = (image * 255).astype(np.uint8)
    write_volume(root / "iso.tif", iso, (0.01, 0.01, 0.01))
    write_volume(root / "labels.tif", labels, (0.01, 0.01, 0.01))
    acquired, _ = simulate_acquisition(iso, 4)
    write_volume(root / "aniso.tif", acquired, (0.04, 0.01, 0.01))
    return root


def test_simulate_acquisition_keeps_every_sth_slice_and_crops_the_reference() -> None:
    ref = np.arange(10 * 4 * 4, dtype=np.uint16).reshape(10, 4, 4)
    acquired, gt = simulate_acquisition(ref, 4)
    assert np.array_equal(acquired, ref[::4])  # slices 0, 4, 8
    assert gt.shape[0] == 4 * (acquired.shape[0] - 1) + 1 == 9
    assert acquired.dtype == ref.dtype


def test_benchmark_writes_report_results_and_figures(phantom_files, tmp_path) -> None:
    spec = BenchmarkSpec(
        tmp_path / "report",
        [Dataset("phantom", phantom_files / "iso.tif", labels=phantom_files / "labels.tif"),
         Dataset("paired", phantom_files / "iso.tif", acquired=phantom_files / "aniso.tif")],
        [4], TINY, membrane_train=(phantom_files / "iso.tif", phantom_files / "labels.tif"),
    )
    with single_thread():
        summary = run_benchmark(spec)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    cases = {c["dataset"]: c for c in results["cases"]}
    assert set(cases) == {"phantom", "paired"}
    methods = cases["phantom"]["methods"]
    expected = {"nearest", "linear", "cubic", "skeleton", "diffusion-50", "skelem",
                "skelem-no-prior", "skelem-no-consistency", "skelem-no-alignment",
                "skelem-no-alignment-no-prior", "skelem-2-steps", "skelem-t0-50",
                "skelem-detail-0.5", "skeleton-tta"}
    assert expected <= set(methods)
    # cross-plane measures: the stripe index for every method, the XZ/YZ disagreement where asked
    assert all(np.isfinite(r["stripe_index"]) and r["stripe_index"] > 0 for r in methods.values())
    assert all(np.isfinite(r["stripe_excess"]) and r["stripe_excess"] > 0 for r in methods.values())
    crossplane = {k for k, r in methods.items() if "pass_disagreement" in r}
    assert {"skeleton", "skelem", "skelem-no-alignment"} <= crossplane
    assert methods["cubic"].get("pass_disagreement") is None
    assert all(methods[k]["pass_disagreement"] > 0 for k in ("skeleton", "skelem"))
    # interpolation and SkelEM reproduce the acquired slices; the pure-diffusion peer does not
    assert methods["cubic"]["measured_max_abs"] == 0
    assert methods["skelem"]["measured_max_abs"] < 1.0
    no_consistency = methods["skelem-no-consistency"]["measured_max_abs"]
    assert no_consistency > methods["skelem"]["measured_max_abs"]
    assert methods["skeleton"]["time_ratio_to_skeleton"] == pytest.approx(1.0)
    # restore seconds: best of 3 for the skeleton and SkelEM (the speed ratio), one run otherwise
    timed = ("cubic", "skeleton", "skelem", "diffusion-50", "skelem-2-steps")
    assert {k: methods[k]["timing_runs"] for k in timed} == {
        "cubic": 1, "skeleton": 3, "skelem": 3, "diffusion-50": 1, "skelem-2-steps": 1}
    assert {"vi", "adapted_rand"} <= set(methods["skelem"])  # labels given -> segmentation scores
    # the paired entry used the real acquisition: same slices as the simulation here
    assert cases["paired"]["methods"]["cubic"]["psnr"] == pytest.approx(methods["cubic"]["psnr"])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| skelem |" in report and "phantom x4" in report and "XY stripe index" in report
    assert "XY stripe excess" in report
    # the paired case says it restored a real acquisition, the simulated one that it simulated
    assert cases["paired"]["acquisition"] == "paired"
    assert cases["phantom"]["acquisition"] == "simulated"
    phantom_text, paired_text = report.split("## phantom x4")[1].split("## paired x4")
    assert "every s-th slice" in phantom_text and "every s-th slice" not in paired_text
    assert "Acquisition: paired, a real anisotropic acquisition" in paired_text
    for fig in cases["phantom"]["figures"].values():
        assert (tmp_path / "report" / fig).stat().st_size > 1000
    assert "phantom x4, scored against the isotropic original" in summary
    # the membrane predictor is saved and scores a restored volume through `skelem evaluate`
    restored = tmp_path / "restored.tif"
    iso = np.asarray(open_volume(phantom_files / "iso.tif").data[...])
    write_volume(restored, iso, (0.01,) * 3)
    result = evaluate_volumes(str(restored), str(phantom_files / "iso.tif"),
                              labels=str(phantom_files / "labels.tif"),
                              membrane=load_membrane_predictor(tmp_path / "report" / "membrane"))
    assert result["psnr"] == float("inf") and 0.0 <= result["adapted_rand"] <= 1.0


def _case_result(case: Case) -> dict:
    return {"dataset": case.name, "factor": case.factor, **case.description(),
            "eval_shape": [9, 8, 8], "data_range": 255.0, "training_seconds": {},
            "methods": {"cubic": {"group": "baseline"}}}


def test_report_says_a_paired_case_is_a_real_acquisition_not_a_simulation(tmp_path) -> None:
    volume = np.zeros((9, 8, 8), np.uint8)
    simulated = Case("sim", volume[::4], volume, (0.04, 0.01, 0.01), 4)
    paired = Case("fib", volume[::4], volume, (0.04, 0.01, 0.01), 4, paired=True)
    meta = {"started": "t0", "finished": "t1", "machine": "cpu", "budget": {}}
    cases = [_case_result(simulated), _case_result(paired)]
    report = write_report(tmp_path, meta, cases).read_text()
    sim_text, paired_text = report.split("## sim x4")[1].split("## fib x4")
    assert "Degradation: every s-th slice" in sim_text
    assert paired_text.startswith(" (paired acquisition)")
    assert "Acquisition: paired, a real anisotropic acquisition" in paired_text
    assert "every s-th slice" not in paired_text
    assert "co-registered isotropic reference" in paired_text
    assert "Paired cases skip the simulation" in report


def test_benchmark_refuses_missing_data_before_creating_anything(tmp_path) -> None:
    spec = BenchmarkSpec(tmp_path / "report", [Dataset("x", tmp_path / "missing.tif")], [4], TINY)
    with pytest.raises(InputError, match="does not exist"):
        run_benchmark(spec)
    assert not (tmp_path / "report").exists()


def test_summary_names_a_fidelity_and_a_perception_number_per_method(tmp_path):
    from skelem.evaluation.benchmark import summary_lines

    methods = {
        "cubic": {"psnr": 29.1, "kid": 1.9, "hf_energy_ratio": 0.0, "seconds": 0.1},
        "skeleton": {"psnr": 30.2, "kid": 2.1, "hf_energy_ratio": 0.05, "seconds": 2.0},
        "skelem": {"psnr": 30.1, "kid": 1.4, "hf_energy_ratio": 0.21, "seconds": 5.0},
        "skelem-no-prior": {"psnr": 30.0, "kid": 1.3, "hf_energy_ratio": 0.2, "seconds": 5.0},
    }
    case = {"dataset": "sample", "factor": 4, "methods": methods, "pretrained_model": None}
    text = summary_lines([case], tmp_path)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()
            if line.startswith("  ") and line.split()[0] in methods}
    assert rows == {"cubic": ["29.10", "1.900", "0.00", "0.1"],
                    "skeleton": ["30.20", "2.100", "0.05", "2.0"],
                    "skelem": ["30.10", "1.400", "0.21", "5.0"]}  # headline methods only
    assert "PSNR dB" in text and "KID" in text and "Z detail" in text
    assert "SkelEM costs 2.5x the skeleton" in text
    assert "pretrained" not in text
    case["pretrained_model"] = "/models/fibsem_x4"
    methods["skelem-pretrained"] = {"psnr": 30.5, "kid": 1.2, "hf_energy_ratio": 0.4,
                                    "seconds": 4.0}
    text = summary_lines([case], tmp_path)
    assert "  skelem-pretrained  " in text and "zero-shot" in text
    assert "x4 model (in /models/fibsem_x4)" in text  # not the package's: says which folder
    from skelem.models.pretrained import PRETRAINED_DIR

    case["pretrained_model"] = str(PRETRAINED_DIR / "fibsem_x4")
    assert "x4 model (shipped)" in summary_lines([case], tmp_path)


def test_benchmark_adds_the_pretrained_models_rows_where_one_is_shipped(
    phantom_files, tmp_path, monkeypatch
):
    from skelem.models.pretrained import PRETRAINED_DIR, PRETRAINED_ENV, pretrained_factors

    monkeypatch.delenv(PRETRAINED_ENV)  # the shipped models (the suite hides them by default)
    assert 4 in pretrained_factors() and 3 not in pretrained_factors()
    budget = Budget(skeleton_iterations=2, refiner_iterations=2, alignment_iterations=1,
                    patch_size=16, batch_size=2, eval_lateral=None, knob_sweep=(),
                    ablations=False, timing_repeats=1)
    spec = BenchmarkSpec(tmp_path / "report", [Dataset("phantom", phantom_files / "iso.tif")],
                         [3, 4], budget, pretrained=True)
    with single_thread():
        summary = run_benchmark(spec)
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    cases = {c["factor"]: c for c in results["cases"]}
    assert cases[4]["pretrained_model"] == str(PRETRAINED_DIR / "fibsem_x4")
    assert cases[3]["pretrained_model"] is None
    rows4, rows3 = cases[4]["methods"], cases[3]["methods"]
    assert {rows4[k]["group"] for k in ("skeleton-pretrained", "skelem-pretrained")} == {
        "pretrained"}
    assert not any(k.endswith("-pretrained") for k in rows3)
    # restored by another model than the one trained for two steps on the input
    assert abs(rows4["skeleton-pretrained"]["psnr"] - rows4["skeleton"]["psnr"]) > 0.1
    assert rows4["skeleton-pretrained"]["psnr"] > rows4["cubic"]["psnr"]
    assert rows4["skelem-pretrained"]["measured_max_abs"] < 1.0
    # the detail check of `restore` without --model ran for the pretrained SkelEM row only
    assert rows4["skelem-pretrained"]["detail_check"]["passed"] is True
    assert "detail_check" not in rows4["skeleton-pretrained"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| skelem-pretrained | pretrained |" in report and "zero-shot" in report
    assert "phantom x4" in summary and "skelem-pretrained" in summary.split("phantom x4")[1]


def test_benchmark_budgets_train_at_the_default_learning_rates_unless_they_say() -> None:
    """The budget's training sections keep the default learning rates (it once trained the
    skeleton at 2e-3 after the default became 1e-3, when a section given in part replaced the
    default section whole); the quick preset keeps 2e-3 for its short skeleton training."""
    from skelem.config.models import ExperimentConfig

    defaults = ExperimentConfig()
    for budget in (Budget(), Budget.quick()):
        config = budget.config(8)
        for stage in ("refiner_training", "alignment_training"):
            assert getattr(config, stage).learning_rate == getattr(defaults, stage).learning_rate
    full = Budget().config(8).skeleton_training.learning_rate
    assert full == defaults.skeleton_training.learning_rate
    assert Budget.quick().config(4).skeleton_training.learning_rate == 2e-3


def test_pretrained_rows_restore_as_restore_without_a_model_does() -> None:
    """The input's own percentiles (the CLI's default without --model); trained rows the model's."""
    from skelem.evaluation.methods import benchmark_methods

    methods = {m.name: m for m in benchmark_methods(pretrained=True)}
    assert methods["skeleton-pretrained"].restore.normalize == "input"
    assert methods["skelem-pretrained"].restore.normalize == "input"
    assert methods["skelem"].restore.normalize == methods["skeleton"].restore.normalize == "model"
