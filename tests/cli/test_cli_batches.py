"""The pipelined batch loop of ``cfcam explain`` (cfcam/cli/batches.py) and the fast PNG writer."""

import re
import struct
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from cfcam import cli
from cfcam.cli import batches
from cfcam.images.imageio import PNG_COMPRESS_LEVEL, save_png_atomic


def idat_zlib_level(path: Path) -> int:
    """The FLEVEL field (0 fastest .. 3 best) of the zlib stream in a PNG's first IDAT chunk."""
    data = path.read_bytes()
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            return data[pos + 9] >> 6  # second byte of the zlib header
        pos += 12 + length
    raise AssertionError("no IDAT chunk")


def test_png_is_written_at_the_fast_level_and_reads_back_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    save_png_atomic(pixels, tmp_path / "a.png")
    assert PNG_COMPRESS_LEVEL == 1 and idat_zlib_level(tmp_path / "a.png") == 0  # level 1: "fastest"
    with Image.open(tmp_path / "a.png") as im:
        np.testing.assert_array_equal(np.asarray(im), pixels)


def test_png_wider_or_taller_than_libpng_allows_is_still_written(tmp_path, capfd):
    # libpng refuses a side over 1,000,000 pixels by default; load_image accepts such an image (1 MP)
    rng = np.random.default_rng(3)
    for name, pixels in (("wide.png", rng.integers(0, 256, (2, 1_000_001, 3), dtype=np.uint8)),
                         ("tall.png", rng.integers(0, 256, (1_000_001, 1), dtype=np.uint8))):
        save_png_atomic(pixels, tmp_path / name)
        with Image.open(tmp_path / name) as im:
            np.testing.assert_array_equal(np.asarray(im), pixels)
    assert "libpng" not in capfd.readouterr().err


def test_reading_and_writing_run_in_the_pool_and_rows_keep_input_order(tmp_path, monkeypatch, capsys):
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(1)
    for k in range(7):
        Image.fromarray(rng.integers(0, 256, (50 + k, 60, 3), dtype=np.uint8)).save(images / f"im{k}.png")
    (images / "im3.png").write_bytes(b"not an image")
    where = {"load": set(), "write": set()}
    load, write = batches.load, batches.write

    def spy_load(*args):
        where["load"].add(threading.current_thread().name)
        return load(*args)

    def spy_write(*args):
        where["write"].add(threading.current_thread().name)
        return write(*args)

    monkeypatch.setattr(batches, "load", spy_load)
    monkeypatch.setattr(batches, "write", spy_write)
    code = cli.main(["explain", str(images), "-o", str(tmp_path / "out"), "--batch-size", "3"])
    out, err = capsys.readouterr()
    assert code == 1  # one input failed
    assert where["load"] and all(name.startswith("cfcam-io") for name in where["load"] | where["write"])
    assert re.search(r"6 of 7 image\(s\) explained .* in [\d.]+ s \([\d.]+ images/s\)", out)
    assert "im3.png" in err
    summary = (tmp_path / "out" / "summary.csv").read_text().splitlines()[1:]
    assert [Path(line.split(",")[0]).name for line in summary] == [f"im{k}.png" for k in range(7)]
    assert len(list((tmp_path / "out").glob("*_cfcam.png"))) == 6


def test_a_failed_write_is_reported_and_the_others_are_written(tmp_path, monkeypatch, capsys):
    images = tmp_path / "in"
    images.mkdir()
    for k in range(4):
        Image.fromarray(np.full((40, 40, 3), 30 * k, dtype=np.uint8)).save(images / f"w{k}.png")
    write = batches.write

    def failing_write(heatmap, image, alpha, png, npy):
        if png.name.startswith("w2"):
            return 0.0, "cannot write the output (disk full)"
        return write(heatmap, image, alpha, png, npy)

    monkeypatch.setattr(batches, "write", failing_write)
    code = cli.main(["explain", str(images), "-o", str(tmp_path / "out"), "--batch-size", "2"])
    _, err = capsys.readouterr()
    assert code == 1 and "w2.png" in err and "disk full" in err
    assert sorted(p.name for p in (tmp_path / "out").glob("*_cfcam.png")) == ["w0_cfcam.png", "w1_cfcam.png",
                                                                             "w3_cfcam.png"]


def test_model_threads_are_restored(monkeypatch):
    import torch

    monkeypatch.setenv("CFCAM_THREADS", "1")
    before = torch.get_num_threads()
    with batches.model_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_command_line_keeps_freed_memory_for_the_next_batch(tmp_path, monkeypatch):
    """After keep_freed_memory (glibc, as on the CI machine), a block the size of a model's activations that
    is freed and allocated again comes back without faulting its pages in anew; the batch loop sets it."""
    import resource

    assert batches.keep_freed_memory()
    size = 20 << 20  # under the 32 MB bound; bytearray zero-fills, so every page is touched
    first = bytearray(size)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    again = bytearray(size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert len(again) == size and faults < size // 4096 // 10  # fresh pages would be 5,120 faults

    calls = []
    monkeypatch.setattr(batches, "keep_freed_memory", lambda: calls.append(True) or True)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(folder / "a.png")
    assert cli.main(["explain", str(folder), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert calls == [True]


def test_run_settings_restore_the_switch_interval_and_torch_threads():
    import sys

    import torch

    before = sys.getswitchinterval(), torch.get_num_threads()
    with batches.run_settings():
        assert sys.getswitchinterval() == min(before[0], batches.SWITCH_INTERVAL)
        assert torch.get_num_threads() == batches.model_thread_count()
    assert (sys.getswitchinterval(), torch.get_num_threads()) == before
