"""Streaming transcription: PCM chunks in, partial and final text out, turns cut by silence.

Voice activity is measured per 30 ms frame (RMS against a floor that adapts to the
background noise). While someone speaks, the turn so far is re-transcribed every
``partial_every_s`` of new audio (a ``partial`` event); once ``end_silence_s`` of
silence follows speech, the turn is transcribed one last time (a ``final`` event)
and the next turn starts. Every transcription goes through the client's transport,
so a session works the same on a local model and on a peer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from terminus.errors import InvalidAudioError
from terminus.types.speech import TranscriptEvent

if TYPE_CHECKING:
    import numpy as np

    from terminus.client.speech import SpeechMixin

FRAME_S = 0.03
MIN_SPEECH_RMS = 0.01  # below this a frame is never speech, whatever the floor
NOISE_FACTOR = 3.0  # speech is this many times louder than the background


class TranscriptionSession:
    def __init__(
        self,
        client: SpeechMixin,
        model: str,
        sample_rate: int = 16_000,
        *,
        language: str | None = None,
        end_silence_s: float = 0.6,
        partial_every_s: float = 1.0,
        max_turn_s: float = 28.0,
        **transcribe_options: Any,
    ) -> None:
        import numpy as np

        if sample_rate <= 0:
            raise InvalidAudioError(f"sample_rate must be positive, not {sample_rate}")
        self.client = client
        self.model = model
        self.sample_rate = sample_rate
        self.language = language
        self.options = transcribe_options
        self._frame = max(1, round(FRAME_S * sample_rate))
        self._end_frames = max(1, round(end_silence_s / FRAME_S))
        self._partial_samples = round(partial_every_s * sample_rate)
        self._max_turn_samples = round(max_turn_s * sample_rate)
        self._pending = np.zeros(0, dtype=np.float32)  # not yet a whole frame
        self._turn: list[np.ndarray[Any, Any]] = []  # frames of the current turn
        self._turn_start = 0.0
        self._heard = 0  # samples consumed into frames so far
        self._silent_run = 0
        self._in_speech = False
        self._since_partial = 0
        self._noise_floor = MIN_SPEECH_RMS / NOISE_FACTOR
        self.partial = ""
        self.finals: list[TranscriptEvent] = []

    @property
    def text(self) -> str:
        """Everything finalised so far."""
        return " ".join(e.text for e in self.finals if e.text)

    def write(self, samples: Any) -> list[TranscriptEvent]:
        """Add mono samples (float in [-1, 1] or int16) and return the events they caused."""
        import numpy as np

        chunk = np.asarray(samples)
        if chunk.dtype == np.int16:
            chunk = chunk.astype(np.float32) / 32768.0
        elif chunk.dtype.kind == "f":
            chunk = chunk.astype(np.float32, copy=False)
        else:
            raise InvalidAudioError(f"PCM chunks must be float or int16, not {chunk.dtype}")
        if chunk.ndim != 1:
            raise InvalidAudioError("PCM chunks must be 1-D (mono)")
        data = np.concatenate([self._pending, chunk])
        whole = data.size - data.size % self._frame
        self._pending = data[whole:]
        events: list[TranscriptEvent] = []
        for start in range(0, whole, self._frame):
            events.extend(self._frame_in(data[start : start + self._frame]))
        return events

    def close(self) -> list[TranscriptEvent]:
        """End of input: finalise the turn in progress (if it had speech)."""
        events: list[TranscriptEvent] = []
        if self._in_speech:
            events.append(self._finish_turn())
        return events

    # -- internals -------------------------------------------------------------------

    def _frame_in(self, frame: np.ndarray[Any, Any]) -> list[TranscriptEvent]:
        import numpy as np

        rms = float(np.sqrt(np.mean(frame * frame)))
        speech = rms >= max(MIN_SPEECH_RMS, self._noise_floor * NOISE_FACTOR)
        if not speech:  # the floor follows the background slowly, never speech
            self._noise_floor = 0.95 * self._noise_floor + 0.05 * rms
        position = self._heard / self.sample_rate
        self._heard += frame.size
        if not self._in_speech:
            if not speech:
                return []
            self._in_speech = True
            self._turn = []
            self._turn_start = position
            self._since_partial = 0
        self._turn.append(frame)
        self._since_partial += frame.size
        self._silent_run = 0 if speech else self._silent_run + 1
        turn_samples = len(self._turn) * self._frame
        if self._silent_run >= self._end_frames or turn_samples >= self._max_turn_samples:
            return [self._finish_turn()]
        if self._since_partial >= self._partial_samples:
            self._since_partial = 0
            self.partial = self._transcribe_turn()
            end = self._turn_start + turn_samples / self.sample_rate
            return [
                TranscriptEvent(kind="partial", text=self.partial, start=self._turn_start, end=end)
            ]
        return []

    def _finish_turn(self) -> TranscriptEvent:
        turn_samples = len(self._turn) * self._frame
        event = TranscriptEvent(
            kind="final",
            text=self._transcribe_turn(),
            start=self._turn_start,
            end=self._turn_start + turn_samples / self.sample_rate,
        )
        self.finals.append(event)
        self.partial = ""
        self._in_speech = False
        self._silent_run = 0
        self._turn = []
        return event

    def _transcribe_turn(self) -> str:
        import numpy as np

        audio = np.concatenate(self._turn)
        result = self.client.transcribe(
            audio,
            model=self.model,
            sample_rate=self.sample_rate,
            language=self.language,
            **self.options,
        )
        return result.text
