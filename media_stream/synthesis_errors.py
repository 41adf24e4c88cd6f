"""The error every cloud synthesizer raises, so the call can fall back to the embedded engine."""


class SynthesizerFailure(Exception):
    """A cloud synthesizer failed; the caller falls back to the embedded one."""
