//! Plots of a finished run directory, as PNG and SVG, drawn with plotters and an embedded
//! font (no system fonts, no C libraries).
//!
//! [`draw_run`] reads a run directory ([`data::RunData`]) and writes `plots/` inside it. The
//! report ([`crate::report`]) draws the same figures in memory with [`render_svg`]. Each
//! contract has one colour in every plot and in the report ([`contract_color`]): the
//! Okabe–Ito colour-blind-safe palette, in the order contracts first appear in
//! `summary.csv`.
//!
//! Adding a plot: a variant of [`Plot`], its file stem, title, caption, size and
//! availability, and a `draw` function in a submodule, dispatched in `Plot::draw_on`; the
//! report and `draw_run` pick it up through [`Plot::for_run`].

pub mod compare;
pub mod data;
pub mod format;
pub mod metric;
pub mod sweep;

mod budget;
mod cumulative;
mod distribution;
mod layout;
mod occupancy;
mod psa;
mod share;
mod subgroups;

pub use data::RunData;

use plotters::coord::Shift;
use plotters::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The embedded font (DejaVu Sans; licence in `assets/fonts/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The font family every plot uses, registered once from the embedded font. The name is
/// also a CSS font list: SVG viewers use DejaVu Sans when they have it (so text measures as
/// laid out here) and their own sans-serif otherwise.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";

/// plotters writes an SVG font size as size / 1.24 (CSS pixels per em) but rasterises PNG
/// text with a height (ascent − descent, 1.164 em for DejaVu Sans) of `size` pixels, and
/// measures text the same way. SVG fonts are scaled by this factor so that both look alike;
/// text measured at the scaled size is this factor wider than the SVG draws it.
const SVG_FONT_FACTOR: f64 = 1.24 / 1.164;

/// Why plots or the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file of the run directory is not in the expected format.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Drawing a plot failed.
    #[error("drawing {plot}: {message}")]
    Draw {
        /// The plot's file stem.
        plot: String,
        /// What went wrong.
        message: String,
    },
    /// The embedded font could not be registered.
    #[error("the embedded font could not be loaded: {0}")]
    Font(String),
}

/// A drawing failure inside a plot, before it is attributed to the plot.
#[derive(Debug)]
pub(crate) struct DrawError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

pub(crate) type DrawResult = Result<(), DrawError>;

/// The Okabe–Ito palette in the order contracts take it (yellow last: it is faint on white).
pub const CONTRACT_PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),   // blue
    (213, 94, 0),    // vermillion
    (0, 158, 115),   // bluish green
    (204, 121, 167), // reddish purple
    (230, 159, 0),   // orange
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

/// Colour of comparator arms (no contract) where they appear next to contracts.
pub const COMPARATOR_COLOR: (u8, u8, u8) = (120, 120, 120);

/// The colour of the contract at position `index` in [`RunData::contracts`]; the palette
/// repeats after eight contracts.
pub fn contract_color(index: usize) -> RGBColor {
    let (r, g, b) = CONTRACT_PALETTE[index % CONTRACT_PALETTE.len()];
    RGBColor(r, g, b)
}

/// The colour of a named contract in this run (comparator grey if it is not a contract).
pub fn color_of(run: &RunData, contract: &str) -> RGBColor {
    match run.contracts().iter().position(|c| c == contract) {
        Some(i) => contract_color(i),
        None => {
            let (r, g, b) = COMPARATOR_COLOR;
            RGBColor(r, g, b)
        }
    }
}

/// A colour as CSS hex (`#0072b2`).
pub fn css_color(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The plots obasim draws from a run directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plot {
    /// Cumulative expected drug payments per patient over years since treatment.
    CumulativePayments,
    /// Per-patient distribution of drug payments (undiscounted and discounted).
    DrugPaidDistribution,
    /// Per-patient distribution of the manufacturer's NPV.
    ManufacturerNpvDistribution,
    /// Share of the list price paid, with 95% Monte Carlo intervals.
    ShareOfPrice,
    /// State occupancy over time, one panel per arm.
    Occupancy,
    /// Payer spend by calendar year (only when `budget.csv` exists).
    Budget,
    /// PSA draws on the cost-effectiveness plane (`ce_plane.csv`).
    CostEffectivenessPlane,
    /// Cost-effectiveness acceptability curves and frontier (`ceac.csv`).
    Ceac,
    /// Expected value of perfect information (`evpi.csv`).
    Evpi,
    /// One-way sensitivity analysis (`tornado.csv`).
    Tornado,
    /// Key incremental results by subgroup (only with `population.subgroups`).
    Subgroups,
}

impl Plot {
    /// Every plot, in the order of the report.
    pub const ALL: [Plot; 11] = [
        Plot::CumulativePayments,
        Plot::DrugPaidDistribution,
        Plot::ManufacturerNpvDistribution,
        Plot::ShareOfPrice,
        Plot::Occupancy,
        Plot::Budget,
        Plot::CostEffectivenessPlane,
        Plot::Ceac,
        Plot::Evpi,
        Plot::Tornado,
        Plot::Subgroups,
    ];

    /// File name without extension (`plots/<stem>.png`, `plots/<stem>.svg`).
    pub fn file_stem(self) -> &'static str {
        match self {
            Plot::CumulativePayments => "cumulative_payments",
            Plot::DrugPaidDistribution => "drug_paid_distribution",
            Plot::ManufacturerNpvDistribution => "manufacturer_npv_distribution",
            Plot::ShareOfPrice => "share_of_price_paid",
            Plot::Occupancy => "occupancy",
            Plot::Budget => "budget",
            Plot::CostEffectivenessPlane => "ce_plane",
            Plot::Ceac => "ceac",
            Plot::Evpi => "evpi",
            Plot::Tornado => "tornado",
            Plot::Subgroups => "subgroups",
        }
    }

    /// The plot's title.
    pub fn title(self) -> &'static str {
        match self {
            Plot::CumulativePayments => "Cumulative expected drug payments per patient",
            Plot::DrugPaidDistribution => "Distribution of drug payments per patient",
            Plot::ManufacturerNpvDistribution => {
                "Distribution of the manufacturer's NPV per patient"
            }
            Plot::ShareOfPrice => "Share of the list price paid",
            Plot::Occupancy => "State occupancy over time",
            Plot::Budget => "Payer budget impact by calendar year",
            Plot::CostEffectivenessPlane => "Cost-effectiveness plane",
            Plot::Ceac => "Cost-effectiveness acceptability curves",
            Plot::Evpi => "Expected value of perfect information",
            Plot::Tornado => "One-way sensitivity analysis",
            Plot::Subgroups => "Incremental results by subgroup",
        }
    }

    /// What the plot shows and how to read it (for the report).
    pub fn caption(self, run: &RunData) -> String {
        match self {
            Plot::CumulativePayments => cumulative::caption(run),
            Plot::DrugPaidDistribution => distribution::caption_drug(run),
            Plot::ManufacturerNpvDistribution => distribution::caption_npv(run),
            Plot::ShareOfPrice => share::caption(run),
            Plot::Occupancy => occupancy::caption(run),
            Plot::Budget => budget::caption(run),
            Plot::CostEffectivenessPlane => psa::caption_ce_plane(run),
            Plot::Ceac => psa::caption_ceac(run),
            Plot::Evpi => psa::caption_evpi(run),
            Plot::Tornado => psa::caption_tornado(run),
            Plot::Subgroups => subgroups::caption(run),
        }
    }

    /// Whether the run has the data for this plot.
    pub fn available(self, run: &RunData) -> bool {
        match self {
            Plot::Budget => run.budget.as_ref().is_some_and(|b| !b.is_empty()),
            Plot::CostEffectivenessPlane => run.ce_plane.as_ref().is_some_and(|r| !r.is_empty()),
            Plot::Ceac => run.ceac.as_ref().is_some_and(|r| !r.is_empty()),
            Plot::Evpi => run.evpi.as_ref().is_some_and(|r| !r.is_empty()),
            Plot::Tornado => run.tornado.as_ref().is_some_and(|r| !r.is_empty()),
            Plot::Subgroups => !run.subgroup_incremental.is_empty(),
            Plot::Occupancy => !run.occupancy.is_empty(),
            Plot::CumulativePayments => !run.contracts().is_empty() && !run.cashflow.is_empty(),
            _ => !run.contracts().is_empty(),
        }
    }

    /// The plots this run has data for, in report order.
    pub fn for_run(run: &RunData) -> Vec<Plot> {
        Plot::ALL.into_iter().filter(|p| p.available(run)).collect()
    }

    /// Size in SVG pixels (PNGs are drawn at [`PNG_SCALE`] times this).
    pub fn size(self, run: &RunData) -> (u32, u32) {
        match self {
            Plot::Occupancy => occupancy::size(run),
            Plot::ShareOfPrice => share::size(run),
            Plot::CostEffectivenessPlane => psa::ce_plane_size(run),
            Plot::Tornado => psa::tornado_size(run),
            Plot::Subgroups => subgroups::size(run),
            _ => (1000, 560),
        }
    }

    fn draw_on<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, Shift>,
        run: &RunData,
        s: Scale,
    ) -> DrawResult {
        root.fill(&WHITE)?;
        match self {
            Plot::CumulativePayments => cumulative::draw(root, run, s),
            Plot::DrugPaidDistribution => distribution::draw_drug(root, run, s),
            Plot::ManufacturerNpvDistribution => distribution::draw_npv(root, run, s),
            Plot::ShareOfPrice => share::draw(root, run, s),
            Plot::Occupancy => occupancy::draw(root, run, s),
            Plot::Budget => budget::draw(root, run, s),
            Plot::CostEffectivenessPlane => psa::draw_ce_plane(root, run, s),
            Plot::Ceac => psa::draw_ceac(root, run, s),
            Plot::Evpi => psa::draw_evpi(root, run, s),
            Plot::Tornado => psa::draw_tornado(root, run, s),
            Plot::Subgroups => subgroups::draw(root, run, s),
        }?;
        root.present()?;
        Ok(())
    }
}

/// PNGs are drawn at this multiple of the SVG size (sharp on high-density screens).
pub const PNG_SCALE: f64 = 2.0;

/// A multiplier for every length and font size, so that one drawing serves both sizes, and
/// an extra factor for font sizes (see `SVG_FONT_FACTOR`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale(pub f64, pub f64);

impl Scale {
    /// `v` logical pixels, in backend pixels.
    pub fn px(self, v: f64) -> i32 {
        (v * self.0).round() as i32
    }
    /// `v` logical pixels as an unsigned size (at least 1).
    pub fn u(self, v: f64) -> u32 {
        ((v * self.0).round() as u32).max(1)
    }
    /// The width of `text` in backend pixels as a viewer will draw it (plotters measures SVG
    /// text at the enlarged size; see `SVG_FONT_FACTOR`).
    pub fn text_width<DB: DrawingBackend>(
        self,
        area: &DrawingArea<DB, Shift>,
        text: &str,
        font: &TextStyle,
    ) -> Result<i32, DrawError> {
        let (w, _) = area.estimate_text_size(text, font)?;
        Ok((w as f64 / self.1).round() as i32)
    }

    /// A font of `size` logical pixels in `color`.
    pub fn font(self, size: f64, color: RGBColor) -> TextStyle<'static> {
        TextStyle {
            color: color.to_backend_color(),
            ..TextStyle::from((FAMILY, size * self.0 * self.1).into_font())
        }
    }
}

/// Registers the embedded font with plotters (once per process).
pub fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(PlotError::Font)
}

fn attribute(plot: Plot) -> impl Fn(DrawError) -> PlotError {
    move |e| PlotError::Draw {
        plot: plot.file_stem().to_string(),
        message: e.0,
    }
}

/// Draws `plot` as an SVG document (text, scalable; fonts resolved by the viewer).
pub fn render_svg(plot: Plot, run: &RunData) -> Result<String, PlotError> {
    ensure_font()?;
    let size = plot.size(run);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        plot.draw_on(&root, run, Scale(1.0, SVG_FONT_FACTOR))
            .map_err(attribute(plot))?;
    }
    Ok(sign_svg(svg))
}

/// Draws `plot` as a PNG image at [`PNG_SCALE`] times its SVG size.
pub fn render_png(plot: Plot, run: &RunData) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let (w, h) = png_size(plot.size(run));
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        plot.draw_on(&root, run, Scale(PNG_SCALE, 1.0))
            .map_err(attribute(plot))?;
    }
    encode_png(plot.file_stem(), &pixels, (w, h))
}

/// The PNG size of a figure of `size` SVG pixels.
fn png_size((w, h): (u32, u32)) -> (u32, u32) {
    (
        (w as f64 * PNG_SCALE).round() as u32,
        (h as f64 * PNG_SCALE).round() as u32,
    )
}

/// Encodes RGB `pixels` of size `(w, h)` as a PNG file.
fn encode_png(stem: &str, pixels: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let png_error = |e: png::EncodingError| PlotError::Draw {
        plot: stem.to_string(),
        message: format!("encoding PNG: {e}"),
    };
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Zlib level 6 with the Up filter: as small as the default (adaptive filtering) for
    // these flat-coloured images and several times faster in unoptimised test builds.
    encoder.set_deflate_compression(png::DeflateCompression::Level(6));
    encoder.set_filter(png::Filter::Up);
    encoder
        .add_text_chunk("Software".into(), PNG_SOFTWARE.into())
        .map_err(png_error)?;
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

/// A figure drawn outside a run directory (sweep and comparison plots): its size and a
/// drawing function for any backend.
pub(crate) trait Figure {
    /// File stem, for error messages.
    fn stem(&self) -> String;
    /// Size in SVG pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the figure on a white `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, s: Scale) -> DrawResult;
}

fn attribute_figure<F: Figure>(fig: &F) -> impl Fn(DrawError) -> PlotError + '_ {
    move |e| PlotError::Draw {
        plot: fig.stem(),
        message: e.0,
    }
}

/// Draws a figure as an SVG document.
pub(crate) fn figure_svg<F: Figure>(fig: &F) -> Result<String, PlotError> {
    ensure_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, fig.size()).into_drawing_area();
        root.fill(&WHITE)
            .map_err(DrawError::from)
            .and_then(|_| fig.draw(&root, Scale(1.0, SVG_FONT_FACTOR)))
            .and_then(|_| root.present().map_err(DrawError::from))
            .map_err(attribute_figure(fig))?;
    }
    Ok(sign_svg(svg))
}

/// The signature obasim writes into every SVG it draws (a comment), by which `--force`
/// recognises a plot file as obasim's own.
pub const SVG_SIGNATURE: &str = "<!-- drawn by obasim -->";
/// The `Software` text chunk obasim writes into every PNG it draws.
pub const PNG_SOFTWARE: &str = "obasim";

/// Whether `bytes` are a plot obasim drew (a PNG with its `Software` chunk, or an SVG with
/// its signature).
pub fn is_obasim_plot(bytes: &[u8]) -> bool {
    let needle: Vec<u8> = [b"tEXtSoftware\0".as_slice(), PNG_SOFTWARE.as_bytes()].concat();
    let png = bytes.starts_with(b"\x89PNG") && bytes.windows(needle.len()).any(|w| w == needle);
    let svg = std::str::from_utf8(bytes).is_ok_and(|t| t.contains(SVG_SIGNATURE));
    png || svg
}

/// Puts obasim's signature after the opening `<svg ...>` tag.
fn sign_svg(svg: String) -> String {
    match svg.find('>') {
        Some(i) => format!("{}\n{SVG_SIGNATURE}{}", &svg[..=i], &svg[i + 1..]),
        None => svg,
    }
}

/// Draws a figure as a PNG image at [`PNG_SCALE`] times its SVG size.
pub(crate) fn figure_png<F: Figure>(fig: &F) -> Result<Vec<u8>, PlotError> {
    ensure_font()?;
    let (w, h) = png_size(fig.size());
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(DrawError::from)
            .and_then(|_| fig.draw(&root, Scale(PNG_SCALE, 1.0)))
            .and_then(|_| root.present().map_err(DrawError::from))
            .map_err(attribute_figure(fig))?;
    }
    encode_png(&fig.stem(), &pixels, (w, h))
}

/// Writes `bytes` to `path`.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    fs::write(path, bytes).map_err(|source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the run directory `dir` and writes every plot it has data for into `dir/plots/`,
/// each as `<stem>.png` and `<stem>.svg`. Returns the files written.
pub fn draw_run(dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let run = RunData::load(dir)?;
    let out_dir = dir.join("plots");
    fs::create_dir_all(&out_dir).map_err(|source| PlotError::Io {
        path: out_dir.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for plot in Plot::for_run(&run) {
        let svg_path = out_dir.join(format!("{}.svg", plot.file_stem()));
        let svg = render_svg(plot, &run)?;
        fs::write(&svg_path, svg).map_err(|source| PlotError::Io {
            path: svg_path.clone(),
            source,
        })?;
        written.push(svg_path);
        let png_path = out_dir.join(format!("{}.png", plot.file_stem()));
        let png = render_png(plot, &run)?;
        fs::write(&png_path, png).map_err(|source| PlotError::Io {
            path: png_path.clone(),
            source,
        })?;
        written.push(png_path);
    }
    Ok(written)
}
