//! Scenario files: the TOML format, where a scenario comes from, and located errors.

pub mod error;
pub mod num;
pub mod source;
pub mod suggest;
pub mod types;

pub use error::{Diagnostic, ScenarioError};
pub use source::{read_regular_file, Source};
pub use types::*;

/// The JSON Schema of the scenario format, derived from the same types that read it.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("a schema always serialises")
}
