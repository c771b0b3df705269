"""Reading every kind of image a user may point at, refusing bad ones clearly, and writing atomically."""

import hashlib
import os
import stat
import warnings

import numpy as np
import pytest
from PIL import Image, ImageFile

from cfcam.images import imageio
from cfcam.images.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    find_images,
    load_image,
    save_npy_atomic,
    save_png_atomic,
    scale_to_uint8,
    write_text_atomic,
)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def colourful(w=48, h=32) -> Image.Image:
    """An RGB image with distinct values per pixel and channel."""
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=-1)
    return Image.fromarray(arr.astype(np.uint8))


def noise_png(path, w=64, h=64, seed=0):
    """A PNG of random pixels (so its compressed data is large enough to truncate)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


# -- conversions ------------------------------------------------------------------------------------------

def test_16bit_png_is_scaled_to_its_own_range_not_clipped(tmp_path):
    values = np.linspace(1000, 3000, 40 * 60).reshape(40, 60).astype(np.uint16)
    path = tmp_path / "xray16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in ("I;16", "I")  # really a 16-bit file

    rgb = np.asarray(load_image(path))
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert rgb.min() == 0 and rgb.max() == 255 and not (rgb == 255).all()
    expected = np.rint((values.astype(float) - 1000) / 2000 * 255)
    np.testing.assert_allclose(rgb[..., 0], expected, atol=1)


def test_32bit_integer_image_is_scaled_too(tmp_path):
    values = (np.arange(20 * 30).reshape(20, 30) * 100 + 50_000).astype(np.int32)
    path = tmp_path / "deep.tif"
    Image.fromarray(values, mode="I").save(path)
    assert Image.open(path).mode == "I"
    gray = np.asarray(load_image(path))[..., 0]
    assert gray.min() == 0 and gray.max() == 255
    assert (np.diff(gray.ravel().astype(int)) >= 0).all()  # order kept


def test_scale_to_uint8_constant_and_nonfinite():
    assert (scale_to_uint8(np.full((3, 4), 1234.0)) == 0).all()
    out = scale_to_uint8(np.array([[0.0, np.nan], [2.0, 4.0]]))
    assert out.tolist() == [[0, 0], [128, 255]]


@pytest.mark.parametrize("mode,fmt", [("L", "PNG"), ("1", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("LA", "PNG"),
                                      ("CMYK", "TIFF"), ("CMYK", "JPEG"), ("F", "TIFF"), ("RGB", "WEBP")])
def test_modes_convert_to_rgb(tmp_path, mode, fmt):
    source = colourful().convert(mode)
    path = tmp_path / f"img.{fmt.lower()}"
    source.save(path, format=fmt)
    loaded = load_image(path)
    assert loaded.mode == "RGB" and loaded.size == source.size
    stored = Image.open(path)
    stored.load()
    if mode in ("P", "CMYK", "1", "L"):  # the ordinary PIL conversion of what is stored
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(stored.convert("RGB")))


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = np.zeros((10, 12, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 200, 100, 50
    rgba[..., 3] = 0  # fully transparent: compositing on black would give (0, 0, 0)
    rgba[:5, :, 3] = 128
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    out = np.asarray(load_image(path))
    assert (out == np.array([200, 100, 50], dtype=np.uint8)).all()


def test_exif_orientation_is_applied(tmp_path):
    img = colourful(60, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rotated = tmp_path / "rotated.jpg"
    img.save(rotated, format="JPEG", exif=exif.tobytes())
    plain = tmp_path / "plain.jpg"
    img.save(plain, format="JPEG")
    assert Image.open(rotated).size == (60, 30)  # stored landscape
    assert load_image(rotated).size == (30, 60)  # shown portrait
    assert load_image(plain).size == (60, 30)


def test_first_frame_of_multiframe_gif(tmp_path):
    frames = [Image.new("L", (16, 8), v) for v in (10, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = np.asarray(load_image(path))
    assert out.shape == (8, 16, 3) and int(out.mean()) == 10


# -- refusals ---------------------------------------------------------------------------------------------

def refused(path, *words):
    with pytest.raises(ImageError) as info:
        load_image(path)
    err = info.value
    assert isinstance(err, ValueError) and err.path == str(path)
    assert str(path) in str(err)
    for w in words:
        assert w in err.reason, err.reason
    return err


def test_missing_path(tmp_path):
    refused(tmp_path / "nope.png", "no such file")


def test_folder_is_not_an_image(tmp_path):
    refused(tmp_path, "folder")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    refused(path, "empty")


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    refused(path, "not a recognised image")


def test_truncated_png(tmp_path):
    good = noise_png(tmp_path / "good.png")
    data = good.read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    refused(path, "corrupt or truncated")


def test_corrupted_png_data(tmp_path):
    data = bytearray(noise_png(tmp_path / "good.png").read_bytes())
    start = data.index(b"IDAT") + 4
    data[start:start + 64] = bytes(64)  # zero part of the compressed stream (CRC no longer matches)
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    refused(path, "corrupt")


@pytest.mark.parametrize("limit", [1000, 3000])  # 64*64 = 4096: over 2x the limit (PIL error) / over 1x (PIL warning)
def test_decompression_bomb_is_refused_without_decoding(tmp_path, monkeypatch, limit):
    path = noise_png(tmp_path / "bomb.png")
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or real_load(self))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    filters_before = list(warnings.filters)
    refused(path, "decompression bomb")
    assert decoded == []
    assert list(warnings.filters) == filters_before  # the warning filter was local to the call
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    assert load_image(path).size == (64, 64) and decoded  # the same file under the limit loads


def test_loading_never_modifies_inputs(tmp_path):
    paths = [noise_png(tmp_path / "a.png")]
    img = colourful()
    exif = Image.Exif()
    exif[0x0112] = 8
    img.save(tmp_path / "b.jpg", exif=exif.tobytes())
    Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 7).save(tmp_path / "c.png")
    paths += [tmp_path / "b.jpg", tmp_path / "c.png"]
    before = {p: (digest(p), os.stat(p).st_mtime_ns) for p in paths}
    for p in paths:
        load_image(p)
    assert {p: (digest(p), os.stat(p).st_mtime_ns) for p in paths} == before
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.jpg", "c.png"]


# -- finding images ---------------------------------------------------------------------------------------

def test_find_images_scans_folders_non_recursively(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "A.PNG", "d.JPEG", "c.txt", ".hidden.png", "e.TiFF", "f.webp", "g.bmp"):
        (folder / name).write_bytes(b"x")
    (folder / "sub" / "deep.png").write_bytes(b"x")
    explicit = folder / "c.txt"
    images, problems = find_images([folder, explicit, tmp_path / "missing", folder / "b.jpg"])
    names = [p.name for p in images]
    assert names == ["A.PNG", "b.jpg", "d.JPEG", "e.TiFF", "f.webp", "g.bmp", "c.txt"]
    assert problems == [(tmp_path / "missing", "no such file or folder")]
    assert set(IMAGE_EXTENSIONS) >= {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def test_find_images_reports_a_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    images, problems = find_images([tmp_path])
    assert images == [] and len(problems) == 1 and "no image files" in problems[0][1]


# -- atomic writers ---------------------------------------------------------------------------------------

def test_atomic_writers_round_trip_and_leave_no_temp_files(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    save_png_atomic(rgb, tmp_path / "a.png")
    save_png_atomic(Image.fromarray(rgb[..., 0]), tmp_path / "b.png")
    arr = np.random.default_rng(2).random((5, 6)).astype(np.float32)
    save_npy_atomic(arr, tmp_path / "c.npy")
    write_text_atomic("naïve,text\n", tmp_path / "d.csv")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgb[..., 0])
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), arr)
    assert (tmp_path / "d.csv").read_text(encoding="utf-8") == "naïve,text\n"
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "c.npy", "d.csv"]


def test_atomic_write_replaces_an_existing_file_whole(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("x" * 10_000)
    write_text_atomic("short", path)
    assert path.read_text() == "short"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic("a", tmp_path / "p.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "p.txt").st_mode) == 0o644


def test_interrupted_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    path = tmp_path / "map.npy"
    save_npy_atomic(np.zeros(3), path)
    old = path.read_bytes()

    def half_then_interrupt(fh, arr, allow_pickle):
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_npy_atomic(np.ones(1000), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["map.npy"]


def test_writers_validate_their_arguments(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        save_png_atomic(np.zeros((4, 4), dtype=np.float32), tmp_path / "x.png")
    with pytest.raises(ValueError, match="shape"):
        save_png_atomic(np.zeros((4, 4, 2), dtype=np.uint8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="text must be a str"):
        write_text_atomic(b"bytes", tmp_path / "x.txt")
    with pytest.raises(ValueError, match="folder"):
        write_text_atomic("a", tmp_path)
    assert os.listdir(tmp_path) == []


# -- issue 11: decoding to the real range, lying headers, odd entries, warnings, temporary files ----------

def write_png(path, width, height, rows: bytes, colour_type=2, depth=8):
    """A PNG written by hand: a header claiming ``width`` x ``height`` and ``rows`` as its compressed data."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("name", ["rgb16.png", "rgba16.png", "rgb16.tif"])
def test_16bit_colour_is_decoded_at_full_depth_and_scaled_to_its_range(tmp_path, name):
    import cv2  # a dependency of cfcam
    rng = np.random.default_rng(3)
    rgb = rng.integers(100, 4096, (24, 36, 3)).astype(np.uint16)  # 12-bit data: the high byte is 0..15
    rgb[0, 0] = (100, 100, 100)
    rgb[0, 1] = (4095, 4095, 4095)
    stored = rgb[..., ::-1]
    if "rgba" in name:
        stored = np.concatenate([stored, np.full((24, 36, 1), 7, np.uint16)], axis=-1)  # alpha: dropped
    assert cv2.imwrite(str(tmp_path / name), stored)
    assert Image.open(tmp_path / name).mode in ("RGB", "RGBA")  # PIL alone would keep only the high byte

    out = np.asarray(load_image(tmp_path / name))
    expected = np.rint((rgb.astype(float) - 100) / (4095 - 100) * 255)
    np.testing.assert_allclose(out, expected, atol=1)
    assert out.max() == 255 and out.min() == 0


def test_16bit_colour_keeps_the_exif_orientation(tmp_path):
    import struct
    import zlib

    import cv2  # a dependency of cfcam
    arr = np.zeros((10, 30, 3), np.uint16)
    arr[:, :10] = 4000  # the left third bright
    data = cv2.imencode(".png", arr)[1].tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    payload = exif.tobytes()[6:]  # without the "Exif\0\0" of JPEG's APP1
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    iend = data.rindex(b"IEND") - 4
    path = tmp_path / "turned.png"
    path.write_bytes(data[:iend] + chunk + data[iend:])
    assert Image.open(path).size == (30, 10)

    out = np.asarray(load_image(path))
    assert out.shape == (30, 10, 3)  # shown portrait
    assert out[:10, :, 0].min() == 255 and out[10:, :, 0].max() == 0  # the bright third is now on top


def test_lying_png_header_is_refused_before_decoding(tmp_path, monkeypatch):
    path = write_png(tmp_path / "liar.png", 9000, 9000, b"\x00" + bytes(9000 * 3))  # one row of 9000
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(1) or real_load(self))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000_000)
    refused(path, "header claims 9000x9000", "lying")
    assert decoded == []
    honest = write_png(tmp_path / "honest.png", 300, 200, (b"\x00" + bytes(300 * 3)) * 200)
    assert load_image(honest).size == (300, 200)  # all black, yet honest: accepted


def test_lying_jpeg_header_is_refused(tmp_path):
    path = tmp_path / "small.jpg"
    colourful(40, 30).save(path)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0") + 5
    data[sof:sof + 4] = (9000).to_bytes(2, "big") + (9000).to_bytes(2, "big")  # height, width
    (tmp_path / "liar.jpg").write_bytes(bytes(data))
    refused(tmp_path / "liar.jpg", "lying")


def test_cfcam_pixel_limit_is_lower_than_pils_and_adjustable(tmp_path):
    path = write_png(tmp_path / "big.png", 3000, 2000, (b"\x00" + bytes(3000)) * 2000, colour_type=0)
    refused_err = pytest.raises(ImageError, load_image, path, max_pixels=5_000_000)
    assert "too many pixels" in refused_err.value.reason and "--max-pixels" in refused_err.value.reason
    assert load_image(path, max_pixels=6_000_000).size == (3000, 2000)
    assert imageio.MAX_PIXELS < Image.MAX_IMAGE_PIXELS


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX feature")
def test_fifos_loops_and_broken_links_are_named_not_skipped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    noise_png(folder / "good.png")
    os.mkfifo(folder / "pipe.png")
    os.symlink(folder / "nowhere.png", folder / "dangling.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    (folder / "sub.png").mkdir()  # a folder is never scanned: not an image, not a problem
    images, problems = find_images([folder, tmp_path / "in" / "loop.png"])
    assert [p.name for p in images] == ["good.png"]
    reasons = {p.name: r for p, r in problems}
    assert set(reasons) == {"pipe.png", "dangling.png", "loop.png"}
    assert "FIFO" in reasons["pipe.png"]
    assert "broken symbolic link" in reasons["dangling.png"] and "nowhere.png" in reasons["dangling.png"]
    assert "loop" in reasons["loop.png"]
    assert [r for p, r in problems if p.name == "loop.png"] == [reasons["loop.png"]] * 2  # by name, too
    refused(folder / "pipe.png", "not a regular file", "FIFO")  # returns at once: never blocks on the FIFO
    refused(folder / "loop.png", "loop")
    refused(folder / "dangling.png", "broken symbolic link")


def test_corrupt_exif_warning_names_the_file(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 1  # one tag, stored inline
    block = exif.tobytes()
    path = tmp_path / "odd exif.jpg"
    colourful().save(path, exif=block[:-2])  # the offset of the next IFD cut short: "Corrupt EXIF data"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = load_image(path)
    messages = [str(w.message) for w in caught]
    assert messages and all(issubclass(w.category, imageio.ImageWarning) for w in caught)
    assert all(m.startswith(f"{path}: ") for m in messages) and any("Corrupt EXIF" in m for m in messages)
    assert any("EXIF" in n for n in image.info["warnings"]) and "\n" not in " ".join(image.info["warnings"])


def test_temporary_names_fit_under_the_longest_output_name(tmp_path):
    stem = "x" * 245  # + "_cfcam.png" = 255 bytes, the longest name most file systems allow
    path = write_text_atomic("ok", tmp_path / f"{stem}_cfcam.png")
    assert path.read_text() == "ok" and os.listdir(tmp_path) == [path.name]


def test_stale_temporary_files_are_swept_but_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".cfcam-{dead}-0a1b2c3d.tmp"
    live = tmp_path / f".cfcam-{os.getpid()}-0a1b2c3d.tmp"
    other = tmp_path / ".someone-else.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"")
    assert imageio.remove_stale_temps(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name])


def test_sigkill_during_a_write_leaves_only_a_hidden_temp_the_next_run_removes(tmp_path):
    import signal
    import subprocess
    import sys

    code = ("import sys, time; from cfcam.images import writing\n"
            "def write(fh):\n"
            "    fh.write(b'x' * 1000); fh.flush(); print('writing', flush=True); time.sleep(600)\n"
            f"writing.write_atomic({str(tmp_path / 'out.npy')!r}, write)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    left = os.listdir(tmp_path)
    assert "out.npy" not in left and all(n.startswith(".cfcam-") and n.endswith(".tmp") for n in left)
    imageio.remove_stale_temps(tmp_path)
    assert os.listdir(tmp_path) == []


def test_writable_check(tmp_path):
    imageio.check_writable(tmp_path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(OSError):
        imageio.check_writable(tmp_path / "missing")


def test_images_read_in_parallel_threads_keep_their_own_decoder_warnings(tmp_path):
    """Warning filters are global: without the module's lock, one thread's catch_warnings lost or swapped the
    other's (the command line reads in a thread pool)."""
    from concurrent.futures import ThreadPoolExecutor

    exif = Image.Exif()
    exif[0x0112] = 1
    paths = []
    for k in range(24):
        img = Image.new("RGB", (40, 30), (k * 10, 50, 90))
        if k % 2:
            paths.append(tmp_path / f"exif{k}.jpg")
            img.save(paths[-1], exif=exif.tobytes()[:-2])  # corrupt EXIF: one decoder warning
        else:
            paths.append(tmp_path / f"plain{k}.png")
            img.save(paths[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", imageio.ImageWarning)
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                images = list(pool.map(load_image, paths))
                for path, image in zip(paths, images):
                    notes = image.info["warnings"]
                    if path.suffix == ".jpg":
                        assert len(notes) == 1 and "Corrupt EXIF" in notes[0], (path.name, notes)
                    else:
                        assert notes == [], (path.name, notes)


# -- the split by job: one module per job, the old module re-exporting them --------------------------------

OLD_PUBLIC_NAMES = ("IMAGE_EXTENSIONS", "MAX_PIXELS", "PNG_COMPRESS_LEVEL", "TEMP_PREFIX", "ImageError",
                    "ImageWarning", "check_writable", "encode_png", "file_kind", "find_images", "load_image",
                    "load_mask", "remove_stale_temps", "save_npy_atomic", "save_png_atomic", "scale_to_uint8",
                    "stat_problem", "write_bytes_atomic", "write_text_atomic")


def test_imageio_still_offers_every_public_name_it_had_from_the_module_that_does_the_job():
    from cfcam.images import files, png, reading, scanning, writing

    homes = {"load_image": reading, "load_mask": reading, "MAX_PIXELS": reading, "ImageWarning": reading,
             "scale_to_uint8": reading, "find_images": scanning, "IMAGE_EXTENSIONS": scanning,
             "encode_png": png, "PNG_COMPRESS_LEVEL": png, "ImageError": files, "file_kind": files,
             "stat_problem": files, "check_writable": writing, "save_png_atomic": writing, "TEMP_PREFIX": writing,
             "save_npy_atomic": writing, "write_bytes_atomic": writing, "write_text_atomic": writing,
             "remove_stale_temps": writing}
    assert set(homes) == set(OLD_PUBLIC_NAMES)
    for name in OLD_PUBLIC_NAMES:
        assert getattr(imageio, name) is getattr(homes[name], name), name
    assert set(OLD_PUBLIC_NAMES) <= set(imageio.__all__)


def test_files_written_together_appear_together_or_not_at_all(tmp_path, monkeypatch):
    from cfcam.images import writing

    model, card = tmp_path / "model.pt", tmp_path / "model.json"
    model.write_bytes(b"old model")
    card.write_bytes(b"old card")
    assert writing.write_files_atomic({model: b"new model", card: b"new card"}) == [model, card]
    assert (model.read_bytes(), card.read_bytes()) == (b"new model", b"new card")

    real_fill = writing._fill
    calls = []

    def stop_at_the_second(tmp, write):
        calls.append(tmp)
        if len(calls) == 2:
            writing._create(tmp)  # the second temporary file exists: the run is stopped while writing it
            raise KeyboardInterrupt
        return real_fill(tmp, write)

    monkeypatch.setattr(writing, "_fill", stop_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        writing.write_files_atomic({model: b"newer model", card: b"newer card"})
    assert (model.read_bytes(), card.read_bytes()) == (b"new model", b"new card")  # neither was replaced
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.pt"]  # and no temporary file is left
    with pytest.raises(ValueError, match="model.json.*bytes"):
        writing.write_files_atomic({card: "text"})
    with pytest.raises(ValueError, match="folder"):
        writing.write_files_atomic({tmp_path: b""})


def test_a_stop_right_after_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C can land just after ``os.open`` returned, before the writer holds the file: it is still removed."""
    from cfcam.images import writing

    real_create = writing._create

    def created_then_stopped(tmp):
        os.close(real_create(tmp))
        raise KeyboardInterrupt

    monkeypatch.setattr(writing, "_create", created_then_stopped)
    with pytest.raises(KeyboardInterrupt):
        writing.write_bytes_atomic(b"data", tmp_path / "out.bin")
    with pytest.raises(KeyboardInterrupt):
        writing.check_writable(tmp_path)
    assert os.listdir(tmp_path) == []
