//! A loopback TCP proxy that cuts its connections after a byte budget, or slows them down: a
//! server that stops in the middle of an upload, or an upload that takes a while.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
