//! Staff access end to end, against the real server on loopback: accounts made with
//! `civica user add`/`civica user token`, sign-in and its cookie, CSRF tokens, what the public
//! can and cannot reach, staff SQL on the full tables, API tokens, and log uploads.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Answer, Server, civica, fixtures, ingest_fixture, run_ok, s};

const PASSWORD: &str = "una password lunga";

/// A warehouse with the small fixture, a users file with `anna`, and the key of both.
struct Setup {
    dir: tempfile::TempDir,
    warehouse: PathBuf,
    users: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = ingest_fixture(dir.path());
        let users = dir.path().join("civica-users.toml");
        add_user(&users, "anna", PASSWORD);
        Setup {
            dir,
            warehouse,
            users,
        }
    }

    fn serve(&self, extra: &[&str]) -> Server {
        let key = self.dir.path().join("key");
        let mut args = vec!["--users", s(&self.users), "--key-file", s(&key)];
        args.extend_from_slice(extra);
        Server::start_with(&self.warehouse, &args)
    }
}

/// `civica user add NAME --users FILE` with the password on standard input.
fn add_user(users: &Path, name: &str, password: &str) {
    let mut child = civica()
        .args(["user", "add", name, "--users", s(users), "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("civica user add runs");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `method path` with `headers` and a raw body; redirects are not followed.
fn http(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    server.exchange(method, path, headers, body, false)
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", support::url_encoded(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

/// The `name=value` of the `Set-Cookie` header setting cookie `name`, and the whole header.
fn set_cookie(answer: &Answer, name: &str) -> Option<(String, String)> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap().to_string(), v.to_string()))
}

/// The value of the hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// The sign-in form's token and cookie.
fn login_form(server: &Server) -> (String, String) {
    let page = http(server, "GET", "/login", &[], b"");
    assert_eq!(page.status, 200);
    let (cookie, _) = set_cookie(&page, "civica_login_csrf").expect("a form-token cookie");
    (csrf_field(&page.text()), cookie)
}

/// Signs in and returns the answer.
fn sign_in(server: &Server, user: &str, password: &str) -> Answer {
    let (csrf, cookie) = login_form(server);
    http(
        server,
        "POST",
        "/login",
        &[FORM, ("cookie", &cookie)],
        &form(&[("username", user), ("password", password), ("csrf", &csrf)]),
    )
}

/// The session cookie (`civica_session=…`) of a successful sign-in.
fn session(server: &Server) -> String {
    let answer = sign_in(server, "anna", PASSWORD);
    assert_eq!(answer.status, 303, "{}", answer.text());
    set_cookie(&answer, "civica_session")
        .expect("a session cookie")
        .0
}

fn count_requests(server: &Server, headers: &[(&str, &str)], filter: &str) -> Answer {
    let body = serde_json::json!({ "sql": format!("SELECT count(*) AS n FROM requests{filter}") });
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    http(
        server,
        "POST",
        "/api/v1/query",
        &all,
        body.to_string().as_bytes(),
    )
}

#[test]
fn user_add_then_sign_in_gives_a_strict_http_only_session_cookie() {
    let setup = Setup::new();
    let text = std::fs::read_to_string(&setup.users).unwrap();
    assert!(
        text.contains("name = \"anna\"") && text.contains("$argon2id$"),
        "{text}"
    );
    assert!(
        !text.contains(PASSWORD),
        "the password itself is never stored"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&setup.users)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let server = setup.serve(&[]);
    let answer = sign_in(&server, "anna", PASSWORD);
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), "/staff/upload");
    let (cookie, header) = set_cookie(&answer, "civica_session").expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(flag), "{header}");
    }
    assert!(!header.contains("Secure"), "no TLS, no Secure: {header}");
    assert!(cookie.len() > "civica_session=".len() + 32, "{cookie}");

    let upload = http(&server, "GET", "/staff/upload", &[("cookie", &cookie)], b"");
    assert_eq!(upload.status, 200);
    let html = upload.text();
    assert!(
        html.contains("Accesso come <strong>anna</strong>"),
        "{html}"
    );
    assert!(html.contains(r#"enctype="multipart/form-data""#));
    assert_eq!(upload.header("cache-control"), "no-store");

    // Behind TLS the cookie is Secure.
    let secure = setup.serve(&["--secure-cookies"]);
    let answer = sign_in(&secure, "anna", PASSWORD);
    let (_, header) = set_cookie(&answer, "civica_session").expect("a session cookie");
    assert!(header.contains("; Secure"), "{header}");
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    let wrong = sign_in(&server, "anna", "not the password");
    let unknown = sign_in(&server, "bruno", PASSWORD);
    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, 401);
        assert!(set_cookie(answer, "civica_session").is_none());
        let html = answer.text();
        assert!(
            html.contains("Nome utente o password non corretti."),
            "{html}"
        );
        assert!(html.contains(r#"name="password""#), "the form again");
    }
}

#[test]
fn guessing_passwords_is_stopped_by_the_rate_of_one_address() {
    let setup = Setup::new();
    let server = setup.serve(&["--login-rate", "3"]);
    let statuses: Vec<u16> = (0..4)
        .map(|i| sign_in(&server, "anna", &format!("guess number {i}")).status)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Past the limit even the right password gets no session until the allowance returns.
    let right = sign_in(&server, "anna", PASSWORD);
    assert_eq!(right.status, 429);
    assert!(set_cookie(&right, "civica_session").is_none());
    // Other routes keep answering.
    assert_eq!(server.request("GET", "/api/v1/kpis", &[], None).status, 200);
}

#[test]
fn forms_without_their_csrf_token_are_refused() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    // No token at all, then a token that is not the cookie's.
    let (csrf, cookie) = login_form(&server);
    let fields = [("username", "anna"), ("password", PASSWORD)];
    let missing = http(
        &server,
        "POST",
        "/login",
        &[FORM, ("cookie", &cookie)],
        &form(&fields),
    );
    assert_eq!(missing.status, 403);
    let forged = http(
        &server,
        "POST",
        "/login",
        &[FORM, ("cookie", "civica_login_csrf=forged")],
        &form(&[fields[0], fields[1], ("csrf", &csrf)]),
    );
    assert_eq!(forged.status, 403);
    assert!(set_cookie(&forged, "civica_session").is_none());

    // Signing out needs the session's token; without it the session stays.
    let session = session(&server);
    let upload = http(
        &server,
        "GET",
        "/staff/upload",
        &[("cookie", &session)],
        b"",
    );
    let token = csrf_field(&upload.text());
    let refused = http(
        &server,
        "POST",
        "/logout",
        &[FORM, ("cookie", &session)],
        &form(&[("csrf", "x")]),
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        count_requests(&server, &[("cookie", &session)], "").status,
        200
    );
    let out = http(
        &server,
        "POST",
        "/logout",
        &[FORM, ("cookie", &session)],
        &form(&[("csrf", &token)]),
    );
    assert_eq!(out.status, 303);
    assert!(
        set_cookie(&out, "civica_session")
            .unwrap()
            .1
            .contains("Max-Age=0")
    );
    assert_eq!(
        count_requests(&server, &[("cookie", &session)], "").status,
        400
    );
}

#[test]
fn the_public_reaches_neither_staff_routes_nor_full_tables() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    for path in ["/staff/upload", "/staff/ingests/1"] {
        let answer = http(&server, "GET", path, &[], b"");
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(answer.header("location"), "/login", "{path}");
    }
    let upload = http(
        &server,
        "POST",
        "/staff/upload",
        &[("content-type", "multipart/form-data; boundary=x")],
        b"--x--\r\n",
    );
    assert_eq!(upload.status, 303);
    let refused = count_requests(&server, &[], "");
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("kpi_"), "{}", refused.text());
    let page = http(
        &server,
        "GET",
        "/query?sql=SELECT%20*%20FROM%20requests",
        &[],
        b"",
    );
    assert_eq!(page.status, 400);
    // A session id that was never issued is the public.
    let forged = count_requests(&server, &[("cookie", "civica_session=00ff")], "");
    assert_eq!(forged.status, 400);
}

#[test]
fn staff_run_sql_on_the_requests_table() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    let session = session(&server);
    let answer = count_requests(&server, &[("cookie", &session)], "");
    assert_eq!(answer.status, 200, "{}", answer.text());
    // 20 requests in tests/fixtures/requests_small.csv, all valid.
    assert_eq!(answer.json()["rows"][0]["n"], 20);
    assert_eq!(answer.header("cache-control"), "private, no-store");

    let page = http(
        &server,
        "GET",
        "/query?sql=SELECT%20request_id%20FROM%20requests%20WHERE%20request_id%20%3D%20%27SUA-2017-2%27",
        &[("cookie", &session)],
        b"",
    );
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<td>SUA-2017-2</td>"), "{html}");
    assert!(html.contains("Accesso come <strong>anna</strong>"));
}

#[test]
fn an_api_token_gives_the_staff_audience() {
    let setup = Setup::new();
    let token = run_ok(&["user", "token", "anna", "--users", s(&setup.users)]);
    let token = token.trim();
    assert!(token.starts_with("civica_") && token.len() > 40, "{token}");
    let text = std::fs::read_to_string(&setup.users).unwrap();
    assert!(!text.contains(token), "only the token's hash is stored");

    let server = setup.serve(&[]);
    let bearer = format!("Bearer {token}");
    let answer = count_requests(&server, &[("authorization", &bearer)], "");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["rows"][0]["n"], 20);
    let wrong = count_requests(&server, &[("authorization", "Bearer civica_0123")], "");
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("www-authenticate"), "Bearer");
}

/// A multipart body with the form token and one file.
fn multipart(csrf: Option<&str>, name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(csrf) = csrf {
        body.extend_from_slice(
            format!("--XyZ\r\ncontent-disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             content-type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    body
}

const MULTIPART: (&str, &str) = ("content-type", "multipart/form-data; boundary=XyZ");

/// The `<td>` after the row header `label` of the ingest summary.
fn summary_cell(html: &str, label: &str) -> String {
    let needle = format!("<th scope=\"row\">{label}</th><td>");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {label} in {html}"))
        + needle.len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

#[test]
fn an_uploaded_messy_log_is_ingested_and_its_quarantine_shown() {
    let setup = Setup::new();
    let server = setup.serve(&["--max-upload-bytes", "4096"]);
    let session = session(&server);
    let upload = http(
        &server,
        "GET",
        "/staff/upload",
        &[("cookie", &session)],
        b"",
    );
    let csrf = csrf_field(&upload.text());
    let content = std::fs::read(fixtures().join("upload_messy.csv")).unwrap();

    // Without the form token nothing is ingested.
    let headers = [MULTIPART, ("cookie", session.as_str())];
    let refused = http(
        &server,
        "POST",
        "/staff/upload",
        &headers,
        &multipart(None, "x.csv", &content),
    );
    assert_eq!(refused.status, 403);

    // Past the limit: 413, and nothing queued.
    let big = vec![b'x'; 64 << 10];
    let too_large = http(
        &server,
        "POST",
        "/staff/upload",
        &headers,
        &multipart(Some(&csrf), "big.csv", &big),
    );
    assert_eq!(too_large.status, 413);

    let answer = http(
        &server,
        "POST",
        "/staff/upload",
        &headers,
        &multipart(Some(&csrf), "upload_messy.csv", &content),
    );
    assert_eq!(answer.status, 303, "{}", answer.text());
    let location = answer.header("location").to_string();
    assert_eq!(location, "/staff/ingests/1");

    // Follow the ingest until it ends: at most 120 polls over 60 s.
    let started = Instant::now();
    let mut html = String::new();
    for _ in 0..120 {
        let page = http(&server, "GET", &location, &[("cookie", &session)], b"");
        assert_eq!(page.status, 200);
        html = page.text();
        if html.contains("Riepilogo delle righe") || html.contains("non è riuscita") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "still running: {html}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Counted by hand in tests/fixtures/README.md.
    assert_eq!(summary_cell(&html, "Righe lette"), "5", "{html}");
    assert_eq!(summary_cell(&html, "Righe accettate"), "3");
    assert_eq!(summary_cell(&html, "Righe in quarantena"), "1");
    assert_eq!(summary_cell(&html, "Righe duplicate"), "1");
    let quarantine = &html[html
        .find("table class=\"data quarantine\"")
        .expect("the quarantine")..];
    assert!(quarantine.contains("<td>channel</td>"), "{quarantine}");
    assert!(quarantine.contains("<td>4</td>"), "line 4: {quarantine}");
    assert!(quarantine.contains("fax"), "{quarantine}");

    // The accepted rows are in the warehouse, as staff SQL sees it.
    let rows = count_requests(
        &server,
        &[("cookie", &session)],
        " WHERE request_id LIKE 'U-%'",
    );
    assert_eq!(rows.json()["rows"][0]["n"], 3);
    // The oversized upload never became a job.
    let none = http(
        &server,
        "GET",
        "/staff/ingests/2",
        &[("cookie", &session)],
        b"",
    );
    assert_eq!(none.status, 404);
}

/// The cell of `service` and `year` among the rows of a `/api/kpi` answer.
fn kpi_cell<'a>(answer: &'a serde_json::Value, service: &str, year: i64) -> &'a serde_json::Value {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == service && r["year"] == year)
        .unwrap_or_else(|| panic!("no {service} {year} in {answer}"))
}

#[test]
fn staff_see_the_kpi_cells_the_public_sees_withheld() {
    let setup = Setup::new();
    let token = run_ok(&["user", "token", "anna", "--users", s(&setup.users)]);
    let bearer = format!("Bearer {}", token.trim());
    let server = setup.serve(&[]);
    let path = "/api/kpi/online_share?by=service,year";

    // suap 2016 has 2 requests (tests/fixtures/README.md): below the public minimum of 5.
    let public = http(&server, "GET", path, &[], b"").json();
    assert_eq!(public["audience"], "public");
    let cell = kpi_cell(&public, "suap", 2016);
    assert_eq!(cell["flag"], "suppressed", "{cell}");
    assert!(cell["value"].is_null(), "{cell}");

    let answer = http(&server, "GET", path, &[("authorization", &bearer)], b"");
    assert_eq!(answer.header("cache-control"), "private, no-store");
    let staff = answer.json();
    assert_eq!(staff["audience"], "internal");
    // 1 digital request out of 2.
    assert_eq!(kpi_cell(&staff, "suap", 2016)["value"], 50.0);
}

/// The cells of the table row whose header links to `href`, as text.
fn row_cells(html: &str, href: &str) -> Vec<String> {
    let anchor = format!("<a href=\"{href}\">");
    let start = html
        .find(&anchor)
        .unwrap_or_else(|| panic!("no row linking to {href}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td>")
        .skip(1)
        .map(|cell| cell.split("</td>").next().unwrap().to_string())
        .collect()
}

#[test]
fn signed_in_staff_see_pages_with_internal_figures_that_nobody_caches() {
    let setup = Setup::new();
    let server = setup.serve(&[]);
    let cookie = session(&server);
    let path = "/confronto?year=2016";
    // suap 2016: 1 digital request out of 2 (tests/fixtures/README.md), below the public
    // minimum of 5.

    let staff = http(&server, "GET", path, &[("cookie", &cookie)], b"");
    assert_eq!(staff.status, 200);
    assert_eq!(staff.header("cache-control"), "private, no-store");
    assert!(
        staff.headers.get("etag").is_none(),
        "a staff page has no ETag"
    );
    let html = staff.text();
    assert!(
        html.contains("class=\"internal-banner\""),
        "the banner says so"
    );
    assert!(html.contains("Accesso come <strong>anna</strong>"));
    let cells = row_cells(&html, "/servizi/suap");
    assert!(cells[0].starts_with("50,0"), "{cells:?}");

    // The public, asking after staff, still gets the public page: the marker, no banner.
    let public = http(&server, "GET", path, &[], b"");
    assert_eq!(public.status, 200);
    assert_eq!(public.header("cache-control"), "no-cache");
    let html = public.text();
    assert!(!html.contains("internal-banner"));
    assert!(!html.contains("anna"));
    let cells = row_cells(&html, "/servizi/suap");
    assert_eq!(cells[0], "riservato", "{cells:?}");

    // A chart of the page, as staff see it: marked private too.
    let chart = http(
        &server,
        "GET",
        "/charts/confronto/comparison-business.svg?year=2016",
        &[("cookie", &cookie)],
        b"",
    );
    assert_eq!(chart.header("cache-control"), "private, no-store");
}

#[test]
fn metrics_are_for_the_operators_network_or_a_staff_token() {
    let setup = Setup::new();
    let token = run_ok(&["user", "token", "anna", "--users", s(&setup.users)]);
    let bearer = format!("Bearer {}", token.trim());
    // Behind a proxy on loopback, a client from outside asks.
    let server = setup.serve(&["--trusted-proxy", "127.0.0.1"]);
    let outside = [("x-forwarded-for", "203.0.113.5")];
    let refused = http(&server, "GET", "/metrics", &outside, b"");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "forbidden");
    let with_token = http(
        &server,
        "GET",
        "/metrics",
        &[outside[0], ("authorization", &bearer)],
        b"",
    );
    assert_eq!(with_token.status, 200);
    assert!(with_token.text().contains("civica_warehouse_version"));
    // The machine itself (loopback) may scrape without a token.
    assert_eq!(http(&server, "GET", "/metrics", &[], b"").status, 200);
    drop(server);

    // A Prometheus elsewhere: its network is named.
    let server = setup.serve(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--metrics-from",
        "203.0.113.0/24",
    ]);
    assert_eq!(http(&server, "GET", "/metrics", &outside, b"").status, 200);
    assert_eq!(http(&server, "GET", "/metrics", &[], b"").status, 403);
}
