//! The comparison's bar chart: records per second of each case, Java Kafka Streams beside
//! streams-core, drawn as SVG with `plotters` (no fonts or image libraries needed).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// One case's medians.
pub struct Bar {
    /// The case, e.g. `streamcount 100B`.
    pub label: String,
    /// Java Kafka Streams, records/s.
    pub java: f64,
    /// streams-core, records/s.
    pub rust: f64,
}

const JAVA: RGBColor = RGBColor(232, 131, 43);
const RUST: RGBColor = RGBColor(52, 101, 164);

/// Draws `bars` as grouped horizontal bars (thousands of records/s) into `path`.
pub fn draw_ratios(path: &Path, bars: &[Bar]) -> Result<()> {
    // One row per case: its name, then the Java bar, then the Rust bar.
    let height = 70 + 66 * bars.len().max(1) as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let max = bars
        .iter()
        .map(|b| b.java.max(b.rust) / 1e3)
        .fold(1.0, f64::max);
    let rows = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "records/s (thousands): Java Kafka Streams vs streams-core",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max * 1.2, 0.0..rows)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("{e}");
    for (i, bar) in bars.iter().enumerate() {
        // Row i from the top spans y from rows - i - 1 to rows - i.
        let top = rows - i as f64;
        chart
            .draw_series(std::iter::once(Text::new(
                bar.label.clone(),
                (max * 0.005, top - 0.05),
                ("sans-serif", 14),
            )))
            .map_err(err)?;
        for (value, color, y0, name) in [
            (bar.java, JAVA, top - 0.6, "Java"),
            (bar.rust, RUST, top - 0.9, "Rust"),
        ] {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), (value / 1e3, y0 + 0.27)],
                    color.filled(),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{name} {:.0}k", value / 1e3),
                    (value / 1e3 + max * 0.01, y0 + 0.25),
                    ("sans-serif", 12),
                )))
                .map_err(err)?;
        }
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_names_every_case_and_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        let bars = vec![
            Bar {
                label: "streamcount 100B".into(),
                java: 285_000.0,
                rust: 334_000.0,
            },
            Bar {
                label: "streamprocess 100B".into(),
                java: 745_000.0,
                rust: 928_000.0,
            },
        ];
        draw_ratios(&path, &bars).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
        for text in [
            "streamcount 100B",
            "streamprocess 100B",
            "Java 285k",
            "Rust 928k",
        ] {
            assert!(svg.contains(text), "the chart lacks {text}");
        }
    }
}
