"""The Markdown export, laid out like a hand-written comparison page (README, glossary): a score
table, then per model its verdict, note, settings, prompt, transcript and a table of ratings."""

from __future__ import annotations

from kurabe.export.sent import HIDDEN_SETTINGS, NOT_RECORDED, sent_lines, sent_value
from kurabe.export.view import BLIND_NOTICE, ExportView, PaneView, fmt, verdict_text


def _fence(text: str) -> str:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _code_block(text: str) -> str:
    fence = _fence(text)
    return f"{fence}\n{text}\n{fence}"


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(view: ExportView) -> str:
    info = view.session
    persona = info.persona
    out: list[str] = []
    title = f"# 比べ kurabe — session {info.id}"
    if info.scenario:
        title += f": {info.scenario.get('title', info.scenario_id)}"
    out.append(title)
    out.append("")
    if view.hide_names:
        out.append(f"> **{BLIND_NOTICE}**")
        out.append("")
    out.append(f"- Date: {info.created_at}")
    out.append(f"- Persona: {info.persona_id} ({persona.get('title', '')})")
    if info.scenario_id:
        out.append(f"- Scenario: {info.scenario_id}")
    out.append(f"- Rater: {info.rater}")
    blind_word = "no" if not info.blind else ("yes, revealed" if info.revealed else "yes")
    out.append(f"- Blind: {blind_word}")
    if info.seed is not None:
        out.append(f"- Seed: {info.seed}")
    out.append("")
    out.append("## Scores")
    out.append("")
    out.append(
        "| Pane | Model | Quality | Rated replies | Mean score | Best picks | tokens/s | chars/s |"
    )
    out.append("|---|---|---|---:|---:|---:|---:|---:|")
    for pane in view.panes:
        summary = pane.summary
        verdict = summary.verdict
        out.append(
            f"| {pane.pane.label} | {_md_cell(pane.name)} | "
            f"{verdict_text(verdict.verdict) if verdict else '-'} | {len(summary.scores)} | "
            f"{fmt(summary.mean_score, 2)} | {summary.wins} | "
            f"{fmt(summary.tokens_per_s)} | {fmt(summary.chars_per_s)} |"
        )
    out.append("")

    for pane in view.panes:
        out.append(f"## {pane.name}")
        out.append("")
        verdict = pane.summary.verdict
        out.append(f"Quality: {verdict_text(verdict.verdict) if verdict else '(no verdict)'}")
        if verdict and verdict.note:
            out.append("")
            out.append(f"Note: {verdict.note}")
        out.append("")
        sent = pane.sent
        if sent is not None:
            out.append(f"Temp: {sent_value(sent.value('temperature'))}")
            out.append("")
        prompt = f"Prompt:\n{persona.get('system', '')}"
        if view.persona_examples:
            prompt += f"\n\nExamples:\n{view.persona_examples}"
        out.append(_code_block(prompt))
        out.append("")
        out.append(_code_block(_settings_block(view, pane)))
        out.append("")
        template = pane.profile_settings.get("template")
        if template:
            out.append(_code_block(str(template)))
            out.append("")
        out.append(_code_block(_transcript_block(view, pane)))
        out.append("")
        rows = _reply_table(view, pane)
        if rows:
            out.extend(rows)
            out.append("")
    if view.judge_lines:
        out.extend(["## Judge and agreement", ""])
        out.extend(f"- {line}" for line in view.judge_lines)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _settings_block(view: ExportView, pane_view: PaneView) -> str:
    persona = view.session.persona
    pane = pane_view.pane
    backend = pane_view.backend_settings
    profile = pane_view.profile_settings
    sent = pane_view.sent
    summary = pane_view.summary
    lines = []
    if not view.hide_names:
        lines.append(str(backend.get("model_file") or pane.model))
    lines.append(f"{fmt(summary.tokens_per_s)} tokens/s")
    lines.append(f"{fmt(summary.chars_per_s)} chars/s")
    lines.append("")
    lines.append(str(persona.get("user_name", "ユーザー")))
    lines.append(str(persona.get("char_name", "アシスタント")))
    lines.append("")
    if view.hide_names:
        lines.append(f"Sampling: {HIDDEN_SETTINGS}")
    elif sent is None:
        lines.append(f"Sampling: {NOT_RECORDED}")
    else:
        lines.extend(sent_lines(sent))
    if not view.hide_names:
        local = pane.backend == "llama_cpp"
        extra = [
            ("Backend", pane.backend),
            ("Prompt format", profile.get("prompt_format") if local else None),
            ("Examples", pane_view.examples_given),
            ("Chat template", backend.get("chat_template")),
            ("Quantization", backend.get("quantization")),
            ("Model size", backend.get("model_size")),
            ("Fingerprint", backend.get("model_fingerprint")),
            ("GPU layers offloaded", backend.get("gpu_layers_offloaded")),
            ("Context", profile.get("n_ctx") if local else None),
            ("Base URL", profile.get("base_url")),
            ("llama-cpp-python", backend.get("llama_cpp_python")),
            ("SDK", backend.get("sdk")),
            ("Header", pane.header),
        ]
        for label, value in extra:
            if value not in (None, ""):
                lines.append(f"{label}: {value}")
    return "\n".join(lines)


def _transcript_block(view: ExportView, pane: PaneView) -> str:
    persona = view.session.persona
    user = persona.get("user_name", "ユーザー")
    char = persona.get("char_name", "アシスタント")
    parts = []
    for turn in view.turns:
        parts.append(f"**{user}:** {turn.turn.text}")
        shown = turn.replies.get(pane.pane.position)
        if shown is None:
            parts.append(f"**{char}:** [no reply]")
            continue
        text = f"**{char}:** {shown.reply.text}"
        if not shown.reply.completed:
            text += f"\n[{shown.state_words}]"
        parts.append(text)
    return "\n\n".join(parts)


def _reply_table(view: ExportView, pane: PaneView) -> list[str]:
    labels = view.score_labels
    rows = [
        "| Turn | State | Score | Tags | Note | Checks | tokens/s | chars/s | Engine |",
        "|---:|---|---|---|---|---|---:|---:|---|",
    ]
    for turn in view.turns:
        shown = turn.replies.get(pane.pane.position)
        if shown is None:
            continue
        reply = shown.reply
        rating = shown.latest_rating
        score = ""
        if rating is not None and rating.score is not None:
            score = f"{rating.score} {labels.get(rating.score, '')}".strip()
        tags = ", ".join(rating.tags) if rating else ""
        note = _md_cell(rating.note) if rating else ""
        report = reply.check_report
        flags = ", ".join(report.flag_codes) if report is not None else ""
        rows.append(
            f"| {turn.turn.idx + 1} | {_md_cell(shown.state_words)} | {score} | {tags} | {note} | "
            f"{flags} | {fmt(reply.tokens_per_s)} | {fmt(reply.chars_per_s)} | "
            f"{'; '.join(reply.figures.engine_notes())} |"
        )
    return rows if len(rows) > 2 else []
