//! History queries against a real Prometheus server on loopback, scraping an exporter this test
//! serves with known series. The server is Debian's `prometheus` package (`.ci/run` installs
//! it); where it is missing the test fails in CI and, elsewhere, says how to get it and passes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use foresight::backends::kubernetes::prometheus::Prometheus;

/// The server binary, if there is one.
fn binary() -> Option<std::path::PathBuf> {
    let path =
        std::env::var_os("FORESIGHT_PROMETHEUS").map(Into::into).unwrap_or_else(|| "prometheus".into());
    let found =
        Command::new(&path).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    match found {
        true => Some(path),
        false if std::env::var_os("CI").is_some() => {
            panic!("no Prometheus server: `apt-get install prometheus` or set FORESIGHT_PROMETHEUS")
        }
        false => {
            eprintln!(
                "note: skipping a test that needs a Prometheus server: `apt-get install prometheus` or set FORESIGHT_PROMETHEUS"
            );
            None
        }
    }
}

/// Serves `/metrics` on loopback: a gauge fixed at 42 and a counter that grows by 10 per scrape.
struct Exporter {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
}

impl Exporter {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), scrapes.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                stream.set_nonblocking(false).ok();
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                // Read the request head; the body of a GET is empty.
                while reader.read_line(&mut line).is_ok_and(|k| k > 2) {
                    line.clear();
                }
                let count = n.fetch_add(1, Ordering::Relaxed) + 1;
                let body = format!(
                    "# TYPE foresight_test_gauge gauge\nforesight_test_gauge{{service=\"checkout\"}} 42\n\
                     # TYPE foresight_test_requests_total counter\nforesight_test_requests_total {}\n",
                    count * 10
                );
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, stop, scrapes }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn history_comes_back_on_the_grid_from_a_real_server() {
    let Some(binary) = binary() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: foresight-test\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .expect("config");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let _server = Server(
        Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let client = Prometheus::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));

    // Wait, within a deadline, until a few scrapes are in.
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = loop {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
            as i64;
        if let Ok(s) = client.query_range("foresight_test_gauge", now - 30, now, 1)
            && s.first().is_some_and(|s| s.values.iter().filter(|v| !v.is_nan()).count() >= 3)
        {
            break (s, now);
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had three scrapes ({} served)",
            exporter.scrapes.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (gauge, now) = series;
    assert_eq!(gauge.len(), 1);
    assert_eq!(gauge[0].labels.get("service").map(String::as_str), Some("checkout"));
    assert_eq!((gauge[0].start, gauge[0].step, gauge[0].values.len()), (now - 30, 1, 31));
    assert!(gauge[0].values.iter().filter(|v| !v.is_nan()).all(|&v| v == 42.0), "{:?}", gauge[0].values);

    // The counter only ever grows, in steps of 10.
    let counter = client.query_range("foresight_test_requests_total", now - 30, now, 1).expect("counter");
    let seen: Vec<f64> = counter[0].values.iter().copied().filter(|v| !v.is_nan()).collect();
    assert!(seen.len() >= 3 && seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    assert!(seen.iter().all(|v| v % 10.0 == 0.0), "{seen:?}");

    // A query Prometheus cannot parse is refused with its reason.
    let e = client.query_range("rate(", now - 30, now, 1).unwrap_err().to_string();
    assert!(e.contains("bad_data") && e.contains("rate("), "{e}");
}
