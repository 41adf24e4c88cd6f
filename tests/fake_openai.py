"""A protocol-faithful fake OpenAI server on 127.0.0.1, for testing the real ``openai`` client.

It speaks HTTP/1.1 with keep-alive and chunked transfer encoding, like the real API:

- ``POST /v1/chat/completions`` with ``stream=true`` answers server-sent events
  ``data: {chunk}`` … ``data: [DONE]`` (each followed by a blank line): a first chunk carrying the
  assistant role, content deltas, tool-call deltas split into fragments (``index``; ``id``,
  ``type`` and ``function.name`` on the first fragment; ``function.arguments`` in pieces), a last
  chunk with ``finish_reason`` (``tool_calls`` or ``stop``) and, when
  ``stream_options.include_usage`` is set, a usage chunk with no choices.
- ``POST /v1/audio/speech`` streams raw PCM (24 kHz, 16-bit little-endian, mono) for
  ``response_format=pcm``.
- ``GET /v1/models`` lists the models; with ``api_key`` given, any other bearer key gets the 401
  ``invalid_api_key`` error.

Each request takes the next scripted answer (a :class:`ScriptedCompletion` or
:class:`ScriptedSpeech`), which can also be slow, fail with an HTTP status, stall, hold until the
test releases it, end early or send malformed data. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SPEECH_SAMPLE_RATE = 24000

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
_REASONS |= {429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}


class _DroppedOnPurpose(Exception):
    """A scripted answer drops its connection mid-body."""


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call the fake model makes; ``arguments`` is sent as JSON text in fragments."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)

    @property
    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class Misbehaviour:
    """How an answer goes wrong; the default is a well-behaved answer."""

    status: int = 200  # anything but 200 answers an OpenAI-style JSON error
    delay: float = 0.0  # seconds before each chunk
    stall_after: int | None = None  # send this many chunks, then nothing until the client leaves
    hold_after: int | None = None  # send this many chunks, then wait for ``release``
    release: asyncio.Event = field(default_factory=asyncio.Event)
    end_early_after: int | None = None  # send this many chunks, then end the body cleanly
    drop_after: int | None = None  # send this many chunks, then drop the connection mid-body


@dataclass
class ScriptedCompletion(Misbehaviour):
    """One streamed chat completion."""

    content: list[str] = field(default_factory=list)
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    interleave_tool_calls: bool = False  # fragments of the calls alternate between indexes
    fragment_chars: int = 6
    finish_reason: str | None = "auto"  # "auto": tool_calls if there are any, else stop
    raw_events: list[str] | None = None  # exact SSE ``data:`` payloads instead of the above
    send_done: bool = True


@dataclass
class ScriptedSpeech(Misbehaviour):
    """One streamed speech answer: ``seconds`` of a tone unless ``pcm`` is given."""

    seconds: float = 0.5
    pcm: bytes | None = None
    chunk_bytes: int = 4800  # 100 ms at 24 kHz; odd sizes split samples across chunks


def tone(seconds: float, frequency: float = 440.0) -> bytes:
    """A sine tone as 24 kHz 16-bit little-endian PCM."""
    count = round(seconds * SPEECH_SAMPLE_RATE)
    samples = (
        round(8000 * math.sin(2 * math.pi * frequency * n / SPEECH_SAMPLE_RATE))
        for n in range(count)
    )
    return b"".join(struct.pack("<h", sample) for sample in samples)


class FakeOpenAI:
    """The server: ``async with FakeOpenAI() as fake``, then point clients at ``fake.base_url``."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.completions: deque[ScriptedCompletion] = deque()
        self.speech: deque[ScriptedSpeech] = deque()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.client_disconnects = 0
        self.finished_bodies = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """The JSON bodies of the requests made to ``path`` (e.g. ``/v1/chat/completions``)."""
        return [body for request_path, body in self.requests if request_path == path]

    async def __aenter__(self) -> FakeOpenAI:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()  # the handler sees the connection end and returns
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_disconnects += 1
        except _DroppedOnPurpose:
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            if error.partial:
                raise
            return False  # the client closed an idle kept-alive connection
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        _method, path, _version = request_line.split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        body = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))) or "{}")
        self.requests.append((path, body))
        if path == "/v1/models":
            await self._answer_models(writer, headers.get("authorization", ""))
        elif path == "/v1/chat/completions" and self.completions:
            await self._answer_completion(reader, writer, self.completions.popleft(), body)
        elif path == "/v1/audio/speech" and self.speech:
            await self._answer_speech(reader, writer, self.speech.popleft())
        else:
            await _send_error(writer, 404, f"nothing scripted for {path}")
        return True

    async def _answer_models(self, writer: asyncio.StreamWriter, authorization: str) -> None:
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            await _send_json(writer, 401, _INVALID_KEY)
            return
        models = [{"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "system"}]
        await _send_json(writer, 200, {"object": "list", "data": models})

    async def _answer_completion(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        script: ScriptedCompletion,
        request: dict[str, Any],
    ) -> None:
        if script.status != 200:
            await _send_error(writer, script.status, "scripted failure")
            return
        if script.raw_events is not None:
            payloads = script.raw_events
        else:
            usage = bool(request.get("stream_options", {}).get("include_usage"))
            events = _completion_chunks(script, request.get("model", "fake-model"), usage)
            payloads = [json.dumps(event) for event in events]
        if script.send_done:
            payloads = [*payloads, "[DONE]"]
        pieces = [f"data: {payload}\n\n".encode() for payload in payloads]
        await self._stream(reader, writer, "text/event-stream; charset=utf-8", pieces, script)

    async def _answer_speech(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: ScriptedSpeech
    ) -> None:
        if script.status != 200:
            await _send_error(writer, script.status, "scripted failure")
            return
        pcm = script.pcm if script.pcm is not None else tone(script.seconds)
        size = script.chunk_bytes
        pieces = [pcm[offset : offset + size] for offset in range(0, len(pcm), size)]
        await self._stream(reader, writer, "audio/pcm", pieces, script)

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        content_type: str,
        pieces: list[bytes],
        script: Misbehaviour,
    ) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\n"
            + f"content-type: {content_type}\r\n".encode()
            + b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
        )
        await writer.drain()
        for sent, piece in enumerate(pieces):
            if sent == script.end_early_after:
                break
            if sent == script.drop_after:
                raise _DroppedOnPurpose
            if sent == script.stall_after:
                await _until_client_leaves(reader)
                raise ConnectionResetError("client left a stalled stream")
            if sent == script.hold_after:
                await _until_released_or_client_leaves(reader, script.release)
            if script.delay:
                await asyncio.sleep(script.delay)
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.finished_bodies += 1


def _completion_chunks(
    script: ScriptedCompletion, model: str, include_usage: bool
) -> list[dict[str, Any]]:
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    deltas += [{"content": piece} for piece in script.content]
    deltas += _tool_call_deltas(script)
    finish = script.finish_reason
    if finish == "auto":
        finish = "tool_calls" if script.tool_calls else "stop"
    chunks = [_chunk(model, delta, None, include_usage) for delta in deltas]
    if finish is not None:
        chunks.append(_chunk(model, {}, finish, include_usage))
    if include_usage:
        chunks.append(
            {
                **_chunk(model, {}, None, include_usage),
                "choices": [],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        )
    return chunks


def _tool_call_deltas(script: ScriptedCompletion) -> list[dict[str, Any]]:
    per_call: list[list[dict[str, Any]]] = []
    for index, call in enumerate(script.tool_calls):
        text = call.arguments_text
        step = max(1, script.fragment_chars)
        first = {
            "index": index,
            "id": f"call_fake{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        rest = [
            {"index": index, "function": {"arguments": text[offset : offset + step]}}
            for offset in range(0, len(text), step)
        ]
        per_call.append([first, *rest])
    if script.interleave_tool_calls:
        ordered = [
            fragments[turn]
            for turn in range(max((len(fragments) for fragments in per_call), default=0))
            for fragments in per_call
            if turn < len(fragments)
        ]
    else:
        ordered = [fragment for fragments in per_call for fragment in fragments]
    return [{"tool_calls": [fragment]} for fragment in ordered]


def _chunk(
    model: str, delta: dict[str, Any], finish_reason: str | None, include_usage: bool
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


_INVALID_KEY = {
    "error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


async def _send_error(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    await _send_json(
        writer, status, {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    )


async def _send_json(writer: asyncio.StreamWriter, status: int, document: object) -> None:
    encoded = json.dumps(document).encode()
    writer.write(
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n".encode()
        + b"content-type: application/json\r\n"
        + f"content-length: {len(encoded)}\r\nconnection: keep-alive\r\n\r\n".encode()
        + encoded
    )
    await writer.drain()


async def _until_client_leaves(reader: asyncio.StreamReader) -> None:
    while await reader.read(1024):
        pass


async def _until_released_or_client_leaves(
    reader: asyncio.StreamReader, release: asyncio.Event
) -> None:
    leaving = asyncio.ensure_future(_until_client_leaves(reader))
    released = asyncio.ensure_future(release.wait())
    try:
        await asyncio.wait({leaving, released}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (leaving, released):
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    if not release.is_set():
        raise ConnectionResetError("client left a held stream")
