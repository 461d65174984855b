"""The Z->ee calibration (cladbench.calib.fit, cpp/calib): gradients of every engine against LibTorch
autograd, the optimisers recovering seeded true gains within their statistical precision, the
uncertainties checked on toys, and bad input turned into clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cladbench import _calib
from cladbench.calib import fit as calib
from cladbench.paths import build_manifest
from cladbench.root import root_missing_reason

CLAD_BUILT = "clad" in calib.engines()


def engine_param(engine: str):
    """clad's parameter skips with one line when Clad was not found by the build."""
    if engine == "clad" and not CLAD_BUILT:
        reason = "Clad not found when the core was built: " + build_manifest()["clad_reason"].split(";")[0]
        return pytest.param(engine, marks=pytest.mark.skip(reason=reason), id=engine)
    return pytest.param(engine, id=engine)


@pytest.fixture(scope="module")
def two_regions():
    return calib.make_problem(regions=2, events=30000, seed=11)


@pytest.fixture(scope="module")
def eight_regions():
    return calib.make_problem(regions=8, events=60000, seed=12)


def max_rel_err(value, reference) -> float:
    return float(np.abs(value - reference).max() / np.abs(reference).max())


# ---------------------------------------------------------------------------------------------
# The pipeline


def test_generator_is_seeded_and_physical():
    gains, res = np.array([0.97, 1.04, 1.01]), np.array([0.02, 0.015, 0.02])
    a = _calib.generate(5000, gains, res, seed=5)
    b = _calib.generate(5000, gains, res, seed=5)
    c = _calib.generate(5000, gains, res, seed=6)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["energy"], c["energy"])
    # Massless electrons from the true energies and directions give back the generated Z mass.
    e, eta, phi = a["true_energy"], a["eta"], a["phi"]
    cos_open = (np.cos(phi[:, 0] - phi[:, 1]) + np.sinh(eta[:, 0]) * np.sinh(eta[:, 1])) / np.prod(np.cosh(eta), axis=1)
    mass = np.sqrt(2 * e[:, 0] * e[:, 1] * (1 - cos_open))
    np.testing.assert_allclose(mass, a["true_mass"], rtol=1e-9)
    assert np.abs(a["true_mass"] - _calib.Z_MASS).max() < 20 and np.abs(np.median(a["true_mass"]) - _calib.Z_MASS) < 0.2
    assert (np.abs(eta) < 2.5).all() and (e / np.cosh(eta) > 20).all()  # acceptance and pT cut
    # The detector: region from eta, measured = gain * true * (1 + resolution * z).
    region = a["region"]
    assert np.array_equal(region, np.floor((eta + 2.5) / 5 * 3).astype(int))
    ratio = a["energy"] / a["true_energy"]
    for r in range(3):
        in_r = ratio[region == r] / gains[r]
        assert abs(in_r.mean() - 1) < 3 * res[r] / np.sqrt(in_r.size) + 1e-4
        assert in_r.std() == pytest.approx(res[r], rel=0.1)


@pytest.mark.parametrize("engine", [engine_param("clad"), engine_param("manual")])
def test_gradient_agrees_with_libtorch_autograd(engine, eight_regions):
    sample = eight_regions.sample
    for gains in (np.random.default_rng(3).uniform(0.93, 1.07, 8), eight_regions.true_gains):
        loss, grad = sample.loss_and_grad(gains, engine)
        ref_loss, ref_grad = sample.loss_and_grad(gains, "libtorch")
        assert abs(loss - ref_loss) < 1e-12 * abs(ref_loss)
        assert max_rel_err(grad, ref_grad) < 1e-10
        assert loss == sample.loss(gains)  # the forward every engine shares
    # and with central differences of the loss (a check of the reference itself)
    h, gains = 1e-6, np.full(8, 1.02)
    fd = [(sample.loss(gains + h * np.eye(8)[k]) - sample.loss(gains - h * np.eye(8)[k])) / (2 * h) for k in range(8)]
    assert max_rel_err(sample.loss_and_grad(gains, engine)[1], np.array(fd)) < 1e-6


# ---------------------------------------------------------------------------------------------
# Fits: within 3 sigma of the truth


def within_3_sigma(fit, problem, sigma):
    pulls = (fit.gains - problem.true_gains) / sigma
    assert np.abs(pulls).max() < 3, f"{fit.method}: pulls {np.round(pulls, 2)}"


def test_two_regions_grid_scan_adam_and_lbfgs_recover_the_gains(two_regions):
    sample = two_regions.sample
    engine = calib.best_engine()
    grid = calib.grid_scan(sample, 0.92, 1.08)
    adam = calib.adam(sample, engine, np.ones(2))
    lbfgs = calib.lbfgs(sample, engine, np.ones(2))
    sigma = calib.sigmas(sample, lbfgs.gains, engine)
    assert (sigma > 0).all() and (sigma < 0.002).all()
    for fit in (grid, adam, lbfgs):
        within_3_sigma(fit, two_regions, sigma)
    # They find the same minimum, far more closely than sigma; the grid's cost is its formula's.
    for fit in (grid, adam):
        assert np.abs(fit.gains - lbfgs.gains).max() < 0.05 * sigma.min()
    assert grid.loss_evals == calib.grid_evaluations(2, 0.92, 1.08)
    assert lbfgs.loss_evals < 100 < grid.loss_evals


def test_adam_recovers_eight_gains(eight_regions):
    sample = eight_regions.sample
    adam = calib.adam(sample, calib.best_engine(), np.ones(8))
    sigma = calib.sigmas(sample, adam.gains, calib.best_engine())
    within_3_sigma(adam, eight_regions, sigma)
    assert adam.trace[-1][1] < adam.trace[0][1]


@pytest.mark.parametrize("regions", [8, 64])
def test_clads_hessian_agrees_with_finite_differences(regions):
    """clad::hessian of one event's loss, summed into the R x R Hessian, against central differences
    of the analytic gradient: within 1e-4 relative, so it is the one the fits' errors use."""
    if not CLAD_BUILT:
        pytest.skip("Clad not found when the core was built: no clad Hessian")
    problem = calib.make_problem(regions=regions, events=20000, seed=13)
    gains = problem.true_gains * 1.001  # near a fit, not at a symmetric point
    exact = problem.sample.hessian(gains, "clad")
    fd = calib.finite_difference_hessian(problem.sample, gains, "clad")
    assert calib.relative_difference(exact, fd) < 1e-4
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-9 * np.abs(exact).max())
    H, rows = calib.hessian(problem.sample, gains, "clad")
    assert H is not fd and np.array_equal(H, exact) and [r["method"] for r in rows if r["used"]] == ["clad"]
    with pytest.raises(ValueError, match="no Hessian"):
        problem.sample.hessian(gains, "manual")


@pytest.mark.parametrize("regions", [8, 64])
def test_minuit2_with_the_analytic_gradient_recovers_the_gains(regions):
    """Minuit2's Migrad fed the analytic gradient (through PyROOT) recovers the gains within 3
    sigma; HESSE fed Clad's Hessian makes one call of it and no loss evaluation, and HESSE by its own
    finite differences of the loss gives the Hessian's errors within 5%."""
    if root_missing_reason():
        pytest.skip(root_missing_reason())
    # ROOT in a process of its own: loaded into this one it would share it with the torch.compile tests.
    script = f"""
import json, numpy as np
from cladbench.calib import fit as calib
problem = calib.make_problem(regions={regions}, events=60000, seed=14)
engine = calib.best_engine()
fit, hesse, why_not = calib.minuit2(problem.sample, engine, np.ones({regions}))
sigma = calib.sigmas(problem.sample, fit.gains, engine) if fit else None
print(json.dumps(dict(why_not=why_not, pulls=list((fit.gains - problem.true_gains) / sigma) if fit else None,
                      evals=fit.loss_evals if fit else 0,
                      hesse={{row["method"]: dict(ratio=list(errors / sigma), evaluations=row["evaluations"])
                             for row, errors in hesse}})))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["pulls"] is not None, result["why_not"]
    assert np.abs(result["pulls"]).max() < 3, result["pulls"]
    assert result["evals"] > 0  # Migrad's loss-and-gradient evaluations
    hesse = result["hesse"]
    assert set(hesse) == ({"minuit2-hesse", "minuit2-hesse-clad"} if CLAD_BUILT else {"minuit2-hesse"})
    own = hesse["minuit2-hesse"]
    assert np.abs(np.array(own["ratio"]) - 1).max() < 0.05, own["ratio"]
    assert own["evaluations"] >= regions * (regions + 1) // 2  # the diagonal and every pair, by differences
    if CLAD_BUILT:
        fed = hesse["minuit2-hesse-clad"]
        assert fed["evaluations"] == 1  # one Clad Hessian: HESSE computed no differences
        assert np.abs(np.array(fed["ratio"]) - 1).max() < 1e-9, fed["ratio"]  # the same Hessian, at the same point


def test_hessian_sigma_matches_the_spread_of_toys():
    """The uncertainty the fits report, sqrt(diag(H^-1)), is the spread of the fitted gains over
    independent samples (40 toys, R = 2): their pulls have unit width."""
    pulls = []
    for seed in range(40):
        toy = calib.make_problem(regions=2, events=3000, seed=100 + seed)
        fit = calib.lbfgs(toy.sample, "manual", np.ones(2))
        pulls += list((fit.gains - toy.true_gains) / calib.sigmas(toy.sample, fit.gains, "manual"))
    assert abs(np.mean(pulls)) < 0.35 and 0.75 < np.std(pulls) < 1.3, (np.mean(pulls), np.std(pulls))


# ---------------------------------------------------------------------------------------------
# Bad input: clear errors


def sample_arrays(events=200, regions=2, seed=1):
    res = np.full(regions, 0.02)
    data = _calib.generate(events, np.ones(regions), res, seed)
    return dict(energy=data["energy"], eta=data["eta"], phi=data["phi"], region=data["region"], resolution=res)


def test_nan_energy_is_a_clear_error():
    arrays = sample_arrays()
    arrays["energy"][17, 1] = np.nan
    with pytest.raises(ValueError, match=r"event 17, electron 2: energy is nan GeV; measured energies must be finite"):
        _calib.Sample(**arrays)
    arrays = sample_arrays()
    arrays["eta"][3, 0] = np.inf
    with pytest.raises(ValueError, match="event 3, electron 1: direction"):
        _calib.Sample(**arrays)


def test_a_region_without_events_is_a_clear_error():
    arrays = sample_arrays(regions=3)
    arrays["resolution"] = np.full(4, 0.02)  # a fourth region nobody hit
    with pytest.raises(ValueError, match="region 3 of 4 has no electrons: its gain cannot be fitted"):
        _calib.Sample(**arrays)
    # Regions only ever paired with each other fix only the product of their gains.
    arrays = sample_arrays(regions=2)
    keep = arrays["region"][:, 0] != arrays["region"][:, 1]
    with pytest.raises(ValueError, match="gains of regions 0, 1 cannot be separated"):
        _calib.Sample(**{k: v[keep] if k != "resolution" else v for k, v in arrays.items()})


def test_bad_gains_and_engines_are_clear_errors(two_regions):
    with pytest.raises(ValueError, match="expected 2 gains"):
        two_regions.sample.loss(np.ones(3))
    with pytest.raises(ValueError, match="the gain of region 1 is -1"):
        two_regions.sample.loss_and_grad(np.array([1.0, -1.0]), "manual")
    with pytest.raises(ValueError, match="no calibration engine 'jax'"):
        two_regions.sample.loss_and_grad(np.ones(2), "jax")


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cladbench",
            "calib",
            "run",
            "--out",
            str(tmp_path),
            "--regions",
            "64",
            "--events",
            "5",
            "--bench-regions",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "cladbench calib: region" in done.stderr and "has no electrons" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------
# The tables and the report section


def test_run_writes_the_tables_and_the_report_draws_them(tmp_path):
    from cladbench.report import calib as calib_report

    # In its own process, as the workflow runs it: with ROOT installed, run() imports ROOT (Minuit2),
    # which must not share a process with the torch.compile tests.
    args = ["--regions", "2", "4", "--events", "4000", "--grid-max-regions", "2", "--adam-steps", "40"]
    args += ["--bench-regions", "4", "--bench-reps", "2", "--out", str(tmp_path / "tables")]
    done = subprocess.run([sys.executable, "-m", "cladbench.calib.fit", "run", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    paths = {
        name: tmp_path / "tables" / f"{name}.csv" for name in ("calib", "calib_hessian", "calib_cost", "calib_timing")
    }
    table = pd.read_csv(paths["calib"])
    assert list(table.columns) == [
        "regions",
        "method",
        "engine",
        "region",
        "true_gain",
        "fitted_gain",
        "sigma",
        "loss_evals",
        "seconds",
    ]
    methods = table.groupby("regions").method.unique().map(set).to_dict()
    minuit = set() if root_missing_reason() else {"minuit2"}  # where ROOT is installed
    assert methods == {2: {"grid", "adam", "lbfgs"} | minuit, 4: {"adam", "lbfgs"} | minuit}
    hessian = pd.read_csv(paths["calib_hessian"])
    assert set(hessian.method) == ({"clad", "finite-differences"} if CLAD_BUILT else {"finite-differences"}) | (
        ({"minuit2-hesse", "minuit2-hesse-clad"} if CLAD_BUILT else {"minuit2-hesse"}) if minuit else set()
    )
    assert len(table) == (3 + len(minuit)) * 2 + (2 + len(minuit)) * 4
    assert (table.sigma > 0).all() and (table.seconds > 0).all()
    cost = pd.read_csv(paths["calib_cost"])
    grid4 = cost[(cost.regions == 4) & (cost.method == "grid")].iloc[0]
    assert not grid4.feasible and grid4.loss_evals == calib.grid_evaluations(4, 0.92, 1.08)
    timing = pd.read_csv(paths["calib_timing"])
    assert set(timing.engine) == {*calib.engines(), "forward"} and (timing.median_s > 0).all()
    written = calib_report.build(tmp_path / "tables", tmp_path / "report")
    for figure in calib_report.CALIB_FIGURES:
        assert (tmp_path / "report" / f"{figure}.pdf").read_bytes().startswith(b"%PDF")
    assert "\\toprule" in (tmp_path / "report" / "calib.tex").read_text() and len(written) == 11
