"""The methods a benchmark compares, as restore options (the trilemma in one tool)."""

from __future__ import annotations

from dataclasses import dataclass

from skelem.inference.restore import RestoreOptions


@dataclass(frozen=True)
class MethodSpec:
    """One restoration setting of a benchmark.

    ``group`` is ``baseline`` (interpolation), ``peer`` (skeleton = regression peer, diffusion =
    pure-diffusion peer), ``skelem`` or ``ablation``. ``crossplane``: also restore the XZ and YZ
    passes separately to measure their disagreement (costs one more restoration).
    """

    name: str
    method: str
    group: str
    steps: int | None = None
    use_prior: bool = True
    use_consistency: bool = True
    aligned: bool = True
    t0: int | None = None
    crossplane: bool = False
    fuse: str = "end"

    def options(self, seed: int = 0, planes: str = "both") -> RestoreOptions:
        return RestoreOptions(method=self.method, steps=self.steps, t0=self.t0, use_prior=self.use_prior,
                              use_consistency=self.use_consistency, aligned=self.aligned, seed=seed, planes=planes,
                              fuse=self.fuse)


def benchmark_methods(
    ablations: bool = True, step_sweep: tuple[int, ...] = (1, 2, 10, 50), t0_sweep: tuple[int, ...] = (100, 400)
) -> list[MethodSpec]:
    """Interpolation baselines, the two peers, SkelEM, then its ablations, the step and ``t0`` sweeps."""
    methods = [
        MethodSpec("nearest", "nearest", "baseline"),
        MethodSpec("linear", "linear", "baseline"),
        MethodSpec("cubic", "cubic", "baseline"),
        MethodSpec("skeleton", "skeleton", "peer", crossplane=ablations),
        MethodSpec("diffusion-50", "diffusion", "peer"),
        MethodSpec("skelem", "skelem", "skelem", crossplane=ablations),
    ]
    if ablations:
        methods += [
            MethodSpec("skelem-no-prior", "skelem", "ablation", use_prior=False),
            MethodSpec("skelem-no-consistency", "skelem", "ablation", use_consistency=False),
            MethodSpec("skelem-no-alignment", "skelem", "ablation", aligned=False, crossplane=True),
            MethodSpec("skelem-no-alignment-no-prior", "skelem", "ablation", aligned=False, use_prior=False),
            MethodSpec("skelem-fuse-steps", "skelem", "ablation", fuse="steps"),
        ]
        methods += [MethodSpec(f"skelem-{k}-steps", "skelem", "ablation", steps=k) for k in step_sweep]
        methods += [MethodSpec(f"skelem-t0-{t}", "skelem", "ablation", t0=t) for t in t0_sweep]
    return methods
