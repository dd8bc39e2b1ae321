//! The predictor: keeps a forecast per (service, region) series and refreshes a share of them
//! each tick, so every series is refreshed once per `refresh` interval and the forecaster sees
//! a steady batch instead of every week of history every tick.
//!
//! A forecast refreshed `a` seconds ago answers "demand in `h` seconds" from its lead `h + a`.
//! Each refresh therefore asks for the standard lead times and the same shifted by the refresh
//! interval, and the lead needed now is interpolated between the two that bracket it. A series
//! is refreshed early when it has no forecast, when the events announced for it change, or
//! when the forecaster is swapped (every series then, so the new plugin answers at once).

use std::collections::HashMap;
use std::sync::Arc;

use foresight_sdk::{Event, ForecastRequest, Series};

use super::accuracy::{Accuracy, Subject};
use super::ensemble::{combine, weights_from};
use super::evaluate::naive_scale;
use super::{Forecasts, HISTORY_S, HORIZONS, PLAN_HORIZONS, QUANTILES};
use crate::observe::{Observation, Observer};
use crate::plugins::{ForecastPolicy, Guarded, PluginFault, validate};

/// Most history values sent in one forecaster call: bounds the guest's memory (a week of
/// minutes is 10 080 values, so about a hundred series per call).
const MAX_VALUES_PER_CALL: usize = 1 << 20;

/// Forecast state of one series.
#[derive(Debug, Clone)]
struct Row {
    /// Unix seconds of the step the forecast's last history value describes.
    last: i64,
    /// The newest step observed when it was made (later than `last` when history lags).
    made_at: i64,
    /// `grid × QUANTILES` values, row-major.
    values: Vec<f64>,
    /// The plugin that made it.
    by: Arc<str>,
    /// The events it was made with.
    events: Vec<Event>,
}

/// Forecasts for every series, refreshed in turn.
pub struct Predictor {
    refresh_s: u32,
    /// Lead times asked of the forecaster: [`HORIZONS`] and the same shifted by `refresh_s`.
    grid: Vec<u32>,
    rows: HashMap<String, Vec<Option<Row>>>,
    accuracy: Accuracy,
    /// The operator's calendar, added to the events the backend announces.
    calendar: Vec<crate::observe::KnownEvent>,
}

impl Predictor {
    /// A predictor that refreshes each series every `refresh_s` seconds of observed time.
    pub fn new(refresh_s: u32) -> Self {
        Self {
            refresh_s,
            grid: grid(refresh_s),
            rows: HashMap::new(),
            accuracy: Accuracy::new(&HORIZONS, &QUANTILES),
            calendar: Vec::new(),
        }
    }

    /// Changes the refresh interval. Forecasts hold values on the old interval's grid of
    /// leads, so every series is refreshed on the next tick.
    pub fn set_refresh(&mut self, refresh_s: u32) {
        if refresh_s != self.refresh_s {
            self.refresh_s = refresh_s;
            self.grid = grid(refresh_s);
            self.rows.clear();
        }
    }

    /// Sets the operator's event calendar (`[[events]]`); series whose events change are
    /// refreshed on the next tick.
    pub fn set_calendar(&mut self, events: &[crate::config::CalendarEvent]) {
        self.calendar = events
            .iter()
            .filter_map(|e| {
                let (start, end) = e.span().ok()?;
                let one = |service: Option<String>| crate::observe::KnownEvent {
                    name: e.name.clone(),
                    service,
                    start,
                    end,
                    multiplier: e.multiplier,
                };
                Some(if e.services.is_empty() {
                    vec![one(None)]
                } else {
                    e.services.iter().map(|s| one(Some(s.clone()))).collect()
                })
            })
            .flatten()
            .collect();
    }

    /// Forgets every forecast: the next tick refreshes all series (after a forecaster swap).
    pub fn invalidate(&mut self) {
        self.rows.clear();
    }

    /// Sum of scaled errors and their count over the forecasts of the plugins whose forecasts
    /// are in use now (an ensemble's members, scored beside it, are left out): readings of
    /// the forecasts this predictor serves, for champion/challenger.
    pub fn served_totals(&self) -> (f64, u64) {
        let served: std::collections::HashSet<&str> =
            self.rows.values().flatten().flatten().map(|r| &*r.by).collect();
        self.accuracy.scaled_totals(|plugin| served.contains(plugin))
    }

    /// The accuracy of the forecasts made so far.
    pub fn accuracy(&self) -> &Accuracy {
        &self.accuracy
    }

    /// Scores the forecasts this observation settles, refreshes the series due and returns
    /// forecasts for every series of the observation.
    pub fn predict(
        &mut self,
        o: &Observation,
        observer: &dyn Observer,
        forecaster: &Guarded<dyn ForecastPolicy>,
        members: &[Guarded<dyn ForecastPolicy>],
    ) -> Result<Forecasts, Vec<PluginFault>> {
        self.accuracy.settle(o);
        // Each series' name once a tick: it tells the anchors what was observed now, and later
        // reads their anchor back.
        let names: Vec<Vec<Arc<str>>> = o
            .services
            .iter()
            .map(|service| {
                o.regions.iter().map(|region| format!("{}/{region}", service.name).into()).collect()
            })
            .collect();
        for (service, names) in o.services.iter().zip(&names) {
            for (series, &now) in names.iter().zip(&service.demand_rps) {
                self.accuracy.anchors_mut().observe(series, now);
            }
        }
        let step = o.step_s.max(1);
        let regions = o.regions.len();
        // The history's newest value is the step that just ended.
        let last = o.time - i64::from(step);
        let turns = (self.refresh_s / step).max(1) as usize;
        let turn = (o.time.div_euclid(i64::from(step))).rem_euclid(turns as i64) as usize;
        let observed: std::collections::HashSet<&str> = o.services.iter().map(|s| s.name.as_str()).collect();
        self.rows.retain(|name, _| observed.contains(name.as_str()));

        let mut due: Vec<(usize, usize, Vec<Event>)> = Vec::new();
        for (s, service) in o.services.iter().enumerate() {
            let events = events_of(o, &self.calendar, &service.name);
            let rows = self.rows.entry(service.name.clone()).or_default();
            rows.resize(regions, None);
            for (r, row) in rows.iter().enumerate() {
                let stale = match row {
                    None => true,
                    Some(row) => {
                        row.events != events
                            || last - row.made_at >= i64::from(self.refresh_s)
                            || (s * regions + r) % turns == turn
                    }
                };
                if stale {
                    due.push((s, r, events.clone()));
                }
            }
        }
        let mut fallback_from = None;
        let mut start = 0;
        while start < due.len() {
            let mut series = Vec::new();
            let mut values = 0;
            while start + series.len() < due.len() && (series.is_empty() || values < MAX_VALUES_PER_CALL) {
                let (s, r, events) = &due[start + series.len()];
                let one =
                    history(o, observer, *s, *r, events.clone(), self.grid.last().copied().unwrap_or(0));
                values += one.values.len();
                series.push(one);
            }
            let request =
                ForecastRequest { series, horizons: self.grid.clone(), quantiles: QUANTILES.to_vec() };
            let served =
                forecaster.call(|p| p.forecast(&request), |answer| validate::forecasts(&request, answer))?;
            if let Some(f) = served.fallback_from {
                fallback_from = Some(f.to_string());
            }
            let mut answers: Vec<(Arc<str>, Vec<Vec<f64>>)> = vec![(served.by.into(), served.value)];
            for member in members {
                match member.call(|p| p.forecast(&request), |answer| validate::forecasts(&request, answer)) {
                    Ok(m) => answers.push((m.by.into(), m.value)),
                    // The ensemble carries on with the members that answered.
                    Err(faults) => {
                        tracing::warn!(?faults, "an ensemble member did not answer; combining the others")
                    }
                }
            }
            let (by, weights) = self.ensemble_weights(&answers);
            for (i, (series, (s, r, events))) in request.series.iter().zip(&due[start..]).enumerate() {
                let service = &o.services[*s].name;
                let row_last = series.last_time();
                let scale = naive_scale(&series.values, series.step);
                let subject = |plugin: &Arc<str>| Subject {
                    plugin: plugin.clone(),
                    service: service.clone(),
                    region: *r,
                    series: format!("{service}/{}", o.regions[*r]).into(),
                    scale,
                };
                let values = if answers.len() == 1 {
                    std::mem::take(&mut answers[0].1[i])
                } else {
                    // Each member is scored on its own, so its weight follows its accuracy.
                    for (label, rows) in &answers {
                        self.accuracy.expect(
                            Arc::new(subject(label)),
                            row_last,
                            &self.at_grid(&rows[i], &HORIZONS),
                            None,
                        );
                    }
                    let members: Vec<&[f64]> = answers.iter().map(|(_, rows)| rows[i].as_slice()).collect();
                    combine(&members, &weights, QUANTILES.len())
                };
                let observed = series.values.last().copied().filter(|v| v.is_finite());
                self.accuracy.expect(
                    Arc::new(subject(&by)),
                    row_last,
                    &self.at_grid(&values, &HORIZONS),
                    observed,
                );
                self.rows.get_mut(service).expect("row created above")[*r] = Some(Row {
                    last: row_last,
                    made_at: last,
                    values,
                    by: by.clone(),
                    events: events.clone(),
                });
            }
            start += request.series.len();
        }

        let mut by: Vec<String> = Vec::new();
        let mut demand = Vec::with_capacity(o.services.len());
        for (service, names) in o.services.iter().zip(&names) {
            let rows = &self.rows[&service.name];
            let mut per_region = Vec::with_capacity(regions);
            for row in rows.iter().take(regions) {
                let row = row.as_ref().expect("every series was refreshed or kept");
                if !by.iter().any(|b| **b == *row.by) {
                    by.push(row.by.to_string());
                }
                let age = u32::try_from(last - row.last).unwrap_or(0);
                let leads: Vec<u32> = PLAN_HORIZONS.iter().map(|h| h + age).collect();
                let mut values = self.at_grid(&row.values, &leads);
                // Anchored to what is observed now, lead by lead, as far as the forecast has
                // lately done worse than the last observation would have.
                let observed = service.demand_rps.get(per_region.len()).copied().unwrap_or(0.0);
                self.accuracy.anchors().blend(
                    &names[per_region.len()],
                    &PLAN_HORIZONS,
                    observed,
                    &mut values,
                );
                per_region.push(values);
            }
            demand.push(per_region);
        }
        by.sort();
        Ok(Forecasts {
            horizons: PLAN_HORIZONS.to_vec(),
            quantiles: QUANTILES.to_vec(),
            demand,
            refreshed: due.len(),
            by,
            fallback_from,
        })
    }

    /// The label and per-grid-lead weights (`[lead][member]`) for combining these answers:
    /// each member weighted by its recent error at the nearest tracked lead time.
    fn ensemble_weights(&self, answers: &[(Arc<str>, Vec<Vec<f64>>)]) -> (Arc<str>, Vec<Vec<f64>>) {
        if answers.len() == 1 {
            return (answers[0].0.clone(), Vec::new());
        }
        let labels: Vec<&str> = answers.iter().map(|(l, _)| &**l).collect();
        let label: Arc<str> = format!("ensemble[{}]", labels.join(", ")).into();
        let weights = self
            .grid
            .iter()
            .map(|&lead| {
                let h = HORIZONS.iter().position(|&h| h >= lead).unwrap_or(HORIZONS.len() - 1);
                let recent: Vec<(f64, u64)> = labels.iter().map(|l| self.accuracy.recent(l, h)).collect();
                let scored = recent.iter().map(|r| r.1).min().unwrap_or(0) as f64;
                weights_from(&recent.iter().map(|r| r.0).collect::<Vec<_>>(), scored)
            })
            .collect();
        (label, weights)
    }

    /// Values at `leads` (seconds), each interpolated linearly between the grid's lead times
    /// that bracket it (the furthest when beyond): `leads × QUANTILES`, row-major.
    fn at_grid(&self, values: &[f64], leads: &[u32]) -> Vec<f64> {
        let q = QUANTILES.len();
        let mut out = Vec::with_capacity(leads.len() * q);
        for &lead in leads {
            let hi = self.grid.partition_point(|&g| g < lead).min(self.grid.len() - 1);
            let lo = hi.saturating_sub(1);
            let (g0, g1) = (f64::from(self.grid[lo]), f64::from(self.grid[hi]));
            let w = if g1 > g0 { ((f64::from(lead) - g0) / (g1 - g0)).clamp(0.0, 1.0) } else { 1.0 };
            for k in 0..q {
                // A mix of two uncrossed rows is uncrossed.
                out.push((1.0 - w) * values[lo * q + k] + w * values[hi * q + k]);
            }
        }
        out
    }
}

/// The leads asked of the forecaster: [`HORIZONS`] and the same shifted by `refresh_s`, so a
/// forecast up to `refresh_s` old still has leads bracketing every standard one.
fn grid(refresh_s: u32) -> Vec<u32> {
    let mut grid: Vec<u32> = HORIZONS.iter().flat_map(|&h| [h, h + refresh_s]).collect();
    grid.sort_unstable();
    grid.dedup();
    grid
}

/// The events announced for a service (or for every service), by the backend or the calendar.
fn events_of(o: &Observation, calendar: &[crate::observe::KnownEvent], service: &str) -> Vec<Event> {
    o.events
        .iter()
        .chain(calendar)
        .filter(|e| e.service.as_ref().is_none_or(|n| n == service))
        .map(|e| Event { name: e.name.clone(), start: e.start, end: e.end, multiplier: e.multiplier })
        .collect()
}

/// Name of the covariate that carries the events' combined multiplier at each step.
pub const EVENT_COVARIATE: &str = "event-multiplier";

/// A series' history as the forecaster receives it; with events, also their multiplier as a
/// covariate over the history and up to `reach_s` beyond it.
fn history(
    o: &Observation,
    observer: &dyn Observer,
    s: usize,
    r: usize,
    events: Vec<Event>,
    reach_s: u32,
) -> Series {
    let service = &o.services[s];
    let mut series = observer.demand_history(&service.name, &o.regions[r], HISTORY_S).unwrap_or_default();
    if series.step == 0 {
        series.step = o.step_s;
    }
    if series.values.is_empty() {
        // Nothing seen yet: the current demand is the only evidence.
        series.values.push(service.demand_rps.get(r).copied().unwrap_or(0.0));
        series.start = o.time - i64::from(o.step_s);
    }
    if !events.is_empty() {
        let step = series.step.max(1);
        let rows = series.values.len() + reach_s.div_ceil(step) as usize;
        series.covariate_names = vec![EVENT_COVARIATE.to_owned()];
        series.covariates = (0..rows)
            .map(|k| {
                let t = series.start + k as i64 * i64::from(step);
                events.iter().filter(|e| e.start <= t && t < e.end).map(|e| e.multiplier).product()
            })
            .collect();
    }
    series.events = events;
    series
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use foresight_sdk::{Descriptor, PluginKind};

    use super::*;
    use crate::observe::{KnownEvent, ObserveError, ServiceView};
    use crate::plugins::{Fault, Policy, QuarantineRule};

    /// Forecasts demand proportional to the lead time (so reading at lead + age is checkable) and
    /// records how many series each call carried.
    struct LeadEcho {
        descriptor: Descriptor,
        calls: Mutex<Vec<usize>>,
    }

    impl Policy for LeadEcho {
        fn descriptor(&self) -> &Descriptor {
            &self.descriptor
        }
    }

    impl ForecastPolicy for LeadEcho {
        fn forecast(&self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault> {
            self.calls.lock().unwrap().push(request.series.len());
            let row: Vec<f64> = request
                .horizons
                .iter()
                .flat_map(|&h| request.quantiles.iter().map(move |q| f64::from(h) * (1.0 + q)))
                .collect();
            Ok(vec![row; request.series.len()])
        }
    }

    /// Thirty minutes of flat demand up to the step before `.0`.
    struct History(i64);

    impl Observer for History {
        fn observe(&mut self) -> Result<Observation, ObserveError> {
            Err(ObserveError::Backend("not used".into()))
        }

        fn demand_history(&self, _: &str, _: &str, _: u32) -> Option<Series> {
            Some(Series { start: self.0 - 30 * 60, step: 60, values: vec![10.0; 30], ..Default::default() })
        }

        fn nodes(&self, _: &str) -> Option<Vec<crate::observe::NodeView>> {
            None
        }
    }

    fn predict(p: &mut Predictor, o: &Observation, role: &Guarded<dyn ForecastPolicy>) -> Forecasts {
        p.predict(o, &History(o.time), role, &[]).unwrap()
    }

    fn observation(time: i64, services: usize) -> Observation {
        Observation {
            time,
            step_s: 60,
            regions: vec!["eu".into(), "us".into()],
            clusters: vec![],
            services: (0..services)
                .map(|i| ServiceView {
                    name: format!("svc-{i}"),
                    slo_p95_ms: 100.0,
                    service_ms: 10.0,
                    cpu_per_replica: 1.0,
                    memory_gib_per_replica: 1.0,
                    startup_s: 30,
                    demand_rps: vec![10.0, 10.0],
                    placements: vec![],
                    routing: vec![],
                    p95_ms: 0.0,
                    dropped_rps: 0.0,
                })
                .collect(),
            events: vec![],
        }
    }

    fn role() -> (Arc<LeadEcho>, Guarded<dyn ForecastPolicy>) {
        let echo = Arc::new(LeadEcho {
            descriptor: Descriptor::new("lead-echo", "1.0.0", PluginKind::Forecaster, "test"),
            calls: Mutex::default(),
        });
        let rule = QuarantineRule { max_consecutive_faults: 3, duration: Duration::from_secs(60) };
        let guarded = Guarded::new("forecaster", echo.clone() as Arc<dyn ForecastPolicy>, echo.clone(), rule);
        (echo, guarded)
    }

    #[test]
    fn every_series_is_refreshed_once_per_interval_in_turns() {
        let (echo, role) = role();
        let mut p = Predictor::new(300);
        // 10 services × 2 regions = 20 series; 5 turns of 4.
        let refreshed: Vec<usize> =
            (0..11).map(|k| predict(&mut p, &observation(6000 + 60 * k, 10), &role).refreshed).collect();
        assert_eq!(refreshed, vec![20, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
        assert_eq!(echo.calls.lock().unwrap().iter().sum::<usize>(), 60);
    }

    #[test]
    fn each_step_tells_the_anchors_which_series_just_rose() {
        let (_, role) = role();
        let mut p = Predictor::new(300);
        let mut o = observation(6000, 1);
        for k in 0..20 {
            o.time = 6000 + 60 * k;
            predict(&mut p, &o, &role);
        }
        assert!(!p.accuracy().anchors().rising("svc-0/eu"));
        o.time += 60;
        o.services[0].demand_rps = vec![20.0, 10.0];
        predict(&mut p, &o, &role);
        assert!(p.accuracy().anchors().rising("svc-0/eu"));
        assert!(!p.accuracy().anchors().rising("svc-0/us"));
        o.time += 60;
        predict(&mut p, &o, &role);
        assert!(!p.accuracy().anchors().rising("svc-0/eu"), "holding is not rising");
    }

    #[test]
    fn kept_forecasts_are_read_at_their_lead_plus_their_age() {
        let (_, role) = role();
        let mut p = Predictor::new(300);
        let first = predict(&mut p, &observation(6000, 1), &role);
        // Fresh: the forecaster's own values (linear in the lead, so exact where interpolated)
        // at the planner's lead times.
        let at = |h: f64| [h * 1.1, h * 1.5, h * 1.9];
        let fresh: Vec<f64> = PLAN_HORIZONS.iter().flat_map(|&h| at(f64::from(h))).collect();
        for (g, e) in first.demand[0][0].iter().zip(&fresh) {
            assert!((g - e).abs() < 1e-9, "{:?} vs {fresh:?}", first.demand[0][0]);
        }
        // Series 0 is not due at the next tick (turns are by index), series 1 is.
        let later = predict(&mut p, &observation(6060, 1), &role);
        assert_eq!(later.refreshed, 1);
        let expected: Vec<f64> = PLAN_HORIZONS.iter().flat_map(|&h| at(f64::from(h + 60))).collect();
        let got = later.demand.iter().flatten().find(|row| **row != first.demand[0][0]).expect("an aged row");
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() < 1e-9, "{got:?} vs {expected:?}");
        }
    }

    #[test]
    fn a_swap_or_a_new_event_refreshes_at_once() {
        let (_, role) = role();
        let mut p = Predictor::new(300);
        predict(&mut p, &observation(6000, 5), &role);
        assert_eq!(predict(&mut p, &observation(6060, 5), &role).refreshed, 2);
        p.invalidate();
        assert_eq!(predict(&mut p, &observation(6120, 5), &role).refreshed, 10);
        let mut o = observation(6180, 5);
        o.events.push(KnownEvent {
            name: "sale".into(),
            service: Some("svc-3".into()),
            start: 7000,
            end: 8000,
            multiplier: 2.0,
        });
        // svc-3's two series, plus the two whose turn it is.
        let f = predict(&mut p, &o, &role);
        assert_eq!(f.refreshed, 4);
        assert_eq!(f.by, vec!["lead-echo@1.0.0".to_owned()]);
    }

    #[test]
    fn forecasts_are_scored_at_the_standard_lead_times() {
        let (_, role) = role();
        let mut p = Predictor::new(60);
        for k in 0..3 {
            predict(&mut p, &observation(6000 + 60 * k, 1), &role);
        }
        // Two ticks later the 60 s forecasts of the first two ticks have been observed.
        let a = &p.accuracy().by_horizon()[0];
        assert_eq!(a.horizon_s, 60);
        assert_eq!(a.scored, 4);
        // A median of 90 against an actual 10: 800 % off, and above it at every level.
        assert!((a.mape.unwrap() - 8.0).abs() < 1e-9);
        assert_eq!(a.coverage, vec![1.0, 1.0, 1.0]);
        assert_eq!(a.plugin, "lead-echo@1.0.0");
        // Flat history: no seasonal-naive error to scale by, so no MASE.
        assert_eq!(a.mase, None);
    }

    /// Records the last request's series, to check what the forecaster was given.
    struct Recorder(Mutex<Vec<Series>>, Descriptor);

    impl Policy for Recorder {
        fn descriptor(&self) -> &Descriptor {
            &self.1
        }
    }

    impl ForecastPolicy for Recorder {
        fn forecast(&self, request: &ForecastRequest) -> Result<Vec<Vec<f64>>, Fault> {
            *self.0.lock().unwrap() = request.series.clone();
            Ok(vec![vec![1.0; request.answer_len()]; request.series.len()])
        }
    }

    #[test]
    fn calendar_events_reach_the_forecaster_as_events_and_a_covariate() {
        let recorder = Arc::new(Recorder(
            Mutex::default(),
            Descriptor::new("recorder", "1.0.0", PluginKind::Forecaster, "test"),
        ));
        let rule = QuarantineRule { max_consecutive_faults: 3, duration: Duration::from_secs(60) };
        let role: Guarded<dyn ForecastPolicy> =
            Guarded::new("forecaster", recorder.clone(), recorder.clone(), rule);
        let mut p = Predictor::new(300);
        // A sale for svc-1 from 10 to 20 minutes after the last observation.
        let last = 6000 - 60;
        let iso =
            |t: i64| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t as u64));
        p.set_calendar(&[crate::config::CalendarEvent {
            name: "sale".into(),
            start: iso(last + 600).to_string(),
            end: iso(last + 1200).to_string(),
            multiplier: 3.0,
            services: vec!["svc-1".into()],
        }]);
        predict(&mut p, &observation(6000, 2), &role);
        let series = recorder.0.lock().unwrap().clone();
        assert!(series[0].events.is_empty() && series[0].covariates.is_empty(), "svc-0 is not concerned");
        let s = &series[2];
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.covariate_names, vec![EVENT_COVARIATE.to_owned()]);
        // Rows: 30 of history and the furthest lead (3600 + 300 s) in minutes.
        assert_eq!(s.covariates.len(), 30 + 65);
        let at = |t: i64| s.covariates[((t - s.start) / 60) as usize];
        assert_eq!((at(last), at(last + 540), at(last + 600), at(last + 1140)), (1.0, 1.0, 3.0, 3.0));
        assert_eq!((at(last + 1200), at(last + 3900)), (1.0, 1.0));
    }
}
