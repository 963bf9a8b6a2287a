//! Plots of a probabilistic sensitivity analysis: the extension point for `draws.csv`,
//! `ceac.csv` and `tornado.csv`.
//!
//! Later versions of obasim will write these files; their formats are not fixed yet, so
//! nothing here reads or draws them, and no format is guessed. When they are fixed:
//! 1. add their row types and readers to [`super::data::RunData`] (optional files, read when
//!    present, like `budget.csv`), which already lists the PSA files present in
//!    `RunData::psa_files`;
//! 2. add one [`super::Plot`] variant per figure (e.g. a cost-effectiveness plane per
//!    contract, the acceptability curves, a tornado diagram), available when its file is
//!    present, with its size, title and caption;
//! 3. put the draw functions in this module, using `super::layout` for the title, the
//!    legend and axes with readable ticks, and `super::color_of` so that each contract keeps
//!    its colour.
//!
//! `draw_run` and the report pick up new variants through `Plot::for_run`; until then the
//! report names the PSA files present as not yet rendered.
