"""The listening folder: report.json (everything measured) and index.html (audio elements, the texts, timings,
the checks, the sweep)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    "padding:4px 8px;vertical-align:top}.fail{color:#b00;font-weight:bold}.ok{color:#070}"
)


def _num(value: object, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _checks(checks: list[dict]) -> str:
    rows = "".join(
        f"<tr><td class={'ok' if c['ok'] else 'fail'}>{'ok' if c['ok'] else 'FAIL'}</td><td>{escape(c['name'])}</td>"
        f"<td>{escape(c['detail'])}</td><td>{escape(c['assumption'])}</td></tr>"
        for c in checks
    )
    return f"<h2>Model checks</h2><table><tr><th></th><th>check</th><th>found</th><th>assumed</th></tr>{rows}</table>"


def _renders(report: dict) -> str:
    by_item: dict[str, dict[str, dict]] = {}
    for r in report.get("renders", []):
        by_item.setdefault(r["item"], {})[r["line"]] = r
    rows = []
    for item in report.get("items", []):
        cells = []
        for line, r in by_item.get(item["id"], {}).items():
            if not r["ok"]:
                cells.append(f"<td class=fail>{escape(line)}: {escape(r.get('error') or 'failed')}</td>")
                continue
            cer = r.get("cer")
            cells.append(
                f"<td>{escape(line)}<br><audio controls preload=none src='{escape(r['listen_file'])}'></audio><br>"
                f"first audio {_num(r['ttfa_s'])} s, total {_num(r['total_s'])} s, audio {_num(r['audio_s'], '.2f')} s"
                + (f"<br>ASR: {escape(r.get('transcript') or '')} (CER {_num(cer, '.2f')})" if cer is not None else "")
                + "</td>"
            )
        rows.append(
            f"<tr><td><b>{escape(item['id'])}</b> ({escape(item['language'])})<br>{escape(item['text'])}"
            f"<br><small>read as: {escape(item.get('normalized') or '')}</small></td>{''.join(cells)}</tr>"
        )
    return f"<h2>Contact-centre set</h2><table>{''.join(rows)}</table>"


def _sweep(report: dict) -> str:
    sweep = report.get("sweep")
    if not sweep:
        return ""
    rows = "".join(
        f"<tr><td>{lv['concurrency']}</td><td>{lv['requests']}</td><td>{lv['failed']}</td>"
        f"<td>{_num(lv['ttfa_p50_s'])}</td><td>{_num(lv['ttfa_p95_s'])}</td><td>{lv['underrun_streams']}</td>"
        f"<td>{_num(lv['audio_s_per_s'], '.2f')}</td><td class={'ok' if lv['passed'] else 'fail'}>"
        f"{'pass' if lv['passed'] else 'miss'}</td></tr>"
        for lv in sweep["levels"]
    )
    head = "<tr><th>streams</th><th>requests</th><th>failed</th><th>TTFA p50 s</th><th>TTFA p95 s</th>"
    head += "<th>underruns</th><th>audio s/s</th><th></th></tr>"
    return (
        f"<h2>Concurrency sweep</h2><p>target: p95 time to first audio within {sweep['ttfa_target_s']} s, no "
        f"underrun; most streams that passed: <b>{sweep['best']}</b></p><table>{head}{rows}</table>"
        f"<pre>{escape(report.get('capacity', {}).get('table', ''))}</pre>"
    )


def write(folder: Path, report: dict) -> tuple[Path, Path]:
    """report.json and index.html into `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "report.json"
    data.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    asr = report.get("asr") or {}
    asr_html = (
        f"<h2>Intelligibility ({escape(str(asr.get('model')))})</h2><pre>{escape(json.dumps(asr.get('cer'), indent=1))}</pre>"
        if asr
        else ""
    )
    html = (
        f"<!doctype html><meta charset=utf-8><title>tts-qualify</title><style>{STYLE}</style>"
        f"<h1>tts-qualify: {escape(str(report.get('model')))}</h1>"
        f"<p>{escape(report.get('started', ''))}; API {escape(str(report.get('api')))}, vLLM "
        f"{escape(str(report.get('vllm')))}; result: <b class={'ok' if report.get('ok') else 'fail'}>"
        f"{'ok' if report.get('ok') else 'FAILED'}</b></p>"
        + _checks(report.get("checks", []))
        + _renders(report)
        + asr_html
        + _sweep(report)
    )
    index = folder / "index.html"
    index.write_text(html, encoding="utf-8")
    return data, index
