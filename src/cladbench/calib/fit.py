"""The Z->ee detector calibration (issue 6): fit the gains of R calorimeter regions by a grid scan,
by Adam and by scipy's L-BFGS-B on gradients from Clad, hand-written pullbacks or LibTorch autograd.

The pipeline (generator, detector, calibration, invariant mass, loss) is C++ (cpp/calib/, module
cladbench._calib); this module holds the optimisers, the uncertainties, the benchmark and the
tables the workflow writes:

    python -m cladbench.calib.fit run --out results/tables     (or `cladbench calib run`)

The loss is the mean negative log-likelihood per event of the measured Z peak (cpp/calib/stages.hpp):
a Breit-Wigner convolved with each event's Gaussian mass resolution (pseudo-Voigt approximation),
with the Jacobian of the calibration. Uncertainties are the statistical ones of the fit: sigma =
sqrt(diag(H^-1)), H the Hessian of the total NLL (events x loss) at the fit: Clad's (clad::hessian)
where it agrees with central differences of the analytic gradient within 1e-4, else those. (The
model is the generator's, so the NLL is a true likelihood and H^-1 its covariance; a toy study of
the pulls checks it: see the notes.) Where ROOT is installed, Minuit2 fits too: Migrad fed the
analytic gradient, then HESSE fed Clad's Hessian and, as a check, by its own finite differences.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch  # noqa: F401  (LibTorch must be loaded before _calib)

try:
    from .. import _calib
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(f"cladbench's calibration module is not built ({error}); run `make build`") from error

Z_MASS = _calib.Z_MASS
ETA_MAX = 2.5
CALIB_COLUMNS = ["regions", "method", "engine", "region", "true_gain", "fitted_gain", "sigma", "loss_evals", "seconds"]


def engines() -> list[str]:
    """The gradient engines this build has: clad (when Clad was found), manual, libtorch."""
    return [e["engine"] for e in _calib.engines()]


def best_engine() -> str:
    return "clad" if "clad" in engines() else "manual"


# ---------------------------------------------------------------------------------------------
# The sample


def region_resolution(regions: int, central: float, forward: float, eta_max: float = ETA_MAX) -> np.ndarray:
    """Relative energy resolution per eta region: `central` at eta = 0, rising linearly with the
    region centre's |eta| to `forward` at eta_max (calorimeters are worse forward)."""
    centres = -eta_max + (np.arange(regions) + 0.5) * 2 * eta_max / regions
    return central + (forward - central) * np.abs(centres) / eta_max


@dataclass
class Problem:
    """A seeded sample and what generated it."""

    regions: int
    sample: "_calib.Sample"
    true_gains: np.ndarray
    resolution: np.ndarray
    true_mass: np.ndarray


def make_problem(regions: int, events: int, seed: int, spread: float = 0.05, resolution=(0.015, 0.03)) -> Problem:
    """True gains uniform in 1 +- spread (seeded), events through the detector, checked."""
    true_gains = np.random.default_rng(seed).uniform(1 - spread, 1 + spread, regions)
    res = region_resolution(regions, *resolution)
    data = _calib.generate(events, true_gains, res, seed)
    sample = _calib.Sample(data["energy"], data["eta"], data["phi"], data["region"], res)
    return Problem(regions, sample, true_gains, res, data["true_mass"])


# ---------------------------------------------------------------------------------------------
# Optimisers: each returns a Fit, with every loss evaluation counted and a trace to plot


@dataclass
class Fit:
    method: str  # grid, adam, lbfgs, minuit2
    engine: str  # the gradient engine; "none" for the grid scan (loss only)
    gains: np.ndarray
    loss: float
    loss_evals: int
    seconds: float
    trace: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (evals so far, loss, gains)


def grid_scan(sample, low: float, high: float, points: int = 11, tol: float = 1e-5) -> Fit:
    """A multidimensional grid scan: `points` values per gain over [low, high], all points^R
    combinations; then again on a finer grid (+-2 steps around the best point) until the step is
    below tol. Loss evaluations only. Its cost, points^R per level, is why it stops at R ~ 3."""
    R = sample.regions
    centre, half = np.full(R, (low + high) / 2), (high - low) / 2
    evals, trace, start = 0, [], time.perf_counter()
    best, best_loss = centre, math.inf
    while True:
        axis = np.linspace(-half, half, points)
        step = axis[1] - axis[0]
        for offsets in itertools.product(axis, repeat=R):
            gains = centre + np.array(offsets)
            loss = sample.loss(gains)
            evals += 1
            if loss < best_loss:
                best, best_loss = gains, loss
        trace.append((evals, best_loss, best.copy()))
        if step < tol:
            break
        centre, half = best, 2 * step
    return Fit("grid", "none", best, best_loss, evals, time.perf_counter() - start, trace)


def grid_evaluations(regions: int, low: float, high: float, points: int = 11, tol: float = 1e-5) -> int:
    """How many loss evaluations grid_scan needs for R regions (it does not depend on the data)."""
    levels, step = 1, (high - low) / (points - 1)
    while step >= tol:
        levels, step = levels + 1, 4 * step / (points - 1)
    return levels * points**regions


def adam(
    sample,
    engine: str,
    start,
    lr: float = 3e-3,
    lr_final: float = 1e-5,
    steps: int = 300,
    betas=(0.9, 0.999),
    eps: float = 1e-12,
) -> Fit:
    """Adam on the gains, the learning rate decaying exponentially from lr to lr_final over the
    steps (a constant rate would leave the gains jittering at the scale of lr)."""
    gains = np.array(start, dtype=float)
    m, v = np.zeros_like(gains), np.zeros_like(gains)
    trace, start_time = [], time.perf_counter()
    for t in range(1, steps + 1):
        loss, grad = sample.loss_and_grad(gains, engine)
        trace.append((t, loss, gains.copy()))
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad * grad
        rate = lr * (lr_final / lr) ** ((t - 1) / max(steps - 1, 1))
        gains = gains - rate * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
    loss = sample.loss(gains)  # where it ended (not counted: the fit is the last step's gains)
    return Fit("adam", engine, gains, loss, steps, time.perf_counter() - start_time, trace)


def lbfgs(sample, engine: str, start, bounds=(0.5, 2.0)) -> Fit:
    """scipy.optimize.minimize(method="L-BFGS-B", jac=True) on the engine's loss and gradient."""
    from scipy.optimize import minimize

    trace = []

    def loss_and_grad(gains):
        loss, grad = sample.loss_and_grad(gains, engine)
        trace.append((len(trace) + 1, loss, np.array(gains)))
        return loss, grad

    start_time = time.perf_counter()
    result = minimize(
        loss_and_grad,
        np.array(start, dtype=float),
        jac=True,
        method="L-BFGS-B",
        bounds=[bounds] * sample.regions,
        options=dict(maxiter=1000, ftol=1e-13, gtol=1e-10),
    )
    seconds = time.perf_counter() - start_time
    return Fit("lbfgs", engine, np.array(result.x), float(result.fun), len(trace), seconds, trace)


# ---------------------------------------------------------------------------------------------
# Uncertainties


def finite_difference_hessian(sample, gains, engine: str, h: float = 1e-5) -> np.ndarray:
    """Hessian of the total NLL (events x mean loss) at gains: central differences of the
    analytic gradient (2R gradients), symmetrised."""
    R = sample.regions
    H = np.empty((R, R))
    for k in range(R):
        step = np.zeros(R)
        step[k] = h
        H[:, k] = (sample.loss_and_grad(gains + step, engine)[1] - sample.loss_and_grad(gains - step, engine)[1]) / (
            2 * h
        )
    return sample.events * (H + H.T) / 2


HESSIAN_AGREEMENT = 1e-4  # Clad's Hessian replaces the finite-difference one when they agree this well


def relative_difference(a: np.ndarray, reference: np.ndarray) -> float:
    """max |a - reference| / max |reference| (the infinity norms, as the kernels' checks use)."""
    return float(np.abs(a - reference).max() / np.abs(reference).max())


def hessian(sample, gains, engine: str) -> tuple[np.ndarray, list[dict]]:
    """The Hessian of the total NLL at gains, and how it was chosen: Clad's own (clad::hessian,
    cpp/calib/clad.cpp) where this build has Clad and it agrees with the finite-difference one
    within HESSIAN_AGREEMENT, else the finite-difference one. The rows say each one's cost and
    their agreement (calib_hessian.csv)."""
    start = time.perf_counter()
    fd = finite_difference_hessian(sample, gains, engine)
    rows = [dict(method="finite-differences", seconds=time.perf_counter() - start, evaluations=2 * sample.regions)]
    if "clad" not in engines():
        rows[0].update(used=True, rel_diff=np.nan, sigma_rel_diff=np.nan)
        return fd, rows
    start = time.perf_counter()
    exact = sample.hessian(gains, "clad")
    seconds = time.perf_counter() - start
    diff = relative_difference(exact, fd)
    sigma_diff = relative_difference(errors_of(exact), errors_of(fd))
    agree = diff <= HESSIAN_AGREEMENT
    rows[0].update(used=not agree, rel_diff=diff, sigma_rel_diff=sigma_diff)
    rows.append(
        dict(method="clad", seconds=seconds, evaluations=0, used=agree, rel_diff=diff, sigma_rel_diff=sigma_diff)
    )
    return (exact if agree else fd), rows


def errors_of(H: np.ndarray) -> np.ndarray:
    """sqrt(diag(H^-1)): the statistical uncertainties a Hessian of the NLL gives."""
    return np.sqrt(np.diag(np.linalg.inv(H)))


def sigmas(sample, gains, engine: str) -> np.ndarray:
    """The statistical uncertainty of each fitted gain, from `hessian`."""
    return errors_of(hessian(sample, gains, engine)[0])


def minuit2(sample, engine: str, start) -> tuple[Fit | None, list[tuple[dict, np.ndarray]], str]:
    """ROOT's Minuit2 on the total NLL with the engine's analytic gradient, through
    ROOT.Math.GradFunctor from PyROOT: Migrad, then HESSE twice. First fed Clad's Hessian
    (clad::hessian, one call; where this build has Clad), as a user would run it; then by its own
    finite differences of the loss (about R^2 / 2 loss evaluations), the check that does not lean
    on Clad. Returns (Migrad's fit, [(HESSE's cost row, its errors)], "") or (None, [], why not)."""
    from ..root import MINUIT2_HESSIAN_HEADER, RootMissing, declared

    try:
        api = declared(MINUIT2_HESSIAN_HEADER)
    except RootMissing as error:
        return None, [], str(error)
    import ROOT

    minimizer = ROOT.Math.Factory.CreateMinimizer("Minuit2", "Migrad")
    if not minimizer:
        return None, [], "this ROOT has no Minuit2"
    R, events = sample.regions, sample.events
    trace, cache = [], {}
    with_gradient = True  # Migrad asks for each point's gradient: one call gives it with the loss

    def evaluate(x) -> tuple[float, np.ndarray | None]:  # Minuit2 asks for the value and each derivative apart
        gains = np.frombuffer(x, dtype=np.float64, count=R).copy()
        key = gains.tobytes()
        if key not in cache:
            if with_gradient:
                loss, grad = sample.loss_and_grad(gains, engine)
                grad = events * np.asarray(grad)
            else:  # HESSE's own differences need the loss only
                loss, grad = sample.loss(gains), None
            cache.clear()
            cache[key] = (events * loss, grad)
            trace.append((len(trace) + 1, loss, gains))
        return cache[key]

    def value(x):
        return evaluate(x)[0]

    def derivative(x, i):
        return evaluate(x)[1][i]

    functor = ROOT.Math.GradFunctor(value, derivative, R)  # keeps no reference: value and derivative must live on
    minimizer.SetFunction(functor)
    minimizer.SetErrorDef(0.5)  # a negative log-likelihood: 1 sigma is +0.5
    minimizer.SetStrategy(0)  # with an analytic gradient and HESSE after: 274 evaluations at R = 64, not 2930
    minimizer.SetTolerance(1e-4)
    minimizer.SetPrintLevel(0)
    for r, g in enumerate(start):
        minimizer.SetVariable(r, f"g{r}", float(g), 0.01)  # no limits: HESSE's errors need no transformation
    began = time.perf_counter()
    minimizer.Minimize()
    seconds = time.perf_counter() - began
    gains = np.array([minimizer.X()[r] for r in range(R)])
    fit = Fit("minuit2", engine, gains, float(sample.loss(gains)), len(trace), seconds, list(trace))

    def hesse(method: str) -> tuple[dict, np.ndarray]:
        evaluated, began = len(trace), time.perf_counter()
        minimizer.Hesse()
        row = dict(method=method, seconds=time.perf_counter() - began, evaluations=len(trace) - evaluated)
        return row, np.array([minimizer.Errors()[r] for r in range(R)])

    results = []
    if "clad" in engines():
        hessian_calls = []

        def clad_hessian(x, h):
            at = np.frombuffer(x, dtype=np.float64, count=R).copy()
            np.frombuffer(h, dtype=np.float64, count=R * R)[:] = sample.hessian(at, "clad").ravel()
            hessian_calls.append(at)

        api.set_hessian(minimizer, clad_hessian)
        row, errors = hesse("minuit2-hesse-clad")
        row["evaluations"] = len(hessian_calls)  # Hessians, no loss evaluations
        results.append((row, errors))
        api.set_hessian(minimizer, ROOT.nullptr)
    with_gradient = False
    results.append(hesse("minuit2-hesse"))
    return fit, results, ""


# ---------------------------------------------------------------------------------------------
# Benchmark: one loss + gradient evaluation per engine


def time_call(call, reps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def bench(problem: Problem, reps: int, threads: int) -> list[dict]:
    """Median and quartiles of one loss+gradient call per engine (and of the loss alone, what a
    grid scan pays per point), at the sample's R, on nominal gains (all 1). The engines take turns
    within each repetition, so a busy machine slows them alike."""
    torch.set_num_threads(threads)  # the libtorch engine's intra-op threads; the kernels use one
    gains = np.ones(problem.regions)
    calls = {engine: (lambda e=engine: problem.sample.loss_and_grad(gains, e)) for engine in engines()}
    calls["forward"] = lambda: problem.sample.loss(gains)
    for call in calls.values():
        time_call(call, reps=0)  # warm-up
    times = {engine: [] for engine in calls}
    for _ in range(reps):
        for engine, call in calls.items():
            times[engine] += time_call(call, reps=1, warmup=0)
    rows = []
    for engine, t in times.items():
        q1, median, q3 = np.percentile(t, [25, 50, 75])
        rows.append(
            dict(
                regions=problem.regions,
                events=problem.sample.events,
                engine=engine,
                threads=threads,
                reps=reps,
                median_s=median,
                q1_s=q1,
                q3_s=q3,
            )
        )
        print(f"calib bench: R={problem.regions} {engine}: {median * 1e3:.2f} ms (median of {reps})", file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------
# The study the workflow runs


@dataclass
class Settings:
    regions: list[int]
    events: int = 100000
    seed: int = 1
    spread: float = 0.05
    resolution: tuple[float, float] = (0.015, 0.03)
    grid_max_regions: int = 3
    grid_points: int = 11
    grid_tol: float = 1e-5
    adam_steps: int = 300
    adam_lr: float = 3e-3
    adam_lr_final: float = 1e-5
    adam_engines: list[str] | None = None  # None: the best engine (clad if built, else manual)
    bench_regions: list[int] = field(default_factory=lambda: [8, 64])
    bench_reps: int = 7
    threads: int = 1


def mass_histograms(problem: Problem, fitted: np.ndarray, bins=np.arange(71.0, 111.5, 0.5)) -> pd.DataFrame:
    """The reconstructed Z peak before (all gains 1) and after calibration, and the generated masses."""
    masses = {
        "uncalibrated": problem.sample.masses(np.ones(problem.regions)),
        "calibrated": problem.sample.masses(fitted),
        "generated": problem.true_mass,
    }
    rows = []
    for stage, values in masses.items():
        counts, _ = np.histogram(values, bins)
        rows += [
            dict(regions=problem.regions, stage=stage, bin_low=lo, bin_high=hi, count=c)
            for lo, hi, c in zip(bins[:-1], bins[1:], counts)
        ]
    return pd.DataFrame(rows)


def run(settings: Settings, out: Path) -> dict[str, Path]:
    """Fits every R with every method, times the engines, and writes the calib tables to out/."""
    torch.set_num_threads(settings.threads)
    out.mkdir(parents=True, exist_ok=True)
    low, high = 1 - 1.6 * settings.spread, 1 + 1.6 * settings.spread
    gradient_engine = best_engine()
    adam_engines = settings.adam_engines or [gradient_engine]
    gains_rows, trace_rows, cost_rows, masses, timing, hessian_rows = [], [], [], [], [], []
    for R in sorted(set(settings.regions) | set(settings.bench_regions)):
        problem = make_problem(R, settings.events, settings.seed, settings.spread, settings.resolution)
        if R in settings.bench_regions:
            timing += bench(problem, settings.bench_reps, settings.threads)
        if R not in settings.regions:
            continue
        start = np.ones(R)
        fits = [
            adam(problem.sample, e, start, settings.adam_lr, settings.adam_lr_final, settings.adam_steps)
            for e in adam_engines
        ]
        fits.append(lbfgs(problem.sample, gradient_engine, start))
        if R <= settings.grid_max_regions:
            fits.insert(0, grid_scan(problem.sample, low, high, settings.grid_points, settings.grid_tol))
        minuit, hesse_runs, why_not = minuit2(problem.sample, gradient_engine, start)
        if minuit:
            fits.append(minuit)
        else:
            print(f"calib: R={R} minuit2: not run: {why_not}", file=sys.stderr)
        best = min(fits, key=lambda f: f.loss)
        H, choice = hessian(problem.sample, best.gains, gradient_engine)  # a property of the sample, not the method
        sigma = errors_of(H)
        for cost, errors in hesse_runs:  # each HESSE's errors against those of the Hessian used
            choice.append(dict(**cost, used=False, rel_diff=np.nan, sigma_rel_diff=relative_difference(errors, sigma)))
        # Minuit2's own HESSE (its finite differences, not fed Clad's Hessian): the independent check
        hesse_diff = next((row["sigma_rel_diff"] for row in choice if row["method"] == "minuit2-hesse"), np.nan)
        for row in choice:
            hessian_rows.append(dict(regions=R, events=problem.sample.events, **row, hesse_rel_diff=hesse_diff))
            print(
                f"calib: R={R} Hessian by {row['method']}: {row['seconds'] * 1e3:.1f} ms, relative difference "
                f"{row['rel_diff']:.1e} (sigmas {row['sigma_rel_diff']:.1e}), used: {row['used']}",
                file=sys.stderr,
            )
        for fit in fits:
            pulls = (fit.gains - problem.true_gains) / sigma
            print(
                f"calib: R={R} {fit.method}/{fit.engine}: {fit.loss_evals} loss evaluations, {fit.seconds:.2f} s, "
                f"max |fitted - true| / sigma = {np.abs(pulls).max():.2f}",
                file=sys.stderr,
            )
            for r in range(R):
                gains_rows.append(
                    dict(
                        regions=R,
                        method=fit.method,
                        engine=fit.engine,
                        region=r,
                        true_gain=problem.true_gains[r],
                        fitted_gain=fit.gains[r],
                        sigma=sigma[r],
                        loss_evals=fit.loss_evals,
                        seconds=fit.seconds,
                    )
                )
            for evals, loss, gains in fit.trace:
                trace_rows += [
                    dict(
                        regions=R,
                        method=fit.method,
                        engine=fit.engine,
                        evals=evals,
                        loss=loss,
                        region=r,
                        gain=gains[r],
                        true_gain=problem.true_gains[r],
                    )
                    for r in range(R)
                ]
            cost_rows.append(
                dict(
                    regions=R,
                    method=fit.method,
                    engine=fit.engine,
                    loss_evals=fit.loss_evals,
                    seconds=fit.seconds,
                    feasible=True,
                    max_abs_pull=np.abs(pulls).max(),
                )
            )
        if R > settings.grid_max_regions:  # what the grid scan would cost: evaluations x one loss
            evals = grid_evaluations(R, low, high, settings.grid_points, settings.grid_tol)
            forward = np.median(time_call(lambda: problem.sample.loss(start), 3, warmup=1))
            cost_rows.append(
                dict(
                    regions=R,
                    method="grid",
                    engine="none",
                    loss_evals=float(evals),
                    seconds=evals * forward,
                    feasible=False,
                    max_abs_pull=np.nan,
                )
            )
            print(
                f"calib: R={R} grid: would need {evals:.3g} loss evaluations, {evals * forward:.3g} s: not run",
                file=sys.stderr,
            )
        masses.append(mass_histograms(problem, best.gains))
    tables = {
        "calib": pd.DataFrame(gains_rows, columns=CALIB_COLUMNS),
        "calib_timing": pd.DataFrame(
            timing, columns=["regions", "events", "engine", "threads", "reps", "median_s", "q1_s", "q3_s"]
        ),
        "calib_cost": pd.DataFrame(
            cost_rows, columns=["regions", "method", "engine", "loss_evals", "seconds", "feasible", "max_abs_pull"]
        ),
        "calib_trace": pd.DataFrame(
            trace_rows, columns=["regions", "method", "engine", "evals", "loss", "region", "gain", "true_gain"]
        ),
        "calib_hessian": pd.DataFrame(
            hessian_rows,
            columns=[
                "regions",
                "events",
                "method",
                "seconds",
                "evaluations",
                "used",
                "rel_diff",
                "sigma_rel_diff",
                "hesse_rel_diff",
            ],
        ),  # fmt: skip
        "calib_masses": pd.concat(masses)
        if masses
        else pd.DataFrame(columns=["regions", "stage", "bin_low", "bin_high", "count"]),
    }
    paths = {}
    for name, table in tables.items():
        paths[name] = out / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    return paths


# ---------------------------------------------------------------------------------------------
# Command line (also `cladbench calib`)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("run", "bench"), help="run: fits, bench and tables; bench: timing only")
    parser.add_argument("--out", type=Path, default=Path("results/tables"), help="where the calib tables go")
    parser.add_argument("--regions", type=int, nargs="+", default=[2, 8, 64], help="numbers of eta regions to fit")
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spread", type=float, default=0.05, help="true gains uniform in 1 +- spread")
    parser.add_argument(
        "--resolution",
        type=float,
        nargs=2,
        default=[0.015, 0.03],
        metavar=("CENTRAL", "FORWARD"),
        help="relative energy resolution at eta 0 and at |eta| 2.5",
    )
    parser.add_argument("--grid-max-regions", type=int, default=3, help="grid scan only up to this R")
    parser.add_argument("--grid-points", type=int, default=11, help="grid values per gain and level")
    parser.add_argument("--grid-tol", type=float, default=1e-5, help="stop refining below this grid step")
    parser.add_argument("--adam-steps", type=int, default=300)
    parser.add_argument("--adam-lr", type=float, default=3e-3)
    parser.add_argument("--adam-lr-final", type=float, default=1e-5)
    parser.add_argument("--adam-engines", nargs="+", default=None, help="default: clad if built, else manual")
    parser.add_argument("--bench-regions", type=int, nargs="*", default=[8, 64])
    parser.add_argument("--bench-reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        regions=args.regions,
        events=args.events,
        seed=args.seed,
        spread=args.spread,
        resolution=tuple(args.resolution),
        grid_max_regions=args.grid_max_regions,
        grid_points=args.grid_points,
        grid_tol=args.grid_tol,
        adam_steps=args.adam_steps,
        adam_lr=args.adam_lr,
        adam_lr_final=args.adam_lr_final,
        adam_engines=args.adam_engines,
        bench_regions=args.bench_regions,
        bench_reps=args.bench_reps,
        threads=args.threads,
    )


def main_args(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    unknown = set(settings.adam_engines or []) - set(engines())
    if unknown:
        print(
            f"cladbench calib: engine(s) {', '.join(sorted(unknown))} not in this build (built: "
            f"{', '.join(engines())})",
            file=sys.stderr,
        )
        return 2
    try:
        if args.what == "bench":
            args.out.mkdir(parents=True, exist_ok=True)
            rows = [
                row
                for R in settings.bench_regions
                for row in bench(
                    make_problem(R, settings.events, settings.seed, settings.spread, settings.resolution),
                    settings.bench_reps,
                    settings.threads,
                )
            ]
            pd.DataFrame(rows).to_csv(args.out / "calib_timing.csv", index=False)
            print(args.out / "calib_timing.csv")
            return 0
        for path in run(settings, args.out).values():
            print(path)
    except ValueError as error:
        print(f"cladbench calib: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m cladbench.calib.fit") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return main_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
