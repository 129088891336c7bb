//! The wire test vectors through the generated crate's MessagePack codec and framing.
use conformance::cell::{decode_frame, encode_frame, read_frame, Frame, FrameError, Hello};
use conformance::Code;
use rmpv::Value;
use serde_json::Value as Json;

use crate::values::{from_json, hex, same, show, unhex};
use crate::Report;

fn load(dir: &str, file: &str) -> Vec<Json> {
    let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("reading the vectors");
    serde_json::from_str::<Json>(&text)
        .expect("parsing the vectors")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub async fn run(dir: &str, report: &mut Report) {
    for v in load(dir, "msgpack.json") {
        report.check(
            &format!("msgpack.json: {}", v["name"].as_str().unwrap_or("")),
            value_vector(&v),
        );
    }
    for file in ["frames.json", "ignored.json", "malformed.json"] {
        for v in load(dir, file) {
            let result = frame_vector(&v).await;
            report.check(
                &format!("{file}: {}", v["name"].as_str().unwrap_or("")),
                result,
            );
        }
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("writing to a Vec cannot fail");
    out
}

fn value_vector(v: &Json) -> Result<(), String> {
    let want = from_json(&v["meaning"]);
    for key in ["hex", "alt_hex"] {
        let Some(h) = v.get(key).and_then(Json::as_str) else {
            continue;
        };
        let bytes = unhex(h);
        let mut rest = &bytes[..];
        let got =
            rmpv::decode::read_value(&mut rest).map_err(|e| format!("decoding {key}: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("{} bytes left after the value", rest.len()));
        }
        if !same(&got, &want, true) {
            return Err(format!(
                "{key} decodes to {}, want {}",
                show(&got),
                show(&want)
            ));
        }
    }
    if v.get("decode_only") == Some(&Json::Bool(true)) {
        return Ok(());
    }
    let got = hex(&encode(&want));
    if Some(got.as_str()) != v["hex"].as_str()
        && Some(got.as_str()) != v.get("alt_hex").and_then(Json::as_str)
    {
        return Err(format!("encodes to {got}, want {}", v["hex"]));
    }
    Ok(())
}

fn u32_at(m: &Json, k: &str) -> u32 {
    m.get(k).and_then(Json::as_u64).unwrap_or(0) as u32
}

fn string_at(m: &Json, k: &str) -> String {
    m.get(k)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The frame a vector's meaning describes.
fn frame_of(m: &Json) -> Frame {
    let opt = |k: &str| m.get(k).map(from_json);
    match m["kind"].as_str().unwrap_or_default() {
        "HELLO" => {
            let info = &m["info"];
            let s = |k: &str| info.get(k).and_then(Json::as_str).map(str::to_owned);
            Frame::Hello {
                version: u32_at(m, "version"),
                info: Hello {
                    cell: s("cell"),
                    schema_hash: s("schema_hash"),
                    max_frame: info
                        .get("max_frame")
                        .and_then(Json::as_u64)
                        .map(|n| n as u32),
                    peer: s("peer"),
                    agent: s("agent"),
                },
            }
        }
        "REQUEST" => Frame::Request {
            id: u32_at(m, "id"),
            method: string_at(m, "method"),
            payload: from_json(&m["payload"]),
            timeout_ms: u32_at(m, "timeout_ms"),
            metadata: m.get("metadata").and_then(Json::as_object).map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            }),
        },
        "RESPONSE" => Frame::Response {
            id: u32_at(m, "id"),
            payload: from_json(&m["payload"]),
        },
        "ERROR" => Frame::Error {
            id: u32_at(m, "id"),
            code: u32_at(m, "code"),
            message: string_at(m, "message"),
            details: opt("details"),
        },
        "CANCEL" => Frame::Cancel {
            id: u32_at(m, "id"),
        },
        "PING" => Frame::Ping {
            id: u32_at(m, "id"),
        },
        "PONG" => Frame::Pong {
            id: u32_at(m, "id"),
        },
        _ => Frame::Goaway {
            last_id: u32_at(m, "last_id"),
            message: string_at(m, "message"),
        },
    }
}

/// Payloads compared as values (floats bit for bit), the rest field by field.
fn same_frame(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Request { payload: p, .. }, Frame::Request { payload: q, .. })
        | (Frame::Response { payload: p, .. }, Frame::Response { payload: q, .. }) => {
            same(p, q, true) && encode_frame(a) == encode_frame(b)
        }
        _ => a == b,
    }
}

async fn frame_vector(v: &Json) -> Result<(), String> {
    let bytes = unhex(v["hex"].as_str().unwrap_or_default());
    let max_frame = v.get("max_frame").and_then(Json::as_u64).map(|n| n as u32);
    let mut reader = &bytes[..];
    let read = read_frame(
        &mut reader,
        max_frame.unwrap_or(conformance::cell::DEFAULT_MAX_FRAME),
    )
    .await;
    let expect = v.get("expect").and_then(Json::as_str);
    if expect == Some("frame_too_large") {
        return match read {
            Err(e) if e.code == Code::ResourceExhausted => Ok(()),
            other => Err(format!(
                "expected the reader to refuse the length, got {other:?}"
            )),
        };
    }
    let body = read.map_err(|e| format!("reading: {e}"))?;
    if !reader.is_empty() {
        return Err(format!("{} bytes left after the frame", reader.len()));
    }
    let decoded = decode_frame(&body);
    match expect {
        Some("ignore") => {
            if !matches!(decoded, Err(FrameError::UnknownKind(_))) {
                return Err(format!("expected an unknown kind to skip, got {decoded:?}"));
            }
            let enc = encode(&from_json(&v["meaning"]));
            return if enc == body {
                Ok(())
            } else {
                Err(format!("meaning encodes to {}", hex(&enc)))
            };
        }
        Some("malformed") => {
            let want = v.get("call_id").and_then(Json::as_u64).unwrap_or(0) as u32;
            return match decoded {
                Err(FrameError::Malformed { call_id, .. }) if call_id == want => Ok(()),
                other => Err(format!(
                    "expected malformed with call id {want}, got {other:?}"
                )),
            };
        }
        _ => {}
    }
    let got = decoded.map_err(|e| format!("decoding: {e:?}"))?;
    let want = frame_of(&v["meaning"]);
    if !same_frame(&got, &want) {
        return Err(format!("decoded {got:?}, want {want:?}"));
    }
    if let Some(max) = max_frame {
        if read_frame(&mut &bytes[..], max - 1).await.is_ok() {
            return Err("a reader one byte stricter accepted it".into());
        }
    }
    if v.get("decode_only") == Some(&Json::Bool(true)) {
        return Ok(());
    }
    let enc = encode_frame(&want);
    if enc != bytes {
        return Err(format!("encodes to {}, want {}", hex(&enc), hex(&bytes)));
    }
    Ok(())
}
