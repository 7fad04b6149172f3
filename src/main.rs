//! The `contact-import` binary: see `contact_import::cli`.

fn main() -> std::process::ExitCode {
    contact_import::cli::main()
}
