"""The telephony edge: Twilio Media Streams, G.711 audio, and the speech engines behind ports.

The media path (numpy) and the engines' adapters (a vendor SDK or model runtime each) load on
first use, so a command that only names the ports and messages stays light.
"""

from typing import TYPE_CHECKING

import lazy_loader

from media_stream.failover import ONE_MOMENT, FailoverSynthesizer, FailoverTranscription, Notify
from media_stream.notice_hold import NoticeHold
from media_stream.ports import (
    AnswerKind,
    SpeechEvent,
    SpeechStarted,
    Synthesizer,
    SynthesizerFailure,
    Transcriber,
    TranscriberFailure,
    TranscriptionSession,
    Utterance,
    Word,
)
from media_stream.protocol import (
    Clear,
    Connected,
    Dtmf,
    InboundMessage,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    OutboundMessage,
    ProtocolError,
    Start,
    Stop,
    encode_inbound,
    encode_outbound,
    parse_inbound,
    parse_outbound,
)
from media_stream.sentences import SentenceSplitter, split_sentences
from media_stream.sequencing import InboundOrder

if TYPE_CHECKING:
    from media_stream.bridge import (
        CallBridge,
        CallEnded,
        CallerInput,
        Playback,
        PlaybackResult,
        StreamClosed,
        StreamSocket,
    )
    from media_stream.codec import (
        FRAME_BYTES,
        FRAME_SECONDS,
        SAMPLE_RATE,
        SILENCE_BYTE,
        duration_seconds,
        frames,
        resample,
        ulaw_decode,
        ulaw_encode,
    )
    from media_stream.deepgram_synthesizer import DeepgramSynthesizer
    from media_stream.deepgram_transcriber import DeepgramSession, DeepgramTranscriber
    from media_stream.espeak import EspeakSynthesizer
    from media_stream.openai_tts import OpenAITtsSynthesizer
    from media_stream.piper import PiperSynthesizer, PiperVoiceError
    from media_stream.prompt_audio import CachedSynthesizer, PromptAudio, fixed_prompts
    from media_stream.whisper import ModelIntegrityError, WhisperTranscriber
else:  # numpy (the media path) and each vendor SDK load when first used
    __getattr__, _, _ = lazy_loader.attach(
        __name__,
        submod_attrs={
            "bridge": [
                "CallBridge",
                "CallEnded",
                "CallerInput",
                "Playback",
                "PlaybackResult",
                "StreamClosed",
                "StreamSocket",
            ],
            "codec": [
                "FRAME_BYTES",
                "FRAME_SECONDS",
                "SAMPLE_RATE",
                "SILENCE_BYTE",
                "duration_seconds",
                "frames",
                "resample",
                "ulaw_decode",
                "ulaw_encode",
            ],
            "deepgram_synthesizer": ["DeepgramSynthesizer"],
            "deepgram_transcriber": ["DeepgramSession", "DeepgramTranscriber"],
            "espeak": ["EspeakSynthesizer"],
            "openai_tts": ["OpenAITtsSynthesizer"],
            "piper": ["PiperSynthesizer", "PiperVoiceError"],
            "prompt_audio": ["CachedSynthesizer", "PromptAudio", "fixed_prompts"],
            "whisper": ["ModelIntegrityError", "WhisperTranscriber"],
        },
    )

__all__ = [
    "FRAME_BYTES",
    "FRAME_SECONDS",
    "ONE_MOMENT",
    "SAMPLE_RATE",
    "SILENCE_BYTE",
    "AnswerKind",
    "CachedSynthesizer",
    "CallBridge",
    "CallEnded",
    "CallerInput",
    "Clear",
    "Connected",
    "DeepgramSession",
    "DeepgramSynthesizer",
    "DeepgramTranscriber",
    "Dtmf",
    "EspeakSynthesizer",
    "FailoverSynthesizer",
    "FailoverTranscription",
    "InboundMessage",
    "InboundOrder",
    "Mark",
    "Media",
    "MediaFormat",
    "ModelIntegrityError",
    "NoticeHold",
    "Notify",
    "OpenAITtsSynthesizer",
    "OutboundMark",
    "OutboundMedia",
    "OutboundMessage",
    "PiperSynthesizer",
    "PiperVoiceError",
    "Playback",
    "PlaybackResult",
    "PromptAudio",
    "ProtocolError",
    "SentenceSplitter",
    "SpeechEvent",
    "SpeechStarted",
    "Start",
    "Stop",
    "StreamClosed",
    "StreamSocket",
    "Synthesizer",
    "SynthesizerFailure",
    "Transcriber",
    "TranscriberFailure",
    "TranscriptionSession",
    "Utterance",
    "WhisperTranscriber",
    "Word",
    "duration_seconds",
    "encode_inbound",
    "encode_outbound",
    "fixed_prompts",
    "frames",
    "parse_inbound",
    "parse_outbound",
    "resample",
    "split_sentences",
    "ulaw_decode",
    "ulaw_encode",
]
