"""Would a trained end-of-turn model beat our word rules? Smart Turn v3 on our voiced turns.

Smart Turn (pipecat-ai ships ``smart-turn-v3.2-cpu.onnx``; BSD-2-Clause) reads the last 8 s of
a caller's audio as Whisper log-mel features and gives the probability that the turn is over.
This bench voices every answer of `bench.ears.TURN_LINES` as `bench.ears` does (espeak-ng at
three speeds and Piper, through the phone path, with the same pauses of 0.3–1.2 s between the
parts), asks the model after each part of an answer (0.2 s into the silence after it) and
counts, at several thresholds, the finished answers it would take and the pauses inside answers
it would take for the end (false cut-offs).

The model is not one of our dependencies: give the path of the file, taken from a pipecat-ai
wheel (``pip download --no-deps pipecat-ai``, then unzip
``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``).

    .venv/bin/python bench/smart_turn.py PATH/smart-turn-v3.2-cpu.onnx
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime
from faster_whisper.feature_extractor import FeatureExtractor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ears
from bench.scoring import percentile
from media_stream.codec import SAMPLE_RATE, ulaw_decode
from media_stream.whisper import upsample_to_16k

WINDOW_SECONDS = 8  # the model hears the last 8 s, zeros in front when there is less
MODEL_RATE = 16000
PROBE_SILENCE = 0.2  # seconds of silence after a part when the model is asked
THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


class SmartTurn:
    """The ONNX model on one CPU thread."""

    def __init__(self, path: Path) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), sess_options=options)
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_SECONDS)

    def finished(self, pcm8k: npt.NDArray[np.int16]) -> float:
        """The probability that the caller whose audio ends here has finished."""
        size = WINDOW_SECONDS * MODEL_RATE
        audio = upsample_to_16k(pcm8k)[-size:]
        audio = np.pad(audio, (size - len(audio), 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # as the model was trained
        features = self._features(audio, padding=0)[:, : size // 160].astype(np.float32)
        logits = self._session.run(None, {"input_features": features[np.newaxis]})[0]
        return float(np.asarray(logits).ravel()[0])


def probes(model: SmartTurn) -> tuple[list[float], list[float], list[float]]:
    """(after the last part of an answer, after a part that more follows, seconds per ask)."""
    finished: list[float] = []
    unfinished: list[float] = []
    seconds: list[float] = []
    probe = round(PROBE_SILENCE * SAMPLE_RATE)
    for turn in ears.voiced_turns(noisy=False):
        pcm = ulaw_decode(turn.ulaw)
        for position, part_end in enumerate(turn.part_ends):
            started = time.perf_counter()
            probability = model.finished(pcm[: round(part_end * SAMPLE_RATE) + probe])
            seconds.append(time.perf_counter() - started)
            (finished if position == len(turn.part_ends) - 1 else unfinished).append(probability)
    return finished, unfinished, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="smart-turn-v3.2-cpu.onnx")
    arguments = parser.parse_args()
    finished, unfinished, seconds = probes(SmartTurn(arguments.model))
    print(f"{len(finished)} finished answers, {len(unfinished)} pauses inside answers")
    print("| threshold | finished answers taken | pauses taken for the end (false cut-offs) |")
    print("|---|---|---|")
    for threshold in THRESHOLDS:
        taken = sum(p > threshold for p in finished)
        cut = sum(p > threshold for p in unfinished)
        print(f"| {threshold:g} | {taken}/{len(finished)} | {cut}/{len(unfinished)} |")
    print(
        f"\none ask: p50 {1000 * percentile(seconds, 0.5):.0f} ms, "
        f"p95 {1000 * percentile(seconds, 0.95):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
