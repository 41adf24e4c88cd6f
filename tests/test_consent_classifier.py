"""The consent-answer classifier: only a clear yes is affirmative; everything doubtful is not.

The named examples below pin single rules; the labelled set in ``tests/data/consent_answers.yaml``
(loaded through ``bench/consent_answers.py``, which prints the same figures) holds the classifier
to its targets: no false accept at all, and at least 90 % of explicit yeses taken at the first
answer."""

from __future__ import annotations

import pytest

from bench.consent_answers import (
    MIN_YES_ACCEPTED,
    LabelledAnswer,
    load_answers,
    main,
    measure,
)
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
    # issue 11: a plain yes with one extra word, everyday ways of agreeing
    "Yes, I accept",
    "yes indeed",
    "Yes I give my permission",
    "Yep, I'm happy to get texts",
    "uh huh sure",
    "Right, yes, that's fine",
    "yes, that's right",
    "Yes, that's correct.",
    "Texts are fine.",
    "Count me in.",
    "I'd be happy to.",
    "That'd be awesome.",
    "Yes, thank you, bye.",
    "Yes, this number is fine for texts.",
    "A hundred percent.",
    "100%",
]

NEGATION_WORDED_YES = [  # the negation is part of the idiom, so the idiom is a yes
    "no problem",
    "No problem!",
    "Not a problem.",
    "sure, no problem",
    "Yes, no worries.",
    "Sure, why not.",
    "I don't see why not.",
    "I don't mind.",
    "I don't really mind.",
    "I wouldn't mind.",
    "No objection.",
    "I don't have a problem with that.",
    "That doesn't bother me.",
]

BACKCHANNEL_YES = [  # a backchannel next to an explicit yes is harmless
    "Uh-huh, yes.",
    "Mm-hmm, yeah.",
    "mhm yeah that's fine",
    "Mm hmm, go ahead.",
    "Yeah, uh, sure, go ahead.",
    "Right, okay, sure.",
    "Sorry, yes.",
]

MISHEARD_YES = [  # what a speech recogniser makes of a yes, where only a yes fits
    "yes her",  # "yes sir"
    "Shore.",  # "sure"
    "Shore, go ahead.",
    "Yes mam.",
    "O K",
    "Of coarse.",
    "Go a head.",
    "All rite.",
    "Yah.",
]

OTHER_LANGUAGE_YES = ["Sí.", "sí, claro", "Claro que sí.", "Por supuesto.", "Oui."]

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
    # issue 11: declines must be recognised
    "no thanks",
    "nope",
    "I don't want texts",
    "please don't",
    "yeah no",  # the idiom is a no
    "Yeah, no.",
    "Yeah, no, I'm good.",
    "Yeah nah.",
    "Uh-uh.",
    "Not at this time.",
    "I'd prefer you didn't.",
    "I'd rather get a call.",
    "I'm not comfortable with that.",
    "Take me off the list.",
    "Opt me out.",
    "No need to text me.",
    "That doesn't work for me.",
    "No, gracias.",
    "I'm not happy to get texts.",
    "Don't sign me up.",
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
    "Yes﹖",  # small question mark
    "Yes‽",
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
    "No, I don't mind.",  # "no" next to a negation-worded yes
    "Nope, don't mind at all.",
    "Nah, no worries.",
]

AMBIGUOUS_IDIOMS = [
    "no worries",  # as often "no thanks" as "sure": only next to an explicit yes
    "why not",  # may be a question whose "?" the recogniser dropped
    "I don't care.",
    "whatever",
    "Fine, whatever.",
    "that's okay",  # may be a polite "no need"
    "That's alright.",
    "That's all right.",
    "It's okay.",
    "I'm good.",
    "Yes, I'm good.",
    "Sure, I'm fine.",
    "All good.",
    "If you want.",
    "Not at all.",  # to "would it be okay?" a no, to "would you mind?" a yes
    "mhm",  # a backchannel alone acknowledges; it does not agree
    "Mm-hmm.",
    "Uh-huh.",
    "uh huh",
    "Mm-mm.",
    "Don't mind me.",
]

QUESTIONS_WITHOUT_A_QUESTION_MARK = [
    "can you text me",
    "could you just email it",
    "will it cost me anything",
    "what kind of texts",
    "is it free",
    "how do I stop them",
    "do you want me to say yes",
]

SARCASM_AND_TALK_OVER = [
    "Yeah right.",
    "Oh yeah, right.",
    "Sure, right.",
    "Yeah, that's just great.",
    "Sure you will.",
    "You go ahead.",  # after talking over each other: "you speak"
    "Sorry, go ahead.",
    "Yeah, go on.",
    "Okay, that's it.",
]

LOOK_ALIKES = [  # letters of other scripts that look like Latin ones are not a transcript
    "уes",  # Cyrillic у
    "yеs",  # Cyrillic е
    "ѕure",  # Cyrillic dze
    "оkay",  # Cyrillic о
    "YΕS",  # Greek capital epsilon
    "ye5",
    "Y\u0336e\u0336s\u0336",  # struck through
    "Ye\u0301s",
    "\u202eseY",
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


@pytest.mark.parametrize(
    "text", NEGATION_WORDED_YES + BACKCHANNEL_YES + MISHEARD_YES + OTHER_LANGUAGE_YES
)
def test_everyday_misheard_and_foreign_yeses_are_affirmative(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("text", NORMALISED_YES)
def test_yes_survives_normalisation(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize("text", CLEAR_NO)
def test_clear_refusal_is_declined(text: str) -> None:
    assert classify_answer(text) is ConsentAnswer.DECLINED


@pytest.mark.parametrize(
    "text",
    HEDGES
    + QUESTIONS
    + QUESTIONS_WITHOUT_A_QUESTION_MARK
    + CONDITIONS
    + MIXED
    + AMBIGUOUS_IDIOMS
    + SARCASM_AND_TALK_OVER
    + LOOK_ALIKES
    + OFF_TOPIC_OR_EMPTY,
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
@pytest.mark.parametrize("tail", ["?", " but only email", ", maybe", ", actually no", " wait"])
def test_anything_doubtful_after_a_yes_spoils_it(yes_word: str, tail: str) -> None:
    assert classify_answer(yes_word + tail) is ConsentAnswer.UNCLEAR


@pytest.mark.parametrize("yes_word", ["yes", "sure", "okay", "absolutely", "fine"])
def test_a_bare_no_after_a_yes_is_unclear_but_yeah_no_is_a_no(yes_word: str) -> None:
    assert classify_answer(f"{yes_word} no") is ConsentAnswer.UNCLEAR
    assert classify_answer("yeah no") is ConsentAnswer.DECLINED
    assert classify_answer("yeah, no problem") is ConsentAnswer.AFFIRMATIVE


@pytest.mark.parametrize(
    "courtesy", ["right", "correct", "great", "perfect", "bye", "uh-huh", "mm-hmm", "that's okay"]
)
def test_a_courtesy_or_backchannel_goes_with_a_yes_or_a_no_but_is_nothing_alone(
    courtesy: str,
) -> None:
    assert classify_answer(f"yes, {courtesy}") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer(f"no, {courtesy}") is ConsentAnswer.DECLINED
    assert classify_answer(courtesy) is ConsentAnswer.UNCLEAR


@pytest.mark.parametrize(
    "cut_off", ["Yes, sir, thank you for.", "Sure, the.", "Yes yes the the", "Okay, and", "yes I"]
)
def test_an_answer_cut_off_mid_sentence_is_not_a_yes(cut_off: str) -> None:
    assert classify_answer(cut_off) is ConsentAnswer.UNCLEAR


def test_a_phrase_may_end_on_what_a_sentence_may_not() -> None:
    for whole in ["I'd be happy to.", "I'd like to.", "Yes, no problem at all.", "Go for it."]:
        assert classify_answer(whole) is ConsentAnswer.AFFIRMATIVE


def test_a_misheard_yes_sir_counts_only_as_the_last_words() -> None:
    assert classify_answer("Yes her.") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("Yes, her phone.") is ConsentAnswer.UNCLEAR
    assert classify_answer("yes her number please") is ConsentAnswer.UNCLEAR


def test_a_negation_inside_an_idiom_does_not_reach_the_yes_after_it() -> None:
    assert classify_answer("I don't mind, go ahead") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("Why not, sure.") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("I'm not happy to get texts") is ConsentAnswer.DECLINED


def test_hyphens_and_percent_signs_are_read_as_spoken() -> None:
    assert classify_answer("Okey-dokey.") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("yes‑yes") is ConsentAnswer.AFFIRMATIVE  # non-breaking hyphen
    assert classify_answer("Uhhh-huhhh, sure.") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("100%, yes") is ConsentAnswer.AFFIRMATIVE
    assert classify_answer("1-800") is ConsentAnswer.UNCLEAR


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
    assert CLASSIFIER_VERSION == "3"  # the evidence record names the rules that decided


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


# --- the labelled set ----------------------------------------------------------------------

FAMILIES = (
    "plain",
    "colloquial",
    "backchannel",
    "hedged",
    "conditional",
    "reversed",
    "questions",
    "negation-worded",
    "misrecognised",
)


@pytest.fixture(scope="module")
def answers() -> list[LabelledAnswer]:
    return load_answers()


def test_the_labelled_set_is_large_varied_and_mostly_hand_written(
    answers: list[LabelledAnswer],
) -> None:
    hand_written = {answer.text for answer in answers if answer.hand_written}
    assert len(answers) >= 1_000
    assert len(hand_written) >= 400
    assert len({answer.text for answer in answers}) == len(answers)
    families = {answer.family for answer in answers}
    assert set(FAMILIES) <= families
    for label in ConsentAnswer:
        assert sum(1 for answer in answers if answer.label is label) >= 100, label


def test_no_answer_of_the_set_is_a_false_accept(answers: list[LabelledAnswer]) -> None:
    false_accepts = [outcome.answer.text for outcome in measure(answers).false_accepts]
    assert false_accepts == []


def test_at_least_nine_in_ten_explicit_yeses_are_taken_at_the_first_answer(
    answers: list[LabelledAnswer],
) -> None:
    assert MIN_YES_ACCEPTED == 0.90
    assert measure(answers).yes_accepted >= MIN_YES_ACCEPTED
    hand_written = [answer for answer in answers if answer.hand_written]
    assert measure(hand_written).yes_accepted >= MIN_YES_ACCEPTED


def test_most_declines_of_the_set_are_recognised(answers: list[LabelledAnswer]) -> None:
    figures = measure(answers)
    assert figures.declines_recognised >= 0.90
    yes = ConsentAnswer.AFFIRMATIVE
    assert figures.count(yes, ConsentAnswer.DECLINED) <= 0.01 * figures.count(yes, None)


NAMED_EXAMPLES = {  # family: (answer as in the set, its label, what the classifier says)
    "plain": [
        ("Yes, I accept.", "affirmative", "affirmative"),
        ("Yes indeed.", "affirmative", "affirmative"),
        ("Yes, I give my permission.", "affirmative", "affirmative"),
        ("No thanks.", "declined", "declined"),
        ("Right.", "unclear", "unclear"),
        ("Yes, please, and tell him to hurry.", "affirmative", "unclear"),  # a miss, kept
    ],
    "colloquial": [
        ("Yep, I'm happy to get texts.", "affirmative", "affirmative"),
        ("Right, yes, that's fine.", "affirmative", "affirmative"),
        ("Yeah, no worries.", "affirmative", "affirmative"),
        ("I'm good.", "unclear", "unclear"),
        ("No worries.", "unclear", "unclear"),
        ("Perfect.", "affirmative", "unclear"),  # may be sarcasm: asked again
    ],
    "backchannel": [
        ("uh huh sure", "affirmative", "affirmative"),
        ("Mhm, sounds good.", "affirmative", "affirmative"),
        ("Uh-uh.", "declined", "declined"),
        ("Uh-huh.", "unclear", "unclear"),
        ("Mm-hmm, go on.", "unclear", "unclear"),
    ],
    "hedged": [
        ("I guess so.", "unclear", "unclear"),
        ("Yes, I think so.", "unclear", "unclear"),
        ("Sure, for now.", "unclear", "unclear"),
        ("Up to you.", "unclear", "unclear"),
    ],
    "conditional": [
        ("Only if it's about the appointment.", "unclear", "unclear"),
        ("Yes, just one text.", "unclear", "unclear"),
        ("Sure, as long as you don't sell my number.", "unclear", "unclear"),
        ("Yes, but text my wife instead.", "unclear", "unclear"),
    ],
    "reversed": [
        ("no wait yes", "unclear", "unclear"),
        ("Sure. Actually, no.", "unclear", "unclear"),
        ("Yes, no, I mean yes.", "unclear", "unclear"),
        ("Text me. Actually, don't.", "unclear", "unclear"),
    ],
    "questions": [
        ("What kind of texts?", "unclear", "unclear"),
        ("can you text me", "unclear", "unclear"),
        ("Yes?", "unclear", "unclear"),
        ("Okay, is that free?", "unclear", "unclear"),
    ],
    "negation-worded": [
        ("I don't mind.", "affirmative", "affirmative"),
        ("No problem.", "affirmative", "affirmative"),
        ("I'd prefer not to.", "declined", "declined"),
        ("I don't want texts.", "declined", "declined"),
        ("Please don't send me anything.", "declined", "declined"),
        ("No, that's fine.", "unclear", "unclear"),
        ("No, I don't mind.", "affirmative", "unclear"),  # a "no" beside it: asked again
    ],
    "misrecognised": [
        ("yes her", "affirmative", "affirmative"),
        ("Shore.", "affirmative", "affirmative"),
        ("Yet.", "unclear", "unclear"),
        ("Please note it.", "unclear", "unclear"),
        ("five one two", "unclear", "unclear"),
        ("Thank you for watching.", "unclear", "unclear"),
    ],
    "sarcastic": [
        ("Yeah right.", "unclear", "unclear"),
        ("Yeah, that's just great.", "unclear", "unclear"),
        ("Lol no.", "declined", "declined"),
    ],
    "other-language": [
        ("Sí, claro.", "affirmative", "affirmative"),
        ("No, gracias.", "declined", "declined"),
        ("¿Es gratis?", "unclear", "unclear"),
    ],
    "unicode": [
        ("Ｙｅｓ", "affirmative", "affirmative"),
        ("уes", "unclear", "unclear"),
        ("ｎｏ", "declined", "declined"),
    ],
}


@pytest.mark.parametrize(
    ("family", "text", "label", "classified"),
    [(family, *example) for family, examples in NAMED_EXAMPLES.items() for example in examples],
)
def test_named_examples_of_each_family(
    answers: list[LabelledAnswer], family: str, text: str, label: str, classified: str
) -> None:
    labelled = {(answer.family, answer.text): answer.label for answer in answers}
    assert labelled[(family, text)].value == label
    assert classify_answer(text).value == classified


def test_the_bench_prints_the_figures_and_meets_its_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert "false accepts                              0" in printed
    for figure in ("explicit yeses accepted", "settled without a re-ask", "targets met"):
        assert figure in printed
