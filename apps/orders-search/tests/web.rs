//! The search API and the page against the real broker, registry and engine, the page
//! in headless Chromium (Debian's `chromium`). Start them with `dev/test`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cdp::Chromium;
use common::{wait_until, Platform};
use orders_platform::records::{Order, OrderState, Product};
use serde_json::{json, Value};
use streams_test_support::within;

fn ids_and_states(body: &Value) -> Vec<(String, String)> {
    body["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("no orders in {body}"))
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().into(),
                d["state"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn pair(id: &str, state: &str) -> (String, String) {
    (id.to_string(), state.to_string())
}

#[test]
fn the_api_finds_orders_by_each_field_and_by_free_text_and_names_bad_parameters() {
    within(Duration::from_secs(180), || {
        let platform = Platform::new();
        let service = platform.start();
        let a1 = Order::created("a1", 11, Product::Jumpers, 1, 10.0);
        let a2 = Order::created("a2", 12, Product::Underpants, 4, 2.5);
        let a3 = Order::created("a3", 11, Product::Stockings, 2, 7.0);
        platform.produce(&[
            a1.clone(),
            a2.clone(),
            a3.clone(),
            a1.in_state(OrderState::Validated),
            a3.in_state(OrderState::Failed),
        ]);
        wait_until(Duration::from_secs(60), "5 events are searchable", || {
            let (status, body) = service.get("/api/orders");
            (status == 200 && body["total"] == 5).then_some(())
        });

        // Exact filters; newest first.
        let (_, body) = service.get("/api/orders?id=a1");
        assert_eq!(
            ids_and_states(&body),
            vec![pair("a1", "VALIDATED"), pair("a1", "CREATED")]
        );
        let (_, body) = service.get("/api/orders?customerId=11");
        let found: BTreeSet<_> = ids_and_states(&body).into_iter().collect();
        let expected = [
            pair("a1", "CREATED"),
            pair("a1", "VALIDATED"),
            pair("a3", "CREATED"),
            pair("a3", "FAILED"),
        ];
        assert_eq!(found, BTreeSet::from(expected));
        let (_, body) = service.get("/api/orders?state=FAILED");
        assert_eq!(ids_and_states(&body), vec![pair("a3", "FAILED")]);
        let (_, body) = service.get("/api/orders?product=UNDERPANTS");
        assert_eq!(ids_and_states(&body), vec![pair("a2", "CREATED")]);
        let (_, body) = service.get("/api/orders?customerId=11&state=created&limit=1");
        assert_eq!(body["total"], 2);
        assert_eq!(body["orders"].as_array().unwrap().len(), 1);

        // Free text over every field, any case, every word must match.
        let (_, body) = service.get("/api/orders?q=stockings");
        let found: BTreeSet<_> = ids_and_states(&body).into_iter().collect();
        assert_eq!(
            found,
            BTreeSet::from([pair("a3", "CREATED"), pair("a3", "FAILED")])
        );
        let (_, body) = service.get("/api/orders?q=12%20underpants");
        assert_eq!(ids_and_states(&body), vec![pair("a2", "CREATED")]);
        let (_, body) = service.get("/api/orders?q=validated%20a1");
        assert_eq!(ids_and_states(&body), vec![pair("a1", "VALIDATED")]);

        // Every state of one order, oldest first.
        let (status, body) = service.get("/api/orders/a1");
        assert_eq!(status, 200);
        let states: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["CREATED", "VALIDATED"]);
        assert_eq!(body[0]["customerId"], 11);
        let (status, body) = service.get("/api/orders/never-posted");
        assert_eq!(status, 404, "{body}");

        // Bad parameters: 400 naming the parameter.
        for (query, parameter) in [
            ("limit=0", "limit"),
            ("limit=lots", "limit"),
            ("limit=100000", "limit"),
            ("customerId=eleven", "customerId"),
            ("state=LOST", "state"),
            ("product=HATS", "product"),
            ("colour=red", "colour"),
        ] {
            let (status, body) = service.get(&format!("/api/orders?{query}"));
            assert_eq!(status, 400, "{query}: {body}");
            assert_eq!(body["parameter"], parameter, "{query}: {body}");
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{body}"
            );
        }

        // The fraud report is down here: the proxy says so; a bad limit is still a 400.
        let (status, body) = service.get("/api/fraud?limit=10");
        assert_eq!(status, 502, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("fraud report"),
            "{body}"
        );
        let (status, body) = service.get("/api/fraud?limit=0");
        assert_eq!(
            (status, &body["parameter"]),
            (400, &json!("limit")),
            "{body}"
        );

        let (status, health) = service.get("/health");
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["engine"]["reachable"], true);
        assert_eq!(health["consumer"]["running"], true);
        let metrics = reqwest::blocking::get(format!("{}/metrics", service.url()))
            .unwrap()
            .text()
            .unwrap();
        assert!(
            metrics.contains("orders_search_documents_indexed_total"),
            "{metrics}"
        );
    });
}

/// A stand-in for the order-enrichment service's fraud report: `GET /fraud` answers
/// one alert. Serves until its runtime is dropped at the end of the test.
fn fraud_report() -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/fraud",
        axum::routing::get(|| async {
            axum::Json(json!([{"customerId": 3, "lastName": "Fraudster", "firstName": "Frank",
                "counts": 4, "windowStart": "2026-11-27T21:58:00Z", "windowEnd": "2026-11-27T21:58:30Z"}]))
        }),
    );
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, runtime)
}

#[test]
fn the_page_shows_a_new_order_without_reloading() {
    within(Duration::from_secs(180), || {
        let mut platform = Platform::new();
        let (fraud_url, _fraud) = fraud_report();
        platform.search.fraud_report_url = fraud_url;
        let service = platform.start();
        platform.produce(&[Order::created("seed-order", 2, Product::Jumpers, 1, 1.0)]);
        wait_until(
            Duration::from_secs(60),
            "the first order is indexed",
            || (service.count() == 1).then_some(()),
        );

        let mut chromium = Chromium::launch();
        chromium.open(&format!("{}/", service.url()));
        let text = |chromium: &mut Chromium| {
            chromium
                .eval("document.body ? document.body.innerText : ''")
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        wait_until(
            Duration::from_secs(30),
            "the page shows the first order",
            || text(&mut chromium).contains("seed-order").then_some(()),
        );
        // Survives only if the page is never reloaded.
        chromium.eval("window.loadedOnce = 'yes'");

        let id = format!("live-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let produced = Instant::now();
        platform.produce(&[Order::created(&id, 5, Product::Underpants, 3, 2.0)]);
        let page = wait_until(
            Duration::from_secs(30),
            "the new order appears on the page",
            || {
                let page = text(&mut chromium);
                page.contains(&id).then_some(page)
            },
        );
        println!(
            "the new order appeared on the page {:?} after it was produced",
            produced.elapsed()
        );
        assert_eq!(
            chromium.eval("window.loadedOnce"),
            json!("yes"),
            "the page was reloaded"
        );
        assert!(page.contains("CREATED"), "{page}");
        let row = chromium.eval(&format!(
            "[...document.querySelectorAll('#orders tr')].find(r => r.dataset.id === '{id}').innerText"
        ));
        let row = row.as_str().unwrap();
        for column in ["5", "UNDERPANTS", "3", "2.00", "CREATED"] {
            assert!(
                row.contains(column),
                "{column} missing from the row {row:?}"
            );
        }
        let colour = chromium.eval(&format!(
            "getComputedStyle(document.querySelector('tr[data-id=\"{id}\"] .state')).backgroundColor"
        ));
        assert_ne!(colour, json!("rgba(0, 0, 0, 0)"), "the state has a colour");
        wait_until(Duration::from_secs(10), "the fraud alert is shown", || {
            text(&mut chromium)
                .contains("Frank Fraudster")
                .then_some(())
        });

        // The search box narrows the list, live.
        chromium.eval(&format!(
            "(() => {{ const s = document.getElementById('search'); s.value = '{id}'; \
               s.dispatchEvent(new Event('input')); }})()"
        ));
        wait_until(
            Duration::from_secs(10),
            "the search leaves only the new order",
            || {
                let page = text(&mut chromium);
                (page.contains(&id) && !page.contains("seed-order")).then_some(())
            },
        );
        chromium.eval(
            "(() => { const s = document.getElementById('search'); s.value = ''; \
               s.dispatchEvent(new Event('input')); })()",
        );
        wait_until(
            Duration::from_secs(10),
            "clearing the search shows every order",
            || text(&mut chromium).contains("seed-order").then_some(()),
        );

        let folder = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = folder.join("orders-search-page.png");
        chromium.screenshot(&path);
        println!("screenshot of the page: {}", path.display());
    });
}
