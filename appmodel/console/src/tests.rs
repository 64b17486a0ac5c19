//! The console's access rules, in-process: login once, session, CSRF, Origin, Host.

use super::*;

fn console() -> (tempfile::TempDir, Console, String) {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = Options {
        listen: "127.0.0.1:8800".parse().expect("addr"),
        state_dir: dir.path().join("state"),
        app: None,
        media: vec![],
    };
    let (c, token) = Console::new(&opts).expect("a console");
    (dir, c, token)
}

fn post(path: &str, form: &[(&str, &str)]) -> Req {
    let mut r = Req::get(path);
    r.method = Method::Post;
    r.form = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    r
}

fn cookie_of(resp: &Resp) -> String {
    let (_, v) = resp
        .headers
        .iter()
        .find(|(k, _)| k == "Set-Cookie")
        .expect("a session cookie");
    assert!(
        v.contains("HttpOnly") && v.contains("SameSite=Strict"),
        "{v}"
    );
    v.split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .expect("name=value")
        .1
        .to_string()
}

fn with(mut r: Req, session: &str) -> Req {
    r.cookies.insert(COOKIE.into(), session.into());
    r
}

#[test]
fn a_listen_address_off_loopback_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = Options {
        listen: "0.0.0.0:8800".parse().expect("addr"),
        state_dir: dir.path().to_path_buf(),
        app: None,
        media: vec![],
    };
    assert!(matches!(
        Console::new(&opts),
        Err(ConsoleError::NotLoopback(_))
    ));
}

#[test]
fn the_token_logs_in_once_and_pages_need_the_session() {
    let (_d, c, token) = console();
    let page = c.handle(&Req::get("/"));
    assert_eq!(page.status, 303, "no session: to the login page");
    assert!(page
        .headers
        .iter()
        .any(|(k, v)| k == "Location" && v == "/login"));
    assert_eq!(c.handle(&post("/login", &[("token", "wrong")])).status, 403);
    let ok = c.handle(&post("/login", &[("token", &token)]));
    assert_eq!(ok.status, 303);
    let session = cookie_of(&ok);
    assert_eq!(
        c.handle(&post("/login", &[("token", &token)])).status,
        403,
        "a token works once"
    );
    let dash = c.handle(&with(Req::get("/"), &session));
    assert_eq!(dash.status, 200);
    let text = String::from_utf8(dash.body.clone()).expect("utf-8");
    assert!(
        text.contains("Nothing is imported on this site yet"),
        "{text}"
    );
    let csp = dash.all_headers();
    assert!(csp
        .iter()
        .any(|(k, v)| k == "Content-Security-Policy" && v.contains("script-src 'self'")));
    assert_eq!(c.handle(&with(Req::get("/nowhere"), &session)).status, 404);
    // The stylesheet and script are served without a session.
    assert_eq!(c.handle(&Req::get("/assets/console.js")).status, 200);
}

#[test]
fn a_post_without_the_csrf_token_or_from_another_origin_changes_nothing() {
    let (_d, c, token) = console();
    let session = cookie_of(&c.handle(&post("/login", &[("token", &token)])));
    let csrf = c
        .session(&with(Req::get("/"), &session))
        .expect("a session")
        .csrf;
    let path = "/import";
    for (form, origin, why) in [
        (vec![("path", "/tmp")], None, "no token"),
        (vec![("path", "/tmp"), ("csrf", "x")], None, "a wrong token"),
        (
            vec![("path", "/tmp"), ("csrf", csrf.as_str())],
            Some("http://evil.example"),
            "another origin",
        ),
    ] {
        let mut r = with(post(path, &form), &session);
        r.origin = origin.map(str::to_string);
        let resp = c.handle(&r);
        assert_eq!(resp.status, 403, "{why}");
        assert!(c.jobs.recent().is_empty(), "{why}: no job started");
    }
    let mut r = with(
        post(path, &[("path", "relative/path"), ("csrf", &csrf)]),
        &session,
    );
    r.origin = Some("http://127.0.0.1:8800".into());
    let resp = c.handle(&r);
    assert_eq!(resp.status, 400, "the token passes; the path is refused");
    let text = String::from_utf8(resp.body).expect("utf-8");
    assert!(text.contains("is not an absolute path"), "{text}");
    assert!(c.jobs.recent().is_empty());
}

#[test]
fn another_host_name_is_refused_against_dns_rebinding() {
    let (_d, c, _) = console();
    let mut r = Req::get("/login");
    r.host = Some("attacker.example:8800".into());
    assert_eq!(c.handle(&r).status, 421);
    r.host = Some("localhost:8800".into());
    assert_eq!(c.handle(&r).status, 200);
}
