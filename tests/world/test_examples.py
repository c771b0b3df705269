"""The examples loader: the same images as testimgs/, from anywhere, and clear errors for a bad folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cfcam
from cfcam.world.examples import find_example, load_examples

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_examples_are_the_testimgs_pixels():
    built, read = load_examples(), load_examples(ROOT / "testimgs")
    assert [e.name for e in built] == [e.name for e in read]
    assert [e.class_name for e in built] == [e.class_name for e in read]
    for a, b in zip(built, read):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image)), a.name
        assert np.array_equal(a.mask, b.mask), a.name
    assert sum(e.has_lesion for e in built) == 5


def test_examples_do_not_depend_on_the_working_folder(tmp_path):
    code = "import cfcam, numpy as np; e = cfcam.load_examples(); print(len(e), int(np.asarray(e[5].image).sum()))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "10"
    assert int(out.stdout.split()[1]) == int(np.asarray(load_examples()[5].image).sum())


def test_a_caller_cannot_change_the_builtin_images():
    first = load_examples()[0]
    first.image.paste(0, (0, 0, 50, 50))
    assert np.asarray(load_examples()[0].image)[:50, :50].any()
    with pytest.raises(ValueError):
        load_examples()[6].mask[0, 0] = True


def test_find_example():
    ex = load_examples()
    assert find_example(ex, "lesion").name == "lesion_01.png"
    assert find_example(ex, "normal", 2).name == "normal_03.png"
    with pytest.raises(ValueError, match="no example number 9 of class 'lesion'"):
        find_example(ex, "lesion", 9)


def test_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="manifest.csv not found"):
        load_examples(tmp_path)
    shutil.copy(ROOT / "testimgs" / "lesion_01.png", tmp_path / "a.png")
    (tmp_path / "manifest.csv").write_text("file,class,mask\na.png,lesion,nope.png\n")
    with pytest.raises(ValueError, match=r"line 2: mask 'nope.png'"):
        load_examples(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,klass\na.png,lesion\n")
    with pytest.raises(ValueError, match="missing column"):
        load_examples(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,class,mask\nmissing.png,lesion,\n")
    with pytest.raises(ValueError, match="line 2: image 'missing.png'"):
        load_examples(tmp_path)


def test_exported_from_the_package():
    assert cfcam.load_examples is load_examples
