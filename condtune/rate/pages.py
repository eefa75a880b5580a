"""HTML for the rating page, as plain Python functions.

Every value that reaches the page passes through :func:`h` (``html.escape`` with quotes), so
model text such as ``<script>`` shows as text. Inline CSS and JS carry a per-response nonce
that the server's Content-Security-Policy requires: even an escaping slip could not run script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import urlencode

from condtune.rate.store import Item, Pair, Progress

SCORE_KEYS = "1234567890"


def h(value: object) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class PageText:
    """Wording shown to raters."""

    title: str = "condtune: rate completions"
    question: str = "How good is this completion?"
    low_label: str = "worst"
    high_label: str = "best"
    ab_question: str = "Which completion is better?"


CSS = """
*{box-sizing:border-box} body{font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header a{color:#9cc4ff} header .who{margin-left:auto}
main{max-width:960px;margin:1.2em auto;padding:0 1em}
.progress{display:flex;gap:.8em;align-items:center;margin:.4em 0 1em;color:#555;font-size:.92em}
progress{flex:1;height:.8em;accent-color:#3b6fd8}
.box{background:#fff;border:1px solid #d9dce3;border-radius:8px;padding:.9em 1.1em;white-space:pre-wrap;overflow-wrap:anywhere}
.prompt{background:#eef0f4;color:#444;margin-bottom:.6em} .label{font-size:.78em;text-transform:uppercase;letter-spacing:.06em;color:#777;margin:.8em 0 .25em}
.completion{border-left:4px solid #3b6fd8;min-height:3em} .empty{color:#999;font-style:italic}
.ab{display:grid;grid-template-columns:1fr 1fr;gap:1em} .ab .completion.b{border-left-color:#d8793b}
h2{font-size:1.1em;margin:1.2em 0 .5em}
.buttons{display:flex;flex-wrap:wrap;gap:.45em;margin:.8em 0;align-items:center}
button{font:inherit;border:1px solid #b9bfcc;background:#fff;border-radius:6px;padding:.45em .8em;cursor:pointer;min-width:3.2em}
button:hover,button:focus{background:#e3ebfb;border-color:#3b6fd8;outline:none} button.skip{color:#666;margin-left:auto}
kbd{font:.72em ui-monospace,monospace;background:#eef0f4;border:1px solid #ccd;border-radius:3px;padding:0 .3em;margin-left:.35em;color:#555}
.scale-end{font-size:.85em;color:#666} .saved{color:#1c7c3c;font-size:.9em} .hint{color:#777;font-size:.85em}
form.start{display:grid;gap:.7em;max-width:420px} input[type=text]{font:inherit;padding:.45em;border:1px solid #b9bfcc;border-radius:6px}
.error{background:#fff1f0;border:1px solid #e0a39d;border-radius:8px;padding:1em}
"""

JS = """
(function(){
  var sent = false;
  document.querySelectorAll('form.rating').forEach(function(f){
    f.addEventListener('submit', function(e){ if (sent) { e.preventDefault(); return; } sent = true; f.classList.add('sending'); });
  });
  document.addEventListener('keydown', function(e){
    if (e.ctrlKey || e.metaKey || e.altKey || /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
    var k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    var btns = document.querySelectorAll('form.rating button[data-keys]');
    for (var i = 0; i < btns.length; i++) {
      if (btns[i].dataset.keys.split(' ').indexOf(k) >= 0) { e.preventDefault(); btns[i].form.requestSubmit(btns[i]); return; }
    }
  });
})();
"""


def layout(title: str, body: str, *, nonce: str, header: str = "") -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{h(title)}</title><style nonce="{h(nonce)}">{CSS}</style></head><body>'
        f"<header><strong>condtune rate</strong>{header}</header><main>{body}</main>"
        f'<script nonce="{h(nonce)}">{JS}</script></body></html>'
    )


def _header(rater: str, mode: str) -> str:
    other = "ab" if mode == "score" else "score"
    name = "A/B comparisons" if other == "ab" else "scores"
    return (
        f"<span>mode: {'score each completion' if mode == 'score' else 'A/B'}</span>"
        f'<a id="switch-mode" href="/rate?{h(urlencode({"rater": rater, "mode": other}))}">switch to {name}</a>'
        f'<span class="who">rater: <b id="rater">{h(rater)}</b> · <a href="/">change</a></span>'
    )


def _progress(p: Progress, mode: str, saved: bool) -> str:
    unit = "items" if mode == "score" else "pairs"
    return (
        f'<div class="progress"><progress max="{max(p.total, 1)}" value="{p.done}"></progress>'
        f'<span id="progress">{p.done} / {p.total} {unit} done by you</span>'
        f"<span>· {p.ratings} ratings from {p.raters} rater{'s' if p.raters != 1 else ''}</span>"
        + ('<span class="saved" id="saved">✓ saved</span>' if saved else "")
        + "</div>"
    )


def _text(label: str, text: str, cls: str) -> str:
    inner = h(text) if text.strip() else '<span class="empty">(empty)</span>'
    return f'<div class="label">{h(label)}</div><div class="box {cls}">{inner}</div>'


def _hidden(rater: str, mode: str, target: str, *, token: str) -> str:
    fields = {"rater": rater, "mode": mode, "target": target, "token": token}
    return "".join(f'<input type="hidden" name="{k}" value="{h(v)}">' for k, v in fields.items())


def score_page(
    item: Item,
    rater: str,
    *,
    scale: tuple[int, int],
    token: str,
    progress: Progress,
    text: PageText,
    saved: bool,
    nonce: str,
) -> str:
    lo, hi = scale
    buttons = []
    for i, value in enumerate(range(lo, hi + 1)):
        key = SCORE_KEYS[i] if i < len(SCORE_KEYS) else ""
        label = f"{value:+d}" if lo < 0 else str(value)
        kbd = f"<kbd>{key}</kbd>" if key else ""
        buttons.append(
            f'<button type="submit" name="value" value="{value}" data-keys="{key}" id="score-{value}">{label}{kbd}</button>'
        )
    body = (
        _progress(progress, "score", saved)
        + f"<h2>{h(text.question)}</h2>"
        + _text("prompt", item.prompt, "prompt")
        + _text("completion", item.completion, "completion")
        + f'<form class="rating" method="post" action="/rate">{_hidden(rater, "score", item.item_id, token=token)}'
        + f'<div class="buttons"><span class="scale-end">{h(text.low_label)}</span>{"".join(buttons)}'
        + f'<span class="scale-end">{h(text.high_label)}</span>'
        + '<button type="submit" name="value" value="skip" class="skip" data-keys="s" id="skip">skip<kbd>S</kbd></button></div></form>'
        + f'<p class="hint">Keys: {SCORE_KEYS[0]}–{SCORE_KEYS[min(hi - lo, 9)]} give {lo}…{min(hi, lo + 9)}, S skips.</p>'
    )
    return layout(text.title, body, nonce=nonce, header=_header(rater, "score"))


def ab_page(pair: Pair, rater: str, *, token: str, progress: Progress, text: PageText, saved: bool, nonce: str) -> str:
    btn = [
        ("left", "A is better", "a ArrowLeft", "A / ←"),
        ("tie", "tie", "t ArrowDown", "T / ↓"),
        ("right", "B is better", "b ArrowRight", "B / →"),
    ]
    buttons = "".join(
        f'<button type="submit" name="value" value="{v}" data-keys="{k}" id="choose-{v}">{lbl}<kbd>{hint}</kbd></button>'
        for v, lbl, k, hint in btn
    )
    body = (
        _progress(progress, "ab", saved)
        + f"<h2>{h(text.ab_question)}</h2>"
        + _text("prompt", pair.prompt, "prompt")
        + '<div class="ab"><div>'
        + _text("A", pair.left.completion, "completion a")
        + "</div><div>"
        + _text("B", pair.right.completion, "completion b")
        + "</div></div>"
        + f'<form class="rating" method="post" action="/rate">{_hidden(rater, "ab", str(pair.pair_id), token=token)}'
        + f'<div class="buttons">{buttons}'
        + '<button type="submit" name="value" value="skip" class="skip" data-keys="s" id="skip">skip<kbd>S</kbd></button></div></form>'
    )
    return layout(text.title, body, nonce=nonce, header=_header(rater, "ab"))


def done_page(rater: str, mode: str, *, progress: Progress, text: PageText, nonce: str) -> str:
    unit = "items" if mode == "score" else "pairs"
    body = (
        _progress(progress, mode, False)
        + f'<h2 id="done">All done: you have answered all {progress.total} {unit}. Thank you, {h(rater)}!</h2>'
        + "<p>Switch mode above, or close this page.</p>"
    )
    return layout(text.title, body, nonce=nonce, header=_header(rater, mode))


def home_page(
    n_items: int,
    n_pairs: int,
    raters: list[str],
    *,
    scale: tuple[int, int],
    text: PageText,
    nonce: str,
    error: str = "",
) -> str:
    who = ", ".join(h(r) for r in raters) or "none yet"
    body = (
        (f'<p class="error" id="error">{h(error)}</p>' if error else "")
        + f"<h2>{h(text.title)}</h2>"
        + f"<p>{n_items} completions to score on a scale of {scale[0]} to {scale[1]}, and {n_pairs} A/B pairs. Raters so far: {who}.</p>"
        + '<form class="start" method="get" action="/rate">'
        + '<label>Your name <input type="text" name="rater" id="name" required maxlength="40" autofocus></label>'
        + '<label><input type="radio" name="mode" value="score" checked> score each completion</label>'
        + '<label><input type="radio" name="mode" value="ab" id="mode-ab"> A/B: which of two is better</label>'
        + '<button type="submit" id="start">Start rating</button></form>'
    )
    return layout(text.title, body, nonce=nonce)


def error_page(status: int, reason: str, message: str, *, nonce: str) -> str:
    body = f'<div class="error"><h2>{status} {h(reason)}</h2><p id="message">{h(message)}</p><p><a href="/">back to the start page</a></p></div>'
    return layout(f"{status} {reason}", body, nonce=nonce)
