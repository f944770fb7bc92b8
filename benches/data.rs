//! Loading speed and peak memory.
//!
//! `cargo bench --bench data [-- PATH]`:
//!
//! 1. The on-board digits: `load_onboard` (zero-run-encoded bytes, built in) against the other
//!    ways to ship them: gzip'd raw bytes, raw bytes, and the text of `data/mnist10k.tsv.gz` (what
//!    the binary embedded before); medians of 21 interleaved runs, and ratios.
//! 2. A PMLB-sized file, 70,000 rows x 784 pixels, gzip'd TSV (with no PATH it is written from the
//!    on-board digits, each row seven times, shuffled): the median load time of 5 and rows/s, and
//!    the peak resident memory of a process that only loads it, next to the size of the f32
//!    feature matrix, three ways: `data::load` alone; `LoadOptions::load` (load, scale, split in
//!    place: what every front-end does); and the split as it was made before (the full data set
//!    kept beside a split copied out of it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use layerscope::data::{self, LoadOptions};
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

/// The CPU model and its widest SIMD, for the header.
fn cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let simd = if flags.contains(" avx512f") {
        "AVX-512"
    } else if flags.contains(" avx2") {
        "AVX2, no AVX-512"
    } else {
        "no AVX2"
    };
    format!("{model} ({simd})")
}

fn write_pmlb_70k(path: &Path) {
    let digits = data::load_onboard().expect("on-board data");
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

/// Load `path` one way in this process, print rows, features and the peak resident KiB.
fn load_once(path: &Path, how: &str) {
    let (rows, cols) = match how {
        "load" => {
            let d = data::load(path).expect("load");
            (d.n_rows(), d.n_features())
        }
        "split" => {
            let s = LoadOptions::new(Some(path.to_path_buf()), None, 0.5, 0)
                .load()
                .expect("load");
            (s.n_rows(), s.n_features())
        }
        _ => {
            // Before: `DataArgs::load` returned the full data set beside a split copied from it.
            let full = data::load(path).expect("load").into_unit_scale();
            let split = full.split(0.5, 0).expect("split");
            std::hint::black_box((&full, &split));
            (full.n_rows(), full.n_features())
        }
    };
    println!("{rows} {cols} {}", peak_rss_kib());
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The on-board digits' pixel bytes, raw and gzip'd, for the alternatives the format was chosen
/// against.
fn onboard_alternatives() -> (Vec<u8>, Vec<u8>) {
    let digits = data::load_onboard().expect("on-board");
    // Pixel values are bytes: exact.
    let raw: Vec<u8> = digits.features.iter().map(|&v| v as u8).collect();
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&raw).expect("gzip");
    (raw.clone(), gz.finish().expect("gzip"))
}

fn onboard_figures() {
    let tsv = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist10k.tsv.gz");
    let (raw, gz) = onboard_alternatives();
    let to_f32 = |bytes: &[u8]| -> Vec<f32> { bytes.iter().map(|&b| f32::from(b)).collect() };
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..21 {
        let t = Instant::now();
        std::hint::black_box(data::load_onboard().expect("on-board"));
        times[0].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut bytes = Vec::with_capacity(raw.len());
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut bytes)
            .expect("inflate");
        std::hint::black_box(to_f32(&bytes));
        times[1].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(to_f32(std::hint::black_box(&raw)));
        times[2].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(data::load(&tsv).expect("tsv"));
        times[3].push(t.elapsed().as_secs_f64());
    }
    let [runs, inflate, convert, text] = times.map(median);
    let mut whole = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        std::hint::black_box(LoadOptions::default().load().expect("on-board"));
        whole.push(t.elapsed().as_secs_f64());
    }
    println!("on-board 10,000 x 784 digits to f32, median of 21 interleaved runs:");
    println!(
        "  zero runs, built in (2.0 MB)            {:6.1} ms",
        runs * 1e3
    );
    println!(
        "  gzip'd raw bytes ({:.1} MB): inflate+convert {:6.1} ms ({:.1}x)",
        gz.len() as f64 / 1e6,
        inflate * 1e3,
        inflate / runs
    );
    println!(
        "  raw bytes (7.8 MB): convert only         {:6.1} ms ({:.1}x)",
        convert * 1e3,
        convert / runs
    );
    println!(
        "  text, data/mnist10k.tsv.gz (2.1 MB)      {:6.1} ms ({:.1}x)",
        text * 1e3,
        text / runs
    );
    println!(
        "  LoadOptions::default().load() (decode, scale, split) {:6.1} ms",
        median(whole) * 1e3
    );
}

fn peak_in_child(path: &Path, how: &str) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--load-once", how])
        .arg(path)
        .output()
        .expect("child");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--load-once") {
        load_once(Path::new(&args[2]), &args[1]);
        return;
    }
    println!("cpu: {}", cpu());
    onboard_figures();
    if args.first().map(String::as_str) == Some("--onboard") {
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
        let d = data::load(&path).expect("load");
        times.push(t.elapsed().as_secs_f64());
        shape = (d.n_rows(), d.n_features());
    }
    let (lo, hi) = (
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0.0, f64::max),
    );
    let median = median(times);
    let matrix_mib = (shape.0 * shape.1 * 4) as f64 / (1 << 20) as f64;
    println!("file:        {}", path.display());
    println!("rows x cols: {} x {}", shape.0, shape.1);
    println!(
        "load:        median {median:.2} s of 5 (min {lo:.2}, max {hi:.2}), {:.0} rows/s",
        shape.0 as f64 / median
    );
    println!("peak memory of a process that only loads it; f32 matrix {matrix_mib:.0} MiB:");
    for (how, what) in [
        ("load", "data::load"),
        ("split", "LoadOptions::load (load, scale, split in place)"),
        ("before", "before: full data set kept beside a copied split"),
    ] {
        let peak = peak_in_child(&path, how);
        println!("  {what:<50} {peak:>5.0} MiB ({:.2}x)", peak / matrix_mib);
    }
}
