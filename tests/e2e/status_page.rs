//! The live status page at `/`, loaded in headless Chromium (Debian's `chromium`) from a daemon
//! running on the simulator: its scripts fetch the JSON API and draw clusters, services with
//! their forecast bands, plugins and decisions, and keep redrawing as the daemon ticks.
//!
//! `.ci/run` installs Chromium; elsewhere, without it, the test says how to get it and passes.

use std::process::Command;

use crate::daemon::Daemon;

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "chromium is missing; `apt-get install chromium`");
        eprintln!("note: skipping the status page test: no chromium (`apt-get install chromium`)");
    }
    found
}

/// The page's DOM once its scripts have run for `budget_ms` of virtual time (network waits
/// are not counted, so every fetch completes).
fn render(browser: &str, url: &str, budget_ms: u32) -> String {
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--no-first-run"])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// The number after `marker` in `dom`.
fn number_after(dom: &str, marker: &str) -> u64 {
    let rest = dom.split(marker).nth(1).unwrap_or_else(|| panic!("`{marker}` not in the page:\n{dom}"));
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{marker}`: {}", &rest[..rest.len().min(80)]))
}

#[test]
fn the_status_page_shows_clusters_forecasts_plugins_and_decisions_and_keeps_updating() {
    let Some(browser) = chromium() else { return };
    let mut d = Daemon::start();
    d.wait_ready();
    d.wait_ticks(10);
    let (code, html) = d.get("/");
    assert_eq!(code, 200);
    assert!(html.contains("<title>Foresight</title>"), "{html}");
    let url = format!("http://{}/", d.addr());

    let dom = render(browser, &url, 7000);
    assert!(dom.contains("<span id=\"error\"></span>"), "the page's fetches failed:\n{dom}");
    for cluster in ["edge-eu", "edge-us", "edge-ap", "cloud-eu-west", "cloud-us-east"] {
        assert!(
            dom.contains(&format!("<tr data-cluster=\"{cluster}\">")),
            "cluster {cluster} missing:\n{dom}"
        );
    }
    for service in ["checkout", "search", "feed", "api"] {
        assert!(dom.contains(&format!("data-service=\"{service}\"")), "service {service} missing");
        assert!(dom.contains(&format!("data-chart=\"{service}\"")), "no chart for {service}");
    }
    assert!(
        dom.contains("class=\"band\"") && dom.contains("class=\"actual\""),
        "no forecast band or demand line"
    );
    assert!(dom.contains("vs SLO"), "no objective shown");
    assert!(dom.contains("latency-aware@0.1.0") && dom.contains("seasonal-naive@0.1.0"), "plugins missing");
    let reasons = dom.matches("<td class=\"reason\">").count();
    assert!(reasons > 0, "no decision with its reason:\n{dom}");
    assert!(dom.contains("p90 forecast"), "decisions should say what forecast they acted on");
    // The page redraws itself from the API while it is open.
    let (first, shown) = (number_after(&dom, "data-first-tick=\""), number_after(&dom, "id=\"tick\">"));
    assert!(number_after(&dom, "data-refreshes=\"") >= 3, "the page did not keep refreshing");
    assert!(shown >= first, "{shown} < {first}");

    // Loaded again once the daemon has moved on, it shows the newer ticks.
    d.wait_for("more ticks", |s| s["tick"].as_u64().unwrap_or(0) > shown + 5);
    let later = render(browser, &url, 1000);
    assert!(number_after(&later, "id=\"tick\">") > shown, "the page did not follow the daemon");
    d.signal("-TERM");
    assert!(d.child.wait().expect("wait").success());
}
