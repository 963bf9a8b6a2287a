//! The `obasim` command-line tool (a thin wrapper over the library).

fn main() {
    std::process::exit(obasim::cli::main());
}
