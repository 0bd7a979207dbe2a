"""Automatic Japanese checks on one reply: hints for the rater, never the verdict.

:func:`run_checks` measures a reply and returns a :class:`CheckReport` with the numbers and the
:class:`CheckFlag` badges for what is off, judged against the persona's expectations:

- **Japanese share** — kana, kanji and full-width characters among the letters (URLs left out);
  flagged below 0.7 for a Japanese persona. Hiragana and katakana tell Japanese from Chinese: a
  sentence of eight or more kanji without any kana, or a kana-poor one with characters only
  Chinese uses (们, 这, 吗 …), counts as Chinese. In a reply with kana, a sentence with at most
  three Latin words (「KICK BACK」, LiSA, SPY×FAMILY) counts them as Japanese, so a title or a
  name does not read as a drift into English.
- **Register** — each sentence ending is polite (です/ます/ございます …, also ですよね) or casual
  (だよ, だね, よね, じゃん, plain forms); text inside 「」『』 is ignored. ``polite_share`` is
  polite / (polite + casual); the register is casual below 0.2, polite from 0.8, mixed between.
- **Length** — non-whitespace characters against ``max_reply_chars``; sentences are counted.
- **Template or role leakage** — prompt-format markers and role labels at a line start.
- **Repetition** — the share of the reply's letters and digits covered by 8-character n-grams
  seen earlier in it (flagged from 0.3), and whether the reply is the previous reply again
  (equal, or at least half covered by its n-grams).
- **Persona break** — phrases that step out of character (AIとして, 言語モデル, "As an AI" …) and
  a first person (俺, 僕, 私 …) the persona does not use.
- **Empty or cut off** — nothing but punctuation once leaked markers are removed (then no other
  content check runs), or a finish reason that says the token limit stopped it.
- **Token efficiency** — characters per completion token.

Flag codes equal the human rating tags where one exists (``too-long``, ``out-of-character``,
``not-japanese``, ``wrong-register``, ``template-leak``, ``repetitive``), so an export or the
leaderboard can set the two side by side. The persona-break check reports ``out-of-character``;
``empty``, ``cut-off`` and ``repeats-previous`` have no rating tag.

Everything is plain ``re`` and string methods, tuned so that a 2,000-character reply takes a
couple of milliseconds (``bench/bench_checks.py``); the accuracy against the replies of the
hand-written comparison (README, glossary) is tested in ``tests/test_checks.py``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from kurabe.checks.report import (
    FLAG_CUT_OFF,
    FLAG_EMPTY,
    FLAG_NOT_JAPANESE,
    FLAG_OUT_OF_CHARACTER,
    FLAG_REPEATS_PREVIOUS,
    FLAG_REPETITIVE,
    FLAG_TEMPLATE_LEAK,
    FLAG_TOO_LONG,
    FLAG_WRONG_REGISTER,
    CheckFlag,
    CheckReport,
)

CASUAL_BELOW = 0.2
"""A reply with a polite share below this reads as casual."""
POLITE_FROM = 0.8
"""A reply with a polite share from this up reads as polite; between the two it is mixed."""
NOT_JAPANESE_BELOW = 0.7
"""A reply for a Japanese persona with a Japanese share below this is flagged."""
NGRAM = 8
"""Characters per n-gram for the repetition checks (only letters and digits are compared)."""
REPETITIVE_FROM = 0.3
"""A repeated n-gram share from this up flags the reply as repetitive."""
REPEATS_PREVIOUS_FROM = 0.5
"""A reply whose characters are this much covered by n-grams of the previous reply repeats it."""
CHINESE_MIN_KANJI = 8
"""A sentence with at least this many kanji and no kana reads as Chinese."""
EMBEDDED_LATIN_MAX_WORDS = 3

CUT_OFF_FINISH_REASONS = frozenset({"length", "max_tokens", "max_length", "token_limit"})


class PersonaExpectations(Protocol):
    """What the checks read from a persona; :class:`personas.Persona` satisfies it."""

    @property
    def register(self) -> str: ...

    @property
    def max_reply_chars(self) -> int | None: ...

    @property
    def char_name(self) -> str: ...

    @property
    def user_name(self) -> str: ...

    @property
    def first_person(self) -> Sequence[str]: ...

    @property
    def language(self) -> str: ...


# --- character classes -------------------------------------------------------------------------

# Kana letters and marks, without the middle dot ・ and the standalone (han)dakuten ゛゜.
_KANA = "\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_KANJI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005-\u3007"
_FULLWIDTH_ALNUM = "\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
# Runs (+), not single characters: _count removes them, and fewer matches are faster.
_KANA_RE = re.compile(f"[{_KANA}]+")
_KANJI_RE = re.compile(f"[{_KANJI}]+")
_JAPANESE_RE = re.compile(f"[{_KANA}{_KANJI}{_FULLWIDTH_ALNUM}]+")
_FULLWIDTH_DIGIT_RE = re.compile("[\uff10-\uff19]+")
_NOT_LETTER_RE = re.compile(r"[\W\d_]+")
_LATIN_WORD_RE = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")
# Characters that Japanese does not use but Chinese (simplified or traditional) uses all the time.
_CHINESE_ONLY_RE = re.compile(
    "[们們这這吗嗎呢么麼个说說对對时还进过为让讓给从问题吧你妳很她欢歡动灭听觉样我](?![々がら])"
)
_URL_RE = re.compile(r"(?:https?://|www\.)[\x21-\x7e]+|[\w.+-]+@[\w-]+\.[\w.]+", re.ASCII)
_URL_HINTS = ("http", "www.", "@")
_CONTENT_RE = re.compile(r"[^\W_]")  # a letter or a digit: the reply has something to say
_NOT_WORD_RE = re.compile(r"[\W_]+")

# --- sentences and register ------------------------------------------------------------------

# Sentences end at 。！？!? or a line break; a piece with an ellipsis, ・・ or a space is split
# again at those (…, ・・, "ｗ " after a laugh, ". " in English). Two passes: the second, with
# its look-behinds, is slow and rarely needed.
_SENTENCE_RE = re.compile(r"[^。！？!?\n]+[。！？!?]*|[。！？!?]+")
_SOFT_BREAK_HINT_RE = re.compile("[…‥・ 　\t]")
_SOFT_BREAK_RE = re.compile(r"…+|‥+|・{2,}|(?<=ｗ)[ 　]+|(?<=[\u3040-\u9fff]w)[ 　]+|(?<=\.)\s+")
_QUOTED_RE = re.compile(r"「[^「」]*」|『[^『』]*』|“[^”]*”|《[^《》]*》|【[^【】]*】")
_QUOTE_PLACEHOLDER = "〓"
# Stripped from a sentence's end before reading it: punctuation, laughs (ｗ, 笑), and emoji
# (symbols U+2600-U+27BF such as ♪★❤, pictographs U+1F000-U+1FAFF, variation selector 16).
_ENDING_NOISE = " \t\n\u3000。．.、,，！!？?～〜ー…‥・ｗw笑^_()（）\"'”’:;=*-\ufe0f"
_POLITE_ENDING_RE = re.compile(
    "(?:です|ます|ました|ません|ませんでした|でした|ましょう|でしょう|ございます|ございました"
    "|ください|下さい|ませ|まして)"
    "(?:か|ね|よ|わ|の|な|ねえ|よね|けど|けれど|けれども|が|から|ので|し|っけ|って)*$"
)
_CASUAL_ENDING_RE = re.compile(
    "(?:[よねなさぞぜわのんだたるうくいすつぬむぶぐかてろえあしぇぁぃぅぉっゃゅょ]"
    "|かも|っけ|けど|けれど|から|じゃん|好き)$"
)
# Endings that say nothing about register: はい/いいえ alone, a name with its honorific.
_NEUTRAL_SENTENCES = frozenset({"はい", "いいえ"})
_NEUTRAL_ENDINGS = ("さん", "くん", "ちゃん", "さま", "様", "氏")
# Colloquial words that make a sentence casual even when its ending says nothing (マジで最高！).
_CASUAL_WORD_RE = re.compile("マジ|まじで|めっちゃ|めちゃくちゃ|ヤバ|やば|すげ")

# --- leakage ---------------------------------------------------------------------------------

_FIXED_LEAK_PATTERNS: tuple[tuple[str, str | None], ...] = (
    # (pattern, normalised name or None to use the match itself)
    (
        r"###[ \t]*(?:指示|応答|入力|システム|ユーザー|アシスタント|(?i:instruction|response"
        r"|input|system|user|assistant|human))",
        None,
    ),
    (r"<</?SYS>>", None),
    (r"\[/?INST\]", None),
    (r"<\|im_start\|>(?:system|user|assistant)?", "<|im_start|>"),
    (r"<\|im_end\|>", None),
    (r"<start_of_turn>(?:user|model)?", "<start_of_turn>"),
    (r"<end_of_turn>", None),
    (
        r"<\|start_header_id\|>(?:system|user|assistant)?<\|end_header_id\|>",
        "<|start_header_id|>",
    ),
    (r"<\|[A-Za-z_]{2,30}\|>", None),
    (r"</?s>|<bos>|<eos>", None),
)
_BLANKS_RE = re.compile(r"[ \t]+")
_ROLE_WORDS = r"(?i:user|assistant|human|system)|ユーザー|ユーザ|アシスタント|システム"
_BARE_ROLE_LINE = r"(?m)^[ \t]*(?:指示|応答|USER|ASSISTANT|HUMAN)[ \t\r]*$"

# --- persona breaks --------------------------------------------------------------------------

_BREAK_PHRASES_RE = re.compile(
    "AIとして|ＡＩとして|AIなので|AIですので|AIである|AIだから|AIアシスタント|人工知能として"
    "|言語モデル|(?:私|僕|わたし)は(?:AI|ＡＩ|人工知能|プログラム|チャットボット)"
    "|ロールプレイ|(?:OpenAI|Anthropic|Google|Meta)(?:によって|が)(?:開発|訓練|作)"
    "|(?i:as an ai\\b|as a language model|an ai language model|i am an ai\\b|i'm an ai\\b"
    "|large language model)"
)
# Lower-case strings one of which every phrase above contains: most replies skip the regex.
_BREAK_KEYS = (
    "ai",
    "ａｉ",
    "人工知能",
    "言語モデル",
    "ロールプレイ",
    "プログラム",
    "チャットボット",
    "language model",
    "anthropic",
    "google",
    "meta",
)
# Every alternative starts with a literal character, so the search skips ahead in C; the match
# is then spelled canonically with _FIRST_PERSON_SPELLINGS. おれ/ぼく need a particle after them
# (お礼 is おれい); 私 is not 私立, 私服, 公私 ….
_FIRST_PERSON_RE = re.compile(
    "俺|オレ|おれ(?=[はがもの、。！？っにをとだ])|僕|ボク|ぼく(?=[はがもの、。！？っにをとだ])"
    "|私(?<!公私)(?![立鉄服的用物生語有営費事情利欲刑設淑見])|わたくし|わたし|ワタシ"
    "|あたし|アタシ|儂|拙者|吾輩|我輩"
)
_FIRST_PERSON_SPELLINGS: Mapping[str, str] = {
    "おれ": "俺",
    "オレ": "俺",
    "ぼく": "僕",
    "ボク": "僕",
    "わたし": "私",
    "わたくし": "私",
    "ワタシ": "私",
    "アタシ": "あたし",
    "わし": "儂",
    "ワシ": "儂",
    "我輩": "吾輩",
}


# --- public measuring functions ----------------------------------------------------------------


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split at 。！？!?, line breaks and ellipses; empty pieces dropped."""
    sentences: list[str] = []
    for piece in _SENTENCE_RE.findall(text):
        parts = _SOFT_BREAK_RE.split(piece) if _SOFT_BREAK_HINT_RE.search(piece) else (piece,)
        for part in parts:
            stripped = part.strip()
            if stripped and _CONTENT_RE.search(stripped):
                sentences.append(stripped)
    return sentences


def _count(pattern: re.Pattern[str], text: str) -> int:
    """Characters matched by ``pattern``; removing them and comparing lengths stays in C."""
    return len(text) - len(pattern.sub("", text))


def japanese_share(text: str) -> float | None:
    """Share of Japanese among the letters of ``text``; None when it has no letters.

    Full-width digits count as letters; URLs and mail addresses are left out. Kanji in a sentence
    that reads as Chinese count as foreign. In a reply with kana, a sentence with at most three
    Latin words (a title or a name: 「KICK BACK」, LiSA, a list item SPY×FAMILY) counts its Latin
    letters as Japanese.
    """
    if any(hint in text for hint in _URL_HINTS):
        text = _URL_RE.sub(" ", text)
    letters = len(_NOT_LETTER_RE.sub("", text)) + _count(_FULLWIDTH_DIGIT_RE, text)
    if letters == 0:
        return None
    japanese = _count(_JAPANESE_RE, text)
    reply_has_kana = _KANA_RE.search(text) is not None
    has_chinese_only = _CHINESE_ONLY_RE.search(text) is not None
    embeds_latin = reply_has_kana and _LATIN_WORD_RE.search(text) is not None
    for sentence in split_sentences(text):
        has_kana = _KANA_RE.search(sentence) is not None
        if not has_kana or has_chinese_only:
            kanji = _count(_KANJI_RE, sentence)
            reads_chinese = (not has_kana and kanji >= CHINESE_MIN_KANJI) or (
                has_chinese_only
                and _CHINESE_ONLY_RE.search(sentence) is not None
                and _count(_KANA_RE, sentence) * 4 < kanji
            )
            if reads_chinese:
                japanese -= kanji
        if embeds_latin:
            words = _LATIN_WORD_RE.findall(sentence)
            if 0 < len(words) <= EMBEDDED_LATIN_MAX_WORDS:
                japanese += sum(len(word) for word in words)
    return min(1.0, japanese / letters)


def _looks_chinese(text: str) -> bool:
    kana = _count(_KANA_RE, text)
    kanji = _count(_KANJI_RE, text)
    latin = sum(len(word) for word in _LATIN_WORD_RE.findall(text))
    return kanji > latin and kana * 4 < kanji


def _is_emoji(char: str) -> bool:
    return "\u2600" <= char <= "\u27bf" or "\U0001f000" <= char <= "\U0001faff"


def _strip_ending(sentence: str) -> str:
    ending = sentence.rstrip(_ENDING_NOISE)
    while ending and _is_emoji(ending[-1]):
        ending = ending[:-1].rstrip(_ENDING_NOISE)
    return ending


def sentence_register(sentence: str) -> str | None:
    """``polite`` or ``casual`` from the sentence ending; None when the ending says neither."""
    # Only the tail matters; slicing keeps the end-anchored searches short on long sentences.
    ending = _strip_ending(sentence)[-16:]
    if not ending or ending in _NEUTRAL_SENTENCES or ending.endswith(_NEUTRAL_ENDINGS):
        return None
    if _POLITE_ENDING_RE.search(ending):
        return "polite"
    if _CASUAL_ENDING_RE.search(ending) or _CASUAL_WORD_RE.search(sentence):
        return "casual"
    return None


def _unquote(text: str) -> str:
    return _QUOTED_RE.sub(_QUOTE_PLACEHOLDER, text)


def _polite_share_of(sentences: Sequence[str]) -> tuple[float | None, int]:
    polite = casual = 0
    for sentence in sentences:
        kind = sentence_register(sentence)
        if kind == "polite":
            polite += 1
        elif kind == "casual":
            casual += 1
    classified = polite + casual
    return (polite / classified if classified else None), classified


def polite_share(text: str) -> tuple[float | None, int]:
    """(polite / classified sentence endings, number classified); quotes are ignored."""
    return _polite_share_of(split_sentences(_unquote(text)))


def register_of(share: float | None) -> str:
    """The register word for a polite share."""
    if share is None:
        return "unknown"
    if share < CASUAL_BELOW:
        return "casual"
    if share >= POLITE_FROM:
        return "polite"
    return "mixed"


@functools.lru_cache(maxsize=64)
def _leak_patterns(names: tuple[str, ...]) -> tuple[tuple[re.Pattern[str], str | None], ...]:
    role_words = _ROLE_WORDS
    extra = "|".join(re.escape(name) for name in names if name)
    if extra:
        role_words = f"{role_words}|{extra}"
    role_label = rf"(?m)^[ \t>*]*(?:\*\*)?(?P<role>{role_words})(?:\*\*)?[ \t]*[:：]"
    patterns: list[tuple[re.Pattern[str], str | None]] = [
        (re.compile(pattern), name) for pattern, name in _FIXED_LEAK_PATTERNS
    ]
    patterns.append((re.compile(role_label), "role"))
    patterns.append((re.compile(_BARE_ROLE_LINE), "bare"))
    return tuple(patterns)


def _leak_spans(text: str, names: tuple[str, ...]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for pattern, name in _leak_patterns(names):
        for match in pattern.finditer(text):
            if name == "role":
                marker = f"{match.group('role')}:"
            elif name == "bare":
                marker = match.group(0).strip()
            elif name is None:
                marker = match.group(0)
                if " " in marker or "\t" in marker:
                    marker = _BLANKS_RE.sub(" ", marker)
            else:
                marker = name
            spans.append((match.start(), match.end(), marker))
    spans.sort()
    return spans


def _markers(spans: Iterable[tuple[int, int, str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(marker for _start, _end, marker in spans))


def _without_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    if not spans:
        return text
    parts: list[str] = []
    position = 0
    for start, end, _marker in spans:
        if start >= position:
            parts.append(text[position:start])
        position = max(position, end)
    parts.append(text[position:])
    return "".join(parts)


def find_leaks(text: str, names: Sequence[str] = ()) -> tuple[str, ...]:
    """Prompt-format markers and role labels in ``text``, first appearance first.

    ``names`` are extra role names (the persona's character and user) that count as a leak when
    they open a line followed by a colon.
    """
    return _markers(_leak_spans(text, tuple(names)))


def strip_leaks(text: str, names: Sequence[str] = ()) -> str:
    """``text`` with the leaked markers (not the text around them) removed."""
    return _without_spans(text, _leak_spans(text, tuple(names)))


def _squeeze(text: str) -> str:
    """Letters and digits only (whitespace and punctuation removed): what repetition compares."""
    return _NOT_WORD_RE.sub("", text)


def _ngrams(text: str, n: int) -> list[str]:
    return [text[start : start + n] for start in range(len(text) - n + 1)]


def _covered(starts: Iterable[int], n: int) -> int:
    """Characters covered by n-grams at ``starts`` (ascending), overlaps counted once."""
    covered = 0
    covered_until = 0
    for start in starts:
        end = start + n
        covered += end - (start if start > covered_until else covered_until)
        covered_until = end
    return covered


def _repeated_share_of(squeezed: str, grams: list[str], n: int) -> float:
    if len(squeezed) <= n:
        return 0.0
    seen: set[str] = set()
    remember = seen.add
    # ``remember`` returns None, so a new n-gram is recorded and left out in one step.
    repeated = [start for start, gram in enumerate(grams) if gram in seen or remember(gram)]
    return _covered(repeated, n) / len(squeezed) if repeated else 0.0


def repeated_ngram_share(text: str, n: int = NGRAM) -> float:
    """Share of the letters and digits covered by n-grams already seen earlier in ``text``."""
    squeezed = _squeeze(text)
    return _repeated_share_of(squeezed, _ngrams(squeezed, n), n)


def _copies(reply: str, grams: list[str], before: str, n: int) -> bool:
    if not before or not _CONTENT_RE.search(reply):
        return False
    if reply == before:
        return True
    if len(reply) < n or len(before) < n:
        return False
    previous_grams = {before[start : start + n] for start in range(len(before) - n + 1)}
    if previous_grams.isdisjoint(grams):
        return False
    starts = [start for start, gram in enumerate(grams) if gram in previous_grams]
    return _covered(starts, n) / len(reply) >= REPEATS_PREVIOUS_FROM


def copies_previous(text: str, previous: str, n: int = NGRAM) -> bool:
    """Whether ``text`` is the previous reply again: equal, or half covered by its n-grams."""
    reply = _squeeze(text)
    return _copies(reply, _ngrams(reply, n), _squeeze(previous), n)


def canonical_first_person(word: str) -> str:
    """The spelling kurabe compares first persons by: わたし → 私, ボク → 僕, オレ → 俺."""
    return _FIRST_PERSON_SPELLINGS.get(word, word)


def _first_persons_of(unquoted: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for match in _FIRST_PERSON_RE.finditer(unquoted):
        found.setdefault(canonical_first_person(match.group(0)), None)
    return tuple(found)


def first_persons(text: str) -> tuple[str, ...]:
    """First-person pronouns used outside quotes, canonical spelling, first appearance first."""
    return _first_persons_of(_unquote(text))


def _persona_breaks_of(text: str, unquoted: str, first_person: Sequence[str]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    lowered = text.lower()
    if any(key in lowered for key in _BREAK_KEYS):
        for match in _BREAK_PHRASES_RE.finditer(text):
            found.setdefault(match.group(0), None)
    if first_person:
        allowed = {canonical_first_person(word) for word in first_person}
        for pronoun in _first_persons_of(unquoted):
            if pronoun not in allowed:
                found.setdefault(f"一人称 {pronoun}", None)
    return tuple(found)


def find_persona_breaks(text: str, first_person: Sequence[str] = ()) -> tuple[str, ...]:
    """Out-of-character phrases, then ``一人称 X`` for each first person not in ``first_person``."""
    return _persona_breaks_of(text, _unquote(text), first_person)


# --- the report --------------------------------------------------------------------------------


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


def run_checks(
    text: str,
    persona: PersonaExpectations | None = None,
    *,
    previous_reply: str | None = None,
    finish_reason: str | None = None,
    completion_tokens: int | None = None,
) -> CheckReport:
    """Run every check on one reply; ``persona`` None checks only what needs no persona."""
    names: tuple[str, ...] = ()
    if persona is not None:
        names = tuple(name for name in (persona.char_name, persona.user_name) if name)
    spans = _leak_spans(text, names)
    leaks = _markers(spans)
    content = _without_spans(text, spans)
    is_empty = _CONTENT_RE.search(content) is None
    chars = len("".join(text.split()))
    chars_per_token = (
        len(text) / completion_tokens if completion_tokens and completion_tokens > 0 else None
    )

    flags: list[CheckFlag] = []
    if is_empty:
        flags.append(CheckFlag(FLAG_EMPTY, "空 empty", "The reply has no words."))
    if finish_reason is not None and finish_reason.lower() in CUT_OFF_FINISH_REASONS:
        flags.append(
            CheckFlag(
                FLAG_CUT_OFF,
                "途切れ cut off",
                f"Stopped by the token limit (finish reason {finish_reason!r}).",
            )
        )
    if leaks:
        flags.append(
            CheckFlag(
                FLAG_TEMPLATE_LEAK,
                f"漏れ leak {leaks[0]}",
                "Prompt-format markers or role labels in the reply: " + ", ".join(leaks),
            )
        )
    if is_empty:
        return CheckReport(
            japanese_share=None,
            polite_share=None,
            register="unknown",
            chars=chars,
            sentences=0,
            chars_per_token=chars_per_token,
            leaks=leaks,
            repeated_ngram_share=0.0,
            repeats_previous=False,
            persona_breaks=(),
            flags=tuple(flags),
        )

    share_japanese = japanese_share(content)
    expects_japanese = persona is None or persona.language.lower().startswith("ja")
    if expects_japanese and share_japanese is not None and share_japanese < NOT_JAPANESE_BELOW:
        drift = "Chinese" if _looks_chinese(content) else "English"
        flags.append(
            CheckFlag(
                FLAG_NOT_JAPANESE,
                f"日本語 {_percent(share_japanese)} not Japanese",
                f"Only {_percent(share_japanese)} of the letters are Japanese; reads as {drift}.",
            )
        )

    unquoted = _unquote(content)
    breaks = _persona_breaks_of(
        content, unquoted, persona.first_person if persona is not None else ()
    )
    if breaks:
        flags.append(
            CheckFlag(
                FLAG_OUT_OF_CHARACTER,
                f"キャラ崩れ OOC {breaks[0]}",
                "Steps out of character: " + ", ".join(breaks),
            )
        )

    sentences = split_sentences(unquoted)
    share_polite, classified = _polite_share_of(sentences)
    register = register_of(share_polite)
    expected_register = persona.register if persona is not None else "any"
    if (
        share_polite is not None
        and expected_register in ("casual", "polite")
        and register != expected_register
    ):
        if expected_register == "casual":
            label = f"丁寧語 polite {_percent(share_polite)}"
        else:
            label = f"タメ口 casual {_percent(1 - share_polite)}"
        flags.append(
            CheckFlag(
                FLAG_WRONG_REGISTER,
                label,
                f"The persona is {expected_register}; {_percent(share_polite)} of "
                f"{classified} sentence ending{'s' if classified != 1 else ''} are polite "
                "(です/ます).",
            )
        )

    limit = persona.max_reply_chars if persona is not None else None
    if limit is not None and chars > limit:
        flags.append(
            CheckFlag(
                FLAG_TOO_LONG,
                f"長い too long {chars}/{limit}",
                f"{chars} characters where the persona allows {limit}.",
            )
        )

    squeezed = _squeeze(content)
    grams = _ngrams(squeezed, NGRAM)
    repeated = _repeated_share_of(squeezed, grams, NGRAM)
    if repeated >= REPETITIVE_FROM:
        flags.append(
            CheckFlag(
                FLAG_REPETITIVE,
                f"繰り返し repetitive {_percent(repeated)}",
                f"{_percent(repeated)} of the reply repeats text that came earlier in it.",
            )
        )

    repeats = previous_reply is not None and _copies(
        squeezed, grams, _squeeze(strip_leaks(previous_reply, names)), NGRAM
    )
    if repeats:
        flags.append(
            CheckFlag(
                FLAG_REPEATS_PREVIOUS,
                "前と同じ repeats previous",
                "The reply mostly repeats the pane's previous reply.",
            )
        )

    return CheckReport(
        japanese_share=share_japanese,
        polite_share=share_polite,
        register=register,
        chars=chars,
        sentences=len(sentences),
        chars_per_token=chars_per_token,
        leaks=leaks,
        repeated_ngram_share=repeated,
        repeats_previous=repeats,
        persona_breaks=breaks,
        flags=tuple(flags),
    )
