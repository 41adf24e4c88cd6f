"""The consent script and its re-ask rendered while the caller is still giving their message.

They are fixed prompts (rendered once per voice, then replayed: `media_stream.prompt_audio`).
Rendered only when first asked for, a business's first call would hear a pause between the
wrap-up and the script while a neural voice renders it, long enough for a caller to take it as
their turn and answer a question not yet asked. So each call has them rendered at its start;
when they are kept already this costs a lookup.
"""

from __future__ import annotations

import logging
from contextlib import aclosing

from media_stream import Synthesizer, fixed_prompts, split_sentences
from voice_agent.consent.questions import ASK_YES_OR_NO
from voice_agent.consent.script import REASK, render_consent_script
from voice_agent.records.businesses import Business

logger = logging.getLogger(__name__)


def consent_prompts(business: Business) -> tuple[str, ...]:
    """What the consent question says in the same words on every call of ``business``."""
    script = render_consent_script(
        business.consent_script_version, business.name, business.max_texts
    )
    return (script.text, REASK, ASK_YES_OR_NO)


async def render_ahead(synthesizer: Synthesizer, texts: tuple[str, ...]) -> None:
    """Render ``texts`` sentence by sentence, as the call bridge will ask for them, as fixed
    prompts; a sentence that fails is left to be rendered when it is said."""
    with fixed_prompts():
        for text in texts:
            for sentence in split_sentences(text):
                try:
                    async with aclosing(synthesizer.synthesize(sentence)) as chunks:
                        async for _ in chunks:
                            pass
                except Exception:
                    logger.warning("rendering a fixed prompt ahead failed", exc_info=True)
