"""Agentless campaigns: what the outbound IVR says and which keys it offers.

A campaign with an ``[campaigns.ivr]`` table plays a message to every person who
answers (rendered per contact from a Jinja2 template in a sandbox, so a list's
fields cannot reach anything but their own values), then offers a DTMF menu:
``opt_out`` (the number goes on the campaign's DNC list, and the person hears a
confirmation), ``agent`` (the call joins the agent queue), ``transfer`` (the
carrier connects the person to ``transfer_to``, a number of the business, such as
its inbound service line) and ``repeat``.  No key
repeats the message once, then says goodbye.

Speech comes from a :class:`Speech` port: espeak-ng in production
(:class:`EspeakSpeech`, rendered off the event loop and cached by text), and in
the simulator a stand-in of the right length, because simulated people do not
listen to audio and the simulator must run thousands of times faster than
real time.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy.io import wavfile

from carriers.base import AudioClip
from carriers.rtp.prompt import PromptError, convert, load_wav
from dialer.contacts import normalise_number

MenuAction = Literal["opt_out", "agent", "transfer", "repeat"]
DEFAULT_MENU: dict[str, MenuAction] = {"9": "opt_out", "2": "agent"}
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class IvrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=2000)  # Jinja2 over the contact's fields
    fallback_message: str = Field(
        default="Hello. This is an automated message. Please call us back.",
        min_length=1,
        max_length=2000,
    )  # said when a contact lacks a field the message uses
    menu: dict[str, MenuAction] = Field(default_factory=lambda: dict(DEFAULT_MENU))
    opt_out_confirmation: str = "You will not be called again. Goodbye."
    no_agent_message: str = "Sorry, nobody can take your call now. Goodbye."
    # "transfer": where the carrier connects the person (E.164, or national for
    # transfer_region), and what they hear meanwhile and if the number does not answer
    transfer_to: str | None = None
    transfer_region: str = Field(default="US", pattern=r"^[A-Za-z]{2}$")
    transfer_message: str = "Please hold while we connect you."
    transfer_failed_message: str = "Sorry, we cannot connect you now. Please call us back. Goodbye."
    goodbye: str = "Goodbye."
    input_timeout_s: float = Field(default=5.0, ge=1.0, le=60.0)
    repeats: int = Field(default=1, ge=0, le=5)
    lines: int = Field(default=10, ge=1, le=10_000)  # concurrent calls when no agents pace them
    voice: str = Field(default="en-us", pattern=r"^[A-Za-z0-9_+\-]{1,40}$")
    prompt_wav: Path | None = None  # a recorded message instead of speech

    @field_validator("message", "fallback_message")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            _ENV.from_string(v)
        except TemplateError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        return v

    @field_validator("menu")
    @classmethod
    def _keys(cls, v: dict[str, MenuAction]) -> dict[str, MenuAction]:
        bad = [k for k in v if len(k) != 1 or k not in "0123456789*#"]
        if bad:
            raise ValueError(f"menu keys must be one DTMF digit (0-9, * or #), got {bad}")
        return v

    @model_validator(mode="after")
    def _transfer(self) -> IvrSettings:
        keys = sorted(k for k, action in self.menu.items() if action == "transfer")
        if keys and self.transfer_to is None:
            raise ValueError(f"menu key {keys[0]!r} transfers, but transfer_to is not set")
        if self.transfer_to is not None:
            try:
                self.transfer_to = normalise_number(self.transfer_to, self.transfer_region)
            except ValueError as exc:
                raise ValueError(f"transfer_to: {exc}") from None
        return self

    @model_validator(mode="after")
    def _wav(self) -> IvrSettings:
        if self.prompt_wav is not None:
            load_wav(self.prompt_wav)  # PromptError (a ValueError) names the file
        return self


def render_message(template: str, fields: Mapping[str, str]) -> str:
    """The message for one contact; TemplateError (a missing field among them)
    tells the caller to use the fallback."""
    return _ENV.from_string(template).render(**fields).strip()


class Speech(Protocol):
    """Text to 8 kHz audio.  ``prepare`` may start work early (when the call is
    dialled); ``clip`` returns the audio, or None while it is not ready."""

    def prepare(self, text: str) -> None: ...

    def clip(self, text: str) -> AudioClip | None: ...


def speech_id(text: str) -> str:
    return "tts-" + hashlib.sha1(text.encode()).hexdigest()[:16]


class TimedSpeech:
    """The simulator's speech: quiet audio as long as the text takes to say
    (about 2.6 words a second), since simulated people hear only its length."""

    def __init__(self, words_per_s: float = 2.6) -> None:
        self.words_per_s = words_per_s
        self._cache: dict[int, AudioClip] = {}

    def prepare(self, text: str) -> None:
        return None

    def clip(self, text: str) -> AudioClip | None:
        frames = max(25, int(len(text.split()) / self.words_per_s * 50))
        hit = self._cache.get(frames)
        if hit is None:
            samples = np.zeros(frames * 160, dtype=np.int16)
            hit = self._cache[frames] = AudioClip(f"timed-{frames}", samples, "prompt")
        return hit


class EspeakSpeech:
    """espeak-ng, run in a worker thread so the event loop never waits for it;
    the last ``cache_size`` texts are kept (most messages repeat)."""

    def __init__(self, voice: str = "en-us", speed: int = 160, cache_size: int = 512) -> None:
        if shutil.which("espeak-ng") is None:
            raise RuntimeError(
                "espeak-ng is not installed (apt-get install espeak-ng), and this campaign "
                "speaks its message: install it or give a prompt_wav"
            )
        self.voice = voice
        self.speed = speed
        self.cache_size = cache_size
        self._done: OrderedDict[str, AudioClip] = OrderedDict()
        self._pending: dict[str, asyncio.Future[AudioClip]] = {}

    def render_now(self, text: str) -> AudioClip:
        """Blocking render (start-up prompts, tests, the worker thread)."""
        out = subprocess.run(
            ["espeak-ng", "-v", self.voice, "-s", str(self.speed), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        with warnings.catch_warnings():  # espeak-ng streams a WAV header with no length
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(BytesIO(out))
        samples = convert(np.asarray(data), int(rate), "espeak-ng output")
        if not len(samples):
            raise PromptError(f"espeak-ng produced no audio for {text[:40]!r}")
        return AudioClip(speech_id(text), samples, "prompt")

    def prepare(self, text: str) -> None:
        if text in self._done or text in self._pending:
            return
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self.render_now, text)
        self._pending[text] = fut

        def finished(f: asyncio.Future[AudioClip]) -> None:
            self._pending.pop(text, None)
            if not f.cancelled() and f.exception() is None:
                self._done[text] = f.result()
                while len(self._done) > self.cache_size:
                    self._done.popitem(last=False)

        fut.add_done_callback(finished)

    def clip(self, text: str) -> AudioClip | None:
        hit = self._done.get(text)
        if hit is not None:
            self._done.move_to_end(text)
        return hit


def wav_clip(path: Path) -> AudioClip:
    prompt = load_wav(path)
    return AudioClip(f"wav-{path.stem}", prompt.samples, "prompt")
