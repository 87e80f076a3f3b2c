//! Loopback proxies for faults: one that cuts its connections after a byte budget, or slows
//! them down (a server that stops in the middle of an upload, or an upload that takes a while),
//! and one in front of an engine that answers uploads without passing them on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loopback TCP proxy to `target` that cuts every connection and stops accepting once
/// `limit` bytes went upstream (the server "stops" in the middle of an upload), and with
/// `slow`, passes at most 64 KiB upstream every 20 ms (an upload that takes a while).
pub struct CuttingProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
}

impl CuttingProxy {
    pub fn start(target: u16, limit: u64, slow: bool) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let flag = Arc::clone(&cut);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    return;
                };
                let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (flag_up, sent_up) = (Arc::clone(&flag), Arc::clone(&sent));
                std::thread::spawn(move || {
                    pump(client, upstream, Some((sent_up, limit, flag_up)), slow)
                });
                std::thread::spawn(move || pump(u2, c2, None, false));
            }
        });
        CuttingProxy { port, cut }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.cut.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    budget: Option<(Arc<AtomicU64>, u64, Arc<AtomicBool>)>,
    slow: bool,
) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some((_, _, cut)) = &budget {
            if cut.load(Ordering::SeqCst) {
                break;
            }
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((sent, limit, cut)) = &budget {
            if sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > *limit {
                cut.store(true, Ordering::SeqCst);
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if slow {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A loopback HTTP proxy in front of an engine's unix socket that answers `PUT .../archive`
/// with `200 OK` itself and drops the body: an engine that accepts an upload and stores nothing
/// (Podman's API does this for uploads at `/`). The first `pass` uploads and everything else
/// go through.
pub struct DroppingProxy {
    pub port: u16,
    /// Uploads seen so far (passed or dropped).
    pub uploads: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl DroppingProxy {
    pub fn start(socket: &Path, pass: u64) -> DroppingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let uploads = Arc::new(AtomicU64::new(0));
        let (flag, count, socket) = (Arc::clone(&stop), Arc::clone(&uploads), socket.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(upstream) = UnixStream::connect(&socket) else {
                    return;
                };
                let count = Arc::clone(&count);
                let to_client = Arc::new(Mutex::new(client.try_clone().unwrap()));
                let (u_read, back) = (upstream.try_clone().unwrap(), Arc::clone(&to_client));
                let engine = socket.clone();
                std::thread::spawn(move || {
                    let _ = requests(client, upstream, to_client, &count, pass, &engine);
                });
                std::thread::spawn(move || responses(u_read, back));
            }
        });
        DroppingProxy {
            port,
            uploads,
            stop,
        }
    }

    /// `-H` for the tool.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}

impl Drop for DroppingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Whether the request line `PUT /v1.xx/containers/ID/archive?...` addresses one of the tool's
/// lock containers (`dvb-lock-...`) on the engine at `socket`.
fn into_lock_container(line: &str, socket: &Path) -> bool {
    let Some(id) = line
        .split("/containers/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
    else {
        return false;
    };
    std::process::Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(["inspect", "--format", "{{.Name}}", id])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("/dvb-lock-"))
}

/// Passes requests upstream one by one (the client waits for each answer), except uploads into
/// a container's archive, which are read, dropped and answered here.
fn requests(
    client: TcpStream,
    mut upstream: UnixStream,
    to_client: Arc<Mutex<TcpStream>>,
    uploads: &AtomicU64,
    pass: u64,
    socket: &Path,
) -> std::io::Result<()> {
    let mut from = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        loop {
            let start = head.len();
            if from.read_until(b'\n', &mut head)? == 0 {
                return Ok(());
            }
            if head[start..] == *b"\r\n" {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let line = text.lines().next().unwrap_or_default();
        // The tool's lock heartbeats are uploads too, into its lock containers: passed on, as
        // they are not what the tests drop.
        let drop_it = line.starts_with("PUT ")
            && line.contains("/archive")
            && !into_lock_container(line, socket)
            && uploads.fetch_add(1, Ordering::SeqCst) >= pass;
        let header = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_ascii_lowercase())
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut sink = std::io::sink();
        let out: &mut dyn Write = if drop_it { &mut sink } else { &mut upstream };
        out.write_all(&head)?;
        if chunked {
            loop {
                let mut size_line = Vec::new();
                from.read_until(b'\n', &mut size_line)?;
                out.write_all(&size_line)?;
                let size = String::from_utf8_lossy(&size_line);
                let size = size.trim().split(';').next().unwrap_or_default();
                let size = u64::from_str_radix(size, 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, up to an empty line.
                    loop {
                        let mut trailer = Vec::new();
                        from.read_until(b'\n', &mut trailer)?;
                        out.write_all(&trailer)?;
                        if trailer == b"\r\n" || trailer.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                std::io::copy(&mut (&mut from).take(size + 2), out)?;
            }
        } else {
            std::io::copy(&mut (&mut from).take(length), out)?;
        }
        if drop_it {
            to_client
                .lock()
                .unwrap()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        }
    }
}

fn responses(mut upstream: UnixStream, to_client: Arc<Mutex<TcpStream>>) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to_client.lock().unwrap().write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to_client.lock().unwrap().shutdown(Shutdown::Both);
}
