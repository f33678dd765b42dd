//! The live view's HTTP surface: the page and its assets, and the JSON API other UIs can use
//! as well.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/graph` | nodes (placed), edges, subgraph boxes |
//! | `GET /api/progress` | the run's state: status, snapshot, failures, report |
//! | `GET /api/events` | server-sent events: `snapshot` (the state, first and after a lag), `progress`, `node_failed`, `log`, `run_started`, `run_finished` |
//! | `POST /api/cancel` | cancels the run (needs the token) |
//! | `POST /api/run` | starts a new run (needs the token) |
//! | `GET /api/preview/{edge}?offset=&limit=` | captured features of an edge (its index or name) |
//!
//! State-changing requests carry the server's token in the `x-sluice-token` header; the page
//! has it, another site open in the same browser cannot read it. On a loopback address the
//! `Host` header must name the server, so a rebound DNS name cannot reach it either.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::json;
use sluice::runtime::capture::Job;
use tokio::sync::broadcast::error::RecvError;

use super::session::{Session, StartError};

/// Open event streams at most; one more is refused with 503.
pub const MAX_STREAMS: usize = 16;
/// Most features one preview request returns.
const MAX_PREVIEW: usize = 1000;
/// Characters per preview cell (WKT included) before it is cut with `…`.
const PREVIEW_CELL_CHARS: usize = 80;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// What every handler shares.
#[derive(Clone)]
pub struct Api {
    /// The runs.
    pub session: Arc<Session>,
    /// The token state-changing requests carry.
    pub token: Arc<str>,
    /// The `Host` values accepted (`None`: any, when bound beyond loopback).
    pub hosts: Option<Arc<[String]>>,
    /// Event streams open now.
    pub streams: Arc<AtomicUsize>,
}

/// The router.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/graph", get(graph))
        .route("/api/progress", get(progress))
        .route("/api/events", get(events))
        .route("/api/cancel", post(cancel))
        .route("/api/run", post(run))
        .route("/api/preview/{edge}", get(preview))
        .layer(middleware::from_fn_with_state(api.clone(), check_host))
        .with_state(api)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Refuses a request whose `Host` is not this server's (DNS rebinding).
async fn check_host(State(api): State<Api>, request: Request, next: Next) -> Response {
    if let Some(hosts) = &api.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                format!("Host \"{host}\" is not this server"),
            );
        }
    }
    next.run(request).await
}

fn no_store(content_type: &'static str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

async fn index(State(api): State<Api>) -> Response {
    let page = INDEX_HTML.replace("{{TOKEN}}", &api.token);
    let mut r = no_store("text/html; charset=utf-8", page);
    // The page loads only its own scripts and styles, and no other site may frame it.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    r
}

async fn app_js() -> Response {
    no_store("text/javascript; charset=utf-8", APP_JS.to_string())
}

async fn style_css() -> Response {
    no_store("text/css; charset=utf-8", STYLE_CSS.to_string())
}

async fn graph(State(api): State<Api>) -> Response {
    match api.session.graph() {
        Some(g) => axum::Json(&*g).into_response(),
        None => {
            let state = api.session.state();
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "error": "no graph: the workflow has not run or did not validate",
                    "validation": state.validation,
                })),
            )
                .into_response()
        }
    }
}

async fn progress(State(api): State<Api>) -> Response {
    axum::Json(api.session.state()).into_response()
}

/// Whether the request carries the server's token.
fn authorised(api: &Api, headers: &HeaderMap) -> bool {
    headers
        .get("x-sluice-token")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| constant_time_eq(t.as_bytes(), api.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "missing or wrong x-sluice-token header (the page holds the token)",
    )
}

async fn cancel(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorised(&api, &headers) {
        return forbidden();
    }
    if api.session.cancel() {
        axum::Json(json!({ "cancelled": true })).into_response()
    } else {
        error(StatusCode::CONFLICT, "no run is going on")
    }
}

async fn run(State(api): State<Api>, headers: HeaderMap) -> Response {
    if !authorised(&api, &headers) {
        return forbidden();
    }
    let session = api.session.clone();
    let started = tokio::task::spawn_blocking(move || session.spawn_run()).await;
    match started {
        Ok(Ok(run)) => (StatusCode::ACCEPTED, axum::Json(json!({ "run": run }))).into_response(),
        Ok(Err(StartError::Busy)) => error(StatusCode::CONFLICT, StartError::Busy.to_string()),
        Ok(Err(StartError::Invalid(_))) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "error": "the workflow is invalid",
                "validation": api.session.state().validation,
            })),
        )
            .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Counts an open event stream while it lives.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn events(State(api): State<Api>) -> Response {
    let open = api.streams.fetch_add(1, Ordering::SeqCst);
    let slot = StreamSlot(api.streams.clone());
    if open >= MAX_STREAMS {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} event streams are open already"),
        );
    }
    // Subscribed before the snapshot is taken, so nothing falls between the two.
    let rx = api.session.subscribe();
    let first = snapshot_event(&api.session);
    Sse::new(stream(api.session.clone(), rx, first, slot))
        // A comment every 2 s: a page that went away is noticed, and its slot freed, soon.
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(2)))
        .into_response()
}

fn snapshot_event(session: &Session) -> SseEvent {
    let state = serde_json::to_string(&session.state()).unwrap_or_else(|_| "{}".into());
    SseEvent::default().event("snapshot").data(state)
}

fn stream(
    session: Arc<Session>,
    rx: tokio::sync::broadcast::Receiver<super::session::Message>,
    first: SseEvent,
    slot: StreamSlot,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    // The stream ends after the end of a run whose server ends with it, so the page has
    // everything and the server need not wait for the page to go.
    let ends_with_run = session.state().server_ends_with_run;
    futures_util::stream::unfold(
        (Some(first), rx, session, slot, false),
        move |(first, mut rx, session, slot, over)| async move {
            if over {
                return None;
            }
            if let Some(e) = first {
                return Some((Ok(e), (None, rx, session, slot, false)));
            }
            let (event, over) = match rx.recv().await {
                Ok((name, data)) => (
                    SseEvent::default().event(name).data(&*data),
                    ends_with_run && name == "run_finished",
                ),
                // Fell behind: the whole state again, then live events.
                Err(RecvError::Lagged(_)) => (snapshot_event(&session), false),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(event), (None, rx, session, slot, over)))
        },
    )
}

/// `?offset=&limit=` of a preview.
#[derive(Deserialize)]
struct Window {
    #[serde(default)]
    offset: u64,
    limit: Option<usize>,
}

async fn preview(
    State(api): State<Api>,
    Path(edge): Path<String>,
    Query(window): Query<Window>,
) -> Response {
    let state = api.session.state();
    let Some(graph) = api.session.graph() else {
        return error(StatusCode::NOT_FOUND, "no run");
    };
    // The edge by its index or its name; only edges of this workflow are known.
    let found = match edge.parse::<usize>() {
        Ok(i) => graph.edges.get(i),
        Err(_) => graph.edges.iter().find(|e| e.name == edge),
    };
    let Some(found) = found else {
        return error(StatusCode::NOT_FOUND, format!("no edge \"{edge}\""));
    };
    let Some(job) = state.job else {
        return error(
            StatusCode::NOT_FOUND,
            "this run captures no edge; run with --capture to preview edges",
        );
    };
    if !found.captured {
        return error(
            StatusCode::NOT_FOUND,
            format!("edge \"{}\" is not captured in this run", found.name),
        );
    }
    let name = found.name.clone();
    let limit = window.limit.unwrap_or(20).min(MAX_PREVIEW);
    let offset = window.offset;
    let read = tokio::task::spawn_blocking(move || -> Result<serde_json::Value, String> {
        let job = Job::open(&job).map_err(|e| e.to_string())?;
        let entry = job.edge(&name).map_err(|e| e.to_string())?;
        let (features, complete) = (entry.features, entry.complete);
        let rows = job.read(&name, offset, limit).map_err(|e| e.to_string())?;
        let (columns, cells) = sluice::inspect::grid(&rows, PREVIEW_CELL_CHARS);
        Ok(json!({
            "edge": name,
            "features": features,
            "complete": complete,
            "offset": offset,
            "columns": columns,
            "rows": cells,
        }))
    })
    .await;
    match read {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        // The job has not written this edge's entry yet (the run is starting).
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
