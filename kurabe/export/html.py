"""The HTML export: one self-contained page, the panes side by side per turn, as the rater saw
them, with the charts and the judge's section."""

from __future__ import annotations

import html

from kurabe.analysis.charts import speed_svg, strength_svg
from kurabe.export.sent import HIDDEN_SETTINGS, NOT_RECORDED, sent_summary
from kurabe.export.view import BLIND_NOTICE, ExportView, PaneView, fmt, verdict_text

_CSS = """
body{font-family:"Hiragino Sans","Noto Sans JP","Yu Gothic",sans-serif;margin:1.5rem;
color:#222;background:#fafafa}
h1{font-size:1.4rem}.notice{background:#fff3cd;border:1px solid #e0c060;padding:.6rem;
border-radius:6px}
table.summary{border-collapse:collapse;margin:1rem 0}table.summary td,table.summary th{
border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.turn{margin:1.2rem 0;padding:.8rem;background:#fff;border:1px solid #ddd;border-radius:8px}
.user{font-weight:bold;margin-bottom:.6rem}
.panes{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr));gap:.6rem}
.pane{border:1px solid #ccc;border-radius:6px;padding:.5rem;background:#fdfdfd}
.pane.best{border:2px solid #2a9d4a;background:#f0fbf3}.pane h3{font-size:.9rem;margin:0 0 .4rem}
.text{white-space:pre-wrap;word-break:break-word}.meta{font-size:.75rem;color:#666;
margin-top:.4rem}.incomplete,.state.failed{color:#b00020;font-size:.8rem}
.state{font-size:.8rem;color:#2a6}.state.incomplete{color:#b06000}.tag{display:inline-block;
background:#eef;border-radius:4px;padding:0 .3rem;margin-right:.2rem;font-size:.75rem}
.flag{display:inline-block;background:#fee;border-radius:4px;padding:0 .3rem;
margin-right:.2rem;font-size:.75rem}.pick{font-size:.85rem;color:#2a6;margin-top:.4rem}
"""


def _sent_cell(view: ExportView, pane: PaneView) -> str:
    if view.hide_names:
        return HIDDEN_SETTINGS
    sent = pane.sent
    cell = NOT_RECORDED if sent is None else sent_summary(sent)
    if pane.examples_given:
        cell += f"; examples {pane.examples_given}"
    return cell


def charts_html(view: ExportView) -> str:
    """The HTML export's charts: Bradley–Terry strength from this session's picks (every rater,
    as the leaderboard counts them) and speed per pane, as inline SVG
    (:mod:`kurabe.analysis.charts`).

    Self-contained: no script, no stylesheet rule (inline attributes only), nothing fetched.
    Names are hidden as everywhere else in a blind export.
    """
    strength = view.strength_bars
    speed = view.speed_bars
    figure = '<figure style="margin:.8rem 0;overflow-x:auto">'
    parts = ['<section class="charts">', "<h2>Charts</h2>"]
    if strength:
        title = "Bradley–Terry strength (1000 = average) with its 95% interval"
        parts.append(f"{figure}{strength_svg(strength, title)}</figure>")
    else:
        parts.append('<p class="chart-empty">Bradley–Terry strength: no picks yet.</p>')
    if speed:
        parts.append(f"{figure}{speed_svg(speed, 'Speed: tok/s and 字/s per pane')}</figure>")
    else:
        parts.append('<p class="chart-empty">Speed: no completed replies yet.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def agreement_html(view: ExportView) -> str:
    """The judge and agreement section ("" when nobody judged or rated)."""
    if not view.judge_lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in view.judge_lines)
    return f'<section class="agreement"><h2>Judge and agreement</h2><ul>{items}</ul></section>'


def to_html(view: ExportView) -> str:
    info = view.session
    labels = view.score_labels
    esc = html.escape
    title = f"比べ kurabe — session {info.id}"
    if info.scenario:
        title += f": {info.scenario.get('title', info.scenario_id)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ja"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if view.hide_names:
        parts.append(f'<p class="notice">{esc(BLIND_NOTICE)}</p>')
    persona = info.persona
    parts.append(
        f"<p>Persona <b>{esc(info.persona_id)}</b> — {esc(str(persona.get('title', '')))}"
        f" · rater {esc(info.rater)} · {esc(info.created_at)}</p>"
    )
    parts.append(f'<pre class="text">{esc(str(persona.get("system", "")))}</pre>')
    if view.persona_examples:
        parts.append(
            f'<p>Example exchanges</p><pre class="text examples">{esc(view.persona_examples)}</pre>'
        )
    parts.append(
        '<table class="summary"><tr><th>Pane</th><th>Model</th><th>Quality</th><th>Note</th>'
        "<th>Mean score</th><th>tokens/s</th><th>chars/s</th><th>Sent</th></tr>"
    )
    for pane in view.panes:
        summary = pane.summary
        verdict = summary.verdict
        parts.append(
            f"<tr><td>{esc(pane.pane.label)}</td><td>{esc(pane.name)}</td>"
            f"<td>{esc(verdict_text(verdict.verdict) if verdict else '')}</td>"
            f"<td>{esc(verdict.note if verdict else '')}</td>"
            f"<td>{fmt(summary.mean_score, 2)}</td>"
            f"<td>{fmt(summary.tokens_per_s)}</td><td>{fmt(summary.chars_per_s)}</td>"
            f'<td class="sent">{esc(_sent_cell(view, pane))}</td></tr>'
        )
    parts.append("</table>")
    parts.append(charts_html(view))
    n = len(view.panes)
    for turn_view in view.turns:
        turn = turn_view.turn
        pick = turn_view.pick
        parts.append(f'<section class="turn" id="turn-{turn.idx + 1}">')
        parts.append(
            f'<div class="user">{turn.idx + 1}. {esc(str(persona.get("user_name", "ユーザー")))}: '
            f"{esc(turn.text)}</div>"
        )
        parts.append(f'<div class="panes" style="--n:{n}">')
        for pane in view.panes:
            position = pane.pane.position
            shown = turn_view.replies.get(position)
            best = pick is not None and pick.outcome == "pane" and pick.winner == position
            parts.append(f'<div class="pane{" best" if best else ""}">')
            parts.append(
                f"<h3>{esc(pane.pane.label)} · {esc(pane.name)}{' ★' if best else ''}</h3>"
            )
            if shown is None:
                parts.append('<div class="incomplete">no reply</div></div>')
                continue
            reply = shown.reply
            state = shown.state
            parts.append(
                f'<div class="text" data-reply="{reply.id}" data-state="{state}">'
                f"{esc(reply.text)}</div>"
            )
            parts.append(f'<div class="state {state}">{esc(shown.state_words)}</div>')
            rating = shown.latest_rating
            if rating is not None:
                bits = []
                if rating.score is not None:
                    bits.append(f"<b>{rating.score}</b> {esc(labels.get(rating.score, ''))}")
                bits.extend(f'<span class="tag">{esc(t)}</span>' for t in rating.tags)
                if rating.note:
                    bits.append(esc(rating.note))
                parts.append(f'<div class="meta">{" ".join(bits)}</div>')
            report = reply.check_report
            if report is not None and report.flags:
                badges = " ".join(
                    f'<span class="flag" title="{esc(flag.detail)}">{esc(flag.label)}</span>'
                    for flag in report.flags
                )
                parts.append(f'<div class="meta">{badges}</div>')
            japanese_share = report.japanese_share if report is not None else None
            parts.append(
                f'<div class="meta">{reply.chars} chars · {fmt(reply.chars_per_s)} chars/s · '
                f"{fmt(reply.tokens_per_s)} tok/s · TTFT {fmt(reply.ttft_s, 2)} s"
                + "".join(f" · {esc(note)}" for note in reply.figures.engine_notes())
                + (f" · 日本語 {japanese_share * 100:.0f}%" if japanese_share is not None else "")
                + "</div>"
            )
            parts.append("</div>")
        parts.append("</div>")
        if pick is not None and pick.outcome != "pane":
            word = "tie" if pick.outcome == "tie" else "all bad"
            parts.append(f'<div class="pick">pick: {word}</div>')
        parts.append("</section>")
    parts.append(agreement_html(view))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
