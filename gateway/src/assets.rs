//! What packages install beside the binary, generated from the command-line definition so
//! they never drift from it: the man page and the shell completions.

use std::io;
use std::path::Path;

/// Writes `slurm-exporter.1.gz` and `completions/{slurm-exporter.bash,_slurm-exporter,
/// slurm-exporter.fish}` under `out`.
pub fn write(cmd: clap::Command, out: &Path) -> io::Result<()> {
    std::fs::create_dir_all(out.join("completions"))?;
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut roff)?;
    let file = std::fs::File::create(out.join("slurm-exporter.1.gz"))?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    io::Write::write_all(&mut gz, &roff)?;
    gz.finish()?;
    let name = cmd.get_name().to_string();
    for (shell, file) in [
        (clap_complete::Shell::Bash, "slurm-exporter.bash"),
        (clap_complete::Shell::Zsh, "_slurm-exporter"),
        (clap_complete::Shell::Fish, "slurm-exporter.fish"),
    ] {
        let mut f = std::fs::File::create(out.join("completions").join(file))?;
        clap_complete::generate(shell, &mut cmd.clone(), name.clone(), &mut f);
    }
    Ok(())
}
