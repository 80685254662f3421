//! A minimal, read-only Modbus TCP client over a blocking `TcpStream`.
//!
//! Read-only by construction: [`ReadFunction`] is the only way to name a
//! function code, and it has exactly two members, *read holding registers* (3)
//! and *read input registers* (4). There is no other request builder in this
//! module, so nothing built on it can write to a device.
//!
//! Responses are framed from a byte buffer that survives a timeout: an answer
//! that arrives after its request timed out is recognised by its transaction
//! id and dropped, instead of desynchronising the stream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The Modbus read functions this client can issue (and nothing else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFunction {
    /// Function code 3.
    HoldingRegisters,
    /// Function code 4.
    InputRegisters,
}

impl ReadFunction {
    /// The function code on the wire.
    pub fn code(self) -> u8 {
        match self {
            ReadFunction::HoldingRegisters => 3,
            ReadFunction::InputRegisters => 4,
        }
    }
}

/// Most registers one read may ask for (Modbus application protocol, 6.3).
pub const MAX_READ_REGISTERS: u16 = 125;

/// What can go wrong with one request.
#[derive(Debug, Error)]
pub enum ModbusError {
    /// No complete answer within the request timeout.
    #[error("timeout")]
    Timeout,
    /// The device answered with an exception response.
    #[error("{} (exception code {code})", exception_name(*.code))]
    Exception { code: u8 },
    /// The peer closed the connection.
    #[error("connection closed by the device")]
    Closed,
    /// A socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// An answer that is not a valid response to our request.
    #[error("bad response: {0}")]
    Protocol(String),
    /// A request this client refuses to send.
    #[error("bad request: {0}")]
    Request(String),
}

impl ModbusError {
    /// True if the connection must be dropped (anything but a timeout or an exception response).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, ModbusError::Timeout | ModbusError::Exception { .. })
    }
}

/// The standard name of a Modbus exception code.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        1 => "illegal function",
        2 => "illegal data address",
        3 => "illegal data value",
        4 => "server device failure",
        5 => "acknowledge",
        6 => "server device busy",
        10 => "gateway path unavailable",
        11 => "gateway target failed to respond",
        _ => "exception",
    }
}

/// One TCP connection to one unit.
#[derive(Debug)]
pub struct ModbusTcpClient {
    stream: TcpStream,
    unit_id: u8,
    request_timeout: Duration,
    transaction: u16,
    /// The socket's read timeout now (set only when it must change).
    read_timeout: Duration,
    /// Received bytes not yet consumed as a frame.
    inbox: Vec<u8>,
}

const MBAP_LEN: usize = 7;

impl ModbusTcpClient {
    /// Connects to `host:port` (each resolved address in turn) within `connect_timeout`.
    pub fn connect(
        host: &str,
        port: u16,
        unit_id: u8,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, ModbusError> {
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(stream) => {
                    // Requests are small and answered one at a time: Nagle would only delay them.
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(request_timeout))?;
                    return Ok(Self {
                        stream,
                        unit_id,
                        request_timeout,
                        read_timeout: request_timeout,
                        transaction: 0,
                        inbox: Vec::with_capacity(512),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(ModbusError::Io(last))
    }

    /// A handle on the same socket, so another thread can [`Shutdown`] a blocked read.
    pub fn shutdown_handle(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// Closes both directions (a blocked read returns at once).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Reads `count` registers from `start`; `out` receives the register data as
    /// wire bytes (big-endian per register, `2 * count` bytes).
    pub fn read_registers(
        &mut self,
        function: ReadFunction,
        start: u16,
        count: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), ModbusError> {
        if count == 0 || count > MAX_READ_REGISTERS {
            return Err(ModbusError::Request(format!(
                "count {count} outside 1..={MAX_READ_REGISTERS}"
            )));
        }
        if u32::from(start) + u32::from(count) > 65536 {
            return Err(ModbusError::Request(format!(
                "registers {start}+{count} beyond 65535"
            )));
        }
        self.transaction = self.transaction.wrapping_add(1);
        let tid = self.transaction;
        let [t0, t1] = tid.to_be_bytes();
        let [s0, s1] = start.to_be_bytes();
        let [c0, c1] = count.to_be_bytes();
        // MBAP (transaction, protocol 0, length 6, unit) + PDU (function, start, count)
        let request = [
            t0,
            t1,
            0,
            0,
            0,
            6,
            self.unit_id,
            function.code(),
            s0,
            s1,
            c0,
            c1,
        ];
        self.stream.write_all(&request)?;
        let deadline = Instant::now() + self.request_timeout;
        let mut first_read = true;
        loop {
            if let Some((frame_tid, frame_len)) = self.complete_frame()? {
                let frame_end = MBAP_LEN + frame_len - 1;
                if frame_tid == tid {
                    let result = self.parse_pdu(function, count, out);
                    self.inbox.drain(..frame_end);
                    return result;
                }
                // the late answer to a request that timed out: drop it
                self.inbox.drain(..frame_end);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ModbusError::Timeout);
            }
            // The socket waits `request_timeout` per read (set at connect): the first read
            // of an answer, the common case, costs no extra system call. A second read (a
            // frame in pieces, or a stale answer first) waits only what is left.
            let want = if first_read {
                self.request_timeout
            } else {
                left
            };
            first_read = false;
            if want != self.read_timeout {
                self.stream.set_read_timeout(Some(want))?;
                self.read_timeout = want;
            }
            let mut chunk = [0u8; 512];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ModbusError::Closed),
                Ok(n) => self.inbox.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ModbusError::Timeout)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ModbusError::Io(e)),
            }
        }
    }

    /// `(transaction id, MBAP length field)` of the first frame if all of it is in the inbox.
    fn complete_frame(&self) -> Result<Option<(u16, usize)>, ModbusError> {
        if self.inbox.len() < MBAP_LEN {
            return Ok(None);
        }
        let h = &self.inbox;
        let tid = u16::from_be_bytes([h[0], h[1]]);
        let protocol = u16::from_be_bytes([h[2], h[3]]);
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        if protocol != 0 {
            return Err(ModbusError::Protocol(format!(
                "protocol id {protocol}, not 0"
            )));
        }
        if !(2..=254).contains(&len) {
            return Err(ModbusError::Protocol(format!(
                "MBAP length {len} outside 2..=254"
            )));
        }
        Ok((self.inbox.len() >= MBAP_LEN + len - 1).then_some((tid, len)))
    }

    /// Checks the PDU of the first (complete, ours) frame and copies its data into `out`.
    fn parse_pdu(
        &self,
        function: ReadFunction,
        count: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), ModbusError> {
        let len = usize::from(u16::from_be_bytes([self.inbox[4], self.inbox[5]]));
        let unit = self.inbox[6];
        let pdu = &self.inbox[MBAP_LEN..MBAP_LEN + len - 1];
        if unit != self.unit_id {
            return Err(ModbusError::Protocol(format!(
                "answer from unit {unit}, asked unit {}",
                self.unit_id
            )));
        }
        let code = function.code();
        match pdu {
            [f, ex] if *f == code | 0x80 => Err(ModbusError::Exception { code: *ex }),
            [f, bytes, data @ ..] if *f == code => {
                let want = usize::from(count) * 2;
                if usize::from(*bytes) != want || data.len() != want {
                    return Err(ModbusError::Protocol(format!(
                        "{} data bytes (byte count {bytes}) for {count} registers",
                        data.len()
                    )));
                }
                out.clear();
                out.extend_from_slice(data);
                Ok(())
            }
            [f, ..] => Err(ModbusError::Protocol(format!(
                "function {f} in the answer to function {code}"
            ))),
            [] => Err(ModbusError::Protocol("empty PDU".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-connection server that answers each request with `reply(request)`.
    fn serve(reply: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = [0u8; 12];
            while s.read_exact(&mut req).is_ok() {
                let answer = reply(&req);
                if s.write_all(&answer).is_err() {
                    break;
                }
            }
        });
        port
    }

    fn frame(req: &[u8], pdu: &[u8]) -> Vec<u8> {
        let len = (pdu.len() + 1) as u16;
        let mut out = vec![req[0], req[1], 0, 0];
        out.extend_from_slice(&len.to_be_bytes());
        out.push(req[6]);
        out.extend_from_slice(pdu);
        out
    }

    fn client(port: u16) -> ModbusTcpClient {
        let t = Duration::from_millis(300);
        ModbusTcpClient::connect("127.0.0.1", port, 7, t, t).unwrap()
    }

    #[test]
    fn reads_registers_and_sends_the_right_request() {
        let port = serve(|req| {
            assert_eq!(&req[2..7], &[0, 0, 0, 6, 7]); // protocol 0, length 6, unit 7
            assert_eq!(req[7], 4);
            let start = u16::from_be_bytes([req[8], req[9]]);
            let count = u16::from_be_bytes([req[10], req[11]]);
            let mut pdu = vec![4, (count * 2) as u8];
            for i in 0..count {
                pdu.extend_from_slice(&(start + i).to_be_bytes());
            }
            frame(req, &pdu)
        });
        let mut c = client(port);
        let mut out = Vec::new();
        c.read_registers(ReadFunction::InputRegisters, 1000, 3, &mut out)
            .unwrap();
        assert_eq!(out, [3, 232, 3, 233, 3, 234]);
    }

    #[test]
    fn exception_responses_carry_their_code() {
        let port = serve(|req| frame(req, &[0x83, 2]));
        let mut c = client(port);
        let err = c
            .read_registers(ReadFunction::HoldingRegisters, 0, 1, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, ModbusError::Exception { code: 2 }));
        assert_eq!(err.to_string(), "illegal data address (exception code 2)");
        assert!(!err.is_fatal());
    }

    #[test]
    fn a_late_answer_is_dropped_by_its_transaction_id() {
        // the first answer comes after the client gave up; the second is prompt
        let port = serve(|req| {
            if req[1] == 1 {
                thread::sleep(Duration::from_millis(500));
            }
            frame(req, &[3, 2, 0, req[1]])
        });
        let mut c = client(port);
        let mut out = Vec::new();
        let first = c.read_registers(ReadFunction::HoldingRegisters, 0, 1, &mut out);
        assert!(matches!(first, Err(ModbusError::Timeout)));
        thread::sleep(Duration::from_millis(300)); // the late answer is in the socket now
        c.read_registers(ReadFunction::HoldingRegisters, 0, 1, &mut out)
            .unwrap();
        assert_eq!(out, [0, 2]); // transaction 2's answer, not transaction 1's
    }

    #[test]
    fn garbage_and_closed_connections_are_errors_not_panics() {
        let port = serve(|req| {
            let mut f = frame(req, &[3, 4, 0, 1]); // byte count 4, 2 data bytes
            f[5] = 5;
            f
        });
        let mut c = client(port);
        let err = c
            .read_registers(ReadFunction::HoldingRegisters, 0, 2, &mut Vec::new())
            .unwrap_err();
        assert!(err.is_fatal(), "{err}");
        let port = serve(|_| vec![0, 1, 0, 0, 0]); // half a header, then nothing
        let mut c = client(port);
        let mut out = Vec::new();
        let err = c.read_registers(ReadFunction::HoldingRegisters, 0, 1, &mut out);
        assert!(err.is_err());
        let too_many = c.read_registers(ReadFunction::HoldingRegisters, 0, 126, &mut out);
        assert!(matches!(too_many, Err(ModbusError::Request(_))));
    }
}
