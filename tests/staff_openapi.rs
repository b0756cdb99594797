//! The OpenAPI document against the router: every route in `api::router` (read from
//! src/api/mod.rs, the single route table) has its path and method in the document and vice
//! versa; every described operation answers on a running daemon (401 without a token where
//! the document asks for one, 200 where it does not), never 404 "no such route" or 405.

mod staff_common;

use serde_json::Value;
use staff_common::*;
use std::collections::BTreeSet;

/// Routes of work on other branches, described ahead of their merge. Once a route lands in
/// the router, this test fails until it is removed from here.
const PENDING: &[(&str, &str)] = &[];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// (path, method) of every `.route("…", get(…).post(…))` in src/api/mod.rs.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs"))
        .expect("read src/api/mod.rs");
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        // The call's argument text, up to its closing parenthesis.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in call.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &call[..end];
        let path = args
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("no path literal in .route({args})"));
        // Method routers: `get(` at the start of the second argument or `.post(` chained.
        let handlers = args.split_once(',').map_or("", |(_, h)| h);
        for m in METHODS {
            let bare = handlers.trim_start().starts_with(&format!("{m}("));
            let chained = handlers.contains(&format!(".{m}("));
            if bare || chained {
                out.insert((path.to_owned(), m.to_owned()));
            }
        }
        rest = &call[end..];
    }
    assert!(out.len() > 10, "parsed too few routes: {out:?}");
    out
}

fn document_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((path.clone(), m.to_owned()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_and_router_describe_the_same_routes_and_they_answer() {
    let env = env_with("").await;
    let d = start(&env).await;
    let anonymous = d.api.with_token(None);
    let (s, doc) = anonymous.get("/api/v1/openapi.json").await;
    assert_eq!(s, 200, "the document needs no token: {doc}");
    assert_eq!(doc["openapi"], Value::from("3.1.0"));
    assert_eq!(doc, gridsms::api::openapi::document());

    let router = router_routes();
    let described = document_routes(&doc);
    let pending: BTreeSet<(String, String)> = PENDING
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    let undocumented: Vec<_> = router.difference(&described).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    let not_routed: BTreeSet<_> = described.difference(&router).cloned().collect();
    assert_eq!(
        not_routed, pending,
        "described but not routed (left) vs PENDING (right): a route that landed must leave \
         PENDING; a described route that is neither routed nor pending is wrong"
    );

    // Every routed, described operation answers as its security says.
    for (path, method) in router.intersection(&described) {
        let op = &doc["paths"][path][method];
        let open = op["security"].as_array().is_some_and(|s| s.is_empty());
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let (status, body) = match method.as_str() {
            "get" => anonymous.get(&concrete).await,
            _ => anonymous.post(&concrete, serde_json::json!({})).await,
        };
        let expected = if open { 200 } else { 401 };
        assert_eq!(status, expected, "{method} {concrete}: {body}");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    // And something not described is not routed either.
    let (s, _) = anonymous.get("/api/v1/nothing-here").await;
    assert_eq!(s, 404);
    d.stop().await;
}
