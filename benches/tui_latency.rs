//! The terminal app's responsiveness, end to end: the real binary in a pseudo-terminal.
//!
//! - time to first frame (process start to "1 Training" on screen), over several launches;
//! - key-to-screen latency while training runs on the on-board digits (a tab switch, from the
//!   key written to the pty until the whole new tab is on screen);
//! - bytes written while idle (the app draws only when something changed: the goal is 0).
//!
//! `cargo bench --bench tui_latency` prints medians and ranges beside the CPU and the load
//! average; `-- --quick` runs fewer repetitions. Screens are polled every 2 ms (the resolution).
//! Goals (reported, never asserted by the tests): first frame under 3 s, median key-to-screen
//! under 50 ms, 0 bytes while idle.

#[path = "../tests/support/pty.rs"]
mod pty;

use std::time::{Duration, Instant};

use pty::Session;

/// A wait this long means a hang, not a slow machine.
const HANG: Duration = Duration::from_secs(300);

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd = match (has("avx512f"), has("avx2")) {
        (true, _) => "AVX-512",
        (false, true) => "AVX2, no AVX-512",
        _ => "no AVX2",
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{model} ({simd}), {cores} cores")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, min and max of a sample, in ms.
fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "median {:.1} ms (min {:.1}, max {:.1}, n = {})",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

fn first_frame(launches: usize) -> Vec<Duration> {
    (0..launches)
        .map(|_| {
            let mut s =
                Session::start(&["--sample", "600", "--epochs", "2", "--n", "200"], 100, 30);
            s.wait_for("1 Training", HANG);
            let t = s.started.elapsed();
            s.send("q");
            s.wait_exit(HANG);
            t
        })
        .collect()
}

/// Key-to-screen while the worker trains on the whole on-board digits set: to the Embeddings
/// tab and back to Training.
fn key_latency(round_trips: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut s = Session::start(&[], 160, 48);
    s.wait_for("1 Training", HANG);
    // Past epoch 1 (under load the screen may skip "epoch 2/" itself): training, or the film
    // being made after it, is running while keys are timed.
    s.wait_until("epoch 2 or later", HANG, |s| {
        let screen = s.screen();
        screen.contains("epoch ") && !screen.contains("epoch 0/") && !screen.contains("epoch 1/")
    });
    // Timed from before the key is written (the app may answer before this thread is
    // scheduled again) until the whole new tab is on screen: its text there and the old tab's
    // gone (a frame arrives in several reads).
    let timed = |s: &mut Session, key: &str, shows: &str, hides: &str| {
        let start = Instant::now();
        s.send(key);
        s.wait_until(&format!("{shows:?} after {key:?}"), HANG, |s| {
            let screen = s.screen();
            screen.contains(shows) && !screen.contains(hides)
        });
        start.elapsed()
    };
    let (mut to_embeddings, mut to_training) = (Vec::new(), Vec::new());
    for _ in 0..round_trips {
        to_embeddings.push(timed(&mut s, "2", "perplexity 3", "confusion"));
        to_training.push(timed(&mut s, "1", "confusion", "perplexity 3"));
    }
    s.send("q");
    s.wait_exit(HANG);
    (to_embeddings, to_training)
}

/// Key-to-screen once training has ended, while the film is remade newest first (after the
/// final maps, which take about 2 s): round trips `pause` apart from 2.5 s after "converged";
/// only those that ended before the worker went idle count. Returns the times and how many
/// round trips were dropped for coming after the film.
fn key_latency_after_training(round_trips: usize) -> (Vec<Duration>, usize) {
    let mut s = Session::start(&[], 160, 48);
    s.wait_for("1 Training", HANG);
    s.wait_until("training ended", HANG, |s| {
        let screen = s.screen();
        screen.contains("converged") || screen.contains("stopped early")
    });
    std::thread::sleep(Duration::from_millis(2500));
    let timed = |s: &mut Session, key: &str, shows: &str, hides: &str| {
        let start = Instant::now();
        s.send(key);
        s.wait_until(&format!("{shows:?} after {key:?}"), HANG, |s| {
            let screen = s.screen();
            screen.contains(shows) && !screen.contains(hides)
        });
        (start.elapsed(), s.screen().contains("idle"))
    };
    let (mut keys, mut late) = (Vec::new(), 0);
    for _ in 0..round_trips {
        for (key, shows, hides) in [
            ("2", "perplexity 3", "confusion"),
            ("1", "confusion", "perplexity 3"),
        ] {
            let (t, idle) = timed(&mut s, key, shows, hides);
            if idle {
                late += 1;
            } else {
                keys.push(t);
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    s.send("q");
    s.wait_exit(HANG);
    (keys, late)
}

/// Bytes written during `window` once the pipeline is idle, and after one key.
fn idle_bytes(window: Duration) -> (usize, usize) {
    let mut s = Session::start(
        &[
            "--sample", "300", "--epochs", "2", "--n", "100", "--hidden", "16",
        ],
        100,
        30,
    );
    s.wait_for("idle", HANG);
    std::thread::sleep(Duration::from_millis(200));
    let before = s.output().len();
    std::thread::sleep(window);
    let idle = s.output().len() - before;
    // A key draws at once, and only the cells that changed.
    let before = s.output().len();
    s.send("2");
    s.wait_for("perplexity 3", HANG);
    std::thread::sleep(Duration::from_millis(100));
    let key = s.output().len() - before;
    s.send("q");
    s.wait_exit(HANG);
    (idle, key)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (launches, trips, window) = if quick {
        (3, 5, Duration::from_secs(1))
    } else {
        (7, 15, Duration::from_secs(3))
    };
    println!("tui_latency on {}", cpu_model());
    let started = Instant::now();

    println!("load average before: {}", load_average());
    let first = first_frame(launches);
    let first_median = {
        let mut v = first.clone();
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "time to first frame (100x30, 600 rows): {} [goal < 3000 ms: {}]",
        summary(first),
        if first_median < Duration::from_secs(3) {
            "met"
        } else {
            "MISSED"
        }
    );

    println!("load average: {}", load_average());
    let (to_embeddings, to_training) = key_latency(trips);
    let mut keys = to_embeddings.clone();
    keys.extend(&to_training);
    keys.sort();
    let key_median = keys[keys.len() / 2];
    println!(
        "key to screen while training (160x48, on-board digits): {} [goal median < 50 ms: {}]",
        summary(keys),
        if key_median < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "  of which key 2 (to Embeddings): {}",
        summary(to_embeddings)
    );
    println!("  of which key 1 (to Training):   {}", summary(to_training));

    println!("load average: {}", load_average());
    let (after, late) = key_latency_after_training(trips);
    if after.is_empty() {
        println!(
            "key to screen while the film is remade: the film was done before the keys ({late} late)"
        );
    } else {
        let mut v = after.clone();
        v.sort();
        let median = v[v.len() / 2];
        println!(
            "key to screen while the film is remade after training (160x48): {} ({late} dropped: the worker was idle) [goal median < 50 ms: {}]",
            summary(after),
            if median < Duration::from_millis(50) {
                "met"
            } else {
                "MISSED"
            }
        );
    }

    println!("load average: {}", load_average());
    let (idle, key) = idle_bytes(window);
    println!(
        "bytes written while idle over {:.0} s: {idle} [goal 0: {}]; one tab switch: {key} bytes",
        window.as_secs_f64(),
        if idle == 0 { "met" } else { "MISSED" }
    );
    println!(
        "load average after: {} ({:.0} s in all)",
        load_average(),
        started.elapsed().as_secs_f64()
    );
}
