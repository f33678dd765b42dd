//! The client, retries, the limiter and the ordered runner, against a small raw HTTP
//! server on 127.0.0.1 started by each test (canned answers by path).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::TimeZone;

use super::*;
use crate::CancelToken;
use crate::NodeContext;

/// What the test server answers to one request: the raw head, and how the body goes.
enum Answer {
    /// Status line and headers (no `Content-Length`: added), then the body.
    Full(&'static str, Vec<u8>),
    /// A head without a length (the body ends when the connection closes), then spaces
    /// until the client stops.
    Endless,
    /// A head, a few bytes, then silence for a minute.
    Stall,
}

/// A server on 127.0.0.1 answering every request with `answer(path, headers, n)`, where n
/// counts requests from 0. Its thread ends with the test process.
fn serve(answer: impl Fn(&str, &str, usize) -> Answer + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = answer.clone();
            let count = count.clone();
            std::thread::spawn(move || handle(stream, &*answer, &count));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn handle(
    stream: TcpStream,
    answer: &(dyn Fn(&str, &str, usize) -> Answer + Send + Sync),
    count: &AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut first = String::new();
        if reader.read_line(&mut first).unwrap_or(0) == 0 {
            return;
        }
        let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push_str(&line);
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let n = count.fetch_add(1, Ordering::SeqCst);
        match answer(&path, &headers, n) {
            Answer::Full(head, body) => {
                let text = format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len());
                if stream.write_all(text.as_bytes()).is_err() || stream.write_all(&body).is_err() {
                    return;
                }
            }
            Answer::Endless => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let block = vec![b' '; 64 * 1024];
                while stream.write_all(&block).is_ok() {}
                return;
            }
            Answer::Stall => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[1,";
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.flush();
                let (_tx, rx) = crossbeam_channel::bounded::<()>(0);
                let _ = rx.recv_timeout(Duration::from_secs(60));
                return;
            }
        }
    }
}

fn ok(body: &str) -> Answer {
    Answer::Full(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn client(f: impl FnOnce(&mut ClientConfig)) -> Client {
    let mut c = ClientConfig::default();
    f(&mut c);
    Client::new(c)
}

#[test]
fn a_body_is_written_out_with_its_content_type() {
    let base = serve(|path, _, _| match path {
        "/a" => ok("[1,2,3]"),
        _ => Answer::Full(
            "HTTP/1.1 404 Not Found",
            b"{\"code\":\"NotFound\"}".to_vec(),
        ),
    });
    let c = client(|_| {});
    let mut out = Vec::new();
    let f = c
        .fetch(
            &Request::get(format!("{base}/a")),
            &mut out,
            &CancelToken::new(),
        )
        .unwrap();
    assert_eq!(out, b"[1,2,3]");
    assert_eq!(f.status, 200);
    assert_eq!(f.content_type.as_deref(), Some("application/json"));
    let e = c
        .fetch(
            &Request::get(format!("{base}/b")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let text = e.to_string();
    assert!(
        text.contains("/b: HTTP 404: {\"code\":\"NotFound\"}"),
        "{text}"
    );
}

#[test]
fn redirects_are_followed_only_to_http_and_only_so_far() {
    let base = serve(|path, _, _| match path {
        "/to-a" => Answer::Full("HTTP/1.1 302 Found\r\nLocation: /a", Vec::new()),
        "/to-file" => Answer::Full(
            "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd",
            Vec::new(),
        ),
        "/loop" => Answer::Full("HTTP/1.1 301 Moved\r\nLocation: /loop", Vec::new()),
        _ => ok("{}"),
    });
    let c = client(|_| {});
    let mut out = Vec::new();
    let f = c
        .fetch(
            &Request::get(format!("{base}/to-a")),
            &mut out,
            &CancelToken::new(),
        )
        .unwrap();
    assert!(f.url.ends_with("/a"), "{}", f.url);
    let e = c
        .fetch(
            &Request::get(format!("{base}/to-file")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(matches!(e, HttpError::BadRedirect { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("redirect to file:///etc/passwd: only http and https"),
        "{text}"
    );
    let e = c
        .fetch(
            &Request::get(format!("{base}/loop")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("more than 5 redirects"), "{e}");
    // A URL that is not http(s) is refused before anything is sent.
    let e = c
        .fetch(
            &Request::get("file:///etc/passwd"),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(matches!(e, HttpError::BadUrl { .. }), "{e:?}");
}

#[test]
fn a_huge_answer_stops_at_the_limit_and_a_stalled_one_at_the_timeout() {
    let base = serve(|path, _, _| match path {
        "/huge" => Answer::Endless,
        "/slow" => Answer::Stall,
        // A Content-Length above the limit: refused before the body is read.
        _ => Answer::Full(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json",
            vec![b' '; 300_000],
        ),
    });
    let c = client(|c| {
        c.max_bytes = 100_000;
        c.timeout = Duration::from_millis(700);
    });
    let t0 = Instant::now();
    let e = c
        .fetch(
            &Request::get(format!("{base}/huge")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(
        matches!(e, HttpError::TooLarge { limit: 100_000, .. }),
        "{e:?}"
    );
    let mut out = Vec::new();
    let e = c
        .fetch(
            &Request::get(format!("{base}/big")),
            &mut out,
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(matches!(e, HttpError::TooLarge { .. }), "{e:?}");
    assert!(out.len() <= 100_000);
    let e = c
        .fetch(
            &Request::get(format!("{base}/slow")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(matches!(e, HttpError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}

#[test]
fn tls_to_a_plain_server_and_a_closed_port_are_clear_errors() {
    let base = serve(|_, _, _| ok("{}"));
    let c = client(|c| c.timeout = Duration::from_secs(5));
    let tls = base.replace("http://", "https://");
    let e = c
        .fetch(
            &Request::get(format!("{tls}/a")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(
        matches!(e, HttpError::Transport { .. } | HttpError::Timeout { .. }),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(&format!("{tls}/a: ")), "{e}");
    // This server never answers a ClientHello: it closes, or stays silent.
    if matches!(e, HttpError::Transport { .. }) {
        let text = e.to_string();
        assert!(
            text.contains("TLS handshake failed") || text.contains("closed the connection"),
            "{text}"
        );
    }
    // A port nothing listens on.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = c
        .fetch(
            &Request::get(format!("https://127.0.0.1:{closed}/x")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("connection refused"),
        "{e}"
    );
}

#[test]
fn header_values_are_sent_but_never_printed() {
    let base = serve(|_, headers, _| {
        // Echo the request's headers in an error body, as a careless server might.
        Answer::Full(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain",
            headers.as_bytes().to_vec(),
        )
    });
    // A variable name no other test sets.
    let var = "SLUICE_HTTP_TEST_TOKEN_1";
    let headers: Vec<(String, HeaderValue)> = vec![(
        "Authorization".into(),
        HeaderValue::Env {
            env: var.into(),
            prefix: "Bearer ".into(),
        },
    )];
    let missing = Headers::resolve(headers.iter().map(|(k, v)| (k, v))).unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!("header Authorization: environment variable {var} is not set")
    );
    let mut h = Headers::new();
    h.push("Authorization", Secret::new("Bearer s3cr3t-value"));
    assert_eq!(
        format!("{h:?}"),
        "Headers([(\"Authorization\", <redacted>)])"
    );
    let c = client(|c| c.headers = h);
    let e = c
        .fetch(
            &Request::get(format!("{base}/x")),
            &mut Vec::new(),
            &CancelToken::new(),
        )
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date() {
    let now = chrono::Utc
        .with_ymd_and_hms(2015, 10, 21, 7, 28, 0)
        .unwrap();
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    let p = RetryPolicy::default();
    for attempt in 0..8 {
        let d = p.backoff(attempt);
        let full = p.base.saturating_mul(1 << attempt).min(p.max_wait);
        assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
    }
    let e = HttpError::Status {
        url: "u".into(),
        status: 429,
        retry_after: Some(Duration::from_secs(3)),
        detail: None,
    };
    assert!(p.delay(0, &e) >= Duration::from_secs(3));
}

#[test]
fn a_429_is_retried_after_retry_after_and_halves_the_limit() {
    let base = serve(|_, _, n| {
        if n == 0 {
            Answer::Full(
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1",
                Vec::new(),
            )
        } else if n == 1 {
            Answer::Full("HTTP/1.1 503 Service Unavailable", Vec::new())
        } else {
            ok("[1]")
        }
    });
    let c = client(|_| {});
    let limit = AdaptiveLimit::new(8);
    let policy = RetryPolicy {
        base: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let mut retries = Vec::new();
    let t0 = Instant::now();
    let mut out = Vec::new();
    fetch_with_retry(
        &c,
        &limit,
        &policy,
        &Request::get(format!("{base}/x")),
        &mut out,
        &CancelToken::new(),
        &mut |e, d, n| retries.push((e.status(), d, n)),
    )
    .unwrap();
    assert_eq!(out, b"[1]");
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[0].2), (Some(429), 2));
    assert!(retries[0].1 >= Duration::from_secs(1));
    assert_eq!(retries[1].0, Some(503));
    // 429 halved 8 to 4; the 503 came in the new epoch and halved again.
    assert_eq!(limit.history(), (2, 2));
    // Retries run out: the last error is returned.
    let base = serve(|_, _, _| Answer::Full("HTTP/1.1 500 Oops", Vec::new()));
    let policy = RetryPolicy {
        retries: 2,
        base: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let mut count = 0;
    let e = fetch_with_retry(
        &c,
        &AdaptiveLimit::new(2),
        &policy,
        &Request::get(format!("{base}/x")),
        &mut Vec::new(),
        &CancelToken::new(),
        &mut |_, _, _| count += 1,
    )
    .unwrap_err();
    assert_eq!((e.status(), count), (Some(500), 2));
}

#[test]
fn a_wait_ends_at_once_when_the_run_is_cancelled() {
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let t0 = Instant::now();
    let h = std::thread::spawn(move || retry::wait(Duration::from_secs(30), &c2));
    std::thread::yield_now();
    cancel.cancel();
    assert!(matches!(h.join().unwrap(), Err(HttpError::Cancelled)));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_limit_halves_once_per_epoch_and_grows_back() {
    let limit = AdaptiveLimit::with_step(8, 2);
    let cancel = CancelToken::new();
    let permits: Vec<Permit> = (0..8).map(|_| limit.acquire(&cancel).unwrap()).collect();
    // A ninth waits: nothing is free. Try from another thread with a cancel.
    let l2 = limit.clone();
    let c2 = CancelToken::new();
    let c3 = c2.clone();
    let waiter = std::thread::spawn(move || l2.acquire(&c3).map(drop).is_ok());
    let mut permits = permits.into_iter();
    // Three 429s of the same epoch halve once.
    permits.next().unwrap().throttled();
    permits.next().unwrap().throttled();
    permits.next().unwrap().throttled();
    assert_eq!(limit.limit(), 4);
    // 5 still in flight > 4: the waiter still waits; it is let go by cancel.
    c2.cancel();
    assert!(!waiter.join().unwrap());
    for p in permits {
        p.success();
    }
    // 5 successes at a step of 2: +2.
    assert_eq!(limit.limit(), 6);
    let p = limit.acquire(&cancel).unwrap();
    p.throttled();
    assert_eq!(limit.limit(), 3);
    assert_eq!(limit.history(), (3, 2));
    let one = AdaptiveLimit::new(1);
    one.acquire(&cancel).unwrap().throttled();
    assert_eq!(one.limit(), 1, "never below one");
}

#[test]
fn ordered_jobs_come_out_in_order_whatever_finishes_first() {
    let ctx = NodeContext::standalone("ordered");
    let jobs: Vec<u64> = (0..20).collect();
    let mut seen = Vec::new();
    run_ordered(
        &ctx,
        &jobs,
        Ordered::new(6, 2),
        &|_, &j, out| {
            // Later jobs finish first.
            let wait = Duration::from_millis(40 - 2 * j);
            let _ = crossbeam_channel::after(wait).recv();
            for k in 0..3 {
                out.send(j * 10 + k)?;
            }
            Ok(())
        },
        &mut |i, item| {
            seen.push((i, item));
            Ok(())
        },
    )
    .unwrap();
    let expected: Vec<(usize, u64)> = (0..20u64)
        .flat_map(|j| (0..3).map(move |k| (j as usize, j * 10 + k)))
        .collect();
    assert_eq!(seen, expected);
    // A failing job fails the run after the earlier jobs were consumed; a panic too.
    let mut seen = Vec::new();
    let e = run_ordered(
        &ctx,
        &jobs,
        Ordered::new(4, 1),
        &|i, _, out| {
            if i == 3 {
                return Err(ActionError::Other("job three".into()));
            }
            if i == 5 {
                panic!("boom");
            }
            out.send(i)
        },
        &mut |_, item| {
            seen.push(item);
            Ok(())
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "job three");
    assert_eq!(seen, vec![0, 1, 2]);
}

#[test]
fn pages_are_recorded_in_the_journal_and_replayed_on_resume() {
    let base = serve(|_, _, _| ok("{\"page\":1}"));
    let dir = tempfile::tempdir().unwrap();
    let c = client(|_| {});
    let limit = AdaptiveLimit::new(2);
    let policy = RetryPolicy::default();
    let request = Request::get(format!("{base}/p"));
    let fresh = NodeContext::standalone("n")
        .with_journal(crate::journal::JournalOptions::new(dir.path(), false));
    let store = PageStore::new(&fresh, "fp").unwrap();
    assert!(store.saved("k0").is_none());
    let page = store
        .fetch(
            "k0",
            &c,
            &limit,
            &policy,
            &request,
            &fresh,
            &mut |_, _, _| {},
        )
        .unwrap()
        .unwrap();
    assert!(!page.replayed);
    assert_eq!(std::fs::read(&page.path).unwrap(), b"{\"page\":1}");
    let resumed = NodeContext::standalone("n")
        .with_journal(crate::journal::JournalOptions::new(dir.path(), true));
    let store = PageStore::new(&resumed, "fp").unwrap();
    let again = store.saved("k0").unwrap();
    assert!(again.replayed);
    assert_eq!(again.path, page.path);
    assert_eq!(again.content_type.as_deref(), Some("application/json"));
    // Without a journal, pages are temporary files removed once read.
    let plain = NodeContext::standalone("n");
    let store = PageStore::new(&plain, "fp").unwrap();
    let page = store
        .fetch(
            "k0",
            &c,
            &limit,
            &policy,
            &request,
            &plain,
            &mut |_, _, _| {},
        )
        .unwrap()
        .unwrap();
    assert!(page.path.exists());
    store.release(&page);
    assert!(!page.path.exists());
}

#[test]
fn passwords_in_urls_are_hidden() {
    assert_eq!(
        redact_url("https://me:secret@example.com/x?a=1"),
        "https://me:***@example.com/x?a=1"
    );
    assert_eq!(redact_url("https://example.com/x"), "https://example.com/x");
}
