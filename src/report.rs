//! `sluice report run.json --html out.html`: a run report as a self-contained page (inline
//! SVG and CSS, no script, nothing fetched): a per-node timeline (running, gated, spilling,
//! finishing), memory over time against the limit with pressure changes and spills marked,
//! and the features on each edge.

use std::fmt::Write as _;

use serde_json::Value;

/// Why a report could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The JSON lacks a field a run report has, or it has the wrong type.
    #[error("not a sluice run report: {0}")]
    NotAReport(String),
}

const W: f64 = 960.0;
const LEFT: f64 = 170.0;
const ROW: f64 = 22.0;

fn colour(state: &str) -> &'static str {
    match state {
        "running" => "#5b9bf0",
        "gated" => "#f2c14e",
        "spilling" => "#f08a4b",
        "finishing" => "#9b7bea",
        _ => "#c8ced6",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn mib(b: f64) -> String {
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", b / (1u64 << 20) as f64)
    }
}

fn num(v: &Value, field: &str) -> Result<f64, ReportError> {
    v.get(field)
        .and_then(Value::as_f64)
        .ok_or_else(|| ReportError::NotAReport(format!("no number \"{field}\"")))
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, ReportError> {
    v.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| ReportError::NotAReport(format!("no list \"{field}\"")))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Ticks for an axis from 0 to `max`: about `n` round steps.
fn ticks(max: f64, n: usize) -> Vec<f64> {
    if max <= 0.0 {
        return vec![0.0];
    }
    let raw = max / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= max + 1e-9)
        .collect()
}

fn seconds(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// The page for `report` (the JSON `sluice run --report` writes).
pub fn html(report: &Value) -> Result<String, ReportError> {
    let elapsed = num(report, "elapsed_ms")?.max(1.0);
    let nodes = list(report, "nodes")?;
    let edges = list(report, "edges")?;
    let limit = num(report, "memory_limit_bytes")?;
    let name = report
        .get("workflow")
        .and_then(Value::as_str)
        .unwrap_or("workflow");
    let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let x = |ms: f64| LEFT + (ms / elapsed).clamp(0.0, 1.0) * (W - LEFT - 20.0);

    let mut page = String::new();
    let _ = writeln!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sluice run: {name}</title>\n<style>{CSS}</style></head><body>\n<h1>{name} <span class=\"{cls}\">{state}</span></h1>\n<p class=\"facts\">elapsed {el} · peak RSS {rss} of a {lim} limit · peak reserved {res} · {sf} spill file(s), {sb} · gate waits {gw:.0} ms</p>",
        name = esc(name),
        cls = if ok { "ok" } else { "failed" },
        state = if ok { "succeeded" } else { "failed" },
        el = seconds(elapsed),
        rss = mib(num(report, "peak_rss_bytes")?),
        lim = mib(limit),
        res = mib(num(report, "peak_reserved_bytes")?),
        sf = num(report, "spill_files")?,
        sb = mib(num(report, "spill_bytes")?),
        gw = num(report, "gate_wait_ms")?,
    );

    // ---- the timeline -----------------------------------------------------------------
    let axis = ticks(elapsed, 8);
    let h = 30.0 + nodes.len() as f64 * ROW + 24.0;
    let _ = writeln!(
        page,
        "<h2>Timeline</h2>\n<svg class=\"timeline\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\">"
    );
    for t in &axis {
        let _ = writeln!(
            page,
            "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"20\" y2=\"{1:.1}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"14\">{2}</text>",
            x(*t),
            h - 20.0,
            seconds(*t)
        );
    }
    let mut spills: Vec<(f64, String)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let y = 26.0 + i as f64 * ROW;
        let id = text(n, "id");
        let _ = writeln!(
            page,
            "<text class=\"node\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT - 8.0,
            y + 14.0,
            esc(id)
        );
        for span in n
            .get("timeline")
            .and_then(Value::as_array)
            .map_or(&[][..], |v| v)
        {
            let state = text(span, "state");
            let (a, b) = (num(span, "start_ms")?, num(span, "end_ms")?);
            if state == "spilling" {
                spills.push((a, id.to_string()));
            }
            let _ = writeln!(
                page,
                "<rect class=\"span\" data-node=\"{id}\" data-state=\"{state}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{id}: {state} {} – {}</title></rect>",
                x(a),
                y + 3.0,
                (x(b) - x(a)).max(1.0),
                ROW - 6.0,
                colour(state),
                seconds(a),
                seconds(b),
                id = esc(id),
            );
        }
    }
    let _ = writeln!(page, "</svg>");
    page.push_str("<p class=\"legend\">");
    for s in ["running", "gated", "spilling", "finishing"] {
        let _ = write!(page, "<i style=\"background:{}\"></i>{s} ", colour(s));
    }
    page.push_str("</p>\n");

    // ---- memory -------------------------------------------------------------------------
    let memory = report.get("memory");
    let points = memory
        .and_then(|m| m.get("points"))
        .and_then(Value::as_array)
        .map_or(&[][..], |v| v);
    let top = points
        .iter()
        .filter_map(|p| p.get("rss").and_then(Value::as_f64))
        .fold(limit, f64::max)
        * 1.05;
    let (mh, mtop) = (240.0, 20.0);
    let my = |b: f64| mtop + (1.0 - b / top.max(1.0)) * (mh - mtop - 24.0);
    let _ = writeln!(
        page,
        "<h2>Memory</h2>\n<svg class=\"memory\" viewBox=\"0 0 {W} {mh}\" width=\"{W}\" height=\"{mh}\">"
    );
    for t in &axis {
        let _ = writeln!(
            page,
            "<line class=\"grid\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2:.1}\"/><text class=\"tick\" x=\"{0:.1}\" y=\"{3:.1}\">{4}</text>",
            x(*t),
            mtop,
            mh - 24.0,
            mh - 8.0,
            seconds(*t)
        );
    }
    for b in ticks(top, 4) {
        let _ = writeln!(
            page,
            "<text class=\"node\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LEFT - 8.0,
            my(b) + 4.0,
            mib(b)
        );
    }
    let _ = writeln!(
        page,
        "<line class=\"limit\" x1=\"{LEFT}\" x2=\"{x2:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"limit-label\" x=\"{lx:.1}\" y=\"{ly:.1}\">limit {label}</text>",
        x2 = W - 20.0,
        y = my(limit),
        lx = W - 24.0,
        ly = my(limit) - 4.0,
        label = mib(limit)
    );
    for (field, class) in [("rss", "rss"), ("reserved", "reserved")] {
        let line: Vec<String> = points
            .iter()
            .filter_map(|p| {
                Some(format!(
                    "{:.1},{:.1}",
                    x(p.get("t_ms")?.as_f64()?),
                    my(p.get(field)?.as_f64()?)
                ))
            })
            .collect();
        let _ = writeln!(
            page,
            "<polyline class=\"{class}\" points=\"{}\"/>",
            line.join(" ")
        );
    }
    for mark in memory
        .and_then(|m| m.get("pressure"))
        .and_then(Value::as_array)
        .map_or(&[][..], |v| v)
    {
        let t = num(mark, "t_ms")?;
        let level = text(mark, "level");
        let _ = writeln!(
            page,
            "<line class=\"pressure {level}\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{mtop}\" y2=\"{1:.1}\"><title>pressure {level} at {2}</title></line>",
            x(t),
            mh - 24.0,
            seconds(t)
        );
    }
    for (t, node) in &spills {
        let _ = writeln!(
            page,
            "<path class=\"spill\" d=\"M{0:.1},{1:.1} l-5,-9 h10 z\"><title>{2} spilled from {3}</title></path>",
            x(*t),
            mh - 24.0,
            esc(node),
            seconds(*t)
        );
    }
    page.push_str("</svg>\n<p class=\"legend\"><i class=\"rss\"></i>RSS <i class=\"reserved\"></i>reserved <i class=\"limit\"></i>limit <i class=\"warning\"></i>pressure warning <i class=\"critical\"></i>critical ▼ spill began</p>\n");
    if points.is_empty() {
        page.push_str("<p>(no memory samples: the report was written by an older sluice)</p>\n");
    }

    // ---- edges --------------------------------------------------------------------------
    let most = edges
        .iter()
        .filter_map(|e| e.get("features").and_then(Value::as_f64))
        .fold(1.0, f64::max);
    page.push_str("<h2>Edges</h2>\n<table class=\"edges\"><tr><th>from</th><th>to</th><th>features</th><th></th></tr>\n");
    for e in edges {
        let f = num(e, "features")?;
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><div class=\"bar\" style=\"width:{:.0}px\"></div></td></tr>",
            esc(text(e, "from")),
            esc(text(e, "to")),
            thousands(f as u64),
            (f / most * 300.0).max(1.0)
        );
    }
    page.push_str("</table>\n<h2>Nodes</h2>\n<table><tr><th>node</th><th>action</th><th>in</th><th>out</th><th>dropped</th><th>time</th><th>peak reserved</th></tr>\n");
    for n in nodes {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(text(n, "id")),
            esc(text(n, "action")),
            thousands(num(n, "features_in")? as u64),
            thousands(num(n, "features_out")? as u64),
            thousands(num(n, "features_dropped")? as u64),
            seconds(num(n, "elapsed_ms")?),
            mib(num(n, "peak_reservation")?)
        );
    }
    page.push_str("</table>\n</body></html>\n");
    Ok(page)
}

/// `n` with commas between groups of three digits (`2,000,000`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const CSS: &str = "body{font:13px/1.4 system-ui,sans-serif;margin:20px 28px;color:#1f2530}\
h1{font-size:18px}h1 span{font-size:12px;padding:2px 8px;border-radius:9px;color:#fff;vertical-align:3px}\
.ok{background:#5cbf7a}.failed{background:#e5534b}.facts{color:#4b5361}h2{font-size:15px;margin-top:26px}\
svg{display:block;max-width:100%;height:auto}.grid{stroke:#eceef2}.tick{font-size:10px;fill:#6b7380;text-anchor:middle}\
.node{font-size:11px;fill:#1f2530;text-anchor:end}.span{stroke:#0002}\
.rss{fill:none;stroke:#5b9bf0;stroke-width:1.5}.reserved{fill:none;stroke:#1f3f8f;stroke-width:1.2}\
.limit{stroke:#e5534b;stroke-dasharray:6 4}.limit-label{font-size:10px;fill:#e5534b;text-anchor:end}\
.pressure{stroke-width:1.2}.pressure.warning{stroke:#f2c14e}.pressure.critical{stroke:#e5534b}.pressure.normal{stroke:#5cbf7a}\
.spill{fill:#f08a4b}.legend i{display:inline-block;width:12px;height:10px;margin:0 4px 0 10px;vertical-align:-1px}\
.legend i.rss{background:#5b9bf0}.legend i.reserved{background:#1f3f8f}.legend i.limit{background:#e5534b}\
.legend i.warning{background:#f2c14e}.legend i.critical{background:#e5534b}\
table{border-collapse:collapse}td,th{border-bottom:1px solid #eceef2;padding:3px 10px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{height:10px;background:#5b9bf0;border-radius:2px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(
            ticks(10_000.0, 5),
            vec![0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0]
        );
        assert_eq!(ticks(0.0, 5), vec![0.0]);
        assert!(ticks(7_300.0, 8).last().unwrap() <= &7_300.0);
    }

    #[test]
    fn a_json_that_is_not_a_report_says_what_it_lacks() {
        let e = html(&serde_json::json!({"ok": true})).unwrap_err();
        assert!(e.to_string().contains("elapsed_ms"), "{e}");
    }
}
