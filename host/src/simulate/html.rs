//! `report.html`: one self-contained page, its plots drawn as inline SVG by plotters, written
//! for a reader who has never seen Foresight.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::PolicyRun;
use super::report::Report;
use super::timeline::{BAND_LEAD_S, Timeline};
use crate::backends::sim::Scenario;

/// The first table: predictive against each alternative, what prediction itself is worth and
/// how much of what perfect foresight would save it captures.
fn skeptic(html: &mut String, report: &Report) -> std::fmt::Result {
    let ratio = |v: Option<f64>| v.map_or("–".to_owned(), |r| format!("{r:.3}"));
    html.push_str(
        "<h2>Predictive against the alternatives</h2><p class=\"note\">Ratios are predictive over the other \
         policy: below 1 is better for predictive. The oracle gap closed is (reactive − predictive) / (reactive − \
         oracle): the share of what perfect foresight saves over reacting that the forecasts save.</p>\
         <table><tr><th>against</th><th>SLO-violation minutes (ratio)</th><th>cost (ratio)</th></tr>",
    );
    if let Some(v) = &report.value_of_prediction {
        write!(
            html,
            "<tr><td>reactive — the value of prediction</td><td>{}</td><td>{:.3}</td></tr>",
            ratio(v.slo_violation_ratio),
            v.cost_ratio
        )?;
    }
    for (name, c) in report.comparison.iter().filter(|(n, _)| n.as_str() != "reactive") {
        write!(
            html,
            "<tr><td>{name}</td><td>{}</td><td>{:.3}</td></tr>",
            ratio(c.slo_violation_ratio),
            c.cost_ratio
        )?;
    }
    if report.oracle_headroom_minutes.is_some() {
        write!(
            html,
            "<tr><td>oracle gap closed ({} minutes between reacting and perfect foresight)</td><td>{}</td><td>{}</td></tr>",
            report.oracle_headroom_minutes.map_or("–".into(), |m| format!("{m:.0}")),
            ratio(report.oracle_gap_closed),
            ratio(report.oracle_gap_closed_cost)
        )?;
    }
    html.push_str("</table>");
    Ok(())
}

/// Steps per plotted point: a week of minutes would make every chart megabytes of SVG.
const BUCKET: usize = 10;
const WIDTH: u32 = 960;
const HEIGHT: u32 = 300;

/// A colour per policy, in run order.
fn colour(i: usize) -> RGBColor {
    [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
    ][i % 7]
}

fn bucket(values: &[f64], reduce: fn(&[f64]) -> f64) -> Vec<f64> {
    values.chunks(BUCKET).map(reduce).collect()
}

fn mean_finite(v: &[f64]) -> f64 {
    let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() { f64::NAN } else { finite.iter().sum::<f64>() / finite.len() as f64 }
}

fn hours(timeline: &Timeline) -> Vec<f64> {
    let start = timeline.time.first().copied().unwrap_or(0);
    timeline.time.chunks(BUCKET).map(|c| (c[0] - start) as f64 / 3600.0).collect()
}

type Series = (String, RGBColor, Vec<(f64, f64)>);

/// One line chart as SVG: lines, an optional shaded band, an optional dashed level.
fn chart(
    title: &str,
    y_label: &str,
    lines: &[Series],
    band: Option<&[(f64, f64, f64)]>,
    level: Option<(f64, &str)>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let points = lines.iter().flat_map(|l| l.2.iter().copied()).filter(|p| p.1.is_finite());
        let (mut x_max, mut y_max) = (1e-9f64, 1e-9f64);
        for (x, y) in points {
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        if let Some(b) = band {
            y_max = b.iter().map(|p| p.2).filter(|v| v.is_finite()).fold(y_max, f64::max);
        }
        if let Some((v, _)) = level {
            y_max = y_max.max(v * 1.2);
        }
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.05)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_desc("hours since the scenario's start")
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        if let Some(b) = band {
            let finite: Vec<(f64, f64, f64)> =
                b.iter().copied().filter(|p| p.1.is_finite() && p.2.is_finite()).collect();
            if !finite.is_empty() {
                let upper = finite.iter().map(|p| (p.0, p.2));
                let lower = finite.iter().rev().map(|p| (p.0, p.1));
                c.draw_series(std::iter::once(Polygon::new(
                    upper.chain(lower).collect::<Vec<_>>(),
                    RGBColor(31, 119, 180).mix(0.18),
                )))
                .map_err(|e| e.to_string())?
                .label(format!("forecast p10–p90, {} min ahead", BAND_LEAD_S / 60))
                .legend(|(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], RGBColor(31, 119, 180).mix(0.18).filled())
                });
            }
        }
        for (name, col, data) in lines {
            let col = *col;
            c.draw_series(LineSeries::new(
                data.iter().copied().filter(|p| p.1.is_finite()),
                col.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
        }
        if let Some((v, name)) = level {
            c.draw_series(DashedLineSeries::new(vec![(0.0, v), (x_max, v)], 6, 4, RED.stroke_width(1)))
                .map_err(|e| e.to_string())?
                .label(name.to_owned())
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED.stroke_width(1)));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Seconds of a lead label (`45s`, `5m`, `1h`), for ordering.
fn lead_seconds(label: &str) -> u64 {
    let (n, unit) = label.split_at(label.len().saturating_sub(1));
    let n: u64 = n.parse().unwrap_or(u64::MAX);
    match unit {
        "h" => n.saturating_mul(3600),
        "m" => n.saturating_mul(60),
        _ => n,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// The page.
pub fn render(report: &Report, runs: &[PolicyRun], scenario: &Scenario) -> anyhow::Result<String> {
    let draw = |r: Result<String, String>| r.map_err(|e| anyhow::anyhow!("plotting: {e}"));
    let mut html = String::new();
    let title = format!("Foresight simulation: {} (seed {})", escape(&report.scenario), report.seed);
    write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}figure{{margin:1em 0}}p.note{{color:#555}}</style></head><body>\
         <h1>{title}</h1><p>{}</p>\
         <p>Each policy ran the same simulated week: the same demand (from real public traces), the same \
         spot interruptions and outages, the same seed. <b>predictive</b> is Foresight: it forecasts demand \
         and provisions ahead of it. <b>reactive</b> is the same planner, routing, placement and cost model fed \
         only what is observed now, so the difference to it is what prediction is worth; <b>oracle</b> is the same \
         planner fed the demand that really came, the limit for this planner. <b>hpa</b> is the Horizontal Pod \
         Autoscaler with the cluster-autoscaler behind a locality-aware load balancer that spills over; \
         <b>karpenter</b> is the same with Karpenter's provisioning and consolidation; <b>kube-default</b> is \
         <b>hpa</b> with kube-scheduler's default scoring; <b>static-peak</b> keeps enough capacity for the \
         week's peak all the time.</p>",
        escape(&scenario.description)
    )?;
    skeptic(&mut html, report)?;
    html.push_str(
        "<h2>Results</h2><table><tr><th>policy</th><th>SLO-violation minutes</th><th>dropped requests</th>\
         <th>p95 latency, ms</th><th>cost, USD</th><th>mean CPU utilisation</th><th>spot interruptions</th>\
         <th>control CPU, s</th></tr>",
    );
    for run in runs {
        let r = &report.policies[run.policy.as_str()];
        write!(
            html,
            "<tr><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td><td>{:.2}</td><td>{:.1} %</td><td>{}</td><td>{:.2}</td></tr>",
            run.policy,
            r.slo_violation_minutes,
            r.dropped_requests,
            opt(r.p95_latency_ms.overall, 1),
            r.cost_usd,
            r.mean_cpu_utilisation * 100.0,
            r.spot_interruptions,
            r.control_cpu_seconds
        )?;
    }
    html.push_str("</table>");
    if !report.comparison.is_empty() {
        html.push_str(
            "<h2>Control overhead against latency gained</h2><p class=\"note\">What forecasting and planning cost \
             in the control loop's own CPU time, beside the SLO minutes and money it saved against each baseline.</p>\
             <table><tr><th>against</th><th>SLO-violation minutes (theirs → ours)</th><th>cost ratio (ours / theirs)</th>\
             <th>extra control CPU, s</th><th>control CPU per SLO minute avoided, ms</th></tr>",
        );
        let ours = &report.policies["predictive"];
        for (name, c) in &report.comparison {
            let theirs = &report.policies[name];
            let avoided = theirs.slo_violation_minutes - ours.slo_violation_minutes;
            let extra = ours.control_cpu_seconds - theirs.control_cpu_seconds;
            write!(
                html,
                "<tr><td>{name}</td><td>{:.0} → {:.0}</td><td>{:.2}</td><td>{extra:.2}</td><td>{}</td></tr>",
                theirs.slo_violation_minutes,
                ours.slo_violation_minutes,
                c.cost_ratio,
                if avoided > 0.0 { format!("{:.2}", extra * 1000.0 / avoided) } else { "–".into() }
            )?;
        }
        html.push_str("</table>");
    }

    html.push_str("<h2>Demand and capacity</h2><p class=\"note\">Requests per second offered (grey) and what each \
        policy's serving replicas could take before dropping requests. The shaded band is Foresight's forecast \
        made 15 minutes earlier: capacity must be there before the demand.</p>");
    for (s, spec) in scenario.services.iter().enumerate() {
        let Some(first) = runs.first() else { break };
        let x = hours(&first.timeline);
        let series = &first.timeline.services[s];
        let mut lines: Vec<Series> = vec![(
            "demand".into(),
            RGBColor(120, 120, 120),
            x.iter().copied().zip(bucket(&series.demand, mean_finite)).collect(),
        )];
        for (i, run) in runs.iter().enumerate() {
            let cap = bucket(&run.timeline.services[s].capacity, mean_finite);
            lines.push((format!("{} capacity", run.policy), colour(i), x.iter().copied().zip(cap).collect()));
        }
        let band = runs.iter().find(|r| r.timeline.floor_cores.iter().any(|v| v.is_finite())).map(|r| {
            let b = &r.timeline.services[s].band;
            let shift = f64::from(BAND_LEAD_S) / 3600.0;
            let lo: Vec<f64> = b.iter().map(|v| v[0]).collect();
            let hi: Vec<f64> = b.iter().map(|v| v[2]).collect();
            x.iter()
                .zip(bucket(&lo, mean_finite))
                .zip(bucket(&hi, mean_finite))
                .map(|((x, l), h)| (x + shift, l, h))
                .collect::<Vec<_>>()
        });
        let svg = draw(chart(
            &format!("{}: demand and capacity", spec.name),
            "requests/s",
            &lines,
            band.as_deref(),
            None,
        ))?;
        write!(html, "<figure>{svg}</figure>")?;
    }

    html.push_str("<h2>p95 latency against the SLO</h2><p class=\"note\">The latency under which 95 % of requests \
        finish, per 10 minutes (the mean of each minute's p95), against the service's objective (dashed). Minutes \
        with nothing serving are left out here and counted as violations in the table.</p>");
    for (s, spec) in scenario.services.iter().enumerate() {
        let mut lines = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let x = hours(&run.timeline);
            let p95 = bucket(&run.timeline.services[s].p95_ms, mean_finite);
            lines.push((run.policy.to_string(), colour(i), x.into_iter().zip(p95).collect()));
        }
        let svg = draw(chart(
            &format!("{}: p95 latency", spec.name),
            "ms",
            &lines,
            None,
            Some((spec.slo_p95_ms, "SLO")),
        ))?;
        write!(html, "<figure>{svg}</figure>")?;
    }

    html.push_str(
        "<h2>Cost over time</h2><p class=\"note\">Cumulative spend: node-hours times price, nodes on \
        their way included.</p>",
    );
    let mut lines = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let x = hours(&run.timeline);
        let mut total = 0.0;
        let cumulative: Vec<f64> = run
            .timeline
            .cost
            .iter()
            .map(|c| {
                total += c;
                total
            })
            .collect();
        let y: Vec<f64> = cumulative.chunks(BUCKET).map(|c| c[c.len() - 1]).collect();
        lines.push((run.policy.to_string(), colour(i), x.into_iter().zip(y).collect()));
    }
    write!(html, "<figure>{}</figure>", draw(chart("cumulative cost", "USD", &lines, None, None))?)?;

    if let Some(ours) = report.policies.get("predictive") {
        if let Some(prediction) = &ours.latency_prediction {
            html.push_str("<h2>Predicted against measured latency</h2><p class=\"note\">Before acting, Foresight \
                predicts each service's p95 from its queueing model; afterwards the simulator measures it.</p>\
                <table><tr><th>service</th><th>mean predicted, ms</th><th>mean measured, ms</th><th>mean abs error, ms</th><th>within 20 %</th></tr>");
            for (name, p) in prediction {
                write!(
                    html,
                    "<tr><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.0} %</td></tr>",
                    escape(name),
                    p.mean_predicted_ms,
                    p.mean_measured_ms,
                    p.mean_abs_error_ms,
                    p.within_20_percent * 100.0
                )?;
            }
            html.push_str("</table>");
        }
        if let Some(accuracy) = &ours.forecast_accuracy {
            html.push_str("<h2>Forecast accuracy</h2><table><tr><th>lead</th><th>MAPE</th><th>MASE</th><th>p10–p90 coverage</th></tr>");
            let mut leads: Vec<_> = accuracy.iter().collect();
            leads.sort_by_key(|(lead, _)| lead_seconds(lead));
            for (lead, a) in leads {
                write!(
                    html,
                    "<tr><td>{lead}</td><td>{}</td><td>{}</td><td>{:.0} %</td></tr>",
                    a.mape.map_or("–".into(), |m| format!("{:.1} %", m * 100.0)),
                    opt(a.mase, 3),
                    a.coverage * 100.0
                )?;
            }
            html.push_str("</table>");
        }
        if let Some(advice) = &ours.commitment {
            html.push_str("<h2>Commitment advice</h2><p class=\"note\">Cloud cores worth committing to, from the \
                hourly p10 forecast of what the services need, and what that would have saved over this run.</p>\
                <table><tr><th>offer</th><th>discount</th><th>cores</th><th>share of capacity</th><th>saving, USD</th><th>per month, USD</th></tr>");
            for a in advice {
                write!(
                    html,
                    "<tr><td>{}</td><td>{:.0} %</td><td>{:.0}</td><td>{:.0} %</td><td>{:.2}</td><td>{:.2}</td></tr>",
                    escape(&a.offer),
                    a.discount * 100.0,
                    a.committed_cores,
                    a.share_of_capacity * 100.0,
                    a.saving_usd,
                    a.saving_usd_per_month
                )?;
            }
            html.push_str("</table>");
        }
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads_sort_by_time_not_by_spelling() {
        let mut leads = vec!["15m", "1h", "1m", "45s", "5m"];
        leads.sort_by_key(|l| lead_seconds(l));
        assert_eq!(leads, ["45s", "1m", "5m", "15m", "1h"]);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
