//! `contact-import import FILE.csv`: a client of a running service (placeholder; being written).

/// Arguments of `contact-import import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The CSV file to import.
    pub file: std::path::PathBuf,
}

/// Runs the import client.
pub async fn run(_args: ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
