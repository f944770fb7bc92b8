//! The real binary in a pseudo-terminal (no real terminal, tmux or network needed), its screen
//! kept up to date by a reader thread. Shared by `tests/tui_pty.rs` and
//! `benches/tui_latency.rs` (each includes it with `#[path]`).

#![allow(dead_code)] // Each includer uses part of it.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// A running app in a pty.
pub struct Session {
    pub parser: Arc<Mutex<vt100::Parser>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    pub started: Instant,
}

/// The environment every session starts from: a 24-bit colour xterm in a UTF-8 locale, so the
/// host's own settings (NO_COLOR, LANG=C, LC_ALL) cannot change what the tests see. `env`
/// entries override it; a value of `None` removes the variable.
pub fn command(args: &[&str], env: &[(&str, Option<&str>)]) -> CommandBuilder {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_layerscope"));
    cmd.args(args);
    cmd.env("TERM", "xterm-256color");
    cmd.env("COLORTERM", "truecolor");
    cmd.env("LANG", "C.UTF-8");
    // A backtrace would scroll the panic message off the 80x24 screen the tests read.
    cmd.env("RUST_BACKTRACE", "0");
    for k in ["NO_COLOR", "LC_ALL", "LC_CTYPE", "LAYERSCOPE_TEST_PANIC"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        }
    }
    cmd
}

impl Session {
    pub fn start(args: &[&str], cols: u16, rows: u16) -> Session {
        Session::start_with_env(args, cols, rows, &[])
    }

    pub fn start_with_env(
        args: &[&str],
        cols: u16,
        rows: u16,
        env: &[(&str, Option<&str>)],
    ) -> Session {
        let pty = native_pty_system();
        let pair = pty
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("openpty");
        let started = Instant::now();
        let child = pair.slave.spawn_command(command(args, env)).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let master = pair.master;
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (p, r) = (Arc::clone(&parser), Arc::clone(&raw));
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        p.lock().unwrap().process(&buf[..n]);
                        r.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        Session {
            parser,
            raw,
            writer,
            child,
            master,
            started,
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        self.parser.lock().unwrap().screen_mut().set_size(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
        );
        self.master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
    }

    pub fn screen(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    pub fn alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }

    pub fn cursor_hidden(&self) -> bool {
        self.parser.lock().unwrap().screen().hide_cursor()
    }

    /// Everything the app wrote so far.
    pub fn output(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Wait until `done(self)` holds; how long it took. Panics with the screen after `timeout`.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Session) -> bool,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(self) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("{what}: not after {timeout:?}:\n{}", self.screen());
    }

    /// Wait until the screen shows `text`; how long it took.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Duration {
        self.wait_until(&format!("{text:?} on screen"), timeout, |s| {
            s.screen().contains(text)
        })
    }

    pub fn send(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.process_id().expect("child pid")).expect("pid fits i32")
    }

    /// Send a signal to the app.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with a pid this test spawned and still holds.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// The pty's local modes (`c_lflag`). On Linux and the BSDs the master reports its slave's
    /// termios, so this is what the app left the terminal in.
    pub fn local_modes(&self) -> libc::tcflag_t {
        let fd = self.master.as_raw_fd().expect("pty master fd");
        // SAFETY: termios is plain data; tcgetattr fills it or fails, and we check which.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::tcgetattr(fd, &raw mut t) };
        assert_eq!(rc, 0, "tcgetattr on the pty");
        t.c_lflag
    }

    /// Raw mode: no line editing, no echo, no signals from keys.
    pub fn is_raw(&self) -> bool {
        self.local_modes() & (libc::ICANON | libc::ECHO | libc::ISIG) == 0
    }

    /// Cooked mode, as a shell expects to find the terminal: line editing, echo and signals.
    pub fn is_cooked(&self) -> bool {
        let want = libc::ICANON | libc::ECHO | libc::ISIG;
        self.local_modes() & want == want
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> portable_pty::ExitStatus {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader drain the last bytes.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!(
            "the app did not exit within {timeout:?}:\n{}",
            self.screen()
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A failed test must not leave the app running (or stopped) behind it.
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: as in `signal`; SIGCONT first so a stopped app can take the SIGKILL.
            unsafe {
                libc::kill(self.pid(), libc::SIGCONT);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
