"""Speed and memory of CF-CAM, measured side by side in one run (this machine is noisy: read the ratios).

On a torchvision ResNet50 (random weights, 2 classes, 224x224, CPU, layer4[-1]):
  * end to end, CF-CAM (both presets) and pytorch-grad-cam's GradCAM as a ratio to the fastest correct
    Grad-CAM (cfcam.GradCAM: the gradient taken with torch.autograd.grad up to the layer only), batch 1 and 8;
  * the post-capture time of the core on a 2048x7x7 input, next to the published implementation's;
  * the core's peak extra memory (peak RSS growth during the call, fresh process; Linux), next to the
    published implementation's.

Targets: post-capture <= 30 ms on 2 cores for either preset; end to end <= 1.5x that Grad-CAM;
extra memory < 50 MB. Methods are timed round-robin and the fastest call of each is kept, so a slow
spell hits all alike.

Run: make bench   (installs pytorch-grad-cam without its dependencies, then this script)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

import cfcam

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "resnet50_layer4_a.npz"
sys.path.insert(0, str(ROOT / "tests"))


def timed_round_robin(fns: dict, repeats: int) -> dict:
    """Fastest seconds per call of each function, interleaving the calls.

    The minimum is the run least disturbed by whatever else the machine does; with round-robin timing, a
    ratio of minima compares the methods under the same conditions."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def end_to_end(model, batch: int, repeats: int) -> dict:
    torch.manual_seed(batch)
    x = torch.randn(batch, 3, 224, 224)
    layer = model.layer4[-1]
    fns = {}
    grad = cfcam.GradCAM(model, layer).__enter__()
    readme = cfcam.CFCAM(model, layer, "readme").__enter__()
    reference = cfcam.CFCAM(model, layer, "reference").__enter__()
    fns["Grad-CAM (cfcam, autograd.grad to the layer)"] = lambda: grad(x)
    fns["CF-CAM readme"] = lambda: readme(x)
    fns["CF-CAM reference"] = lambda: reference(x)
    try:
        from pytorch_grad_cam import GradCAM as PGC
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        pgc = PGC(model=model, target_layers=[layer])
        targets = [ClassifierOutputTarget(0)] * batch
        fns["pytorch-grad-cam GradCAM"] = lambda: pgc(input_tensor=x, targets=targets)
    except ImportError:
        print("  (pytorch-grad-cam not installed: `make bench` installs it)")
    try:
        return timed_round_robin(fns, repeats)
    finally:
        for e in (grad, readme, reference):
            e.remove()


def post_capture(repeats: int) -> dict:
    from published_oracle import published_cfcam

    data = np.load(FIXTURE)
    a = torch.from_numpy(data["activations"])
    g = torch.from_numpy(data["gradients"])
    fns = {
        "core readme": lambda: cfcam.cluster_filter_cam(a, g, "readme"),
        "core reference": lambda: cfcam.cluster_filter_cam(a, g, "reference"),
        "published implementation": lambda: published_cfcam(data["activations"], data["gradients"]),
    }
    return timed_round_robin(fns, repeats)


MEMORY_PROBE = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, {tests!r})
import cfcam
from published_oracle import published_cfcam
torch.set_num_threads(2)
data = np.load({fixture!r})
a, g = data["activations"], data["gradients"]
small = np.random.default_rng(0).random((64, 7, 7)).astype(np.float32)
which = {which!r}
if which == "published":
    run = published_cfcam
else:
    run = lambda x, y: cfcam.cluster_filter_cam(x, y, which)
run(small, small)  # load every code path on a tiny input first

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
before = status("VmRSS")
run(a, g)
extra = status("VmHWM") - before
print(json.dumps({{"extra_mb": extra}}))
"""


def peak_memory(which: str) -> float:
    code = MEMORY_PROBE.format(tests=str(ROOT / "tests"), fixture=str(FIXTURE), which=which)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_mb"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per measurement (default 15)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=2).eval()
    print(f"torch {torch.__version__}, {args.threads} threads, ResNet50 (random weights, 2 classes), 224x224, CPU")

    ok = True
    for batch in (1, 8):
        print(f"\nEnd to end, batch {batch} (fastest of {args.repeats}, round-robin):")
        res = end_to_end(model, batch, args.repeats)
        base = res["Grad-CAM (cfcam, autograd.grad to the layer)"]
        for name, t in res.items():
            ratio = t / base
            flag = ""
            if name.startswith("CF-CAM"):
                flag = "  ok (<= 1.5x)" if ratio <= 1.5 else "  OVER TARGET (1.5x)"
                ok &= ratio <= 1.5
            print(f"  {name:48s} {1000 * t:8.1f} ms  {ratio:5.2f}x{flag}")

    print(f"\nPost-capture on 2048x7x7 (fastest of {3 * args.repeats}):")
    res = post_capture(3 * args.repeats)
    pub = res["published implementation"]
    for name, t in res.items():
        flag = ""
        if name.startswith("core"):
            flag = "  ok (<= 30 ms)" if t <= 0.030 else "  OVER TARGET (30 ms)"
            ok &= t <= 0.030
        print(f"  {name:48s} {1000 * t:8.1f} ms  ({pub / t:5.1f}x faster than published)" + flag
              if name != "published implementation" else f"  {name:48s} {1000 * t:8.1f} ms")

    print("\nPeak extra memory of one call on 2048x7x7 (peak RSS minus RSS before, fresh process):")
    for which in ("readme", "reference", "published"):
        mb = peak_memory(which)
        flag = ""
        if which != "published":
            flag = "  ok (< 50 MB)" if mb < 50 else "  OVER TARGET (50 MB)"
            ok &= mb < 50
        print(f"  {which:48s} {mb:8.1f} MB{flag}")
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
