"""Image generation: the request, progress events and the result.

Plain data only (images as raw RGB bytes, the init image as encoded bytes), so a
peer transport can send every type unchanged; PIL images are built on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from PIL import Image

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Samplers stable-diffusion.cpp knows (``None`` lets the model pick its default).
SAMPLERS = (
    "euler",
    "euler_a",
    "heun",
    "dpm2",
    "dpm++2s_a",
    "dpm++2m",
    "dpm++2mv2",
    "ipndm",
    "ipndm_v",
    "lcm",
    "ddim_trailing",
    "tcd",
)
SCHEDULERS = (
    "discrete",
    "karras",
    "exponential",
    "ays",
    "gits",
    "sgm_uniform",
    "simple",
    "lcm",
)
MAX_SEED = 2**31 - 1


class ImageRequest(BaseModel):
    """One text-to-image (or image-to-image, with ``init_image``) generation.

    ``None`` means the model card's default (steps, cfg_scale, size, sampler).
    ``seed=None`` picks a random seed; the result reports the one used.
    """

    model_config = _FROZEN
    model: str
    prompt: str
    negative_prompt: str = ""
    width: int | None = Field(default=None, ge=64, le=2048)
    height: int | None = Field(default=None, ge=64, le=2048)
    steps: int | None = Field(default=None, ge=1, le=150)
    cfg_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    sampler: str | None = None
    scheduler: str | None = None
    count: int = Field(default=1, ge=1, le=8)  # images from consecutive seeds
    init_image: bytes | None = None  # PNG/JPEG/... bytes: image-to-image
    strength: float = Field(default=0.75, gt=0.0, le=1.0)  # how far from init_image

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError("must be a multiple of 8 (the latent is 1/8 of the image)")
        return value

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str | None) -> str | None:
        if value is not None and value not in SAMPLERS:
            raise ValueError(f"unknown sampler {value!r}; one of {', '.join(SAMPLERS)}")
        return value

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str | None) -> str | None:
        if value is not None and value not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {value!r}; one of {', '.join(SCHEDULERS)}")
        return value


class ImageProgress(BaseModel):
    """A sampling step finished: ``step`` of ``total``, ``seconds`` that step took."""

    model_config = _FROZEN
    type: Literal["progress"] = "progress"
    step: int
    total: int
    seconds: float


class ImageStats(BaseModel):
    model_config = _FROZEN
    seed: int  # of the first image; image i used seed + i
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str | None
    threads: int
    load_s: float  # (re)starting the worker and loading the model, 0 when it was warm
    generate_s: float  # encode, sample and decode, as the worker measured it
    total_s: float  # wall time of the request, as the caller saw it


class RGBImage(BaseModel):
    """Raw 8-bit RGB pixels, row-major."""

    model_config = _FROZEN
    width: int
    height: int
    rgb: bytes

    def to_pil(self) -> Image.Image:
        from PIL import Image

        return Image.frombytes("RGB", (self.width, self.height), self.rgb)

    def save(self, path: str, format: str | None = None) -> None:
        self.to_pil().save(path, format=format)


class ImageResult(BaseModel):
    """The last event of a generation: the images (RGB) and how they were made."""

    model_config = _FROZEN
    type: Literal["result"] = "result"
    model: str
    images: tuple[RGBImage, ...]
    stats: ImageStats

    @property
    def image(self) -> RGBImage:
        return self.images[0]

    def pil_images(self) -> list[Image.Image]:
        return [image.to_pil() for image in self.images]


ImageEvent = ImageProgress | ImageResult
