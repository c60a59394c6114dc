"""The process that runs stable-diffusion.cpp, and the guards its Python wrapper needs.

The host starts ``python -m terminus.engines.sd_worker FD`` and talks to it over the
connection on file descriptor FD (pickled tuples)::

    host -> worker   ("load", {model_path, taesd_path, vae_path, threads, ...})
                     ("generate", {prompt, width, height, steps, ...})
    worker -> host   ("ready", {threads, load_s})
                     ("progress", step, total, seconds)      during a generation
                     ("result", [(width, height, rgb_bytes), ...], {generate_s})
                     ("error", error_class_name, message)

Generation runs here, not in the host, because the wrapper cannot be stopped (an
exception in its progress callback is swallowed and sampling goes on) and a native
crash must not take the host down: the host kills this process to cancel, and a
crash only ends this process.

Wrapper defects guarded here (stable-diffusion-cpp-python 0.4.7):

- a failed load leaves a NULL context instead of raising, and both a later
  ``generate_image`` and the object's destructor then segfault (:func:`open_model`);
- the C progress callback stays registered process-wide after a call, pointing at a
  freed Python function, so the next load or generation segfaults (:func:`generate`);
- the default thread count is half the CPUs: the host always passes one;
- images come back RGBA: they are converted to RGB.
"""

from __future__ import annotations

import io
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from terminus.errors import EngineError, InvalidModelFileError, InvalidParameterError, TerminusError


def open_model(spec: dict[str, Any]) -> Any:
    """A loaded ``StableDiffusion``, or a typed error; never a NULL context."""
    from stable_diffusion_cpp import StableDiffusion

    try:
        sd = StableDiffusion(
            model_path=spec["model_path"],
            taesd_path=spec.get("taesd_path") or "",
            vae_path=spec.get("vae_path") or "",
            n_threads=int(spec["threads"]),
            vae_decode_only=False,  # image-to-image encodes the init image
            verbose=bool(spec.get("verbose", False)),
        )
    except ValueError as exc:  # the wrapper's own checks (a missing path)
        raise InvalidModelFileError(str(exc)) from exc
    if not sd._model.model:
        # NULL context: the wrapper did not notice. Drop the handle so its destructor
        # does not free NULL, then report what stable-diffusion.cpp could not load.
        sd._model.model = None
        sd.close()
        raise InvalidModelFileError(
            f"stable-diffusion.cpp could not load {spec['model_path']}: not a model it "
            "recognises (unknown architecture, missing tensors or a damaged file)"
        )
    return sd


def _null_progress() -> Any:
    import stable_diffusion_cpp.stable_diffusion_cpp as sd_cpp

    return sd_cpp.sd_progress_callback()  # a CFUNCTYPE built without arguments is NULL


def generate(
    sd: Any, params: dict[str, Any], on_progress: Any
) -> tuple[list[tuple[int, int, bytes]], float]:
    """Run one generation; ``on_progress(step, total, seconds)`` after each step."""
    import stable_diffusion_cpp.stable_diffusion_cpp as sd_cpp

    def forward(step: int, total: int, seconds: float, _data: Any) -> None:
        if step > 0:  # step 0 announces the start; no work was done yet
            on_progress(step, total, float(seconds))

    callback = sd_cpp.sd_progress_callback(forward)
    init_image = _decode_init_image(params.get("init_image"))
    started = time.perf_counter()
    sd_cpp.sd_set_progress_callback(callback, None)
    try:
        images = sd.generate_image(
            prompt=params["prompt"],
            negative_prompt=params.get("negative_prompt", ""),
            width=params["width"],
            height=params["height"],
            sample_steps=params["steps"],
            cfg_scale=params["cfg_scale"],
            seed=params["seed"],
            sample_method=params.get("sampler") or "default",
            scheduler=params.get("scheduler") or "default",
            batch_count=params.get("count", 1),
            init_image=init_image,
            strength=params.get("strength", 0.75),
        )
    finally:
        # Never leave C holding a pointer to `callback`, which dies with this frame.
        sd_cpp.sd_set_progress_callback(_null_progress(), None)
    elapsed = time.perf_counter() - started
    rgb = [image.convert("RGB") for image in images]  # the wrapper returns RGBA
    return [(image.width, image.height, image.tobytes()) for image in rgb], elapsed


def _decode_init_image(data: bytes | None) -> Any:
    if data is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidParameterError(f"init_image is not a readable image: {exc}") from exc


def serve(conn: Connection) -> None:
    """Answer requests until the host closes the connection or says ``exit``."""
    sd: Any = None
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if op == "load":
                started = time.perf_counter()
                sd = open_model(payload)
                conn.send(
                    ("ready", {"threads": sd.n_threads, "load_s": time.perf_counter() - started})
                )
            elif op == "generate":
                if sd is None:
                    raise EngineError("no model is loaded in this worker")
                images, elapsed = generate(
                    sd, payload, lambda s, n, secs: conn.send(("progress", s, n, secs))
                )
                conn.send(("result", images, {"generate_s": elapsed}))
            elif op == "exit":
                return
            else:
                raise EngineError(f"unknown worker request {op!r}")
        except TerminusError as exc:
            conn.send(("error", type(exc).__name__, exc.message))
        except Exception as exc:  # the wrapper raises plain exceptions for bad input
            conn.send(("error", "EngineError", f"{type(exc).__name__}: {exc}"))


def main(argv: list[str]) -> None:
    conn = Connection(int(argv[1]))
    try:
        serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main(sys.argv)
