"""``ovseg predict --ray`` against the plain ``ovseg predict``, side by side; the driver's memory
over 10,000 images; a two-node cluster on this machine.

1. **Throughput** (``--rounds R``): rounds alternate, each command in a fresh process (and
   session: see :func:`predict`) over the
   same images and model (``--infer-precision f32``, overlays on): the FPS each command prints
   on its last line (start-up excluded: the model's compile, and for ``--ray`` the cluster's
   and the actors' start, printed apart), the ratio ``--ray`` / plain per round and its median.
2. **Memory** (``--memory N``): ``ovseg.batch.predict`` in this process over N images
   (symlinks to the given images under distinct names) with a tiny generated model (so that
   N images take minutes), no overlays, with a COCO file; the driver's RSS sampled every 0.2 s:
   at the first result and its peak after, the growth between them.
3. **Two nodes** (``--two-node``): ``ray start --head --node-ip-address 127.0.0.1 --port P
   --num-cpus 1`` and ``ray start --address 127.0.0.1:P --num-cpus 1`` (both on 127.0.0.1:
   Ray's single-machine switch for the head; for the second node, which Ray would otherwise
   put on the machine's outward address, ``ray start`` run with its address taken as given),
   then ``ovseg predict --ray-address 127.0.0.1:P`` over the images: its frames per node and
   FPS. The nodes are stopped by process id (their processes name this run's temp folder),
   never ``ray stop`` (which stops every Ray on the machine).

Prints the CPU line (benchmarks/machine.py) first.

    python benchmarks/ray_predict.py --model M.xml --images DIR [--rounds 3] [--memory 10000] [--two-node]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402 - benchmarks/machine.py, the CPU line of every benchmark

LAST = re.compile(r"(\d+) frames, (\d+) instances, ([\d.]+) FPS, (\d+) failed")
RAY_LINE = re.compile(r"ray: (\d+) actor\(s\); start-up ([\d.]+) s cluster, ([\d.]+) s actors .*frames per node: (.*)")
AUTH = {"RAY_AUTH_MODE": "token"}  # ray start enables token auth; its clients must say so too


def predict(args: list[str], env: dict[str, str] | None = None, timeout: int = 900) -> tuple[dict[str, str], float]:
    """Run ``ovseg predict ARGS``; its last line's numbers and the ray line's, and the wall time."""
    start = time.perf_counter()
    # A session of its own: with the kernel's autogroup scheduling (on here) CPU time is shared
    # between sessions, and Ray starts its workers in sessions of their own; without this the
    # plain command would share one session's share with the rest of this one.
    proc = subprocess.run([sys.executable, "-m", "ovseg", "predict", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, start_new_session=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ovseg predict {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    found: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        if m := LAST.search(line):
            found.update(frames=m[1], fps=m[3])
        if m := RAY_LINE.search(line):
            found.update(actors=m[1], cluster_s=m[2], actors_s=m[3], nodes=m[4])
    return found, wall


def throughput(model: str, images: str, rounds: int) -> None:
    print(f"\n== throughput: plain vs --ray over {images}, {rounds} round(s), fresh processes ==")
    ratios, plain_fps, ray_fps = [], [], []
    with tempfile.TemporaryDirectory(prefix="ovseg-raybench-") as tmp:
        for r in range(1, rounds + 1):
            common = [images, "-m", model, "--infer-precision", "f32"]
            plain, plain_wall = predict([*common, "-o", f"{tmp}/plain{r}"])
            batch, ray_wall = predict([*common, "-o", f"{tmp}/ray{r}", "--ray"])
            p, b = float(plain["fps"]), float(batch["fps"])
            plain_fps.append(p)
            ray_fps.append(b)
            ratios.append(b / p)
            print(f"round {r}: plain {p:.2f} FPS ({plain['frames']} frames, {plain_wall:.0f} s wall) | --ray {b:.2f} FPS "
                  f"({batch['actors']} actor(s); start-up: cluster {batch['cluster_s']} s + actors {batch['actors_s']} s; "
                  f"{ray_wall:.0f} s wall) | ratio {b / p:.2f}")
    print(f"median: plain {statistics.median(plain_fps):.2f} FPS, --ray {statistics.median(ray_fps):.2f} FPS, "
          f"ratio {statistics.median(ratios):.2f} (goal >= 0.8)")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(images: str, count: int) -> None:
    from ovseg.batch import predict as batch_predict
    from ovseg.images import list_images
    from ovseg.synthetic import maskrcnn_model, save_model

    print(f"\n== memory: the driver's RSS over {count} images (tiny generated model, no overlays, --coco) ==")
    sources = list_images(Path(images))
    with tempfile.TemporaryDirectory(prefix="ovseg-raymem-") as tmp:
        folder = Path(tmp, "images")
        folder.mkdir()
        for i in range(count):
            src = sources[i % len(sources)]
            os.symlink(src.resolve(), folder / f"{i:06d}{src.suffix}")
        model = save_model(maskrcnn_model(classes=[1, 3], scores=[0.9, 0.8], boxes=[[0, 0, 1, 1], [0.5, 0.5, 1, 1]],
                                          boxes_relative=True), Path(tmp, "tiny.xml"))
        out = Path(tmp, "out")
        samples: list[tuple[float, float, bool]] = []
        stop = threading.Event()
        first = out / "000000.json"

        def sample() -> None:
            while not stop.wait(0.2):
                samples.append((time.perf_counter(), rss_mb(), first.exists()))

        thread = threading.Thread(target=sample, daemon=True)
        before = rss_mb()
        thread.start()
        start = time.perf_counter()
        report = batch_predict([str(folder)], model=str(model), output=out, overlay=False, coco=Path(tmp, "coco.json"),
                               config={"INFERENCE_PRECISION_HINT": "f32"})
        stop.set()
        thread.join()
        wall = time.perf_counter() - start
        running = [rss for _, rss, started in samples if started]
        at_first = running[0] if running else float("nan")
        peak = max(running) if running else float("nan")
        end = running[-1] if running else float("nan")
        print(f"{report.frames} images, {report.instances} instances, {len(report.failed)} failed, {report.fps:.1f} FPS, "
              f"{wall:.0f} s wall ({report.actors} actor(s); start-up {report.startup_s:.1f} s cluster)")
        print(f"driver RSS: {before:.0f} MB before, {at_first:.0f} MB at the first result, peak {peak:.0f} MB, "
              f"{end:.0f} MB at the end: growth over the run {peak - at_first:.1f} MB (goal < 50 MB)")
        print(f"COCO file: {Path(tmp, 'coco.json').stat().st_size / 1e6:.1f} MB on disk (never held by the driver)")


def _mine(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (this run's temp folder)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


SECOND_NODE = """
import sys
import ray._private.services as services
services.resolve_ip_for_localhost = lambda host: host  # keep 127.0.0.1 as this node's address
from ray.scripts.scripts import main
sys.argv = ["ray", "start", *sys.argv[1:]]
main()
"""


def two_node(model: str, images: str, port: int) -> None:
    print(f"\n== two nodes on this machine, 127.0.0.1:{port}, 1 CPU each ==")
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="ovseg-ray2-")
    env = {**os.environ, **AUTH}
    try:
        subprocess.run([ray_bin, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                        "--include-dashboard", "false", "--temp-dir", temp], check=True, capture_output=True, timeout=180,
                       env={**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
        subprocess.run([sys.executable, "-c", SECOND_NODE, "--address", f"127.0.0.1:{port}", "--node-ip-address",
                        "127.0.0.1", "--num-cpus", "1", "--temp-dir", temp], check=True, capture_output=True, timeout=180,
                       env=env)
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout.splitlines()
        outside = [line.split()[3] for line in listening if "raylet" in line or "gcs_server" in line or "ray::" in line]
        outside = [addr for addr in outside if not addr.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:").startswith("127.")]
        print(f"listening outside 127.0.0.1: {outside or 'nothing'}")
        with tempfile.TemporaryDirectory(prefix="ovseg-ray2out-") as tmp:
            found, wall = predict([images, "-m", model, "--infer-precision", "f32", "-o", tmp,
                                   "--ray-address", f"127.0.0.1:{port}"], env=AUTH)
        print(f"--ray-address 127.0.0.1:{port}: {found['frames']} frames, {found['fps']} FPS, {found['actors']} actor(s), "
              f"{wall:.0f} s wall; frames per node: {found['nodes']}")
    finally:
        pids = _mine(temp)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _mine(temp) and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in _mine(temp):
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        print(f"stopped {len(pids)} process(es) of the two nodes; left: {len(_mine(temp))}")
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True, help="a folder of images")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (0: none)")
    parser.add_argument("--memory", type=int, default=0, metavar="N", help="the driver's RSS over N images (0: skip)")
    parser.add_argument("--two-node", action="store_true")
    parser.add_argument("--port", type=int, default=6391)
    args = parser.parse_args()
    print(machine())
    if args.rounds:
        throughput(args.model, args.images, args.rounds)
    if args.memory:
        memory(args.images, args.memory)
    if args.two_node:
        two_node(args.model, args.images, args.port)


if __name__ == "__main__":
    main()
