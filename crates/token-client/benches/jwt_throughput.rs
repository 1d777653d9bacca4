//! JWTs per second against the in-process emulator: token-client with its cached access token,
//! next to the naive pattern of AXP's sample backend (a new access token for every JWT), and the
//! OAuth calls each makes per 1,000 JWTs.
//!
//! Run: `cargo bench -p token-client --bench jwt_throughput` (prints a Markdown table).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_emulator::{Credentials, Emulator};
use futures::StreamExt as _;
use token_client::{CustomerRequest, TokenClient, TokenClientConfig};

struct Row {
    pattern: &'static str,
    concurrency: usize,
    jwts: usize,
    elapsed: Duration,
    oauth_calls: u64,
}

/// The naive pattern: one OAuth call, then one token call, for every JWT (pooled connections).
async fn naive_jwt(http: &reqwest::Client, base: &str, c: &Credentials, customer: String) {
    let token: serde_json::Value = http
        .post(format!(
            "{base}/api/auth/v1/{}/protocol/openid-connect/token",
            c.account_id
        ))
        .header("appkey", &c.appkey)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let jwt: serde_json::Value = http
        .post(format!(
            "{base}/api/digital/chat/v1/accounts/{}/tokens",
            c.account_id
        ))
        .bearer_auth(access)
        .header("appkey", &c.appkey)
        .json(&serde_json::json!({
            "customerId": customer,
            "integrationId": c.integration_id,
            "verifiedCustomer": true,
            "ttl": 15,
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwt["jwtToken"].as_str().unwrap().starts_with("jwt."));
}

async fn run_cached(emu: &Emulator, concurrency: usize, jwts: usize) -> Row {
    let c = emu.credentials();
    let client = TokenClient::new(
        TokenClientConfig::new(
            emu.base_url(),
            c.account_id.clone(),
            c.client_id.clone(),
            c.client_secret.clone(),
            c.appkey.clone(),
            c.integration_id.clone(),
        )
        .with_max_concurrency(concurrency),
    )
    .unwrap();
    let before = emu.control().stats().oauth_calls;
    let start = Instant::now();
    futures::stream::iter(0..jwts)
        .map(|i| {
            let client = client.clone();
            async move {
                client
                    .generate_jwt(&CustomerRequest::verified(format!("customer-{i}")))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    Row {
        pattern: "token-client (cached access token)",
        concurrency,
        jwts,
        elapsed: start.elapsed(),
        oauth_calls: emu.control().stats().oauth_calls - before,
    }
}

async fn run_naive(emu: &Emulator, concurrency: usize, jwts: usize) -> Row {
    let http = reqwest::Client::new();
    let base = emu.base_url();
    let c = Arc::new(emu.credentials().clone());
    let before = emu.control().stats().oauth_calls;
    let start = Instant::now();
    futures::stream::iter(0..jwts)
        .map(|i| {
            let (http, base, c) = (http.clone(), base.clone(), c.clone());
            async move { naive_jwt(&http, &base, &c, format!("customer-{i}")).await }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    Row {
        pattern: "naive (new access token per JWT)",
        concurrency,
        jwts,
        elapsed: start.elapsed(),
        oauth_calls: emu.control().stats().oauth_calls - before,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emu = Emulator::builder().start().await.unwrap();
        // Warm both paths (connections, allocator) before measuring.
        run_cached(&emu, 8, 200).await;
        run_naive(&emu, 8, 200).await;
        let mut rows = Vec::new();
        for (concurrency, jwts) in [(1, 1_000), (32, 5_000)] {
            rows.push(run_cached(&emu, concurrency, jwts).await);
            rows.push(run_naive(&emu, concurrency, jwts).await);
        }
        println!("| pattern | concurrency | JWTs | JWTs/s | OAuth calls per 1,000 JWTs |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for r in &rows {
            println!(
                "| {} | {} | {} | {:.0} | {:.1} |",
                r.pattern,
                r.concurrency,
                r.jwts,
                r.jwts as f64 / r.elapsed.as_secs_f64(),
                r.oauth_calls as f64 * 1000.0 / r.jwts as f64,
            );
        }
        emu.shutdown().await;
    });
}
