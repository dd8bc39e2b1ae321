//! History from a Prometheus server: `GET /api/v1/query_range`, its matrix answer turned into
//! evenly spaced series, steps Prometheus has no sample for left as gaps (NaN).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Why a history query failed; each names the server and what to check.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The server could not be reached or did not answer in time.
    #[error(
        "Prometheus at {url} did not answer: {reason}; check [backend.kubernetes.prometheus] url and that the server is up"
    )]
    Unreachable {
        /// The request.
        url: String,
        /// What the client saw.
        reason: String,
    },
    /// The server refused the query.
    #[error(
        "Prometheus refused `{query}` ({error_type}): {error}; check the PromQL in [backend.kubernetes.prometheus]"
    )]
    Refused {
        /// The PromQL.
        query: String,
        /// Prometheus' error type (`bad_data`, `timeout`, …).
        error_type: String,
        /// Its message.
        error: String,
    },
    /// The answer was not what the HTTP API documents.
    #[error("Prometheus at {url} answered something other than its HTTP API: {reason}")]
    Malformed {
        /// The request.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The query asked for nothing sensible.
    #[error("invalid history query: {0}")]
    Invalid(String),
}

/// One labelled series of a range query, on the query's grid: `values[k]` is the sample at
/// `start + k × step`, NaN where Prometheus had none.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Unix seconds of `values[0]`.
    pub start: i64,
    /// Seconds between values.
    pub step: u32,
    /// The samples.
    pub values: Vec<f64>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A Prometheus server's HTTP API.
pub struct Prometheus {
    base: String,
    agent: ureq::Agent,
}

impl Prometheus {
    /// A client for the server at `base_url` (e.g. `http://prometheus:9090`), each request
    /// bounded by `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self { base: base_url.trim_end_matches('/').to_owned(), agent }
    }

    /// `query` evaluated every `step_s` from `start` to `end` (Unix seconds, inclusive).
    pub fn query_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_s: u32,
    ) -> Result<Vec<RangeSeries>, PrometheusError> {
        if step_s == 0 || end < start {
            return Err(PrometheusError::Invalid(format!(
                "range {start}..{end} with step {step_s} s: the step must be positive and the end not before the start"
            )));
        }
        let url = format!("{}/api/v1/query_range", self.base);
        let response = self
            .agent
            .get(&url)
            .query("query", query)
            .query("start", start.to_string())
            .query("end", end.to_string())
            .query("step", step_s.to_string())
            .call()
            .map_err(|e| PrometheusError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .read_to_string()
            .map_err(|e| PrometheusError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        parse(query, &url, status, &body, start, end, step_s)
    }
}

/// The series of a `query_range` answer on the query's grid.
fn parse(
    query: &str,
    url: &str,
    status: u16,
    body: &str,
    start: i64,
    end: i64,
    step_s: u32,
) -> Result<Vec<RangeSeries>, PrometheusError> {
    let malformed = |reason: String| PrometheusError::Malformed { url: url.to_owned(), reason };
    let answer: Answer = serde_json::from_str(body)
        .map_err(|e| malformed(format!("HTTP {status}, not its JSON envelope ({e})")))?;
    if answer.status != "success" {
        return Err(PrometheusError::Refused {
            query: query.to_owned(),
            error_type: answer.error_type,
            error: answer.error,
        });
    }
    let data = answer.data.ok_or_else(|| malformed("`success` without `data`".into()))?;
    if data.result_type != "matrix" {
        return Err(malformed(format!("a range query answered `{}`, not `matrix`", data.result_type)));
    }
    let step = i64::from(step_s);
    let len = ((end - start) / step + 1) as usize;
    data.result
        .into_iter()
        .map(|m| {
            let mut values = vec![f64::NAN; len];
            for (t, v) in m.values {
                let offset = t.round() as i64 - start;
                if offset < 0 || offset % step != 0 || offset / step >= len as i64 {
                    return Err(malformed(format!(
                        "a sample at {t} is off the grid {start}..={end} every {step_s} s"
                    )));
                }
                // Prometheus spells non-finite values `NaN`, `+Inf`, `-Inf`; only finite ones are demand.
                let v: f64 =
                    v.parse().map_err(|_| malformed(format!("sample value `{v}` is not a number")))?;
                values[(offset / step) as usize] = if v.is_finite() { v } else { f64::NAN };
            }
            Ok(RangeSeries { labels: m.metric, start, step: step_s, values })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://prometheus:9090/api/v1/query_range";

    #[test]
    fn a_matrix_lands_on_the_grid_with_gaps() {
        // The documented answer shape; the second series misses the sample at 1435781460.
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},
             "values":[[1435781430.781,"1"],[1435781445.781,"1"],[1435781460.781,"1"]]},
            {"metric":{"__name__":"up","job":"node","instance":"localhost:9091"},
             "values":[[1435781430.781,"0"],[1435781445.781,"0"]]}]}}"#;
        let s = parse("up", URL, 200, body, 1435781431, 1435781461, 15).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].labels["job"], "prometheus");
        assert_eq!(s[0].values, vec![1.0, 1.0, 1.0]);
        assert_eq!((s[1].values[0], s[1].values[1]), (0.0, 0.0));
        assert!(s[1].values[2].is_nan());
    }

    #[test]
    fn refusals_and_strange_answers_say_what_went_wrong() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        let e = parse("rate(", URL, 400, body, 0, 60, 15).unwrap_err().to_string();
        assert!(e.contains("rate(") && e.contains("bad_data") && e.contains("parse error"), "{e}");
        let e = parse("up", URL, 502, "<html>bad gateway</html>", 0, 60, 15).unwrap_err().to_string();
        assert!(e.contains("HTTP 502") && e.contains(URL), "{e}");
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(parse("up", URL, 200, body, 0, 60, 15).unwrap_err().to_string().contains("`vector`"));
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[7,"1"]]}]}}"#;
        assert!(parse("up", URL, 200, body, 0, 60, 15).unwrap_err().to_string().contains("off the grid"));
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[15,"+Inf"]]}]}}"#;
        assert!(parse("up", URL, 200, body, 0, 60, 15).unwrap()[0].values[1].is_nan());
    }

    #[test]
    fn a_server_that_is_not_there_is_named() {
        // Port 9 on loopback: nothing listens there.
        let p = Prometheus::new("http://127.0.0.1:9/", Duration::from_secs(2));
        let e = p.query_range("up", 0, 60, 15).unwrap_err().to_string();
        assert!(
            e.contains("http://127.0.0.1:9/api/v1/query_range")
                && e.contains("[backend.kubernetes.prometheus] url"),
            "{e}"
        );
        assert!(matches!(p.query_range("up", 60, 0, 15), Err(PrometheusError::Invalid(_))));
    }
}
