//! The live status page at `/`: one self-contained HTML document (no external scripts, fonts
//! or styles, so it works air-gapped and behind any proxy) that polls the JSON API — status,
//! timeline, decisions — and redraws every two seconds.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("page.html");

pub async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE)
}
