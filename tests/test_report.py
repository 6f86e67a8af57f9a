"""The examiner's HTML report (verifier/report.py) and `modelseal-verify --report`:
content, escaping of log-derived text, self-containment, the SVG chart, determinism,
and that the file is written only, and atomically, after a successful verification."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

import verifier as v
from tests.helpers import bundle_bytes, bundle_doc
from tests.logsim import DAY, T0, Log, Signer, sample_log
from verifier import cli
from verifier.report import render_report
from verifier.report_chart import month_counts

LOG, PIPE = sample_log(models=6, seed="report")
VKEY = LOG.log_key.vkey
END = T0 + 400 * DAY
EVIL = "<script>alert(1)</script>"


def verified(log: Log, t: int = END, **kw: int) -> v.VerifiedInventory:
    trusted = kw.pop("trusted", None)
    tcp = None if trusted is None else v.Checkpoint.parse_note(log.checkpoint(trusted),
                                                               [log.log_key.key])
    return v.verify_bundle(log.bundle(t, trusted=trusted, **kw), [log.log_key.key], trusted=tcp)


RESULT = verified(LOG)
HTML = render_report(RESULT)


def months_log() -> Log:
    """Events spread over several months, with empty months between."""
    log = Log.create(seed="months")
    pipe = Signer("ml-pipeline", b"months-pipe")
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    for i, gap in enumerate([0, 20, 20, 75, 1, 1, 160, 3]):  # days before each event
        log.clock += gap * DAY
        if i < 2:
            log.submit(pipe, "register", name=f"m{i}", owner="o", model_type="ml_model",
                       tier="low", purpose="p", status="active", metadata={})
        else:
            log.submit(pipe, "event", model=f"m{i % 2}", event_type="retrained", payload={})
    return log


def hostile_log() -> Log:
    """Attacker-chosen text in every field the report shows."""
    log = Log.create(seed="evil")
    pipe = Signer("<i>pipe</i>", b"evil-pipe")
    ids = iter(f"stmt-evil-{i:08d}" for i in range(100))  # logsim's ids embed the actor name
    log.submit(log.admin, "grant", key=pipe.vkey, role="writer")
    log.submit(pipe, "register", id=next(ids), name=EVIL,
               owner='"><img src=x onerror=alert(2)>', model_type="<style>*{}</style>",
               tier="<b>", purpose="a\n</details><script>x", status="<u>active</u>",
               metadata={"<k>": "<v>"})
    # event types are lower-case identifiers (the name profile), so the markup goes in the payload
    ev = log.submit(pipe, "event", id=next(ids), model=EVIL, event_type="retrained",
                    payload={"<a href='https://evil.example/'>": "</td></tr></table><script>",
                             "note": "<svg onload=alert(3)>"})
    log.submit(pipe, "tag", id=next(ids), model=EVIL, tag="<iframe>", target=v.snapshot_hash(ev))
    log.submit(pipe, "register", id=next(ids), name="<g>", owner="o", model_type="group",
               tier="t", purpose="", status="active", metadata={})
    log.submit(pipe, "member_add", id=next(ids), group="<g>", member=EVIL, role="<object>")
    log.submit(log.admin, "revoke", name="<i>pipe</i>", reason="<marquee>")
    return log


# -- HTML structure --------------------------------------------------------------------------

VOID = {"meta", "br", "link", "img", "hr", "input", "wbr"}
URL_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "formaction", "poster", "data",
             "background", "ping", "cite", "manifest"}


class Structure(HTMLParser):
    """Records tags and attributes, and fails on unbalanced or misnested elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []
        self.errors: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += [(tag, k, val) for k, val in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += [(tag, k, val) for k, val in attrs]

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def structure(html: str) -> Structure:
    p = Structure()
    p.feed(html)
    p.close()
    return p


def assert_self_contained(html: str) -> None:
    p = structure(html)
    assert p.errors == [] and p.stack == []
    assert p.doctype.lower() == "doctype html"
    assert p.tags["html"] == p.tags["head"] == p.tags["body"] == p.tags["style"] == 1
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base", "form"):
        assert p.tags[tag] == 0, tag
    for tag, name, val in p.attrs:
        if tag == "a" and name == "href" and (val or "").startswith("#"):
            continue  # a link within the report (findings to timelines) loads nothing
        assert name not in URL_ATTRS, (tag, name, val)
        assert not name.startswith("on"), (tag, name)
        assert name != "style", tag
        assert "url(" not in (val or "") and "javascript:" not in (val or "").lower()
    assert "<script" not in html.lower()
    style = html[html.index("<style>"):html.index("</style>")]
    assert "url(" not in style and "@import" not in style


# -- content -----------------------------------------------------------------------------------

def test_structure_and_no_external_assets() -> None:
    """Valid nesting, one inline style sheet, no script, no URLs of any kind."""
    assert_self_contained(HTML)
    assert "http://" not in HTML and "https://" not in HTML and "src=" not in HTML
    assert "default-src 'none'" in HTML  # a CSP forbidding any fetch, as defence in depth
    assert "@media print" in HTML


def test_summary() -> None:
    """Origin, checkpoint size and root, signer, point in time, and every check, in order."""
    cp = RESULT.checkpoint
    assert escape(cp.origin) in HTML
    assert f"size {cp.size}, root <code>{v.encoding.b64encode(cp.root)}</code>" in HTML
    assert escape(LOG.log_key.vkey) in HTML
    assert v.timeutil.iso(END) in HTML
    assert f"size {RESULT.size} (entries 0..{RESULT.size - 1})" in HTML
    assert "none supplied" in HTML
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", HTML))
    assert facts["Checkpoint signed at"] == f"<code>{v.timeutil.iso(RESULT.checkpoint_time)}</code>"
    assert RESULT.checkpoint_time == RESULT.checkpoint.time and RESULT.checkpoint_time >= END
    assert facts["What is proven about time"] == escape(RESULT.time_statement())
    assert v.timeutil.iso(RESULT.proven_until) in facts["What is proven about time"]
    items = re.findall(r"<li>(.*?)</li>", HTML.split('<ol class="checks">')[1].split("</ol>")[0])
    assert items == [escape(c) for c in RESULT.checks] and len(items) >= 5
    assert f"all {len(RESULT.checks)} checks" in HTML


def test_keys() -> None:
    """Every grant with its holder, role, key, grant and revocation."""
    table = HTML.split('<table class="keys">')[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == len(RESULT.inventory.key_history) == 2
    admin, pipe = rows
    assert "risk-admin" in admin and "admin" in admin and LOG.admin.vkey in admin
    assert "pill active" in admin and "revoked" not in admin
    assert "ml-pipeline" in pipe and "writer" in pipe and PIPE.vkey in pipe
    rec = RESULT.inventory.key_history[1]
    assert rec.revoked_at is not None
    assert "pill revoked" in pipe and "rotated" in pipe
    assert v.timeutil.iso(rec.revoked_at) in pipe and v.timeutil.iso(rec.granted_at) in pipe


def test_inventory_table() -> None:
    """One row per model with owner, tier, status, last event, times and tags."""
    table = HTML.split('<table class="inventory">')[1].split("</table>")[0]
    rows = re.findall(r'<tr data-model="([^"]*)">(.*?)</tr>', table, re.DOTALL)
    assert [name for name, _ in rows] == sorted(RESULT.models)
    assert len(rows) == 7
    for name, row in rows:
        m = RESULT.models[name]
        for text in (m.owner, m.tier, m.status, m.last_event_type, m.model_type):
            assert f">{escape(text)}<" in row, (name, text)
        assert v.timeutil.iso(m.last_event_at) in row
        if m.last_validation_at is None:
            assert "never" in row
        else:
            assert v.timeutil.iso(m.last_validation_at) in row
        assert ("production" in row) == bool(m.tags)
    assert "pill retired" in dict(rows)["model_04"]


def test_timelines() -> None:
    """One collapsible <details> per model with every timeline entry."""
    timelines = RESULT.inventory.timelines
    assert timelines is not None
    blocks = re.findall(r'<details data-model="([^"]*)">(.*?)</details>', HTML, re.DOTALL)
    assert [name for name, _ in blocks] == sorted(RESULT.models)
    for name, block in blocks:
        items = timelines[name]
        assert "<summary>" in block and f"{len(items)} entr" in block
        assert block.count("<tr>") == len(items) + 1  # and the header row
        for it in items:
            assert f"<td>{it.index}</td>" in block
            assert f'title="{it.snapshot}">{it.snapshot[:12]}</code>' in block
            assert escape(it.actor) in block
    m01 = dict(blocks)["model_01"]
    assert "accuracy=0.91, rows=1000" in m01 and "by=independent-validation" in m01
    assert "production \u2192 " in m01 and "retrained" in m01 and "validated" in m01
    suite = dict(blocks)["fraud_suite"]
    assert "member model_00 (component)" in suite and "member model_00 (split)" in suite


def test_chart_one_month() -> None:
    """The sample log is all in January 2025: one bar with all its timeline items."""
    total = sum(len(t) for t in (RESULT.inventory.timelines or {}).values())
    assert HTML.count("<svg") == 1 and HTML.count('class="bar"') == 1
    assert 'data-month="2025-01"' in HTML and f"<title>2025-01: {total} events</title>" in HTML
    assert 'role="img"' in HTML and '<title id="chart-title">' in HTML
    assert ">Month (UTC)</text>" in HTML and ">Events</text>" in HTML


def test_chart_months_with_gaps() -> None:
    """A bar for every calendar month from first to last event, empty months included."""
    result = verified(months_log())
    html = render_report(result)
    assert_self_contained(html)
    times = [it.recorded_at for t in (result.inventory.timelines or {}).values() for it in t]
    by_month = Counter(datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m")
                       for ns in times)
    first, last = min(by_month), max(by_month)
    months = []
    y, m = int(first[:4]), int(first[5:])
    while f"{y:04d}-{m:02d}" <= last:
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    assert re.findall(r'class="bar" data-month="([^"]+)"', html) == months
    assert len(months) > len(by_month) >= 4  # some months are empty
    for month in months:
        n = by_month.get(month, 0)
        assert f"<title>{month}: {n} event{'' if n == 1 else 's'}</title>" in html
    assert [c for _, c in month_counts(times)] == [by_month.get(mo, 0) for mo in months]


def test_month_counts_year_boundary() -> None:
    """Calendar months in UTC, across a new year."""
    dec = v.to_ns(datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC))
    feb = v.to_ns(datetime(2025, 2, 1, tzinfo=UTC))
    assert month_counts([dec, dec, feb]) == [((2024, 12), 2), ((2025, 1), 0), ((2025, 2), 1)]
    assert month_counts([]) == []


def test_escaping() -> None:
    """Every log-derived string is escaped: no markup from the log reaches the document."""
    result = verified(hostile_log())
    html = render_report(result)
    assert_self_contained(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower() and EVIL not in html
    for raw in ("<img", "<style>*", "<b>", "<svg onload", "<iframe>", "<object>", "<marquee>",
                "<i>pipe", "<u>active", "</details><script", "<a href"):
        assert raw not in html, raw
    for text in ('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;', "&lt;iframe&gt;",
                 "&lt;i&gt;pipe&lt;/i&gt;", "&lt;marquee&gt;", "&lt;u&gt;active&lt;/u&gt;",
                 "&lt;svg onload=alert(3)&gt;", "(&lt;object&gt;)"):
        assert text in html, text
    p = structure(html)
    assert p.tags["svg"] == 1 and p.tags["details"] == 2 and p.tags["img"] == 0
    assert ('tr', 'data-model', EVIL) in p.attrs  # the attribute round-trips as text


def test_trusted_and_partial() -> None:
    """A trusted checkpoint is shown; an earlier point in time shows the inventory then."""
    t = T0 + 10 * LOG.step + 1
    result = verified(LOG, t, trusted=4)
    html = render_report(result)
    assert_self_contained(html)
    assert result.trusted is not None
    assert f"size 4, root <code>{v.encoding.b64encode(result.trusted.root)}</code>" in html
    assert "extends the trusted checkpoint 4" in html
    assert len(re.findall(r"<tr data-model=", html)) == len(result.models) < 7


def test_time_facts_partial_and_before_genesis() -> None:
    """A bundle cut before the next entry says the inventory is proven until just before it;
    one before the genesis says so in the header and in what is proven about time."""
    t = T0 + 10 * LOG.step + 1
    result = verified(LOG, t)
    html = render_report(result)
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html))
    assert result.proven_until == T0 + 11 * LOG.step - 1
    assert v.timeutil.iso(result.proven_until) in facts["What is proven about time"]
    assert "before the log&#x27;s genesis" not in html and "before the log's genesis" not in html
    early = verified(LOG, T0 - 1)
    html = render_report(early)
    assert_self_contained(html)
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", html))
    assert early.before_genesis and early.genesis_at == T0
    assert facts["What is proven about time"] == escape(early.time_statement())
    assert "before the log" in facts["What is proven about time"]
    assert "before the log&#x27;s genesis, at " in html or "before the log's genesis, at " in html


def test_empty_inventory() -> None:
    """Before any model: no table rows, no chart, a note instead; still well formed."""
    result = verified(LOG, T0)
    html = render_report(result)
    assert_self_contained(html)
    assert result.size == 1 and "No models were registered" in html
    assert "<svg" not in html and "No model events were recorded" in html


def test_deterministic() -> None:
    """Same input, same bytes; no generation time in the file."""
    again = render_report(verified(LOG))
    assert again == HTML
    years = set(re.findall(r"\b(20\d\d)-\d\d-\d\d", HTML))
    assert years == {"2025", "2026"}  # log times and END only


# -- modelseal-verify --report ------------------------------------------------------------------

@pytest.fixture()
def bundles(tmp_path: Path) -> dict[str, Path]:
    good = LOG.bundle(END)
    doc = bundle_doc(good)
    doc["entries"][2], doc["entries"][3] = doc["entries"][3], doc["entries"][2]
    paths = {"good": tmp_path / "bundle.json", "tampered": tmp_path / "tampered.json"}
    paths["good"].write_bytes(good)
    paths["tampered"].write_bytes(bundle_bytes(doc))
    return paths


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_cli_report(capsys: pytest.CaptureFixture[str], bundles: dict[str, Path],
                    tmp_path: Path) -> None:
    """On success the report is written, whole, and named in the OK output."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    report = out_dir / "report.html"
    code, out, _ = run_main(capsys, str(bundles["good"]), "--key", VKEY, "--report", str(report))
    assert code == 0 and out.startswith("OK: ")
    assert out.rstrip("\n").endswith(f"\n  report: {report}")
    assert report.read_text(encoding="utf-8") == HTML
    assert [p.name for p in out_dir.iterdir()] == ["report.html"]  # no temp file left


def test_cli_report_json(capsys: pytest.CaptureFixture[str], bundles: dict[str, Path],
                         tmp_path: Path) -> None:
    """With --json the path is given as "report"; an old report is replaced."""
    report = tmp_path / "r.html"
    report.write_text("old")
    code, out, _ = run_main(capsys, str(bundles["good"]), "--key", VKEY, "--json",
                            "--report", str(report))
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["report"] == str(report)
    assert report.read_text(encoding="utf-8") == HTML
    code, out, _ = run_main(capsys, str(bundles["good"]), "--key", VKEY, "--json")
    assert code == 0 and "report" not in json.loads(out)


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_no_report_on_failure(capsys: pytest.CaptureFixture[str], bundles: dict[str, Path],
                                  tmp_path: Path, as_json: bool) -> None:
    """A tampered bundle writes nothing, and leaves an existing report untouched."""
    fresh, old = tmp_path / "new.html", tmp_path / "old.html"
    old.write_bytes(b"previous report")
    flags = ["--json"] if as_json else []
    for target in (fresh, old):
        code, out, _ = run_main(capsys, str(bundles["tampered"]), "--key", VKEY, *flags,
                                "--report", str(target))
        assert code == 1
        assert "report" not in out
    assert not fresh.exists() and old.read_bytes() == b"previous report"
    code, _, _ = run_main(capsys, str(bundles["good"]), "--key", "x+00000000+AA==", *flags,
                          "--report", str(fresh))
    assert code == 2 and not fresh.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bundle.json", "old.html", "tampered.json"]


@pytest.mark.parametrize("as_json", [False, True])
def test_cli_report_io_error(capsys: pytest.CaptureFixture[str], bundles: dict[str, Path],
                             tmp_path: Path, as_json: bool) -> None:
    """A report that cannot be written: exit 4 and one FAIL line, no traceback."""
    flags = ["--json"] if as_json else []
    for target in (tmp_path / "missing" / "r.html", tmp_path):
        code, out, err = run_main(capsys, str(bundles["good"]), "--key", VKEY, *flags,
                                  "--report", str(target))
        assert code == 4
        if as_json:
            doc = json.loads(out)
            assert doc["error"] == "io_error" and doc["reason"].startswith("cannot write ")
            assert err.count("\n") == 1  # and one JSON error object on stderr
            assert json.loads(err)["error"]["exit_code"] == 4
            assert json.loads(err)["error"]["message"] == doc["reason"]
        else:
            assert err == ""
            assert out.startswith(f"FAIL: cannot write {target}: ") and out.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.json", "tampered.json"]


def test_cli_report_refuses_input(capsys: pytest.CaptureFixture[str],
                                  bundles: dict[str, Path]) -> None:
    """--report naming the bundle itself is a usage error; the bundle is kept."""
    before = bundles["good"].read_bytes()
    code, out, err = run_main(capsys, str(bundles["good"]), "--key", VKEY,
                              "--report", str(bundles["good"]))
    assert code == 2 and out == "" and "would overwrite" in err
    assert bundles["good"].read_bytes() == before
