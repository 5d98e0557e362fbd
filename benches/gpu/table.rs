//! The GPU bench's closing table: every way's timings of every row, written as JSON for
//! `benches/torch_ref.py` and joined with its timings (torch eager, torch.compile), so that each
//! row shows the best peer beside ours.

use candle_core::Result;

/// What every row of the closing table is named after.
pub const OURS: &str = "lazy_graph";

/// One timing of one way of computing a row, as `benches/torch_ref.py` writes them too.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Measured {
    pub way: String,
    pub kernel: String,
    /// `BF16` or `F32`, as Candle's `DType` prints.
    pub dtype: String,
    pub bytes: usize,
    pub seconds: f64,
}

/// The key peers are matched on: an `explicit` row does the work of the `train` row.
fn work(kernel: &str) -> String {
    match kernel.strip_prefix("explicit ") {
        Some(k) => format!("train {k}"),
        None => kernel.to_string(),
    }
}

/// Writes this run's timings to `LAZY_GRAPH_JSON` (default `$OUT/lazy_graph.json` where `OUT`
/// is set), reads the torch script's from `TORCH_REF` where set, and prints one table: per row,
/// the bytes, our µs and GB/s, the best peer's (Candle composed, candle-nn, torch eager,
/// torch.compile), the peer's time over ours, and our GB/s as a share of the best any way
/// reached on the row.
pub fn one_table(mut measured: Vec<Measured>) -> Result<()> {
    let out = std::env::var_os("LAZY_GRAPH_JSON")
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("OUT").map(|o| std::path::Path::new(&o).join("lazy_graph.json")));
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(&measured).map_err(candle_core::Error::wrap)?;
        std::fs::write(&path, text)?;
        println!("timings written to {}", path.display());
    }
    match std::env::var_os("TORCH_REF").filter(|p| !p.is_empty()) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)?;
            let torch: Vec<Measured> = serde_json::from_str(&text).map_err(candle_core::Error::wrap)?;
            println!(
                "torch timings read from {}",
                std::path::Path::new(&path).display()
            );
            measured.extend(torch);
        }
        None => println!("(TORCH_REF unset: peers are Candle's ways only; run benches/torch_ref.py first)"),
    }
    println!();
    println!("| kernel | dtype | MB | lazy_graph µs | GB/s | best peer | peer µs | peer GB/s | peer / ours | % of best GB/s |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for m in measured.iter().filter(|m| m.way == OURS) {
        let peers = measured
            .iter()
            .filter(|p| p.way != OURS && p.dtype == m.dtype && work(&p.kernel) == work(&m.kernel));
        let best = peers.min_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let gbs = |t: f64| m.bytes as f64 / t / 1e9;
        let (name, peer) = match best {
            Some(p) => (p.way.clone(), p.seconds),
            None => ("—".to_string(), f64::NAN),
        };
        let fastest = m.seconds.min(if peer.is_nan() { f64::INFINITY } else { peer });
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.0} | {name} | {:.1} | {:.0} | {:.2}x | {:.0}% |",
            m.kernel,
            m.dtype,
            m.bytes as f64 / 1e6,
            m.seconds * 1e6,
            gbs(m.seconds),
            peer * 1e6,
            gbs(peer),
            peer / m.seconds,
            100.0 * fastest / m.seconds
        );
    }
    Ok(())
}
