"""The examiner's HTML report of a verified bundle: one self-contained, deterministic file.

No script, no external fonts, images, styles or links: an inline style sheet, an
inline SVG chart, and a Content-Security-Policy that forbids loading anything.
Every piece of text that comes from the log is escaped with ``html.escape``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from html import escape
from typing import Any

from .bundle import VerifiedInventory
from .cosignature import witness_time_text
from .encoding import b64encode
from .findings import Finding, Findings
from .replay import Inventory, KeyRecord, ModelState, TimelineItem
from .scope import describe_scope
from .report_chart import events_chart
from .names import visible
from .timeutil import from_ns, iso
from .witnessed import Witnessed

_BRIEF = 160  # characters of an entry's detail shown in a timeline

_CSS = """
:root{--ink:#1c2430;--muted:#5b6675;--line:#d5dbe3;--soft:#f4f6f9;--accent:#1f4e8c;
--ok:#1d6b3a;--okbg:#e7f4ec;--warn:#8a4b00;--warnbg:#fdf1e1}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;
border-bottom:2px solid var(--accent);color:var(--accent)}h3{font-size:15px;margin:18px 0 6px}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:12px;
overflow-wrap:anywhere}
.muted{color:var(--muted)}.text{white-space:pre-line}
.banner{margin:16px 0;padding:10px 14px;border:1px solid var(--ok);border-left-width:6px;
background:var(--okbg);color:var(--ok);font-weight:600}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:6px 18px;margin:0}
dl.facts dt{font-weight:600;color:var(--muted)}dl.facts dd{margin:0;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid var(--line);
overflow-wrap:anywhere}
th{background:var(--soft);font-weight:600;border-bottom:2px solid var(--line)}
tbody tr:nth-child(even) td{background:#fafbfc}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;border:1px solid}
.pill.active{color:var(--ok);background:var(--okbg)}
.pill.retired,.pill.revoked{color:var(--warn);background:var(--warnbg)}
.pill.other{color:var(--muted);background:var(--soft)}
.pill.high{color:#9b1c1c;background:#fde8e8}.pill.medium{color:var(--warn);background:var(--warnbg)}
.pill.low{color:var(--muted);background:var(--soft)}
ol.checks{margin:0;padding-left:22px}ol.checks li{margin:2px 0}
ol.checks li::marker{color:var(--ok);font-weight:700}
details{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:0 12px}
details[open]{padding-bottom:8px}
summary{cursor:pointer;padding:8px 0;font-weight:600}
summary .muted{font-weight:400}
.chart{width:100%;max-width:760px;height:auto;display:block}
.chart .bar{fill:var(--accent)}.chart .grid{stroke:var(--line)}
.chart .axis{stroke:var(--ink)}.chart text{font-size:11px;fill:var(--muted)}
.chart .value{fill:var(--ink)}.chart .axis-label{font-size:12px;fill:var(--ink)}
footer{margin-top:36px;padding-top:10px;border-top:1px solid var(--line);color:var(--muted);
font-size:12px}
@media print{
@page{size:A4 landscape;margin:14mm}
body{font-size:10.5pt}main{max-width:none;padding:0}
h2{break-after:avoid}tr,li,.chart{break-inside:avoid}
thead{display:table-header-group}
details{border:none;padding:0}summary{list-style:none}
.banner,.pill,th,tbody tr:nth-child(even) td{-webkit-print-color-adjust:exact;
print-color-adjust:exact}
}
@media print{details::details-content{content-visibility:visible;display:contents}}
"""


def _e(value: object) -> str:
    """Escaped text of any value (attacker-controllable: names, payloads, purposes...)."""
    return escape(visible(str(value)), quote=True)


def _time(ns: int | None) -> str:
    if ns is None:
        return '<span class="muted">never</span>'
    stamp = from_ns(ns).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{stamp}" title="{iso(ns)}">{stamp[:10]} {stamp[11:19]}</time>'


def _pill(text: str, known: Iterable[str] = ("active", "retired", "revoked")) -> str:
    cls = text if text in known else "other"
    return f'<span class="pill {cls}">{_e(text)}</span>'


def _table(head: Iterable[str], rows: Iterable[str], cls: str) -> str:
    ths = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join(rows)
    return f'<table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>\n{body}</tbody></table>'


def _brief(item: TimelineItem) -> str:
    d = item.detail
    if item.op == "tag":
        text = f"{d.get('tag')} \u2192 {str(d.get('target'))[:12]}\u2026"
    elif item.op in ("member_add", "member_remove"):
        extra = d.get("role") or d.get("reason")
        text = f"member {d.get('member')}" + (f" ({extra})" if extra else "")
    else:
        text = ", ".join(f"{k}={_compact(v)}" for k, v in sorted(d.items()))
    if len(text) > _BRIEF:
        text = text[:_BRIEF - 1] + "\u2026"
    return _e(text) if text else '<span class="muted">\u2014</span>'


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _summary(r: VerifiedInventory) -> str:
    cp = r.checkpoint
    signers = "<br>".join(f"{_e(k.name)} <code>{_e(k.vkey)}</code>" for k in cp.signed_by)
    trusted = ('<span class="muted">none supplied</span>' if r.trusted is None else
               f"size {r.trusted.size}, root <code>{_e(b64encode(r.trusted.root))}</code>")
    span = f"entries 0..{r.size - 1}" if r.size else "no entries"
    facts = [
        ("Log origin", _e(cp.origin)),
        ("Checkpoint", f"size {cp.size}, root <code>{_e(b64encode(cp.root))}</code>"),
        ("Signed by", signers),
        ("Checkpoint signed at", f"<code>{_e(iso(r.checkpoint_time))}</code>"),
        ("Point in time", f"<code>{_e(iso(r.time))}</code>"),
        ("What is proven about time", _e(r.time_statement())),
        ("Tree at that time", f"size {r.size} ({span}), root <code>{_e(b64encode(r.root))}</code>"),
        ("Trusted checkpoint", trusted),
    ]
    if r.witnessed is not None:
        facts.append(("Witnesses", _witnesses(r.witnessed)))
    if r.trusted_witnessed is not None and r.trusted_witnessed.cosignatures:
        facts.append(("Witnesses of the trusted checkpoint", _witnesses(r.trusted_witnessed)))
    if cp.extensions:
        facts.append(("Checkpoint extensions", "<br>".join(_e(x) for x in cp.extensions)))
    return "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)


def _witnesses(w: Witnessed) -> str:
    """Who cosigned, when (their own signed times), and what that attests."""
    rows = "<br>".join(
        f"{_e(c.witness.name)} at <code>{_e(witness_time_text(c.timestamp))}</code> "
        f"<code>{_e(c.witness.vkey())}</code>" for c in w.cosignatures)
    return f"{rows or 'none'}<br>threshold {w.threshold}: {_e(w.statement())}"


def _key_row(k: KeyRecord) -> str:
    state = _pill("revoked" if k.revoked_at is not None else "active")
    revoked = "" if k.revoked_at is None else (
        f"{_time(k.revoked_at)}<br>by {_e(k.revoked_by)}"
        + (f"<br><span class=\"muted\">{_e(k.reason)}</span>" if k.reason else ""))
    scope = ("role preset: " if k.scope is None else "") + describe_scope(k.effective_scope)
    return (f"<tr><td>{_e(k.name)}</td><td>{_e(k.role)}</td><td>{_e(scope)}</td><td>{state}</td>"
            f"<td><code>{_e(k.vkey)}</code></td><td>{_time(k.granted_at)}<br>by "
            f"{_e(k.granted_by)}</td><td>{revoked}</td></tr>\n")


def _policy(inv: Inventory) -> str:
    """The controlled vocabulary's history: each policy put in force or lifted."""
    if not inv.policy_history:
        return '<p class="muted">No policy: any event type was accepted.</p>'
    rows = (f"<tr><td>{r.index}</td><td>{_time(r.at)}</td><td>{_e(r.by)}</td><td>"
            + ("lifted: any event type" if r.policy is None else "<br>".join(
                f"{_e(t)}" + (f" (requires {_e(', '.join(rule.required))})" if rule.required
                              else "") for t, rule in sorted(r.policy.events.items())))
            + "</td></tr>\n" for r in inv.policy_history)
    return _table(("Entry", "Set (UTC)", "By", "Allowed event types"), rows, "policy")


def _model_row(m: ModelState) -> str:
    tags = ", ".join(_e(t) for t in sorted(m.tags)) or '<span class="muted">\u2014</span>'
    return (f'<tr data-model="{_e(m.name)}"><td><strong>{_e(m.name)}</strong><br>'
            f'<span class="muted">{_e(m.model_type)}</span></td><td>{_e(m.owner)}</td>'
            f"<td>{_e(m.tier)}</td><td>{_pill(m.status, ('active', 'retired'))}</td>"
            f"<td>{_e(m.last_event_type)}</td><td>{_time(m.last_event_at)}</td>"
            f"<td>{_time(m.last_validation_at)}</td><td>{tags}</td></tr>\n")


def _anchor(name: str) -> str:
    """The id of a model's timeline: derived from its name's hash (a name may hold any
    character an id may not), the same in every report."""
    return "model-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def _finding_row(f: Finding) -> str:
    entries = "<br>".join(
        f'<code title="{_e(e.snapshot)}">{_e(e.snapshot[:12])}</code> #{e.index} '
        f"{_e(e.what)} by {_e(e.actor)}, {_time(e.recorded_at)}" for e in f.entries)
    missing = ", ".join(_e(x) for x in f.missing)
    if missing:
        entries += ("<br>" if entries else "") + f"missing: {missing}"
    severity = _pill(f.severity, ("high", "medium", "low"))
    return (f'<tr data-rule="{_e(f.profile)}/{_e(f.rule)}"><td>{severity}</td>'
            f'<td>{_e(f.profile)}<br><span class="muted">'
            f'{_e(f.rule)}</span></td><td><a href="#{_anchor(f.model)}"><bdi>{_e(f.model)}'
            f"</bdi></a></td><td>{_e(f.message)}</td><td>{entries}</td></tr>\n")


def _findings(found: Findings) -> str:
    profiles = "".join(
        f"<li><strong>{_e(p.id)}</strong>: {_e(p.title)} <span class=\"muted\">({_e(p.source)}, "
        f"sha256 <code>{_e(p.sha256)}</code>)</span></li>" for p in found.profiles)
    head = ("Severity", "Profile / rule", "Model", "Finding", "Entries it rests on")
    table = (_table(head, map(_finding_row, found.items), "findings") if found.items
             else '<p class="muted">No findings.</p>')
    return (f'<section id="findings">\n<h2>Findings as of {_time(found.as_of)} UTC</h2>\n'
            f'<p class="muted">Profiles evaluated over the verified inventory and each '
            f"model's timeline (specs/findings.md). A finding is a fact about the log, not "
            f"a verdict on the model; each names the entries it rests on.</p>\n"
            f"<ul>{profiles}</ul>\n<p>{len(found.items)} finding"
            f'{"" if len(found.items) == 1 else "s"}.</p>\n{table}\n</section>\n')


def _timeline(m: ModelState, items: list[TimelineItem]) -> str:
    rows = (f"<tr><td>{it.index}</td><td>{_time(it.recorded_at)}</td>"
            f"<td>{_e(it.event_type or it.op)}</td><td>{_e(it.actor)}</td>"
            f'<td><code title="{_e(it.snapshot)}">{_e(it.snapshot[:12])}</code></td>'
            f"<td>{_brief(it)}</td></tr>\n" for it in items)
    members = ", ".join(f"{_e(k)}" + (f" ({_e(v)})" if v else "")
                        for k, v in sorted(m.members.items()))
    facts = [("Owner", _e(m.owner)), ("Type", _e(m.model_type)), ("Tier", _e(m.tier)),
             ("Purpose", f'<span class="text">{_e(m.purpose)}</span>'),
             ("Registered", _time(m.registered_at)),
             ("Model hash", f"<code>{_e(m.model_hash)}</code>")]
    if members:
        facts.append(("Members", members))
    plural = "entry" if len(items) == 1 else "entries"
    return (f'<details data-model="{_e(m.name)}"><summary>'
            f'<bdi id="{_anchor(m.name)}">{_e(m.name)}</bdi> '
            f'<span class="muted">\u2014 {len(items)} {plural}, {_e(m.status)}, last '
            f"{_e(m.last_event_type)}</span></summary>\n"
            f'<dl class="facts">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)}</dl>\n'
            + _table(("#", "Recorded (UTC)", "Event", "Actor", "Snapshot", "Detail"), rows,
                     "timeline") + "</details>\n")


def render_report(result: VerifiedInventory, findings: Findings | None = None) -> str:
    """The HTML report of a verified bundle, with a findings section if ``findings`` (of
    this same result) are given. Same input, same bytes (no generation time)."""
    inv, cp = result.inventory, result.checkpoint
    models = sorted(result.models.values(), key=lambda m: m.name)
    timelines = inv.timelines or {}
    times = [it.recorded_at for items in timelines.values() for it in items]
    title = f"Verification report \u2014 {cp.origin} as of {iso(result.time)}"
    key_head = ("Actor", "Role", "Scope", "State", "Key", "Granted (UTC)", "Revoked (UTC)")
    inv_head = ("Model", "Owner", "Tier", "Status", "Last event", "Last event at (UTC)",
                "Last validation (UTC)", "Tags")
    inventory = (_table(inv_head, map(_model_row, models), "inventory") if models
                 else '<p class="muted">No models were registered by this point in time.</p>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>Model inventory verification report</h1>
<div class="muted">Log <bdi>{_e(cp.origin)}</bdi> &middot; {
 "before the log's genesis, at " if result.before_genesis else "inventory as of "}{
 _time(result.time)} UTC &middot; {len(models)} model{"" if len(models) == 1 else "s"}</div>
<div class="banner" role="status">Verified: all {len(result.checks)} checks below passed.</div>
</header>
<section id="verified">
<h2>What was verified</h2>
<dl class="facts">
{_summary(result)}
</dl>
<h3>Checks run</h3>
<ol class="checks">
{"".join(f"<li>{_e(c)}</li>" for c in result.checks)}
</ol>
<h3>Keys and who held them</h3>
{_table(key_head, map(_key_row, inv.key_history), "keys")}
<h3>Policy: the event types the log accepted</h3>
{_policy(inv)}
</section>
<section id="inventory">
<h2>Inventory as of {_time(result.time)} UTC</h2>
{inventory}
</section>
{"" if findings is None else _findings(findings)}<section id="activity">
<h2>Model events per month</h2>
{events_chart(times)}
</section>
<section id="timelines">
<h2>Timelines</h2>
<p class="muted">Each model's entries in log order. Open a model to see them.</p>
{"".join(_timeline(m, timelines.get(m.name, [])) for m in models)}
</section>
<footer>
Written by <code>modelseal-verify</code> after the bundle above verified. This HTML file is
not itself signed: to rely on it, verify the bundle again with the log's public key.
</footer>
</main>
</body>
</html>
"""
