//! Where a scenario comes from (a file, or the example embedded in the binary), its data
//! files, and how field paths map back to lines and columns.

use super::error::{Diagnostic, ScenarioError};
use super::types::{Scenario, FORMAT_VERSION};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The default example scenario, embedded so that `obasim run` works from any directory.
pub const EXAMPLE_NAME: &str = "beti-cel-germany.toml";
const EXAMPLE_TEXT: &str = include_str!("../../scenarios/beti-cel-germany.toml");
const EMBEDDED_DATA: &[(&str, &str)] = &[
    (
        "data/lifetable_usa_2015_mx.csv",
        include_str!("../../scenarios/data/lifetable_usa_2015_mx.csv"),
    ),
    (
        "bench/d-patients.csv",
        include_str!("../../scenarios/bench/d-patients.csv"),
    ),
];

/// `dir` + `relative` with `.` and `..` segments resolved lexically (paths inside `scenarios/`).
fn embedded_path(dir: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for p in relative.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(p),
        }
    }
    parts.join("/")
}

/// Largest scenario file obasim reads, in bytes.
pub const MAX_SCENARIO_BYTES: u64 = 64 << 20;
/// Largest data file (life table) obasim reads, in bytes.
pub const MAX_DATA_FILE_BYTES: u64 = 256 << 20;

/// Reads a file of at most `limit` bytes; refuses anything that is not a regular file
/// (devices, pipes, directories) or is larger.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    let m = f.metadata()?;
    if !m.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a device, pipe or directory)",
        ));
    }
    if m.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} bytes, more than the limit of {limit}", m.len()),
        ));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(f, limit + 1), &mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("it grew past the limit of {limit} bytes while being read"),
        ));
    }
    Ok(text)
}

/// A scenario's text and the means to resolve the data files it references.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name shown in messages: the path as given, or `<embedded>/NAME`.
    pub display_name: String,
    /// File stem used for default output directories.
    pub stem: String,
    /// The TOML text.
    pub text: String,
    file: Option<PathBuf>,
    base_dir: Option<PathBuf>,
    /// For a scenario embedded in the binary: its folder under `scenarios/` ("" or "bench/"),
    /// against which its relative data paths resolve.
    embedded_dir: &'static str,
}

/// One segment of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Renders a field path as `a.b[2].c`.
pub fn render_path(path: &[PathSegment]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            PathSegment::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathSegment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Parses `a.b[2].c` into segments.
pub fn parse_path(path: &str) -> Vec<PathSegment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(PathSegment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..close].parse() {
                    out.push(PathSegment::Index(i));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else if !rest.is_empty() {
            out.push(PathSegment::Key(rest.to_string()));
        }
    }
    out
}

impl Source {
    /// Reads a scenario file from disk.
    pub fn from_file(path: &Path) -> Result<Source, ScenarioError> {
        let display_name = path.display().to_string();
        let text = read_regular_file(path, MAX_SCENARIO_BYTES).map_err(|e| {
            ScenarioError::single(
                &display_name,
                "",
                format!("cannot read the scenario file: {e}"),
            )
        })?;
        Ok(Source {
            stem: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
            display_name,
            text,
            file: Some(path.to_path_buf()),
            base_dir: Some(
                path.parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(".")),
            ),
            embedded_dir: "",
        })
    }

    /// The example scenario embedded in the binary (with its life table).
    pub fn example() -> Source {
        Source {
            display_name: format!("<embedded>/scenarios/{EXAMPLE_NAME}"),
            stem: EXAMPLE_NAME.trim_end_matches(".toml").to_string(),
            text: EXAMPLE_TEXT.to_string(),
            file: None,
            base_dir: None,
            embedded_dir: "",
        }
    }

    /// A scenario embedded in the binary at `scenarios/{dir}{name}` (e.g. the reference models
    /// of `obasim bench`); its data files come from the binary too.
    pub fn embedded(dir: &'static str, name: &str, text: &str) -> Source {
        Source {
            display_name: format!("<embedded>/scenarios/{dir}{name}"),
            stem: name.trim_end_matches(".toml").to_string(),
            text: text.to_string(),
            file: None,
            base_dir: None,
            embedded_dir: dir,
        }
    }

    /// A scenario held in memory; data files resolve against `base_dir` (tests, tools).
    pub fn from_text(display_name: &str, text: &str, base_dir: Option<PathBuf>) -> Source {
        Source {
            display_name: display_name.to_string(),
            stem: Path::new(display_name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
            text: text.to_string(),
            file: None,
            base_dir,
            embedded_dir: "",
        }
    }

    /// The scenario file, when it was read from one.
    pub fn path(&self) -> Option<PathBuf> {
        self.file.clone()
    }

    /// Directory data files are read from (none for the embedded example).
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// Where a data file referenced by the scenario is on disk (none for embedded scenarios).
    pub fn data_path(&self, relative: &str) -> Option<PathBuf> {
        self.base_dir.as_ref().map(|d| d.join(relative))
    }

    /// SHA-256 of the scenario text, hex.
    pub fn sha256(&self) -> String {
        let digest = Sha256::digest(self.text.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a data file referenced by the scenario, relative to the scenario file (or from
    /// the binary for the embedded example). Returns the name to show in messages and the text.
    pub fn read_data(&self, relative: &str) -> Result<(String, String), String> {
        match &self.base_dir {
            Some(dir) => {
                let path = dir.join(relative);
                let shown = path.display().to_string();
                read_regular_file(&path, MAX_DATA_FILE_BYTES)
                    .map(|t| (shown.clone(), t))
                    .map_err(|e| format!("cannot read `{shown}`: {e}"))
            }
            None => EMBEDDED_DATA
                .iter()
                .find(|(name, _)| *name == embedded_path(self.embedded_dir, relative))
                .map(|(name, text)| (format!("<embedded>/scenarios/{name}"), text.to_string()))
                .ok_or_else(|| {
                    format!(
                        "`{relative}` is not embedded; embedded data files: {}",
                        EMBEDDED_DATA
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
        }
    }

    /// Parses and type-checks the TOML (syntax, types, unknown or missing fields, version).
    /// Numbers keep how they are written (plain, expression or distribution) and where.
    pub fn parse(&self) -> Result<Scenario, ScenarioError> {
        let text = &self.text;
        let located = self;
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let (line, column, field) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    (Some(l), Some(c), located.path_at(span.start))
                }
                None => (None, None, String::new()),
            };
            ScenarioError {
                diagnostics: vec![Diagnostic {
                    file: self.display_name.clone(),
                    line,
                    column,
                    field,
                    message: super::suggest::improve_serde_message(e.message().trim()),
                }],
            }
        })?;
        if scenario.format != FORMAT_VERSION {
            return Err(ScenarioError {
                diagnostics: vec![self.diagnostic(
                    "format",
                    format!(
                        "unsupported format {}; this obasim reads format {FORMAT_VERSION}",
                        scenario.format
                    ),
                )],
            });
        }
        Ok(scenario)
    }

    /// A diagnostic for a field path, located at byte `offset` of the text (e.g. a
    /// character inside an expression).
    pub fn diagnostic_at(
        &self,
        field: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = line_col(&self.text, offset.min(self.text.len()));
        Diagnostic {
            file: self.display_name.clone(),
            line: Some(line),
            column: Some(column),
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A diagnostic for a field path (`arms[0].states[1].initial`), located in the file.
    pub fn diagnostic(&self, field: &str, message: impl Into<String>) -> Diagnostic {
        let (line, column) = match self.locate(&parse_path(field)) {
            Some(offset) => {
                let (l, c) = line_col(&self.text, offset);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Diagnostic {
            file: self.display_name.clone(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// Byte range of the value at exactly `path`, if it exists.
    pub fn value_span(&self, path: &str) -> Option<std::ops::Range<usize>> {
        let path = parse_path(path);
        let root = DeTable::parse(&self.text).ok()?;
        let mut table: &DeTable = root.get_ref();
        let mut value: Option<&Spanned<DeValue>> = None;
        for seg in &path {
            let next = match (seg, value.map(|v| v.get_ref())) {
                (PathSegment::Key(k), None) => table.get(k.as_str()),
                (PathSegment::Key(k), Some(DeValue::Table(t))) => t.get(k.as_str()),
                (PathSegment::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            }?;
            if let DeValue::Table(t) = next.get_ref() {
                table = t;
            }
            value = Some(next);
        }
        value.map(|v| v.span())
    }

    /// Every inline table with a `dist` key (an uncertain parameter): its field path and
    /// byte range, in file order. Header tables (`[a.b]`) with `dist` are reported as errors.
    pub fn distribution_tables(
        &self,
    ) -> Result<Vec<(String, std::ops::Range<usize>)>, ScenarioError> {
        let Ok(root) = DeTable::parse(&self.text) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();
        let mut path = Vec::new();
        collect_dist_tables(root.get_ref(), &mut path, &mut found);
        let mut errors = Vec::new();
        for (p, span) in &found {
            if !self.text[span.clone()].trim_start().starts_with('{') {
                errors.push(self.diagnostic(
                    p,
                    "write a parameter distribution as an inline table: key = { dist = \"beta\", ... }",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ScenarioError {
                diagnostics: errors,
            });
        }
        found.sort_by_key(|(_, s)| s.start);
        Ok(found)
    }

    /// Byte offset of the value at `path`, or of its deepest existing parent.
    fn locate(&self, path: &[PathSegment]) -> Option<usize> {
        let root = DeTable::parse(&self.text).ok()?;
        let mut best = None;
        let mut table: &DeTable = root.get_ref();
        let mut value: Option<&Spanned<DeValue>> = None;
        for seg in path {
            let next = match (seg, value.map(|v| v.get_ref())) {
                (PathSegment::Key(k), None) => table.get(k.as_str()),
                (PathSegment::Key(k), Some(DeValue::Table(t))) => t.get(k.as_str()),
                (PathSegment::Index(i), Some(DeValue::Array(a))) => a.get(*i),
                _ => None,
            };
            match next {
                Some(v) => {
                    best = Some(v.span().start);
                    if let DeValue::Table(t) = v.get_ref() {
                        table = t;
                    }
                    value = Some(v);
                }
                None => break,
            }
        }
        best
    }

    /// The field path of the deepest value whose span contains `offset`.
    fn path_at(&self, offset: usize) -> String {
        let Ok(root) = DeTable::parse(&self.text) else {
            return String::new();
        };
        let mut path = Vec::new();
        if walk_table(root.get_ref(), offset, &mut path) {
            render_path(&path)
        } else {
            String::new()
        }
    }
}

fn collect_dist_tables(
    table: &DeTable,
    path: &mut Vec<PathSegment>,
    out: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    for (k, v) in table.iter() {
        path.push(PathSegment::Key(k.get_ref().to_string()));
        collect_dist_value(v, path, out);
        path.pop();
    }
}

fn collect_dist_value(
    v: &Spanned<DeValue>,
    path: &mut Vec<PathSegment>,
    out: &mut Vec<(String, std::ops::Range<usize>)>,
) {
    match v.get_ref() {
        DeValue::Table(t) if t.get("dist").is_some() => out.push((render_path(path), v.span())),
        DeValue::Table(t) => collect_dist_tables(t, path, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(PathSegment::Index(i));
                collect_dist_value(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Depth-first search for the entry whose key or value span contains `offset`. (Spans of
/// tables given by a `[header]` cover only the header, so children are always searched.)
fn walk_table(table: &DeTable, offset: usize, path: &mut Vec<PathSegment>) -> bool {
    for (k, v) in table.iter() {
        path.push(PathSegment::Key(k.get_ref().to_string()));
        if walk_value(v, offset, path) || k.span().contains(&offset) || v.span().contains(&offset) {
            return true;
        }
        path.pop();
    }
    false
}

/// Searches the children of a value; true when a child matched (and `path` extended).
fn walk_value(v: &Spanned<DeValue>, offset: usize, path: &mut Vec<PathSegment>) -> bool {
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, offset, path),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                path.push(PathSegment::Index(i));
                if walk_value(item, offset, path) || item.span().contains(&offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_round_trip() {
        let p = parse_path("arms[0].states[12].initial");
        assert_eq!(
            p,
            vec![
                PathSegment::Key("arms".into()),
                PathSegment::Index(0),
                PathSegment::Key("states".into()),
                PathSegment::Index(12),
                PathSegment::Key("initial".into()),
            ]
        );
        assert_eq!(render_path(&p), "arms[0].states[12].initial");
    }

    #[test]
    fn locates_fields_in_arrays_of_tables() {
        let text = "format = 1\n[[arms]]\nname = \"a\"\n[[arms]]\nname = \"b\"\n[[arms.states]]\nname = \"x\"\ninitial = 2.0\n";
        let s = Source::from_text("t.toml", text, None);
        let d = s.diagnostic("arms[1].states[0].initial", "bad");
        assert_eq!((d.line, d.column), (Some(8), Some(11)));
        let d = s.diagnostic("arms[1].name", "bad");
        assert_eq!(d.line, Some(5));
        let offset = text.find("2.0").unwrap();
        assert_eq!(s.path_at(offset), "arms[1].states[0].initial");
        assert_eq!(s.path_at(text.find("\"b\"").unwrap()), "arms[1].name");
    }
}
