//! The Cell wire protocol v1 runtime of the generated client: framing, the multiplexed
//! connection, errors and discovery.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame body either side accepts unless its HELLO says otherwise.
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;
/// The deadline of a call without one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A Cell error code: gRPC's status codes, with the same numbers on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

const CODES: [Code; 16] = [
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

impl Code {
    /// The code of a wire number; numbers outside the table are `Unknown`.
    pub fn from_wire(n: u64) -> Code {
        if (1..=16).contains(&n) {
            CODES[n as usize - 1]
        } else {
            Code::Unknown
        }
    }
    /// The code named `name` (`"NOT_FOUND"`), or `Unknown`.
    pub fn from_name(name: &str) -> Code {
        CODE_NAMES
            .iter()
            .position(|n| *n == name)
            .filter(|i| *i > 0)
            .map(|i| CODES[i - 1])
            .unwrap_or(Code::Unknown)
    }
    /// The code's name, such as `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        CODE_NAMES[self as usize]
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of a failed call.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    pub code: Code,
    pub message: String,
    /// The optional structured data of the ERROR frame.
    pub details: Option<Value>,
    /// The cell provably never processed the call, so any method may retry it.
    pub unsent: bool,
}

impl CellError {
    fn unsent(mut self) -> Self {
        self.unsent = true;
        self
    }

    pub fn new(code: Code, message: impl Into<String>) -> Self {
        CellError {
            code,
            message: message.into(),
            details: None,
            unsent: false,
        }
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for CellError {}

/// The info map of a HELLO frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hello {
    pub cell: Option<String>,
    pub schema_hash: Option<String>,
    pub max_frame: Option<u32>,
    pub peer: Option<String>,
    pub agent: Option<String>,
}

/// One frame of protocol version 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Hello {
        version: u32,
        info: Hello,
    },
    Request {
        id: u32,
        method: String,
        payload: Value,
        timeout_ms: u32,
        metadata: Option<Vec<(String, String)>>,
    },
    Response {
        id: u32,
        payload: Value,
    },
    Error {
        id: u32,
        code: u32,
        message: String,
        details: Option<Value>,
    },
    Cancel {
        id: u32,
    },
    Ping {
        id: u32,
    },
    Pong {
        id: u32,
    },
    Goaway {
        last_id: u32,
        message: String,
    },
}

/// Why a frame body could not be used.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameError {
    /// The body breaks the protocol; `call_id` is the id its ERROR answer carries.
    Malformed { reason: String, call_id: u32 },
    /// A well-formed frame of a kind this version does not know: skip it.
    UnknownKind(u64),
}

fn malformed<T>(reason: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError::Malformed {
        reason: reason.into(),
        call_id: 0,
    })
}

fn str_value(s: &str) -> Value {
    Value::from(s)
}

fn check_value(v: &Value, depth: usize) -> Result<(), FrameError> {
    if depth > 256 {
        return malformed("nesting deeper than 256 levels");
    }
    match v {
        Value::Ext(..) => malformed("extension types are not allowed"),
        Value::String(s) if s.as_str().is_none() => malformed("a string is not valid UTF-8"),
        Value::Array(a) => a.iter().try_for_each(|x| check_value(x, depth + 1)),
        Value::Map(m) => m.iter().try_for_each(|(k, x)| {
            check_value(k, depth + 1)?;
            check_value(x, depth + 1)
        }),
        _ => Ok(()),
    }
}

fn u32_of(v: &Value, what: &str) -> Result<u32, FrameError> {
    match v {
        Value::Integer(n) => match n.as_u64() {
            Some(n) if n <= u32::MAX as u64 => Ok(n as u32),
            _ => malformed(format!("{what} must be an integer from 0 to 2^32-1")),
        },
        _ => malformed(format!("{what} must be an integer from 0 to 2^32-1")),
    }
}

fn with_id<T>(r: Result<T, FrameError>, id: u32) -> Result<T, FrameError> {
    r.map_err(|e| match e {
        FrameError::Malformed { reason, .. } => FrameError::Malformed {
            reason,
            call_id: id,
        },
        other => other,
    })
}

fn string_of(v: &Value, what: &str) -> Result<String, FrameError> {
    match v {
        Value::String(s) => s
            .as_str()
            .map(str::to_owned)
            .ok_or(())
            .or_else(|_| malformed(format!("{what} is not valid UTF-8"))),
        _ => malformed(format!("{what} must be a string")),
    }
}

/// Decodes one frame body.
pub fn decode_frame(body: &[u8]) -> Result<Frame, FrameError> {
    let mut rest = body;
    let value = match rmpv::decode::read_value(&mut rest) {
        Ok(v) => v,
        Err(e) => return malformed(format!("not MessagePack: {e}")),
    };
    if !rest.is_empty() {
        return malformed("bytes after the value");
    }
    let items = match value {
        Value::Array(items) if items.len() >= 2 => items,
        _ => return malformed("a frame is an array of at least 2 elements"),
    };
    let kind = match &items[0] {
        Value::Integer(n) => match n.as_u64() {
            Some(k) if k < (1 << 53) => k,
            _ => return malformed("kind must be a non-negative integer"),
        },
        _ => return malformed("kind must be a non-negative integer"),
    };
    for item in &items[1..] {
        check_value(item, 1)?;
    }
    let need = [3, 5, 3, 4, 2, 2, 2, 3];
    if kind > 7 {
        return Err(FrameError::UnknownKind(kind));
    }
    if items.len() < need[kind as usize] {
        let call_id = if kind == 1 {
            u32_of(&items[1], "id").unwrap_or(0)
        } else {
            0
        };
        return Err(FrameError::Malformed {
            reason: format!("a frame of kind {kind} is too short"),
            call_id,
        });
    }
    let nil_is_none = |v: Option<&Value>| v.filter(|v| !v.is_nil()).cloned();
    Ok(match kind {
        0 => {
            let version = u32_of(&items[1], "version")?;
            let mut info = Hello::default();
            match &items[2] {
                Value::Nil => {}
                Value::Map(entries) => {
                    for (k, v) in entries {
                        let key = string_of(k, "an info key")?;
                        match key.as_str() {
                            "cell" => info.cell = Some(string_of(v, "cell")?),
                            "schema_hash" => info.schema_hash = Some(string_of(v, "schema_hash")?),
                            "peer" => info.peer = Some(string_of(v, "peer")?),
                            "agent" => info.agent = Some(string_of(v, "agent")?),
                            "max_frame" => info.max_frame = Some(u32_of(v, "max_frame")?),
                            _ => {}
                        }
                    }
                }
                _ => return malformed("info must be a map"),
            }
            Frame::Hello { version, info }
        }
        1 => {
            let id = u32_of(&items[1], "id")?;
            if id == 0 {
                return malformed("a REQUEST id must be from 1 to 2^32-1");
            }
            let method = with_id(string_of(&items[2], "method"), id)?;
            let timeout_ms = with_id(u32_of(&items[4], "timeout_ms"), id)?;
            let metadata = match items.get(5) {
                None | Some(Value::Nil) => None,
                Some(Value::Map(entries)) => {
                    let mut out = Vec::new();
                    for (k, v) in entries {
                        out.push((
                            with_id(string_of(k, "a metadata key"), id)?,
                            with_id(string_of(v, "a metadata value"), id)?,
                        ));
                    }
                    Some(out)
                }
                Some(_) => return with_id(malformed("metadata must be a map of strings"), id),
            };
            Frame::Request {
                id,
                method,
                payload: items[3].clone(),
                timeout_ms,
                metadata,
            }
        }
        2 => Frame::Response {
            id: u32_of(&items[1], "id")?,
            payload: items[2].clone(),
        },
        3 => Frame::Error {
            id: u32_of(&items[1], "id")?,
            code: u32_of(&items[2], "code")?,
            message: string_of(&items[3], "message")?,
            details: nil_is_none(items.get(4)),
        },
        4 => Frame::Cancel {
            id: u32_of(&items[1], "id")?,
        },
        5 => Frame::Ping {
            id: u32_of(&items[1], "id")?,
        },
        6 => Frame::Pong {
            id: u32_of(&items[1], "id")?,
        },
        _ => Frame::Goaway {
            last_id: u32_of(&items[1], "last_id")?,
            message: string_of(&items[2], "message")?,
        },
    })
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    rmpv::encode::write_value(out, v).expect("writing to a Vec cannot fail");
}

/// Encodes a frame with its length prefix.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    let u = |out: &mut Vec<u8>, n: u64| {
        rmp::encode::write_uint(out, n).expect("writing to a Vec cannot fail");
    };
    let s = |out: &mut Vec<u8>, v: &str| {
        rmp::encode::write_str(out, v).expect("writing to a Vec cannot fail");
    };
    let arr = |out: &mut Vec<u8>, n: u32| {
        rmp::encode::write_array_len(out, n).expect("writing to a Vec cannot fail");
    };
    match frame {
        Frame::Hello { version, info } => {
            arr(&mut out, 3);
            u(&mut out, 0);
            u(&mut out, *version as u64);
            let n = [&info.cell, &info.schema_hash, &info.peer, &info.agent]
                .iter()
                .filter(|x| x.is_some())
                .count()
                + info.max_frame.filter(|m| *m != 0).is_some() as usize;
            rmp::encode::write_map_len(&mut out, n as u32).expect("writing to a Vec cannot fail");
            for (k, v) in [("cell", &info.cell), ("schema_hash", &info.schema_hash)] {
                if let Some(v) = v {
                    s(&mut out, k);
                    s(&mut out, v);
                }
            }
            if let Some(m) = info.max_frame.filter(|m| *m != 0) {
                s(&mut out, "max_frame");
                u(&mut out, m as u64);
            }
            for (k, v) in [("peer", &info.peer), ("agent", &info.agent)] {
                if let Some(v) = v {
                    s(&mut out, k);
                    s(&mut out, v);
                }
            }
        }
        Frame::Request {
            id,
            method,
            payload,
            timeout_ms,
            metadata,
        } => {
            arr(&mut out, if metadata.is_some() { 6 } else { 5 });
            u(&mut out, 1);
            u(&mut out, *id as u64);
            s(&mut out, method);
            write_value(&mut out, payload);
            u(&mut out, *timeout_ms as u64);
            if let Some(md) = metadata {
                rmp::encode::write_map_len(&mut out, md.len() as u32)
                    .expect("writing to a Vec cannot fail");
                for (k, v) in md {
                    s(&mut out, k);
                    s(&mut out, v);
                }
            }
        }
        Frame::Response { id, payload } => {
            arr(&mut out, 3);
            u(&mut out, 2);
            u(&mut out, *id as u64);
            write_value(&mut out, payload);
        }
        Frame::Error {
            id,
            code,
            message,
            details,
        } => {
            arr(&mut out, if details.is_some() { 5 } else { 4 });
            u(&mut out, 3);
            u(&mut out, *id as u64);
            u(&mut out, *code as u64);
            s(&mut out, message);
            if let Some(d) = details {
                write_value(&mut out, d);
            }
        }
        Frame::Cancel { id } | Frame::Ping { id } | Frame::Pong { id } => {
            let kind = match frame {
                Frame::Cancel { .. } => 4,
                Frame::Ping { .. } => 5,
                _ => 6,
            };
            arr(&mut out, 2);
            u(&mut out, kind);
            u(&mut out, *id as u64);
        }
        Frame::Goaway { last_id, message } => {
            arr(&mut out, 3);
            u(&mut out, 7);
            u(&mut out, *last_id as u64);
            s(&mut out, message);
        }
    }
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

/// Encodes `value` as MessagePack with structs as maps keyed by field name.
pub fn to_value<T: Serialize>(value: &T) -> Result<Value, CellError> {
    let bytes = rmp_serde::encode::to_vec_named(value).map_err(|e| {
        CellError::new(
            Code::InvalidArgument,
            format!("cannot encode the request: {e}"),
        )
    })?;
    rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| CellError::new(Code::Internal, format!("cannot re-read the request: {e}")))
}

/// Decodes a MessagePack value into `T`.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, CellError> {
    let mut bytes = Vec::new();
    write_value(&mut bytes, &value);
    rmp_serde::from_slice(&bytes)
        .map_err(|e| CellError::new(Code::Internal, format!("cannot decode the answer: {e}")))
}

/// How to reach a cell.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Unix socket to connect to; `None` discovers the cell through the nucleus at
    /// `$CELL_HOME/run/nucleus.sock`, else uses `$CELL_HOME/run/<cell>.sock`.
    pub socket_path: Option<PathBuf>,
    /// Overrides `$CELL_HOME` (default `~/.cell`).
    pub home: Option<PathBuf>,
    /// Fail with `FAILED_PRECONDITION` when the server's schema hash differs.
    pub strict: bool,
    /// The deadline of calls without their own; `None` is `DEFAULT_TIMEOUT`.
    pub timeout: Option<Duration>,
    /// This client's identity, sent in HELLO.
    pub peer: Option<String>,
}

/// Options of one call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// The call's deadline, from now.
    pub timeout: Option<Duration>,
    /// Metadata sent with the call (trace ids, tenant, ...).
    pub metadata: Option<Vec<(String, String)>>,
}

/// The Cell home directory: `home`, `$CELL_HOME`, or `~/.cell`.
pub fn cell_home(home: Option<&PathBuf>) -> PathBuf {
    if let Some(h) = home {
        return h.clone();
    }
    match std::env::var_os("CELL_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cell"),
    }
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Value, CellError>>>>>;

/// One multiplexed connection: many calls in flight, answered in any order.
pub struct Conn {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: Mutex<u32>,
    closed: Arc<AtomicBool>,
    hello: Hello,
    timeout: Duration,
    peer_max: u32,
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for Conn {
    // Stopping both tasks drops both halves of the socket, which closes it.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The sockets of the usable instances of `cell` the nucleus knows, else its own socket.
pub async fn discover(cell: &str, options: &Options) -> Vec<PathBuf> {
    let run = cell_home(options.home.as_ref()).join("run");
    let fallback = vec![run.join(format!("{cell}.sock"))];
    let nucleus = run.join("nucleus.sock");
    if cell == "nucleus" || std::env::var("CELL_NUCLEUS").as_deref() == Ok("0") || !nucleus.exists()
    {
        return fallback;
    }
    let found = async {
        let conn = Conn::open(&nucleus, None, &Options::default()).await?;
        let req = Value::Map(vec![
            (str_value("cell"), str_value(cell)),
            (str_value("all"), Value::Boolean(true)),
        ]);
        let answer = conn
            .call_value(
                "discover",
                req,
                &CallOptions {
                    timeout: Some(Duration::from_secs(2)),
                    metadata: None,
                },
            )
            .await?;
        let mut out = Vec::new();
        let field = |v: &Value, k: &str| {
            v.as_map().and_then(|m| {
                m.iter()
                    .find(|(x, _)| x.as_str() == Some(k))
                    .map(|(_, v)| v.clone())
            })
        };
        for inst in field(&answer, "instances")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
        {
            let health = field(&inst, "health")
                .and_then(|h| h.as_str().map(str::to_owned))
                .unwrap_or_default();
            if health != "healthy" && health != "starting" {
                continue;
            }
            for e in field(&inst, "endpoints")
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
            {
                if field(&e, "transport")
                    .and_then(|t| t.as_str().map(str::to_owned))
                    .as_deref()
                    == Some("uds")
                {
                    if let Some(a) =
                        field(&e, "address").and_then(|a| a.as_str().map(PathBuf::from))
                    {
                        out.push(a);
                        break;
                    }
                }
            }
        }
        Ok::<_, CellError>(out)
    };
    match tokio::time::timeout(Duration::from_secs(2), found).await {
        Ok(Ok(mut list)) if !list.is_empty() => {
            let n = list.len();
            let start = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0) as usize)
                % n;
            list.rotate_left(start);
            list
        }
        _ => fallback,
    }
}

impl Conn {
    /// Connects to `cell` (see `Options`), waits for the server's HELLO and checks the schema hash.
    pub async fn connect(
        cell: &str,
        schema_hash: &str,
        options: &Options,
    ) -> Result<Conn, CellError> {
        let paths = match &options.socket_path {
            Some(p) => vec![p.clone()],
            None => discover(cell, options).await,
        };
        let mut last = CellError::new(Code::Unavailable, format!("no instance of {cell:?} found"));
        for path in paths {
            match Conn::open(&path, Some(schema_hash), options).await {
                Ok(c) => return Ok(c),
                Err(e) if e.code == Code::FailedPrecondition => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn open(
        path: &std::path::Path,
        schema_hash: Option<&str>,
        options: &Options,
    ) -> Result<Conn, CellError> {
        let stream = UnixStream::connect(path).await.map_err(|e| {
            CellError::new(
                Code::Unavailable,
                format!("cannot connect to {path:?}: {e} (is the cell running?)"),
            )
            .unsent()
        })?;
        let (mut read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let closed = Arc::new(AtomicBool::new(false));
        tx.send(encode_frame(&Frame::Hello {
            version: PROTOCOL_VERSION,
            info: Hello {
                schema_hash: schema_hash.map(str::to_owned),
                max_frame: Some(DEFAULT_MAX_FRAME),
                peer: options.peer.clone(),
                agent: Some(format!("cell-rust/{}", crate::CODEGEN_VERSION)),
                ..Hello::default()
            },
        }))
        .ok();
        let writer_task = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if write.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (hello_tx, mut hello_rx) = watch::channel::<Option<Result<Hello, CellError>>>(None);
        let (p, c, w) = (pending.clone(), closed.clone(), tx.clone());
        let reader_task = tokio::spawn(async move {
            let err = read_loop(&mut read, &p, &hello_tx, &w, &c).await;
            c.store(true, Ordering::SeqCst);
            hello_tx.send_replace(Some(Err(err.clone())));
            for (_, s) in p.lock().unwrap().drain() {
                let _ = s.send(Err(err.clone()));
            }
        });
        let tasks = [writer_task.abort_handle(), reader_task.abort_handle()];
        let abort = || tasks.iter().for_each(|t| t.abort());
        let wait = async {
            loop {
                if let Some(h) = hello_rx.borrow().clone() {
                    return h;
                }
                if hello_rx.changed().await.is_err() {
                    return Err(CellError::new(
                        Code::Unavailable,
                        "the connection closed before HELLO",
                    ));
                }
            }
        };
        let limit = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let hello = match tokio::time::timeout(limit, wait).await {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                abort();
                return Err(e);
            }
            Err(_) => {
                abort();
                return Err(CellError::new(
                    Code::DeadlineExceeded,
                    format!("{path:?} sent no HELLO within {limit:?}"),
                ));
            }
        };
        if let Some(expected) = schema_hash {
            if options.strict && hello.schema_hash.as_deref() != Some(expected) {
                abort();
                return Err(CellError::new(Code::FailedPrecondition, format!(
                    "the cell at {path:?} has schema {:?}, this client was generated for {expected:?}: regenerate the client or connect without strict",
                    hello.schema_hash)));
            }
        }
        let peer_max = hello
            .max_frame
            .filter(|m| *m != 0)
            .unwrap_or(DEFAULT_MAX_FRAME);
        Ok(Conn {
            writer: tx,
            pending,
            next_id: Mutex::new(0),
            closed,
            hello,
            timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
            peer_max,
            tasks,
        })
    }

    /// What the server said in its HELLO.
    pub fn server_hello(&self) -> &Hello {
        &self.hello
    }

    /// Whether the connection can no longer take calls.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Calls `method` with `req` and decodes the answer. Dropping the future sends CANCEL.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        req: &Req,
        options: &CallOptions,
    ) -> Result<Resp, CellError> {
        let payload = to_value(req)?;
        from_value(self.call_value(method, payload, options).await?)
    }

    /// Calls `method` with a MessagePack value.
    pub async fn call_value(
        &self,
        method: &str,
        payload: Value,
        options: &CallOptions,
    ) -> Result<Value, CellError> {
        if self.is_closed() {
            return Err(CellError::new(
                Code::Unavailable,
                "the connection is closed: connect again",
            )
            .unsent());
        }
        let timeout = options.timeout.unwrap_or(self.timeout);
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut pending = self.pending.lock().unwrap();
            let mut next = self.next_id.lock().unwrap();
            loop {
                *next = next.wrapping_add(1).max(1);
                if !pending.contains_key(&*next) {
                    break;
                }
            }
            pending.insert(*next, tx);
            *next
        };
        let guard = CancelOnDrop {
            id,
            pending: self.pending.clone(),
            writer: self.writer.clone(),
            armed: true,
        };
        let timeout_ms = timeout.as_nanos().div_ceil(1_000_000).min(u32::MAX as u128) as u32;
        let frame = encode_frame(&Frame::Request {
            id,
            method: method.to_owned(),
            payload,
            timeout_ms,
            metadata: options.metadata.clone(),
        });
        if frame.len() - 4 > self.peer_max as usize {
            self.pending.lock().unwrap().remove(&id);
            let mut g = guard;
            g.armed = false;
            return Err(CellError::new(
                Code::ResourceExhausted,
                format!(
                    "the request of {method} is {} bytes, over the cell's limit of {}: send less",
                    frame.len() - 4,
                    self.peer_max
                ),
            ));
        }
        if self.writer.send(frame).is_err() {
            return Err(CellError::new(
                Code::Unavailable,
                "the connection is closed",
            ));
        }
        let result = tokio::time::timeout(timeout, rx).await;
        let mut guard = guard;
        match result {
            Ok(Ok(answer)) => {
                guard.armed = false;
                answer
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(CellError::new(Code::Unavailable, "the connection was lost"))
            }
            Err(_) => Err(CellError::new(
                Code::DeadlineExceeded,
                format!("the deadline of {timeout:?} passed before {method} answered"),
            )),
        }
    }
}

struct CancelOnDrop {
    id: u32,
    pending: Pending,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed && self.pending.lock().unwrap().remove(&self.id).is_some() {
            let _ = self
                .writer
                .send(encode_frame(&Frame::Cancel { id: self.id }));
        }
    }
}

/// Reads one length-prefixed frame body of at most `max_frame` bytes.
pub async fn read_frame<R: AsyncReadExt + Unpin>(
    r: &mut R,
    max_frame: u32,
) -> Result<Vec<u8>, CellError> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix)
        .await
        .map_err(|e| CellError::new(Code::Unavailable, format!("the connection was lost: {e}")))?;
    let n = u32::from_be_bytes(prefix);
    if n > max_frame {
        return Err(CellError::new(
            Code::ResourceExhausted,
            format!("a frame of {n} bytes is over the limit of {max_frame}"),
        ));
    }
    let mut body = vec![0u8; n as usize];
    r.read_exact(&mut body)
        .await
        .map_err(|e| CellError::new(Code::Unavailable, format!("the connection was lost: {e}")))?;
    Ok(body)
}

async fn read_loop(
    read: &mut tokio::net::unix::OwnedReadHalf,
    pending: &Pending,
    hello: &watch::Sender<Option<Result<Hello, CellError>>>,
    writer: &mpsc::UnboundedSender<Vec<u8>>,
    closed: &AtomicBool,
) -> CellError {
    loop {
        let body = match read_frame(read, DEFAULT_MAX_FRAME).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        let frame = match decode_frame(&body) {
            Ok(f) => f,
            Err(FrameError::UnknownKind(_)) => continue,
            Err(FrameError::Malformed { reason, .. }) => {
                return CellError::new(
                    Code::Internal,
                    format!("the cell sent a malformed frame: {reason}"),
                )
            }
        };
        let finish = |id: u32, r: Result<Value, CellError>| {
            if let Some(s) = pending.lock().unwrap().remove(&id) {
                let _ = s.send(r);
            }
        };
        match frame {
            Frame::Hello { info, .. } => {
                hello.send_replace(Some(Ok(info)));
            }
            Frame::Response { id, payload } => finish(id, Ok(payload)),
            Frame::Error {
                id: 0,
                code,
                message,
                details,
            } => {
                return CellError {
                    code: Code::from_wire(code as u64),
                    message,
                    details,
                    unsent: false,
                };
            }
            Frame::Error {
                id,
                code,
                message,
                details,
            } => finish(
                id,
                Err(CellError {
                    code: Code::from_wire(code as u64),
                    message,
                    details,
                    unsent: false,
                }),
            ),
            Frame::Ping { id } => {
                let _ = writer.send(encode_frame(&Frame::Pong { id }));
            }
            Frame::Goaway { last_id, message } => {
                closed.store(true, Ordering::SeqCst);
                let mut p = pending.lock().unwrap();
                let dropped: Vec<u32> = p.keys().copied().filter(|id| *id > last_id).collect();
                for id in dropped {
                    if let Some(s) = p.remove(&id) {
                        let _ = s.send(Err(CellError::new(Code::Unavailable, format!("the cell is shutting down ({message}) and did not process the call: retry it")).unsent()));
                    }
                }
                if p.is_empty() {
                    return CellError::new(
                        Code::Unavailable,
                        "the cell is shutting down: connect again",
                    );
                }
            }
            _ => {}
        }
    }
}

/// A client of the cell this crate was generated for. It connects again after its connection
/// is lost or the cell says GOAWAY, and retries a call that failed with `UNAVAILABLE` when the
/// method is idempotent or the cell provably never processed it (3 attempts, backing off 25
/// then 50 ms, never past the deadline). Dropping a call's future sends CANCEL.
pub struct Client {
    options: Options,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

impl Client {
    /// Connects to the cell: at `options.socket_path`, else an instance the nucleus knows, else
    /// `$CELL_HOME/run/<cell>.sock`; checks the schema hash (see `Options::strict`).
    pub async fn connect(options: Options) -> Result<Client, CellError> {
        let client = Client {
            options,
            conn: tokio::sync::Mutex::new(None),
        };
        client.conn().await?;
        Ok(client)
    }

    /// The current connection, opened again when it was closed.
    pub async fn conn(&self) -> Result<Arc<Conn>, CellError> {
        let mut conn = self.conn.lock().await;
        match &*conn {
            Some(c) if !c.is_closed() => Ok(c.clone()),
            _ => {
                let c = Arc::new(
                    Conn::connect(crate::CELL_NAME, crate::SCHEMA_HASH, &self.options).await?,
                );
                *conn = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Calls `method` by name, for methods without a typed wrapper.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        idempotent: bool,
        req: &Req,
        options: &CallOptions,
    ) -> Result<Resp, CellError> {
        let timeout = options
            .timeout
            .or(self.options.timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let payload = to_value(req)?;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = match self.conn().await {
                Ok(conn) => {
                    let options = CallOptions {
                        timeout: Some(left),
                        metadata: options.metadata.clone(),
                    };
                    conn.call_value(method, payload.clone(), &options).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => return from_value(v),
                Err(e)
                    if e.code == Code::Unavailable && attempt < 2 && (idempotent || e.unsent) =>
                {
                    let pause = Duration::from_millis(25 << attempt);
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
