//! Loading speed and peak memory for a PMLB-sized file: 70,000 rows x 784 pixels, gzip'd TSV.
//!
//! `cargo bench --bench data [-- PATH]`: with no PATH it writes a 70,000-row file in PMLB's layout
//! from the on-board digits (each row seven times, shuffled), then loads it five times and prints
//! the median time and rows/s, and the peak resident memory of a process that only loads it, next
//! to the size of the f32 feature matrix (the goal: under 3 s, under 2x the matrix).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use rand::SeedableRng;
use rand::seq::SliceRandom;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn write_pmlb_70k(path: &Path) {
    let digits = layerscope::data::load_onboard().expect("on-board data");
    let mut rows: Vec<usize> = (0..7).flat_map(|_| 0..digits.n_rows()).collect();
    rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let file = std::fs::File::create(path).expect("create");
    let mut gz = std::io::BufWriter::new(GzEncoder::new(file, Compression::new(6)));
    let header: Vec<String> = (1..=784).map(|i| i.to_string()).collect();
    writeln!(gz, "{}\ttarget", header.join("\t")).unwrap();
    for &r in &rows {
        let row = digits.features.row(r);
        let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        writeln!(
            gz,
            "{}\t{}",
            cells.join("\t"),
            digits.class_names[usize::from(digits.labels[r])]
        )
        .unwrap();
    }
    let gz = gz
        .into_inner()
        .unwrap_or_else(|e| panic!("flush: {}", e.error()));
    gz.finish().expect("finish");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--load-once") {
        let d = layerscope::data::load(Path::new(&args[1])).expect("load");
        println!("{} {} {}", d.n_rows(), d.n_features(), peak_rss_kib());
        return;
    }
    let path = match args.first() {
        Some(p) => PathBuf::from(p),
        None => {
            let p = std::env::temp_dir().join("layerscope-bench-mnist70k.tsv.gz");
            if !p.exists() {
                eprintln!("writing {} ...", p.display());
                write_pmlb_70k(&p);
            }
            p
        }
    };
    let mut times = Vec::new();
    let mut shape = (0, 0);
    for _ in 0..5 {
        let t = Instant::now();
        let d = layerscope::data::load(&path).expect("load");
        times.push(t.elapsed().as_secs_f64());
        shape = (d.n_rows(), d.n_features());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--load-once")
        .arg(&path)
        .output()
        .expect("child");
    let child = String::from_utf8_lossy(&out.stdout);
    let peak_kib: f64 = child
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let matrix_mib = (shape.0 * shape.1 * 4) as f64 / (1 << 20) as f64;
    println!("file:        {}", path.display());
    println!("rows x cols: {} x {}", shape.0, shape.1);
    println!(
        "load:        median {median:.2} s of 5 (min {:.2}, max {:.2}), {:.0} rows/s",
        times[0],
        times[times.len() - 1],
        shape.0 as f64 / median
    );
    println!(
        "peak memory: {:.0} MiB in a process that only loads it; f32 matrix {matrix_mib:.0} MiB ({:.2}x)",
        peak_kib / 1024.0,
        peak_kib / 1024.0 / matrix_mib
    );
}
