"""OpenAI's audio API over the client: transcriptions, translations and speech.

- ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` take multipart form
  data (``file``, ``model``, ``language``, ``prompt``, ``response_format`` = json | text |
  srt | vtt | verbose_json, ``timestamp_granularities[]`` = segment | word); translations
  turn speech in any language into English text (multilingual Whisper models).
- ``POST /v1/audio/speech`` takes JSON (``model``, ``input``, ``voice``, ``speed``,
  ``response_format`` = wav | pcm) and answers the audio. ``voice`` is accepted and
  ignored: a Piper voice *is* its model. mp3, opus, aac and flac are not encoded here.

The model work runs in a worker thread; the server's concurrency bound applies. Uploads
are also bounded by the server's body limit (``terminus serve --max-body-bytes``, 4 MiB by
default: about 2 minutes of 16 kHz WAV, far more as mp3 or ogg).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import Field
from starlette.responses import Response

from terminus.errors import CapabilityError
from terminus.models.card import ModelCard
from terminus.server.errors import APIError, invalid, unsupported
from terminus.server.guard import accepts_form_data
from terminus.server.middleware import access_record
from terminus.server.schemas import Wire, parse_body
from terminus.server.state import ServerState, server_state
from terminus.types.common import Capability, model_kind
from terminus.types.speech import Transcription

#: Largest upload accepted (OpenAI's limit is 25 MB).
MAX_AUDIO_BYTES = 25 * 1024 * 1024
TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
SPEECH_FORMATS = {"wav": "audio/wav", "pcm": "audio/pcm"}


class SpeechBody(Wire):
    model: str
    input: str = Field(min_length=1, max_length=100_000)
    voice: Any = None
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    response_format: str = "wav"


async def _card(state: ServerState, name: str, capability: Capability) -> ModelCard:
    card: ModelCard = await asyncio.to_thread(state.client.models.get, name)
    if card.capability != capability:
        raise CapabilityError(
            f"{card.id} is {model_kind(card.capability)}, not {model_kind(capability)}"
        )
    return card


def _transcript_response(result: Transcription, fmt: str, words: bool) -> Response:
    if fmt == "text":
        return PlainTextResponse(result.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(result.srt())
    if fmt == "vtt":
        return PlainTextResponse(result.vtt(), media_type="text/vtt")
    if fmt == "json":
        return JSONResponse({"text": result.text})
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": result.language,
        "duration": result.duration_s,
        "text": result.text,
        "segments": [
            {"id": i, "start": s.start, "end": s.end, "text": s.text}
            for i, s in enumerate(result.segments)
        ],
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in result.segments
            for w in s.words
        ]
    return JSONResponse(body)


async def _transcribe(request: Request, task: str) -> Response:
    state = server_state(request)
    record = access_record(request)
    async with request.form() as form:  # closes the uploaded file's spool
        upload = form.get("file")
        model = form.get("model")
        if upload is None or isinstance(upload, str):
            raise invalid("file", "send the audio as a multipart file field named 'file'")
        if not isinstance(model, str) or not model:
            raise invalid("model", "model is required")
        fmt = str(form.get("response_format") or "json")
        if fmt not in TRANSCRIPT_FORMATS:
            raise unsupported("response_format", f"response_format {fmt!r}")
        granularities = [str(g) for g in form.getlist("timestamp_granularities[]")]
        language, prompt = form.get("language"), form.get("prompt")
        audio = await upload.read(MAX_AUDIO_BYTES + 1)
    if len(audio) > MAX_AUDIO_BYTES:
        raise APIError(
            413, "the audio file is larger than 25 MB", code="file_too_large", param="file"
        )
    record.model = model
    card = await _card(state, model, Capability.STT)
    record.model = card.id
    slot = state.admit()
    try:
        await state.ensure_loaded(card.id)
        result = await asyncio.to_thread(
            state.client.transcribe,
            card.id,
            audio,
            language=str(language) if language else None,
            task=task,  # type: ignore[arg-type]
            initial_prompt=str(prompt) if prompt else None,
            word_timestamps="word" in granularities,
        )
    finally:
        slot.release()
    return _transcript_response(result, fmt, "word" in granularities)


def add_audio_routes(router: APIRouter) -> None:
    @router.post("/v1/audio/transcriptions", response_model=None)
    @accepts_form_data
    async def transcriptions(request: Request) -> Response:
        return await _transcribe(request, "transcribe")

    @router.post("/v1/audio/translations", response_model=None)
    @accepts_form_data
    async def translations(request: Request) -> Response:
        return await _transcribe(request, "translate")

    @router.post("/v1/audio/speech", response_model=None)
    async def speech(request: Request) -> Response:
        body = await parse_body(request, SpeechBody)
        state = server_state(request)
        record = access_record(request)
        record.model = body.model
        if body.response_format not in SPEECH_FORMATS:
            raise unsupported(
                "response_format", f"response_format {body.response_format!r} (use wav or pcm)"
            )
        card = await _card(state, body.model, Capability.TTS)
        record.model = card.id
        slot = state.admit()
        try:
            await state.ensure_loaded(card.id)
            result = await asyncio.to_thread(
                state.client.speak, card.id, body.input, speed=body.speed
            )
        finally:
            slot.release()
        content = result.wav_bytes() if body.response_format == "wav" else result.pcm
        headers = {"X-Sample-Rate": str(result.sample_rate)}
        return Response(content, media_type=SPEECH_FORMATS[body.response_format], headers=headers)
