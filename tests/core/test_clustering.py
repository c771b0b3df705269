"""The plain clustering path (cfcam.core.clustering) against the published code, and the fast engine
(cfcam.core.engine) against the plain path: the same eps, labels and maps, bit for bit. Without numba cfcam
runs on the plain path, says so once, and gives the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import DBSCAN

import cfcam
from cfcam.core import clustering as cl
from cfcam.core.engine import ENGINE_ENV, channel_distances, engine_name
from cfcam.core.engine import exact as ex

from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]


def planted(seed: int, n: int, d: int, groups: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(groups, d))
    x = centres[rng.integers(0, groups, n)] + rng.normal(0, 1, size=(n, d))
    return (x * rng.uniform(0.01, 100)).astype(np.float32)


def test_plain_distances_are_the_published_ones():
    """float32 norms of float32 differences, exactly as the published code computes the whole matrix."""
    x = planted(0, 90, 17)
    published, exact = cl.pairwise_distances(x)
    np.testing.assert_array_equal(published, np.linalg.norm(x[:, None] - x[None, :], axis=2))
    diff = (x[:, None] - x[None, :]).astype(np.float64)  # the same float32 differences, summed in float64
    np.testing.assert_allclose(exact, np.sqrt((diff ** 2).sum(-1)), rtol=1e-12)
    assert published.dtype == np.float32 and exact.dtype == np.float64


def test_plain_eps_is_the_published_percentile():
    x = planted(1, 120, 9)
    published, _ = cl.pairwise_distances(x)
    off = published[~np.eye(120, dtype=bool)]
    eps = cl.percentile_eps(published, 25, 1e-5)
    assert abs(eps - float(np.percentile(off, 25))) <= np.spacing(np.float32(eps))  # at most one float32 step
    assert cl.percentile_eps(published, 25, 1e9) == 1e9  # eps_min is a floor
    assert cl.percentile_eps(published[:1, :1], 25, 0.5) == 0.5  # one point: no pair


def test_plain_dbscan_is_scikit_learns_on_the_float64_distances():
    x = planted(2, 150, 12)
    d = cl.ChannelDistances(x)
    eps = d.eps(25, 1e-5)
    ours = d.dbscan(eps, 7)
    theirs = DBSCAN(eps=eps, min_samples=7, metric="precomputed").fit(d.exact)
    np.testing.assert_array_equal(ours.labels, theirs.labels_)
    np.testing.assert_array_equal(np.flatnonzero(ours.core), theirs.core_sample_indices_)
    np.testing.assert_array_equal(ours.n_neighbors, (d.exact <= eps).sum(axis=1))


def assert_same_clustering(x, percentile, min_samples):
    plain, fast = cl.ChannelDistances(x), ex.Distances(x)
    eps_plain, eps_fast = plain.eps(percentile, 1e-5), fast.eps(percentile, 1e-5)
    assert eps_plain == float(eps_fast)
    a, b = plain.dbscan(eps_plain, min_samples), fast.dbscan(eps_fast, min_samples)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.core, b.core)
    np.testing.assert_array_equal(a.n_neighbors, b.n_neighbors)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 300), st.integers(1, 80), st.floats(0, 100), st.integers(1, 20))
def test_the_engine_gives_the_plain_paths_eps_and_labels(seed, n, d, percentile, min_samples):
    assert_same_clustering(planted(seed, n, d), percentile, min_samples)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.npz")), ids=lambda p: p.stem)
@pytest.mark.parametrize("preset", ["readme", "reference"])
def test_the_engine_gives_the_plain_paths_maps(path, preset, monkeypatch):
    data = np.load(path)
    results = {}
    for engine in ("plain", "fast"):
        monkeypatch.setenv(ENGINE_ENV, engine)
        results[engine] = cfcam.cluster_filter_cam(data["activations"], data["gradients"], preset)
    plain, fast = results["plain"], results["fast"]
    assert plain.eps == fast.eps and plain.min_samples == fast.min_samples
    np.testing.assert_array_equal(plain.labels, fast.labels)
    np.testing.assert_array_equal(plain.cam, fast.cam)
    np.testing.assert_array_equal(plain.weights, fast.weights)


def test_the_engine_is_chosen_by_the_environment(monkeypatch):
    monkeypatch.setenv(ENGINE_ENV, "plain")
    assert engine_name() == "plain" and isinstance(channel_distances(np.zeros((3, 2))), cl.ChannelDistances)
    monkeypatch.setenv(ENGINE_ENV, "fast")
    assert engine_name() == "fast" and isinstance(channel_distances(np.zeros((3, 2))), ex.Distances)
    monkeypatch.setenv(ENGINE_ENV, "turbo")
    with pytest.raises(ValueError, match="CFCAM_ENGINE='turbo' is not one of"):
        engine_name()


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("CFCAM_ENGINE", "NUMBA_DISABLE_JIT")}
    environment.update(env, PYTHONPATH=os.pathsep.join(str(p) for p in (ROOT, ROOT / "tests", ROOT / "tests" / "core")))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=600, cwd=ROOT)


WITHOUT_NUMBA = """
import sys, warnings, json
sys.modules["numba"] = None  # as on a Python or platform that numba has no wheels for
import numpy as np, cfcam
from cfcam.core.engine import EngineWarning, engine_name
data = np.load("{fixture}")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = cfcam.cluster_filter_cam(data["activations"], data["gradients"], "reference")
    second = cfcam.cluster_filter_cam(data["activations"], data["gradients"], "readme")
said = [str(w.message) for w in caught if issubclass(w.category, EngineWarning)]
print(json.dumps({{"engine": engine_name(), "said": said, "labels": first.labels.tolist(), "eps": first.eps,
                  "numba": "numba" in sys.modules and sys.modules["numba"] is not None}}))
"""


@pytest.mark.slow
def test_without_numba_cfcam_runs_on_the_plain_path_and_says_so_once():
    fixture = FIXTURES / "resnet50_layer3_b.npz"
    run = run_python(WITHOUT_NUMBA.format(fixture=fixture))
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["engine"] == "plain" and not out["numba"]
    assert len(out["said"]) == 1 and "numba cannot be imported" in out["said"][0]
    expected = cfcam.cluster_filter_cam(np.load(fixture)["activations"], np.load(fixture)["gradients"], "reference")
    assert out["labels"] == expected.labels.tolist() and out["eps"] == expected.eps
    forced = run_python(WITHOUT_NUMBA.format(fixture=fixture), CFCAM_ENGINE="fast")
    assert forced.returncode != 0 and "CFCAM_ENGINE=fast, but numba cannot be imported" in forced.stderr


UNCOMPILED = """
import numpy as np, json
from cfcam.core import clustering as cl
from cfcam.core.engine import exact as ex
from test_clustering import planted
same = []
for seed, n, d, pct, m in [(0, 150, 9, 25, 7), (1, 70, 30, 5, 2), (2, 200, 4, 60, 10)]:
    x = planted(seed, n, d)
    plain, fast = cl.ChannelDistances(x), ex.Distances(x)
    e1, e2 = plain.eps(pct, 1e-5), fast.eps(pct, 1e-5)
    a, b = plain.dbscan(e1, m), fast.dbscan(e2, m)
    same.append(e1 == float(e2) and a.labels.tolist() == b.labels.tolist() and a.core.tolist() == b.core.tolist())
import numba
print(json.dumps({"same": same, "jit_disabled": bool(numba.config.DISABLE_JIT)}))
"""


@pytest.mark.slow
def test_the_kernels_python_bodies_give_the_same_results():
    """Under ``NUMBA_DISABLE_JIT=1`` the kernels run as the plain Python they are written in (covered, and
    checked against the plain path)."""
    run = run_python(UNCOMPILED, NUMBA_DISABLE_JIT="1", CFCAM_ENGINE="fast")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"same": [True, True, True], "jit_disabled": True}


CACHED = """
import numpy as np
from cfcam.core.engine import exact as ex
d = ex.Distances(np.random.default_rng(0).random((80, 5), dtype=np.float32))
d.dbscan(d.eps(25, 1e-5), 3)
"""


@pytest.mark.slow
def test_compiled_kernels_are_cached_in_the_users_cache_folder_not_the_package(tmp_path):
    package_cache = ROOT / "cfcam" / "core" / "engine" / "__pycache__"
    before = {p.name for p in package_cache.glob("kernels.*.nb*")} if package_cache.exists() else set()
    env = {"XDG_CACHE_HOME": str(tmp_path), "CFCAM_ENGINE": "fast"}
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    environment.update(env, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-c", CACHED], capture_output=True, text=True, env=environment,
                         timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    cached = list((tmp_path / "cfcam" / "numba").rglob("*.nbi"))
    assert cached, "no compiled kernel was cached in the user's cache folder"
    after = {p.name for p in package_cache.glob("kernels.*.nb*")} if package_cache.exists() else set()
    assert after == before  # nothing new written into the installed package
