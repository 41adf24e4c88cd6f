"""The consent-answer classifier: only a clear yes is affirmative; everything doubtful is not."""

from __future__ import annotations

import pytest

from voice_agent.consent.classifier import (
    CLASSIFIER_NAME,
    CLASSIFIER_VERSION,
    MAX_ANSWER_WORDS,
    MAX_WORD_CHARS,
    ConsentAnswer,
    classify_answer,
    classify_keypad,
)

CLEAR_YES = [
    "yes",
    "Yes.",
    "YES!",
    "yeah",
    "Yeah, sure.",
    "yep",
    "yup",
    "yea",
    "sure",
    "Sure thing.",
    "for sure",
    "okay",
    "OK",
    "ok.",
    "o.k.",
    "Okay then.",
    "okie dokie",
    "alright",
    "all right",
    "absolutely",
    "Definitely.",
    "certainly",
    "of course",
    "Yes, of course.",
    "please do",
    "Yes please.",
    "yes, please do",
    "go ahead",
    "Yeah, go ahead and text me.",
    "go right ahead",
    "go for it",
    "sounds good",
    "Sounds good!",
    "Sounds good to me.",
    "That sounds great.",
    "sounds like a plan",
    "that's fine",
    "That is fine.",
    "that's fine with me",
    "That's okay with me.",
    "fine by me",
    "I'm okay with that.",
    "I'm good with that.",
    "that works",
    "That works for me.",
    "works for me",
    "text me",
    "Yes, text me.",
    "You can text me.",
    "yes you can",
    "Feel free.",
    "I'd like that.",
    "I would like that.",
    "That would be great, thank you.",
    "that'd be helpful",
    "You bet.",
    "By all means.",
    "I agree.",
    "I consent.",
    "Yes ma'am.",
    "yes sir",
    "Yes, absolutely, please do. Thanks!",
    "yes yes",
    "Yep, that's perfect.",
    "Yeah, that's great, thanks so much.",
    "Sure, send them over.",
]

NORMALISED_YES = [
    "yesss",
    "Yeahhh",
    "suuure",
    "okaaay",
    "pleeease do",
    "  yes  ",
    "yes\n",
    "Um, yes.",
    "uh, yeah",
    "Well, okay.",
    "Hmm, sure.",
    "So, yes.",
    "That’s fine",  # typographic apostrophe
    "That`s fine",
    "thats fine",
    "Ｙｅｓ",  # full-width letters
    "ye\u200bs",  # zero-width space inside the word
    "\x00yes\x07",
    "\ud800yes",  # a lone surrogate is dropped like any control character
    "yeeeeeeeeees",
    "yes 👍",
    "👍 sure 🙂",
]

CLEAR_NO = [
    "no",
    "No.",
    "NO!",
    "nope",
    "nah",
    "No thanks.",
    "No thank you.",
    "no, no, no",
    "Nah, I'm good.",
    "don't",
    "Please don't.",
    "Do not.",
    "I don't.",
    "Don't text me.",
    "Do not text me.",
    "please don't text me",
    "I don't want texts.",
    "I don't want any texts from you guys.",
    "no texts",
    "No texting please.",
    "I'd rather not.",
    "I would rather not.",
    "I’d rather you didn’t.",
    "I'd prefer not.",
    "not interested",
    "I'm not interested.",
    "Not really.",
    "Not now.",
    "Not right now.",
    "not today",
    "Call me instead.",
    "Just call me.",
    "No way.",
    "never",
    "stop",
    "I'll pass.",
    "I don't think so.",
    "No. Why would I want that?",
    "No, unless it's urgent.",
    "Absolutely not.",
    "of course not",
    "Definitely not.",
    "certainly not",
    "not okay",
    "I'm not okay with that.",
    "That's not okay.",
    "That is not fine.",
    "I don't think that's fine.",
    "I don't think that would be great.",
    "You can't text me.",
    "nooo",
    "Nope nope.",
    "That's okay, no thanks.",
]

HEDGES = [
    "maybe",
    "Maybe later.",
    "perhaps",
    "possibly",
    "probably",
    "Probably not.",
    "maybe not",
    "I guess.",
    "I guess so.",
    "Yeah, I guess.",
    "I suppose.",
    "I think so.",
    "I think that's fine.",
    "I don't know.",
    "I dunno, sure.",
    "I don't know, yes.",
    "not sure",
    "I'm not sure.",
    "I'm not so sure.",
    "kind of",
    "sort of, yes",
    "It depends.",
    "Let me think.",
    "I'll think about it.",
    "hold on",
    "Wait.",
    "Yes, wait.",
    "never mind",
    "Actually, yes.",
    "could be",
]

QUESTIONS = [
    "why?",
    "Why?",
    "What texts?",
    "Is that free?",
    "Yes?",
    "Okay?",
    "Sure, but what will you send?",
    "Who is this?",
    "Sorry?",
    "What?",
    "Huh?",
    "Okay, is that free?",
    "How many texts?",
]

CONDITIONS = [
    "Yes but only email.",
    "yes if you call first",
    "Only on weekends.",
    "Yes, only on weekends.",
    "Sure, but just once.",
    "Okay, as long as it's free.",
    "Yes, text my wife's number.",
    "Yes, send it to my email.",
    "Yes, unless it's spam.",
    "Sure, after 5 pm.",
    "Yes, text me instead of calling.",
]

MIXED = [
    "yeah no",
    "Yeah, no.",
    "no yeah",
    "yes no",
    "Yes. No.",
    "sure... actually no",
    "no wait yes",
    "No, wait, yes.",
    "No, that's fine.",
    "Yeah, no, that's fine.",
    "okay no",
    "Yes, and don't call me.",
    "Okay, but no thanks.",
    "Nope, okay.",
    "Yes, I mean no.",
]

AMBIGUOUS_IDIOMS = [
    "no problem",  # idiomatic yes, but it carries a "no"; the re-ask settles it
    "No problem!",
    "Not a problem.",
    "no worries",
    "sure, no problem",
    "Yes, no worries.",
    "why not",
    "Sure, why not.",
    "I don't see why not.",
    "I don't mind.",
    "I don't really mind.",
    "I don't care.",
    "whatever",
    "Fine, whatever.",
    "that's okay",  # may be a polite "no need"
    "That's alright.",
    "That's all right.",
    "It's okay.",
    "Yeah, it's fine.",
    "I'm good.",
    "All good.",
    "If you want.",
    "Not at all.",
    "No objection.",
    "mhm",
    "Mm-hmm.",
    "Uh-huh.",
]

OFF_TOPIC_OR_EMPTY = [
    "",
    " ",
    "...",
    "?!",
    "um",
    "uh, well, so",
    "👍",
    "🙂🙂🙂",
    "\x00\x01\x02",
    "My sink is still leaking.",
    "Hello?",
    "Maria",
    "five one two",
    "1",
    "Yes, my sink is still leaking.",
    "I have a question about my bill.",
]

NEVER_AGREEMENT_WORDS = [
    "right",
    "That's right.",
    "that's",
    "please",
    "Please.",
    "correct",
    "That's correct.",
    "great",
    "perfect",
    "cool",
    "good",
    "thanks",
    "thank you",
    "yes, that's right",
    "I do.",
    "Yes, right now.",
]

MEANING_FLIPS = [  # REFERENCE.md: what phone-audio recognition made of negative answers
    "That's right, so.",  # "not right now"
    "I promise you, please.",  # "I'd rather you didn't"
    "Please note it.",  # "please don't"
]


@pytest.mark.parametrize("text", CLEAR_YES)
def test_clear_yes_is_affirmative(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("text", NORMALISED_YES)
def test_yes_survives_normalisation(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("text", CLEAR_NO)
def test_clear_refusal_is_declined(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.DECLINED


@pytest.mark.parametrize(
    "text",
    HEDGES + QUESTIONS + CONDITIONS + MIXED + AMBIGUOUS_IDIOMS + OFF_TOPIC_OR_EMPTY,
)
def test_doubtful_answers_are_unclear(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.UNCLEAR


@pytest.mark.parametrize("text", NEVER_AGREEMENT_WORDS + MEANING_FLIPS)
def test_words_that_are_not_agreement_never_make_a_yes(text: str) -> None:
    assert classify_answer(text) is not ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("text", MEANING_FLIPS)
def test_meaning_flip_transcripts_are_unclear_so_the_caller_is_asked_again(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.UNCLEAR


@pytest.mark.parametrize(
    "yes_phrase", ["okay", "fine", "sure", "that's fine", "good to go", "alright", "text me"]
)
@pytest.mark.parametrize("negation", ["not {}", "I don't think {}", "never {}", "it isn't {}"])
def test_negation_before_a_yes_word_is_never_affirmative(negation: str, yes_phrase: str) -> None:
    assert classify_answer(negation.format(yes_phrase)) is not ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("yes_word", ["absolutely", "definitely", "sure", "okay", "of course"])
def test_not_right_after_a_yes_word_is_a_refusal(yes_word: str) -> None:
    assert classify_answer(f"{yes_word} not") is ConsentAnswer.DECLINED


@pytest.mark.parametrize("yes_word", ["yes", "yeah", "sure", "okay", "absolutely"])
@pytest.mark.parametrize("tail", ["?", " but only email", ", maybe", ", actually no", " no"])
def test_anything_doubtful_after_a_yes_spoils_it(yes_word: str, tail: str) -> None:
    assert classify_answer(yes_word + tail) is ConsentAnswer.UNCLEAR


def test_a_stretched_word_longer_than_any_real_word_is_noise() -> None:
    assert classify_answer("y" + "e" * MAX_WORD_CHARS + "s") is ConsentAnswer.UNCLEAR


def test_case_punctuation_and_spacing_do_not_matter() -> None:
    variants = ["yes please", "YES PLEASE", "Yes, please!", "  yes   please  ", "yes... please"]
    assert {classify_answer(text) for text in variants} == {ConsentAnswer.AFFIRMATIVE}


def test_a_yes_buried_in_a_long_answer_is_not_affirmative() -> None:
    long_yes = " ".join(["yes"] * (MAX_ANSWER_WORDS + 1))
    assert classify_answer(long_yes) is ConsentAnswer.UNCLEAR
    assert classify_answer(" ".join(["yes"] * MAX_ANSWER_WORDS)) is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize(
    "hostile",
    [
        "yes " * 2_500,
        "a" * 10_000,
        "y" + "e" * 10_000 + "s",
        "no " * 3_000 + "yes",
        "\x00" * 10_000,
        "🙂" * 10_000,
        "'" * 10_000,
        "?" * 10_000,
        "don't " * 2_000,
        "\u202e" + "sey" * 3_000,  # right-to-left override
    ],
)
def test_hostile_input_is_unclear_or_declined_without_crashing(hostile: str) -> None:
    assert classify_answer(hostile) in (ConsentAnswer.UNCLEAR, ConsentAnswer.DECLINED)
    assert classify_answer(hostile) is not ConsentAnswer.AFFIRMATIVE


def test_answer_values_are_the_recorded_strings() -> None:
    assert [answer.value for answer in ConsentAnswer] == ["affirmative", "declined", "unclear"]
    assert ConsentAnswer.AFFIRMATIVE == "affirmative"


def test_classifier_identifies_itself_for_the_evidence_record() -> None:
    assert CLASSIFIER_NAME == "rules"
    assert CLASSIFIER_VERSION == "1"


@pytest.mark.parametrize(
    ("digit", "expected"),
    [
        ("1", ConsentAnswer.AFFIRMATIVE),
        ("2", ConsentAnswer.DECLINED),
        ("0", ConsentAnswer.UNCLEAR),
        ("3", ConsentAnswer.UNCLEAR),
        ("9", ConsentAnswer.UNCLEAR),
        ("*", ConsentAnswer.UNCLEAR),
        ("#", ConsentAnswer.UNCLEAR),
        ("", ConsentAnswer.UNCLEAR),
        ("11", ConsentAnswer.UNCLEAR),
        ("12", ConsentAnswer.UNCLEAR),
        (" 1", ConsentAnswer.UNCLEAR),
        ("１", ConsentAnswer.UNCLEAR),  # full-width digit one is not a keypad digit
        ("yes", ConsentAnswer.UNCLEAR),
    ],
)
def test_keypad(digit: str, expected: ConsentAnswer) -> None:
    assert classify_keypad(digit) is expected
