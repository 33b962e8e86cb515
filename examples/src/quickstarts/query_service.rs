//! An interactive-query service: page views counted per page, and an HTTP lookup
//! `GET /views/{page}` that any instance answers, whichever instance holds the page's
//! partition: the library's query router finds the owner (partition → instance
//! metadata) and asks it over gRPC.
//!
//! ```text
//! page-views (user → page) ─group_by(page)─count("views-per-page")   ← GET /views/{page}
//! ```
//!
//! The `query-service` binary runs two instances of one application in one process
//! (`--http-ports 7070,7071 --query-ports 7170,7171`): each serves HTTP on its own port
//! and queries between instances on its query port, as separate processes on separate
//! hosts would.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use streams_core::query::QueryRouter;
use streams_core::serde::StringSerde;
use streams_core::{Consumed, Grouped, Materialized, StreamsBuilder, Topology};

/// The input topic of the quickstart.
pub const PAGE_VIEWS: &str = "page-views";
/// The queryable store of counts per page.
pub const STORE: &str = "views-per-page";

/// Page views on `views` counted per page in [`STORE`].
pub fn topology(views: &str) -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream(views, Consumed::with(StringSerde, StringSerde))
        .group_by(
            |_user, page: &String| page.clone(),
            Grouped::with(StringSerde, StringSerde),
        )
        .count(Materialized::as_store(STORE));
    builder
        .build()
        .expect("the query service topology is valid")
}

/// The HTTP routes of one instance: `GET /views/{page}` answers
/// `{"page":…,"views":…,"answeredBy":"host:port"}` (404 for a page never viewed, 503
/// while the instances rebalance).
pub fn routes(router: QueryRouter) -> Router {
    Router::new()
        .route("/views/{page}", get(views))
        .with_state(Arc::new(router))
}

async fn views(State(router): State<Arc<QueryRouter>>, Path(page): Path<String>) -> Response {
    match router.get::<String, i64>(STORE, &page).await {
        Ok(routed) => {
            let answered_by = routed
                .answered_by
                .first()
                .and_then(|i| i.host.as_ref())
                .map(ToString::to_string);
            match routed.value {
                Some(views) => Json(serde_json::json!({
                    "page": page, "views": views, "answeredBy": answered_by,
                }))
                .into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    Json(serde_json::json!({ "error": format!("no views of {page}") })),
                )
                    .into_response(),
            }
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

/// The sample views of `--sample`: `(user, page)`.
pub const SAMPLE: [(&str, &str); 8] = [
    ("u1", "/home"),
    ("u2", "/home"),
    ("u3", "/pricing"),
    ("u1", "/docs"),
    ("u2", "/docs"),
    ("u4", "/home"),
    ("u5", "/blog"),
    ("u3", "/home"),
];
