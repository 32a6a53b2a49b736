"""The methods a benchmark compares, as restore options (the trilemma in one tool)."""

from __future__ import annotations

from dataclasses import dataclass

from skelem.inference.restore import RestoreOptions


@dataclass(frozen=True)
class MethodSpec:
    """One restoration setting of a benchmark.

    ``group`` is ``baseline`` (interpolation), ``peer`` (skeleton = regression peer, diffusion =
    pure-diffusion peer), ``skelem`` or ``ablation``.
    """

    name: str
    method: str
    group: str
    steps: int | None = None
    use_prior: bool = True
    use_consistency: bool = True
    aligned: bool = True

    def options(self, seed: int = 0) -> RestoreOptions:
        return RestoreOptions(method=self.method, steps=self.steps, use_prior=self.use_prior,
                              use_consistency=self.use_consistency, aligned=self.aligned, seed=seed)


def benchmark_methods(ablations: bool = True, step_sweep: tuple[int, ...] = (1, 2, 10, 50)) -> list[MethodSpec]:
    """Interpolation baselines, the two peers, SkelEM, then its ablations and the step sweep."""
    methods = [
        MethodSpec("nearest", "nearest", "baseline"),
        MethodSpec("linear", "linear", "baseline"),
        MethodSpec("cubic", "cubic", "baseline"),
        MethodSpec("skeleton", "skeleton", "peer"),
        MethodSpec("diffusion-50", "diffusion", "peer"),
        MethodSpec("skelem", "skelem", "skelem"),
    ]
    if ablations:
        methods += [
            MethodSpec("skelem-no-prior", "skelem", "ablation", use_prior=False),
            MethodSpec("skelem-no-consistency", "skelem", "ablation", use_consistency=False),
            MethodSpec("skelem-no-alignment", "skelem", "ablation", aligned=False),
        ]
        methods += [MethodSpec(f"skelem-{k}-steps", "skelem", "ablation", steps=k) for k in step_sweep]
    return methods
