"""Protocol order for one Twilio media stream: which inbound messages to process, which to skip.

Twilio numbers its messages and its media chunks and stamps each chunk with the stream time.
A message that arrives out of that order (a duplicate, a replay, a message for another stream,
anything after ``stop``) must not reach the call: a replayed ``mark`` could "confirm" audio that
was never played, a stray ``dtmf`` could answer the consent question. :class:`InboundOrder`
decides; the caller logs the reason and skips the message.
"""

from __future__ import annotations

from media_stream.protocol import Connected, Dtmf, InboundMessage, Mark, Media, Start, Stop


class InboundOrder:
    """Admits Twilio messages in protocol order for one stream; says why a message must be skipped.

    The rules: ``connected`` at most once and only before ``start``; exactly one ``start``,
    before any ``media``, ``dtmf``, ``mark`` or ``stop``; every later message carries the
    start's ``streamSid``; sequence numbers strictly increase; media chunk numbers strictly
    increase and media timestamps never go backwards (per track); nothing after ``stop``.
    A skipped message changes nothing, so one bad message cannot poison the ones after it.
    """

    def __init__(self) -> None:
        self._connected = False
        self._stream_sid: str | None = None
        self._stopped = False
        self._last_sequence_number = -1
        self._last_chunk: dict[str, int] = {}
        self._last_timestamp_ms: dict[str, int] = {}

    @property
    def started(self) -> bool:
        """Whether the stream's ``start`` has been admitted."""
        return self._stream_sid is not None

    @property
    def stopped(self) -> bool:
        """Whether the stream's ``stop`` has been admitted."""
        return self._stopped

    @property
    def stream_sid(self) -> str | None:
        """The SID from the admitted ``start``, or ``None`` before it."""
        return self._stream_sid

    def admit(self, message: InboundMessage) -> str | None:
        """``None`` if ``message`` is next in order (and record it), else why to skip it."""
        if isinstance(message, Connected):
            return self._admit_connected()
        reason = self._out_of_order(message)
        if reason is not None:
            return reason
        self._last_sequence_number = message.sequence_number
        match message:
            case Start():
                self._stream_sid = message.stream_sid
            case Media():
                self._last_chunk[message.track] = message.chunk
                self._last_timestamp_ms[message.track] = message.timestamp_ms
            case Stop():
                self._stopped = True
        return None

    def _admit_connected(self) -> str | None:
        if self.started:
            return "connected after start"
        if self._connected:
            return "duplicate connected"
        self._connected = True
        return None

    def _out_of_order(self, message: Start | Media | Dtmf | Mark | Stop) -> str | None:
        if self._stopped:
            return f"{_event_name(message)} after stop"
        if isinstance(message, Start):
            if self.started:
                return "duplicate start"
        elif self._stream_sid is None:
            return f"{_event_name(message)} before start"
        elif message.stream_sid != self._stream_sid:
            return f"{_event_name(message)} for stream {message.stream_sid}, not {self._stream_sid}"
        if message.sequence_number <= self._last_sequence_number:
            return (
                f"{_event_name(message)} sequence number {message.sequence_number} is not after "
                f"{self._last_sequence_number} (duplicate or out of order)"
            )
        if isinstance(message, Media):
            return self._media_out_of_order(message)
        return None

    def _media_out_of_order(self, media: Media) -> str | None:
        last_chunk = self._last_chunk.get(media.track)
        if last_chunk is not None and media.chunk <= last_chunk:
            return f"{media.track} media chunk {media.chunk} is not after {last_chunk}"
        last_timestamp_ms = self._last_timestamp_ms.get(media.track)
        if last_timestamp_ms is not None and media.timestamp_ms < last_timestamp_ms:
            return (
                f"{media.track} media timestamp {media.timestamp_ms} ms goes back "
                f"from {last_timestamp_ms} ms"
            )
        return None


def _event_name(message: Start | Media | Dtmf | Mark | Stop) -> str:
    return type(message).__name__.lower()
