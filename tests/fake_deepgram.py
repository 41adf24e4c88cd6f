"""A protocol-faithful fake Deepgram on 127.0.0.1: live transcription and Aura speech.

``FakeDeepgramListen`` is the ``/v1/listen`` websocket. It checks the ``Authorization: Token``
header and validates the query as Deepgram does (bad values are refused with HTTP 400 before
the upgrade), records the audio and control messages it receives, and speaks the wire format:
``Results`` (interim and final, word timings, ``speech_final``, ``from_finalize``),
``SpeechStarted``, ``UtteranceEnd`` and ``Metadata``. Like Deepgram it sends an empty interim
``Results`` for each second of audio; answers ``Finalize`` with the staged words marked
``from_finalize`` (and, as Deepgram may, not ``speech_final``); answers ``CloseStream`` with
the staged words, ``Metadata`` and a normal close; and closes with 1011 after
``idle_timeout`` seconds with neither audio nor ``KeepAlive``. A test drives each connection
through its `ListenStream`; `ListenBehaviour` makes the server refuse the handshake, reply
slowly or go silent.

``FakeDeepgramSpeak`` is ``POST /v1/speak``: a small HTTP/1.1 server that validates the
request, then streams `speech_for` the text as chunked μ-law. `SpeakBehaviour` makes it fail
with a status, hold or stall after the first chunk, cut the body short, or answer with a
non-audio content type or an empty body. Each request is recorded as a `SpeakRequest`, which
notes whether the client went away before the body was complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

API_KEY = "fake-deepgram-key"
AUDIO_BYTES_PER_SECOND = 8000  # μ-law 8 kHz mono
LISTEN_ENCODINGS = {
    "linear16",
    "linear32",
    "flac",
    "alaw",
    "mulaw",
    "amr-nb",
    "amr-wb",
    "opus",
    "ogg-opus",
    "speex",
    "g729",
}
SPEAK_ENCODINGS = {"linear16", "flac", "mulaw", "alaw", "mp3", "opus", "aac"}
MAX_SPEAK_CHARACTERS = 2000
SPEECH_BYTES_PER_CHARACTER = 80  # 10 ms of fake speech per character of text


# ---------------------------------------------------------------------------------------------
# Messages in Deepgram's wire format


@dataclass(frozen=True)
class FakeWord:
    """A word as Deepgram reports it, in seconds since the first audio of the stream."""

    word: str
    start: float
    end: float
    confidence: float = 0.9
    punctuated_word: str | None = None


def results_message(
    words: Sequence[FakeWord],
    *,
    is_final: bool,
    speech_final: bool = False,
    from_finalize: bool = False,
    start: float | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """A ``Results`` message with one alternative whose transcript is the punctuated words."""
    first = start if start is not None else (words[0].start if words else 0.0)
    length = duration if duration is not None else (words[-1].end - first if words else 1.0)
    transcript = " ".join(w.punctuated_word or w.word for w in words)
    confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
    return {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": length,
        "start": first,
        "is_final": is_final,
        "speech_final": speech_final,
        "from_finalize": from_finalize,
        "channel": {
            "alternatives": [
                {
                    "transcript": transcript,
                    "confidence": confidence,
                    "words": [_word_json(w) for w in words],
                }
            ]
        },
        "metadata": {
            "request_id": "00000000-0000-4000-8000-000000000001",
            "model_info": {"name": "general-nova-3", "version": "2024-01-01", "arch": "nova-3"},
            "model_uuid": "00000000-0000-4000-8000-000000000002",
        },
    }


def _word_json(word: FakeWord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "word": word.word,
        "start": word.start,
        "end": word.end,
        "confidence": word.confidence,
    }
    if word.punctuated_word is not None:
        entry["punctuated_word"] = word.punctuated_word
    return entry


def speech_started_message(timestamp: float) -> dict[str, Any]:
    return {"type": "SpeechStarted", "channel": [0], "timestamp": timestamp}


def utterance_end_message(last_word_end: float) -> dict[str, Any]:
    return {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}


def metadata_message(duration: float) -> dict[str, Any]:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": "00000000-0000-4000-8000-000000000001",
        "sha256": "0" * 64,
        "created": "2025-01-01T00:00:00.000Z",
        "duration": duration,
        "channels": 1,
    }


# ---------------------------------------------------------------------------------------------
# /v1/listen


def _is_int(value: str) -> bool:
    return value.isdigit()


def _listen_query_problem(query: dict[str, list[str]]) -> str | None:
    """What Deepgram would refuse in this query, or None when it is acceptable."""
    single = {key: values[-1] for key, values in query.items()}
    for flag in ("interim_results", "vad_events", "smart_format", "punctuate"):
        if flag in single and single[flag] not in ("true", "false"):
            return f"{flag} must be true or false"
    if "encoding" in single:
        if single["encoding"] not in LISTEN_ENCODINGS:
            return f"unknown encoding {single['encoding']}"
        if not _is_int(single.get("sample_rate", "")):
            return "sample_rate is required with encoding"
    if "channels" in single and not _is_int(single["channels"]):
        return "channels must be an integer"
    endpointing = single.get("endpointing")
    if endpointing is not None and endpointing != "false" and not _is_int(endpointing):
        return "endpointing must be an integer or false"
    if "utterance_end_ms" in single:
        if not _is_int(single["utterance_end_ms"]):
            return "utterance_end_ms must be an integer"
        if single.get("interim_results") != "true":
            return "utterance_end_ms requires interim_results=true"
    if "keyterm" in query and not single.get("model", "").startswith("nova-3"):
        return "keyterm is only available with nova-3"
    return None


@dataclass
class ListenBehaviour:
    """How the listen server misbehaves; the defaults behave like Deepgram."""

    handshake_status: int | None = None  # refuse the upgrade with this HTTP status
    reply_delay: float = 0.0  # seconds before each message it sends
    silent: bool = False  # accept the stream, read it, never say a word
    idle_timeout: float = 10.0  # close 1011 after this long with neither audio nor KeepAlive
    empty_result_every: int = AUDIO_BYTES_PER_SECOND  # audio bytes per empty interim result


class ListenStream:
    """The server side of one ``/v1/listen`` connection, as the test sees it."""

    def __init__(self, connection: ServerConnection, behaviour: ListenBehaviour) -> None:
        assert connection.request is not None
        self.connection = connection
        self.behaviour = behaviour
        self.query = parse_qs(urlsplit(connection.request.path).query)
        self.headers: Headers = connection.request.headers
        self.audio = bytearray()
        self.audio_message_sizes: list[int] = []
        self.controls: list[str] = []
        self.staged_words: list[FakeWord] = []
        self.close_code: int | None = None
        self._changed = asyncio.Condition()
        self._last_result_at = 0

    @property
    def audio_seconds(self) -> float:
        return len(self.audio) / AUDIO_BYTES_PER_SECOND

    async def send(self, message: dict[str, Any] | str) -> None:
        """Send a message (a dict as JSON, a string as it is), after the configured delay."""
        if self.behaviour.silent:
            return
        if self.behaviour.reply_delay:
            await asyncio.sleep(self.behaviour.reply_delay)
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.connection.close(code, reason)

    async def wait_for_control(self, kind: str, count: int = 1, timeout: float = 5.0) -> None:
        """Until ``count`` control messages of type ``kind`` have arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.controls.count(kind) >= count)

    async def wait_for_audio(self, seconds: float, timeout: float = 5.0) -> None:
        """Until at least ``seconds`` of audio have arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.audio_seconds >= seconds)

    async def wait_closed(self) -> None:
        await self.connection.wait_closed()

    async def serve(self) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self.behaviour.idle_timeout):
                        message = await self.connection.recv()
                except TimeoutError:
                    await self.close(1011, "NET-0001: no audio or KeepAlive within the timeout")
                    return
                if isinstance(message, bytes):
                    await self._take_audio(message)
                elif await self._take_control(message):
                    return
        except ConnectionClosed:
            return
        finally:
            self.close_code = self.connection.close_code

    async def _take_audio(self, chunk: bytes) -> None:
        async with self._changed:
            self.audio.extend(chunk)
            self.audio_message_sizes.append(len(chunk))
            self._changed.notify_all()
        every = self.behaviour.empty_result_every
        if every and len(self.audio) - self._last_result_at >= every:
            self._last_result_at = len(self.audio)
            await self.send(results_message([], is_final=False, start=self.audio_seconds - 1.0))

    async def _take_control(self, text: str) -> bool:
        """Handle one text message; True when the stream is over."""
        try:
            kind = str(json.loads(text).get("type"))
        except (ValueError, AttributeError):
            kind = "unparseable"
        async with self._changed:
            self.controls.append(kind)
            self._changed.notify_all()
        if kind == "Finalize":
            await self._send_staged(from_finalize=True)
        elif kind == "CloseStream":
            await self._send_staged(from_finalize=False)
            await self.send(metadata_message(self.audio_seconds))
            await self.close(1000)
            return True
        return False

    async def _send_staged(self, *, from_finalize: bool) -> None:
        words, self.staged_words = self.staged_words, []
        if words or from_finalize:
            await self.send(
                results_message(
                    words,
                    is_final=True,
                    speech_final=not from_finalize,
                    from_finalize=from_finalize,
                )
            )


class FakeDeepgramListen:
    """The ``/v1/listen`` websocket on 127.0.0.1; use as an async context manager."""

    def __init__(self, behaviour: ListenBehaviour | None = None, api_key: str = API_KEY) -> None:
        self.behaviour = behaviour or ListenBehaviour()
        self.api_key = api_key
        self.refusals: list[tuple[int, str]] = []
        self.streams_opened = 0
        self._streams: asyncio.Queue[ListenStream] = asyncio.Queue()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FakeDeepgramListen:
        self._server = await serve(
            self._serve, "127.0.0.1", 0, process_request=self._check_handshake
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def next_stream(self, timeout: float = 5.0) -> ListenStream:
        """The next connection the client opened."""
        async with asyncio.timeout(timeout):
            return await self._streams.get()

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        status, reason = self._handshake_verdict(request)
        if status is None:
            return None
        self.refusals.append((status, reason))
        return connection.respond(status, reason)

    def _handshake_verdict(self, request: Request) -> tuple[int | None, str]:
        if self.behaviour.handshake_status is not None:
            return self.behaviour.handshake_status, "configured failure"
        url = urlsplit(request.path)
        if url.path != "/v1/listen":
            return 404, f"no such path {url.path}"
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return 401, "INVALID_AUTH"
        problem = _listen_query_problem(parse_qs(url.query))
        if problem is not None:
            return 400, problem
        return None, ""

    async def _serve(self, connection: ServerConnection) -> None:
        stream = ListenStream(connection, self.behaviour)
        self.streams_opened += 1
        self._streams.put_nowait(stream)
        await stream.serve()


# ---------------------------------------------------------------------------------------------
# /v1/speak


def speech_for(text: str) -> bytes:
    """The fake μ-law audio for ``text``: 10 ms per character, derived from the characters."""
    encoded = text.encode()
    return bytes(encoded[i % len(encoded)] for i in range(len(text) * SPEECH_BYTES_PER_CHARACTER))


@dataclass
class SpeakBehaviour:
    """How the speak server misbehaves; the defaults behave like Deepgram."""

    status: int = 200  # answer every request with this status (an error body when not 200)
    chunk_bytes: int = 800
    chunk_delay: float = 0.0  # seconds before each chunk: a slow server
    hold_after_first: asyncio.Event | None = None  # wait for this after the first chunk
    stall_after_first: bool = False  # after the first chunk, send nothing more, ever
    truncate_after_first: bool = False  # drop the connection after the first chunk
    empty_body: bool = False  # a 200 with no audio at all
    content_type: str = "audio/basic"


@dataclass
class SpeakRequest:
    """One ``POST /v1/speak`` as the server received it."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    text: str | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # the body was all sent
    aborted: asyncio.Event = field(default_factory=asyncio.Event)  # the client went away first


class _HttpProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _speak_problem(request: SpeakRequest, api_key: str) -> _HttpProblem | None:
    if request.path != "/v1/speak":
        return _HttpProblem(404, f"no such path {request.path}")
    if request.headers.get("authorization") != f"Token {api_key}":
        return _HttpProblem(401, "Invalid credentials.")
    single = {key: values[-1] for key, values in request.query.items()}
    if single.get("encoding", "linear16") not in SPEAK_ENCODINGS:
        return _HttpProblem(400, "unsupported encoding")
    if single.get("encoding") == "mulaw" and single.get("sample_rate", "8000") not in (
        "8000",
        "16000",
    ):
        return _HttpProblem(400, "mulaw supports sample rates 8000 and 16000")
    if single.get("container", "none") not in ("none", "wav"):
        return _HttpProblem(400, "unsupported container")
    if not isinstance(request.text, str) or not request.text.strip():
        return _HttpProblem(400, "the body must be JSON with a non-empty text")
    if len(request.text) > MAX_SPEAK_CHARACTERS:
        return _HttpProblem(413, "text longer than 2000 characters")
    return None


async def _read_request(reader: asyncio.StreamReader) -> SpeakRequest:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    url = urlsplit(target)
    request = SpeakRequest(url.path, parse_qs(url.query), headers, body)
    if method != "POST":
        raise _HttpProblem(405, "POST only")
    with contextlib.suppress(ValueError, AttributeError):
        text = json.loads(body).get("text")
        request.text = text if isinstance(text, str) else None
    return request


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class FakeDeepgramSpeak:
    """``POST /v1/speak`` on 127.0.0.1; use as an async context manager."""

    def __init__(self, behaviour: SpeakBehaviour | None = None, api_key: str = API_KEY) -> None:
        self.behaviour = behaviour or SpeakBehaviour()
        self.api_key = api_key
        self.requests: list[SpeakRequest] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FakeDeepgramSpeak:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return  # the server is shutting down: asyncio must not see this as a failure
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
        except _HttpProblem as bad_request:
            await _send_error(writer, bad_request)
            return
        self.requests.append(request)
        problem = _speak_problem(request, self.api_key)
        if problem is None and self.behaviour.status != 200:
            problem = _HttpProblem(self.behaviour.status, "configured failure")
        if problem is not None:
            await _send_error(writer, problem)
            return
        assert request.text is not None
        audio = b"" if self.behaviour.empty_body else speech_for(request.text)
        streaming = asyncio.ensure_future(self._stream(writer, audio))
        gone = asyncio.ensure_future(reader.read(1))  # b"" when the client closes
        await asyncio.wait({streaming, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not streaming.done():
            request.aborted.set()
        elif streaming.exception() is None:
            request.finished.set()
        streaming.cancel()
        gone.cancel()
        await asyncio.gather(streaming, gone, return_exceptions=True)

    async def _stream(self, writer: asyncio.StreamWriter, audio: bytes) -> None:
        behaviour = self.behaviour
        headers = {
            "Content-Type": behaviour.content_type,
            "Transfer-Encoding": "chunked",
            "Connection": "close",
            "dg-request-id": "00000000-0000-4000-8000-000000000003",
        }
        writer.write(_head(200, headers))
        for index, offset in enumerate(range(0, len(audio), behaviour.chunk_bytes)):
            if behaviour.chunk_delay:
                await asyncio.sleep(behaviour.chunk_delay)
            writer.write(_chunk(audio[offset : offset + behaviour.chunk_bytes]))
            await writer.drain()
            if index == 0:
                await self._after_first_chunk(writer)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _after_first_chunk(self, writer: asyncio.StreamWriter) -> None:
        behaviour = self.behaviour
        if behaviour.truncate_after_first:
            writer.transport.abort()
            raise ConnectionResetError("configured truncation")
        if behaviour.stall_after_first:
            await asyncio.Event().wait()
        if behaviour.hold_after_first is not None:
            await behaviour.hold_after_first.wait()


async def _send_error(writer: asyncio.StreamWriter, problem: _HttpProblem) -> None:
    body = json.dumps(
        {
            "err_code": "FAKE_ERROR",
            "err_msg": str(problem),
            "request_id": "00000000-0000-4000-8000-000000000004",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    writer.write(_head(problem.status, headers) + body)
    await writer.drain()
