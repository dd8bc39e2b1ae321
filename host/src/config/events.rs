//! `[[events]]`: the operator's calendar of known demand events — flash sales, launches,
//! holidays — handed to forecasters with every series they concern, as events and as a
//! covariate column, so a forecast can anticipate them and history can be read without them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One known event.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CalendarEvent {
    /// Label, e.g. `black-friday`.
    pub name: String,
    /// Start, UTC, e.g. `2026-11-27T00:00:00Z` (inclusive).
    pub start: String,
    /// End, UTC (exclusive).
    pub end: String,
    /// Expected demand multiplier while it lasts (1 means no change; 0 means no demand).
    pub multiplier: f64,
    /// Services it concerns; every service when left out.
    #[serde(default)]
    pub services: Vec<String>,
}

impl CalendarEvent {
    /// Start and end as Unix seconds.
    pub fn span(&self) -> Result<(i64, i64), String> {
        let parse = |key: &str, text: &str| {
            humantime::parse_rfc3339(text)
                .map(|t| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
                .map_err(|e| {
                    format!(
                        "{key} = \"{text}\" is not a UTC time ({e}); write it like \"2026-11-27T00:00:00Z\""
                    )
                })
        };
        Ok((parse("start", &self.start)?, parse("end", &self.end)?))
    }

    /// Checks the fields, naming the key at fault.
    pub fn validate(&self, index: usize) -> Result<(), (String, String)> {
        let key = |k: &str| format!("events[{index}].{k}");
        if self.name.trim().is_empty() {
            return Err((key("name"), "is empty; name the event, e.g. \"black-friday\"".into()));
        }
        let (start, end) =
            self.span().map_err(|m| (key(if m.starts_with("start") { "start" } else { "end" }), m))?;
        if end <= start {
            return Err((
                key("end"),
                format!("is not after start ({} ≤ {}); an event must last", self.end, self.start),
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 0.0 {
            return Err((
                key("multiplier"),
                format!("is {}; write a demand multiplier of 0 or more, e.g. 3.0", self.multiplier),
            ));
        }
        Ok(())
    }

    /// Whether it concerns `service`.
    pub fn concerns(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(start: &str, end: &str, multiplier: f64) -> CalendarEvent {
        CalendarEvent {
            name: "sale".into(),
            start: start.into(),
            end: end.into(),
            multiplier,
            services: vec![],
        }
    }

    #[test]
    fn spans_are_unix_seconds() {
        let e = event("1970-01-02T00:00:00Z", "1970-01-02T01:00:00Z", 2.0);
        assert_eq!(e.span(), Ok((86_400, 90_000)));
        assert!(e.validate(0).is_ok());
        assert!(e.concerns("anything"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let bad = event("tomorrow", "1970-01-02T01:00:00Z", 2.0).validate(3).unwrap_err();
        assert_eq!(bad.0, "events[3].start");
        let backwards = event("1970-01-02T01:00:00Z", "1970-01-02T00:00:00Z", 2.0).validate(0).unwrap_err();
        assert_eq!(backwards.0, "events[0].end");
        let negative = event("1970-01-02T00:00:00Z", "1970-01-02T01:00:00Z", -1.0).validate(0).unwrap_err();
        assert_eq!(negative.0, "events[0].multiplier");
    }
}
