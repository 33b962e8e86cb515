//! The web page at `/`: recent orders with their state in colour, refreshed every
//! second from `/api/orders`, a search box, and the fraud alerts of `/api/fraud`. One
//! self-contained HTML file (`page.html`, no external scripts or styles) compiled in.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The page's HTML.
pub const PAGE: &str = include_str!("page.html");

/// The route `/`.
pub fn routes() -> Router {
    Router::new().route(
        "/",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                PAGE,
            )
                .into_response()
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_uses_only_this_service() {
        assert!(PAGE.contains("/api/orders?"));
        assert!(PAGE.contains("/api/fraud?limit=10"));
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no external resources"
        );
    }
}
