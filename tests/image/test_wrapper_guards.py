"""Each guard against a stable-diffusion-cpp-python defect, checked in a process of its own.

Without the guards these scripts die with SIGSEGV (seen with 0.4.7): a NULL context
freed by the wrapper's destructor, and a progress callback left registered after it
was freed. A child process keeps such a crash out of the test run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from imagekit import engine_threads


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_failed_load_raises_instead_of_leaving_a_null_model(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "unknown-architecture.safetensors"
    save_file({"foo.weight": np.ones((4, 4), dtype=np.float32)}, str(path))
    done = run_script(f"""
        import gc
        from terminus.engines.sd_worker import open_model
        from terminus.errors import InvalidModelFileError
        try:
            open_model({{"model_path": {str(path)!r}, "threads": 1}})
        except InvalidModelFileError as exc:
            print("typed:", exc)
        gc.collect()  # the wrapper's destructor runs here: it must not free NULL
        print("exited cleanly")
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "typed: stable-diffusion.cpp could not load" in done.stdout
    assert "exited cleanly" in done.stdout


def test_the_progress_callback_is_reset_after_each_generation(
    sdxs_files: dict[str, Path],
) -> None:
    root = next(iter(sdxs_files.values())).parents[1]
    done = run_script(f"""
        import gc
        from terminus.engines.sd_worker import generate, open_model

        spec = {{"model_path": {str(root)!r}, "threads": {engine_threads()}}}
        params = {{"prompt": "a cat", "width": 64, "height": 64, "steps": 2,
                   "cfg_scale": 1.0, "seed": 1}}
        steps = []
        first = open_model(spec)
        generate(first, params, lambda step, total, secs: steps.append((step, total)))
        gc.collect()  # the Python callback of that generation is gone now
        second = open_model(spec)  # loading reports progress through the same C hook
        images, _ = generate(second, params, lambda *args: None)
        print("steps", steps, "images", len(images), "bytes", len(images[0][2]))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "steps [(1, 2), (2, 2)] images 1 bytes 12288" in done.stdout  # 64*64 RGB
