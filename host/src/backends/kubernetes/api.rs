//! Calling the API server: which failures are worth retrying, with what backoff, and how a
//! failure reads to an operator.

use std::time::Duration;

/// How a failed call is handled.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The server or the network failed for now (5xx, 429, a broken connection): retry.
    Transient(String),
    /// Someone else changed the object first (409 Conflict): read it again and recompute.
    Conflict(String),
    /// The object already exists (409 AlreadyExists).
    Exists(String),
    /// RBAC refused the call (403).
    Forbidden(String),
    /// No such object, or the API is not served (404; a CRD not installed).
    NotFound(String),
    /// Anything else (422 invalid, …): retrying would not help.
    Refused(String),
}

impl Failure {
    /// Sorts a kube error.
    pub fn of(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => {
                let message =
                    if status.message.is_empty() { status.reason.clone() } else { status.message.clone() };
                match status.code {
                    409 if status.is_already_exists() => Self::Exists(message),
                    409 => Self::Conflict(message),
                    403 => Self::Forbidden(message),
                    404 => Self::NotFound(message),
                    429 | 500..=599 => Self::Transient(format!("{} {message}", status.code)),
                    _ => Self::Refused(format!("{} {message}", status.code)),
                }
            }
            other => Self::Transient(other.to_string()),
        }
    }

    /// The server's words.
    pub fn message(&self) -> &str {
        match self {
            Self::Transient(m)
            | Self::Conflict(m)
            | Self::Exists(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::Refused(m) => m,
        }
    }
}

/// Attempts per call and the wait before the first retry (doubled for each next one).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts, the first included.
    pub attempts: u32,
    /// Wait before the first retry.
    pub backoff: Duration,
}

impl Retry {
    /// Runs `call` until it succeeds, fails for a reason retrying cannot fix, or runs out of
    /// attempts. Only calls whose repetition changes nothing more than the first may be
    /// retried this way: every write the backend makes is absolute (a value, not a delta).
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, kube::Error>>,
    {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => match Failure::of(&e) {
                    Failure::Transient(m) if attempt < self.attempts => {
                        tracing::debug!(what, attempt, error = %m, "transient API failure; retrying");
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                        attempt += 1;
                    }
                    Failure::Transient(m) => {
                        return Err(Failure::Transient(format!("{m} (after {attempt} attempt(s))")));
                    }
                    other => return Err(other),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(kube::core::Status::failure("m", reason).with_code(code).boxed())
    }

    #[test]
    fn failures_are_sorted_by_what_helps() {
        assert!(matches!(Failure::of(&api(409, "AlreadyExists")), Failure::Exists(_)));
        assert!(matches!(Failure::of(&api(409, "Conflict")), Failure::Conflict(_)));
        assert!(matches!(Failure::of(&api(403, "Forbidden")), Failure::Forbidden(_)));
        assert!(matches!(Failure::of(&api(503, "ServiceUnavailable")), Failure::Transient(_)));
        assert!(matches!(Failure::of(&api(429, "TooManyRequests")), Failure::Transient(_)));
        assert!(matches!(Failure::of(&api(422, "Invalid")), Failure::Refused(_)));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_others_are_not() {
        let retry = Retry { attempts: 3, backoff: Duration::from_millis(1) };
        let mut calls = 0;
        let out = retry
            .run("t", || {
                calls += 1;
                let n = calls;
                async move { if n < 3 { Err(api(500, "InternalError")) } else { Ok(n) } }
            })
            .await;
        assert_eq!(out, Ok(3));
        let mut calls = 0;
        let out: Result<(), _> = retry
            .run("t", || {
                calls += 1;
                async { Err(api(403, "Forbidden")) }
            })
            .await;
        assert!(matches!(out, Err(Failure::Forbidden(_))) && calls == 1);
        let out: Result<(), _> = retry.run("t", || async { Err(api(500, "InternalError")) }).await;
        assert!(matches!(out, Err(Failure::Transient(m)) if m.contains("after 3 attempt(s)")));
    }
}
