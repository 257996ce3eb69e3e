//! Pieces of the interop peers' JSON-lines protocol (`tests/interop/PROTOCOL.md`) that
//! more than one program speaks: the data test (PING, ECHO, `recv` lines) and a bounded
//! line reader for signalling channels that are not a process's stdin.

use futures::io::{AsyncRead, AsyncReadExt};
use serde_json::{Value, json};

/// The prefix of an echoed datagram: `ECHO:` + the datagram received.
pub const ECHO_PREFIX: &[u8] = b"ECHO:";

/// How many PINGs a component sends at most, one every [`PING_INTERVAL`].
pub const MAX_PINGS: u32 = 100;

/// The interval between two PINGs on a component still waiting for its echo.
pub const PING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The payload of PING number `seq` on `component`: `PING:<name>:<component>:<seq>`.
pub fn ping_payload(name: &str, component: impl std::fmt::Display, seq: u32) -> String {
    format!("PING:{name}:{component}:{seq}")
}

/// What to send back for a received datagram: `ECHO:` + `data`, or nothing when `data` is
/// itself an echo.
pub fn echo_reply(data: &[u8]) -> Option<Vec<u8>> {
    if data.starts_with(ECHO_PREFIX) {
        return None;
    }
    let mut echo = Vec::with_capacity(ECHO_PREFIX.len() + data.len());
    echo.extend_from_slice(ECHO_PREFIX);
    echo.extend_from_slice(data);
    Some(echo)
}

/// The sequence number of our own PING that `data` echoes (`ECHO:PING:<name>:<component>:<seq>`),
/// if it is one.
pub fn echoed_ping(data: &[u8], name: &str, component: impl std::fmt::Display) -> Option<u32> {
    let rest = data.strip_prefix(ECHO_PREFIX)?;
    let prefix = format!("PING:{name}:{component}:");
    std::str::from_utf8(rest.strip_prefix(prefix.as_bytes())?)
        .ok()?
        .parse()
        .ok()
}

/// The `recv` event for a datagram: its first 64 bytes as latin-1 text and as hex.
pub fn recv_event(component: u16, data: &[u8]) -> Value {
    let shown = &data[..data.len().min(64)];
    let text: String = shown.iter().map(|&b| char::from(b)).collect();
    let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    json!({"event": "recv", "component": component, "len": data.len(), "data": text, "hex": hex})
}

/// `x` rounded to one decimal (the protocol's milliseconds).
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Why [`LineReader::next_line`] gave up on its input.
#[derive(Debug)]
#[non_exhaustive]
pub enum LineError {
    /// A line longer than the reader's bound (the bound, in bytes).
    TooLong(usize),
    /// A line that is not UTF-8.
    NotUtf8,
    /// Reading failed.
    Io(std::io::Error),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong(max) => write!(f, "a line is longer than {max} bytes"),
            Self::NotUtf8 => f.write_str("a line is not UTF-8"),
            Self::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for LineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads `\n`-terminated lines from an [`AsyncRead`], holding at most one line of `max`
/// bytes (plus one read's worth) in memory. Cancel-safe: dropping a pending
/// [`next_line`](Self::next_line) loses no input.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no `\n`.
    scanned: usize,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader of lines of at most `max` bytes (without the line end).
    pub fn new(reader: R, max: usize) -> Self {
        LineReader {
            reader,
            buf: Vec::new(),
            scanned: 0,
            max,
            eof: false,
        }
    }

    /// The next line without its `\n` (or `\r\n`); `None` at the end of input. A last
    /// line without `\n` counts as a line.
    pub async fn next_line(&mut self) -> Result<Option<String>, LineError> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                self.scanned = 0;
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return self.finish(line).map(Some);
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(LineError::TooLong(self.max));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                self.scanned = 0;
                let line = std::mem::take(&mut self.buf);
                return self.finish(line).map(Some);
            }
            let mut chunk = [0u8; 4096];
            let n = self.reader.read(&mut chunk).await.map_err(LineError::Io)?;
            if n == 0 {
                self.eof = true;
            } else {
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    fn finish(&self, line: Vec<u8>) -> Result<String, LineError> {
        if line.len() > self.max {
            return Err(LineError::TooLong(self.max));
        }
        String::from_utf8(line).map_err(|_| LineError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Option<String>, String>> {
        let mut reader = LineReader::new(futures::io::Cursor::new(input.to_vec()), max);
        let mut out = Vec::new();
        futures::executor::block_on(async {
            loop {
                let item = reader.next_line().await.map_err(|e| e.to_string());
                let stop = !matches!(item, Ok(Some(_)));
                out.push(item);
                if stop {
                    break;
                }
            }
        });
        out
    }

    #[test]
    fn splits_lines_and_ends() {
        assert_eq!(
            lines(b"{\"a\":1}\r\n\nlast", 16),
            vec![
                Ok(Some("{\"a\":1}".into())),
                Ok(Some(String::new())),
                Ok(Some("last".into())),
                Ok(None)
            ]
        );
    }

    #[test]
    fn refuses_long_lines_and_bad_utf8() {
        assert_eq!(
            lines(b"0123456789\n", 4),
            vec![Err("a line is longer than 4 bytes".into())]
        );
        let endless = vec![b'x'; 20_000];
        assert_eq!(
            lines(&endless, 8192),
            vec![Err("a line is longer than 8192 bytes".into())]
        );
        assert_eq!(
            lines(b"ok\n\xff\xfe\n", 16),
            vec![Ok(Some("ok".into())), Err("a line is not UTF-8".into())]
        );
    }

    #[test]
    fn data_test_payloads() {
        assert_eq!(ping_payload("s-1", 1, 7), "PING:s-1:1:7");
        assert_eq!(echo_reply(b"PING:x:1:0"), Some(b"ECHO:PING:x:1:0".to_vec()));
        assert_eq!(echo_reply(b"ECHO:PING:x:1:0"), None);
        assert_eq!(echoed_ping(b"ECHO:PING:s-1:1:7", "s-1", 1), Some(7));
        assert_eq!(echoed_ping(b"ECHO:PING:s-2:1:7", "s-1", 1), None);
        assert_eq!(echoed_ping(b"PING:s-1:1:7", "s-1", 1), None);
        assert_eq!(recv_event(1, b"hi")["hex"], "6869");
    }
}
