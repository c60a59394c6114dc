"""Terminus vs stable-diffusion.cpp called directly: same model, size, steps, seed and threads.

Terminus runs each generation in its worker process (pipe protocol, RGB conversion,
typed events); the raw side calls ``StableDiffusion.generate_image`` in this process.
Rounds alternate between the two so a busy machine slows both alike. Prints the
ratio raw s / Terminus s (1.0 = no overhead; target >= 0.95) and resident memory.
Not a test: nothing here asserts timings.

The model is SDXS-512 with random weights built by the tests' builder (the same
layers, hence the same compute, as the real SDXS-512-DreamShaper):

    python bench/bench_image.py [--size 256] [--steps 1] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "image"))

PROMPT = "a lighthouse on a cliff at dusk, oil painting"


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="width and height in pixels")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir", type=Path, help="an SDXS folder to reuse (else built)")
    args = parser.parse_args()
    print(
        f"bench_image: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )

    from imagekit import make_image_client, sdxs_card
    from sdxs_builder import build_sdxs512
    from stable_diffusion_cpp import StableDiffusion

    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        root = args.model_dir or Path(tmp) / "sdxs"
        if args.model_dir is None:
            print("building the SDXS-512 folder…", file=sys.stderr)
            files = build_sdxs512(root)
        else:
            files = {
                name: root / name
                for name in (
                    "unet/diffusion_pytorch_model.safetensors",
                    "text_encoder/model.safetensors",
                    "vae/diffusion_pytorch_model.safetensors",
                )
            }
        card = sdxs_card(files, card_id="sdxs-bench")
        client = make_image_client(Path(tmp) / "home", card)
        client.load_model(card.id, threads=args.threads)

        rss_before_raw = rss_mib(os.getpid())
        raw = StableDiffusion(model_path=str(root), n_threads=args.threads, verbose=False)
        params = {"width": args.size, "height": args.size, "seed": 42}

        def raw_once() -> float:
            started = time.perf_counter()
            images = raw.generate_image(
                prompt=PROMPT, sample_steps=args.steps, cfg_scale=1.0, **params
            )
            images[0].convert("RGB")  # Terminus returns RGB too
            return time.perf_counter() - started

        def terminus_once() -> float:
            started = time.perf_counter()
            client.generate_image(
                PROMPT, model=card.id, steps=args.steps, cfg_scale=1.0, **params
            ).result()
            return time.perf_counter() - started

        raw_once(), terminus_once()  # warm both
        raw_s: list[float] = []
        terminus_s: list[float] = []
        for i in range(args.rounds):
            pair = (raw_once, terminus_once) if i % 2 == 0 else (terminus_once, raw_once)
            for run in pair:
                (raw_s if run is raw_once else terminus_s).append(run())

        raw_rss = rss_mib(os.getpid()) - rss_before_raw
        with client.manager.use(card.id) as model:
            worker_pid = getattr(model, "worker_pid", None)
        worker_rss = rss_mib(worker_pid) if worker_pid else float("nan")
        raw_median, terminus_median = statistics.median(raw_s), statistics.median(terminus_s)
        print(
            f"SDXS-512 {args.size}x{args.size}, {args.steps} step(s), {args.threads} threads, "
            f"{args.rounds} interleaved rounds"
        )
        print(
            f"  raw engine   median {raw_median:.3f} s/image  (all: "
            + ", ".join(f"{s:.2f}" for s in raw_s)
            + ")"
        )
        print(
            f"  Terminus     median {terminus_median:.3f} s/image  (all: "
            + ", ".join(f"{s:.2f}" for s in terminus_s)
            + ")"
        )
        print(f"  speed ratio raw/Terminus = {raw_median / terminus_median:.3f}  (target >= 0.95)")
        print(
            f"  memory: Terminus worker RSS {worker_rss:.0f} MiB; "
            f"raw engine in-process RSS growth {raw_rss:.0f} MiB; "
            f"host process RSS {rss_mib(os.getpid()):.0f} MiB (includes the raw engine)"
        )
        raw.close()
        client.close()


if __name__ == "__main__":
    main()
