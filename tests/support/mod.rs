//! Helpers shared by the end-to-end tests: run the real `civica` binary, start the real
//! server on a loopback port, and read its answers over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The path of the binary under test.
pub fn civica() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_civica"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Runs `civica args…`, failing the test with its stderr if it does not succeed.
pub fn run_ok(args: &[&str]) -> String {
    let output = civica().args(args).output().expect("civica runs");
    assert!(
        output.status.success(),
        "civica {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs `civica args…` and returns its whole output, whatever the exit status.
pub fn run(args: &[&str]) -> Output {
    civica().args(args).output().expect("civica runs")
}

/// The fixture directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Ingests the hand-made fixture into `dir/warehouse` (key in `dir/key`) and returns the
/// warehouse path.
pub fn ingest_fixture(dir: &Path) -> PathBuf {
    let warehouse = dir.join("warehouse");
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&warehouse),
        "--key-file",
        s(&dir.join("key")),
        s(&fixtures().join("requests_small.csv")),
    ]);
    warehouse
}

/// A path as `&str` (test paths are UTF-8).
/// Generates the sample city and ingests it into a new warehouse below the test binary's
/// temporary directory (`name` keeps test files apart); returns the warehouse.
pub fn sample_city(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let sample = root.join("sample");
    let warehouse = root.join("warehouse");
    run_ok(&["generate", "--out", s(&sample)]);
    run_ok(&[
        "ingest",
        "--warehouse",
        s(&warehouse),
        "--key-file",
        s(&root.join("key")),
        s(&sample.join("requests.csv")),
    ]);
    warehouse
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Parses CSV text into header → values rows.
pub fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("csv record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A running `civica serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts `civica serve` on 127.0.0.1 with a free port and waits until it listens.
    pub fn start(warehouse: &Path) -> Server {
        Server::start_with(warehouse, &[])
    }

    /// Starts `civica serve … extra_args…` on 127.0.0.1 with a free port.
    pub fn start_with(warehouse: &Path, extra_args: &[&str]) -> Server {
        let mut child = civica()
            .env("RUST_LOG", "info")
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--warehouse",
                s(warehouse),
            ])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("civica serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("http://") {
                    let url = line[at..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(url.trim_end_matches('/').to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server logs its address within 30 s");
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server { child, base }
    }

    /// GET `path`, returning status, content type and body. Bounded by a 30 s timeout.
    pub fn get(&self, path: &str) -> (u16, String, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        let started = Instant::now();
        let mut response = agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e} after {:?}", started.elapsed()));
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = response.body_mut().read_to_string().expect("a UTF-8 body");
        (status, content_type, body)
    }
}

/// An answer of the server, whatever its format.
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (the first one), or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Every value of header `name`, joined with commas (as `Vary` may come in parts).
    pub fn header_all(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Server {
    /// `method path` with `headers` and, for POST, a JSON `body`; any status is an answer.
    /// Bounded by a 30 s timeout.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut all = Vec::with_capacity(headers.len() + 1);
        if method == "POST" {
            all.push(("content-type", "application/json"));
        }
        all.extend_from_slice(headers);
        self.exchange(method, path, &all, body.unwrap_or("").as_bytes(), true)
    }

    /// `method path` with exactly `headers` and a raw `body`; redirects are followed only
    /// when `follow_redirects`. Bounded by a 30 s timeout and a 64 MiB body.
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        follow_redirects: bool,
    ) -> Answer {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false);
        if !follow_redirects {
            config = config.max_redirects(0);
        }
        let agent: ureq::Agent = config.build().into();
        let url = format!("{}{path}", self.base);
        let result = match method {
            "GET" => {
                let mut request = agent.get(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.call()
            }
            "POST" => {
                let mut request = agent.post(&url);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send(body)
            }
            other => panic!("no {other} in these tests"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .expect("a body"),
        }
    }
}

impl Server {
    /// GET `path` as bytes (images), returning status, content type and body.
    pub fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let answer = self.request("GET", path, &[], None);
        let content_type = answer.header("content-type").to_string();
        (answer.status, content_type, answer.body)
    }
}

/// `text` percent-encoded as a query-string value.
pub fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Reads an Arrow IPC stream with the Arrow reader.
pub fn read_arrow_stream(bytes: &[u8]) -> Vec<civica_analytics::arrow::record_batch::RecordBatch> {
    civica_analytics::arrow::ipc::reader::StreamReader::try_new(bytes, None)
        .expect("an Arrow IPC stream")
        .map(|batch| batch.expect("a record batch"))
        .collect()
}

/// Reads a Parquet file with the Parquet reader (through a temporary file).
pub fn read_parquet(bytes: &[u8]) -> Vec<civica_analytics::arrow::record_batch::RecordBatch> {
    use std::io::Write;
    let mut file = tempfile::tempfile().expect("a temporary file");
    file.write_all(bytes).expect("written");
    civica_analytics::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .map(|batch| batch.expect("a record batch"))
        .collect()
}

/// The cells of `column` in record batches, as text (`None` for null), through Arrow's own
/// display of values.
pub fn column_text(
    batches: &[civica_analytics::arrow::record_batch::RecordBatch],
    column: &str,
) -> Vec<Option<String>> {
    use civica_analytics::arrow::array::Array;
    use civica_analytics::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut out = Vec::new();
    for batch in batches {
        let array = batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"));
        let formatter =
            ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).expect("display");
        for row in 0..batch.num_rows() {
            out.push((!array.is_null(row)).then(|| formatter.value(row).to_string()));
        }
    }
    out
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
