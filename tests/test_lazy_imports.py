"""Start-up: the package and the command line's parser import neither torch, torchvision, OpenCV nor numba
until a run needs them, and every public name is still there."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "torchvision.ops", "torch._dynamo", "cv2", "numba")


def modules_after(code: str) -> set[str]:
    """The heavy modules loaded by ``code`` run in a fresh interpreter."""
    probe = code + f"\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import cfcam",
    "import cfcam.cli",
    "import cfcam.methods.registry; cfcam.methods.registry.method_names()",
    "import cfcam.cli, contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    "    assert cfcam.cli.main(['--version']) == 0",
    "import cfcam.cli, contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    "    assert cfcam.cli.main(['explain', '--help']) == 0",
    "import cfcam.cli, contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n"
    "    assert cfcam.cli.main(['evaluate', '--help']) == 0",
])
def test_no_heavy_import(code):
    assert modules_after(code) == set()


def test_every_public_name_resolves_to_its_defining_object():
    import cfcam
    from cfcam.core import capture, config, pipeline
    from cfcam.methods import base, registry

    assert cfcam.cluster_filter_cam is pipeline.cluster_filter_cam
    assert cfcam.CFCAM is base.CFCAM and cfcam.GradCAM is base.GradCAM
    assert cfcam.METHODS is registry.METHODS
    assert cfcam.ActivationsAndGradients is capture.ActivationsAndGradients
    assert cfcam.PRESETS is config.PRESETS
    for name in cfcam.__all__:
        assert getattr(cfcam, name) is not None
    assert set(cfcam.__all__) <= set(dir(cfcam))
    with pytest.raises(AttributeError):
        cfcam.no_such_name  # noqa: B018 - the attribute access is what is tested


def test_registry_imports_the_class_when_a_method_is_used():
    from cfcam.methods import base, registry

    assert registry.get_method("gradcam").cls is base.GradCAM
    assert registry.get_method("cfcam-reference").cls is base.CFCAM
    import cfcam.methods

    assert cfcam.methods.BaseCAM is base.BaseCAM


def test_the_core_imports_numba_only_when_it_clusters():
    code = ("import numpy as np, torch\nfrom cfcam.core import clustering, pipeline\n"
            "import sys\nassert 'numba' not in sys.modules\n"
            "pipeline.cluster_filter_cam(np.random.default_rng(0).random((40, 5, 5)), np.ones((40, 5, 5)))")
    assert "numba" in modules_after(code)
