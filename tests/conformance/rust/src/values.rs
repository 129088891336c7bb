//! Values as the conformance cases and the test vectors write them in JSON (`$bytes`, `$int`,
//! `$float`, `$pattern` tags; maps in wire order), as MessagePack values.
use rmpv::Value;
use serde_json::Value as Json;

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The MessagePack value a JSON meaning stands for.
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::String(s) => Value::from(s.as_str()),
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        Json::Object(o) => {
            if o.len() == 1 {
                let (k, v) = o.iter().next().unwrap();
                match (k.as_str(), v) {
                    ("$bytes", Json::String(h)) => return Value::Binary(unhex(h)),
                    ("$pattern", Json::Number(n)) => {
                        return Value::Binary(pattern(n.as_u64().unwrap_or(0) as usize))
                    }
                    ("$int", Json::String(s)) => {
                        return match s.parse::<u64>() {
                            Ok(u) => Value::from(u),
                            Err(_) => Value::from(s.parse::<i64>().unwrap_or(0)),
                        }
                    }
                    ("$float", Json::String(s)) => {
                        return Value::F64(match s.as_str() {
                            "NaN" => f64::NAN,
                            "Infinity" => f64::INFINITY,
                            "-Infinity" => f64::NEG_INFINITY,
                            other => other.parse().unwrap_or(f64::NAN),
                        })
                    }
                    _ => {}
                }
            }
            Value::Map(
                o.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                    .collect(),
            )
        }
    }
}

pub fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(*f as f64),
        _ => None,
    }
}

/// Whether two values are the same; maps ignore key order. With `strict`, an integer never equals
/// a float and floats compare bit for bit (NaN equals NaN).
pub fn same(a: &Value, b: &Value, strict: bool) -> bool {
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => {
            x.as_i64() == y.as_i64() && x.as_u64() == y.as_u64()
        }
        (Value::Integer(x), f) | (f, Value::Integer(x)) if float_of(f).is_some() => {
            !strict && x.as_f64() == float_of(f)
        }
        (x, y) if float_of(x).is_some() && float_of(y).is_some() => {
            let (x, y) = (float_of(x).unwrap(), float_of(y).unwrap());
            (x.is_nan() && y.is_nan())
                || if strict {
                    x.to_bits() == y.to_bits()
                } else {
                    x == y
                }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b, strict))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| k == k2 && same(v, v2, strict)))
        }
        _ => a == b,
    }
}

pub fn show(v: &Value) -> String {
    match v {
        Value::Binary(b) if b.len() > 32 => format!("<{} bytes>", b.len()),
        Value::Binary(b) => format!("0x{}", hex(b)),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}: {}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other}"),
    }
}
