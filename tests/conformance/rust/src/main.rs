//! The Rust conformance runner: runs every case of tests/conformance/cases.json against the
//! conformance cell through the generated crate (`conformance`, in ./client), and checks the
//! wire test vectors of tests/vectors/ through its codec and framing. Prints one JSON line per
//! check and a summary line (tests/conformance/README.md) and exits 1 when any check failed. The
//! generated crate is expected in ./client (see Cargo.toml).
//!
//!     conformance-runner cases <cases.json> [<socket>]
//!     conformance-runner vectors <tests/vectors>
mod values;
mod vectors;

use std::time::{Duration, Instant};

use conformance::cell::{from_value, to_value};
use conformance::*;
use rmpv::Value;
use serde_json::Value as Json;
use values::{from_json, same, show};

/// One JSON line per check, and a summary (tests/conformance/README.md, "Runners").
pub struct Report {
    pub passed: u32,
    pub failed: u32,
}

impl Report {
    pub fn check(&mut self, name: &str, result: Result<(), String>) {
        let line = match result {
            Ok(()) => {
                self.passed += 1;
                serde_json::json!({ "name": name, "ok": true })
            }
            Err(e) => {
                self.failed += 1;
                serde_json::json!({ "name": name, "ok": false, "error": e })
            }
        };
        println!("{line}");
    }
}

/// Calls `$method` with the request decoded into its generated type, and encodes the typed
/// response back: both directions go through the generated serde types.
macro_rules! typed {
    ($client:expr, $method:ident, $req:ty, $payload:expr, $options:expr) => {{
        let req: $req = from_value($payload).map_err(|e| format!("decoding the request: {e}"))?;
        match $client.$method(&req, $options).await {
            Ok(resp) => Ok(to_value(&resp).map_err(|e| e.to_string())?),
            Err(e) => Err(e),
        }
    }};
}

async fn call(
    c: &Client,
    method: &str,
    payload: Value,
    options: &CallOptions,
) -> Result<Result<Value, CellError>, String> {
    Ok(match method {
        "echo_scalars" => typed!(c, echo_scalars_with, Scalars, payload, options),
        "echo_nested" => typed!(c, echo_nested_with, Outer, payload, options),
        "echo_optionals" => typed!(c, echo_optionals_with, Optionals, payload, options),
        "echo_any" => typed!(c, echo_any_with, Anything, payload, options),
        "echo_blob" => typed!(c, echo_blob_with, Blob, payload, options),
        "make_blob" => typed!(c, make_blob_with, Size, payload, options),
        "fail" => typed!(c, fail_with, Failure, payload, options),
        "slow" => typed!(c, slow_with, Slow, payload, options),
        "was_cancelled" => typed!(c, was_cancelled_with, Token, payload, options),
        other => return Err(format!("the runner does not know method {other:?}")),
    })
}

async fn run_case(c: &Client, case: &Json) -> Result<(), String> {
    let method = case["method"].as_str().unwrap_or_default();
    let ms = |k: &str| {
        case.get(k)
            .and_then(Json::as_u64)
            .map(Duration::from_millis)
    };
    let options = CallOptions {
        timeout: ms("timeout_ms"),
        metadata: None,
    };
    let start = Instant::now();
    let fut = call(c, method, from_json(&case["request"]), &options);
    // Cancelling a call in Rust is dropping its future, which sends CANCEL.
    let result = match ms("cancel_after_ms") {
        Some(after) => match tokio::time::timeout(after, fut).await {
            Ok(r) => r?,
            Err(_) => Err(CellError::new(
                Code::Cancelled,
                "cancelled by dropping the call",
            )),
        },
        None => fut.await?,
    };
    if let Some(max) = ms("max_elapsed_ms") {
        if start.elapsed() > max {
            return Err(format!("took {:?}, more than {max:?}", start.elapsed()));
        }
    }
    let expect = &case["expect"];
    if let Some(want) = expect.get("error") {
        let code = want["code"].as_str().unwrap_or_default();
        return match result {
            Err(e) if e.code.name() != code => Err(format!("expected {code}, got {e}")),
            Err(e)
                if want
                    .get("message")
                    .is_some_and(|m| m.as_str() != Some(&e.message)) =>
            {
                Err(format!(
                    "expected message {}, got {:?}",
                    want["message"], e.message
                ))
            }
            Err(_) => Ok(()),
            Ok(v) => Err(format!("expected {code}, got {}", show(&v))),
        };
    }
    let got = result.map_err(|e| format!("unexpected error: {e}"))?;
    let want = from_json(&expect["response"]);
    if same(&got, &want, false) {
        Ok(())
    } else {
        Err(format!("got {}, want {}", show(&got), show(&want)))
    }
}

async fn run_cases(path: &str, socket: Option<String>, report: &mut Report) {
    let cases: Json = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return report.check("reading the cases", Err(e)),
    };
    let options = Options {
        socket_path: socket.map(Into::into),
        strict: true,
        ..Options::default()
    };
    let client = match Client::connect(options).await {
        Ok(c) => c,
        Err(e) => {
            report.check(
                "connect with a strict schema-hash check",
                Err(e.to_string()),
            );
            return;
        }
    };
    report.check("connect with a strict schema-hash check", Ok(()));
    for case in cases["cases"].as_array().into_iter().flatten() {
        let name = case["name"].as_str().unwrap_or_default();
        let result = run_case(&client, case).await;
        report.check(name, result);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut report = Report {
        passed: 0,
        failed: 0,
    };
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("cases"), Some(path)) => {
            run_cases(
                path,
                args.get(3).filter(|s| !s.is_empty()).cloned(),
                &mut report,
            )
            .await
        }
        (Some("vectors"), Some(dir)) => vectors::run(dir, &mut report).await,
        _ => {
            eprintln!("usage: conformance-runner cases <cases.json> [<socket>] | vectors <dir>");
            std::process::exit(2);
        }
    }
    let summary =
        serde_json::json!({ "summary": true, "passed": report.passed, "failed": report.failed });
    println!("{summary}");
    std::process::exit(if report.failed > 0 { 1 } else { 0 });
}
