"""A reply's speed figures (tokens/s, chars/s) from its counts and timings."""

from __future__ import annotations

from kurabe.store.records import ReplyFigures


def compute_figures(
    chars: int,
    *,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    ttft_s: float | None = None,
    total_s: float | None = None,
    context_size: int | None = None,
) -> ReplyFigures:
    """tokens/s = completion tokens / (total − ttft); chars/s = characters / (total − ttft).

    Without a time to first token the whole duration is used. When the generation time is too
    short to measure (a one-chunk reply), chars/s falls back to characters / total so that it can
    always be shown; tokens/s is then left unknown.
    """
    generation = None
    if total_s is not None:
        generation = total_s - ttft_s if ttft_s is not None else total_s
    tokens_per_s = None
    chars_per_s = None
    if generation is not None and generation > 1e-3:
        if completion_tokens:
            tokens_per_s = completion_tokens / generation
        chars_per_s = chars / generation
    elif total_s is not None and total_s > 1e-3:
        chars_per_s = chars / total_s
    return ReplyFigures(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        ttft_s=ttft_s,
        total_s=total_s,
        chars=chars,
        tokens_per_s=tokens_per_s,
        chars_per_s=chars_per_s,
        context_size=context_size,
    )
