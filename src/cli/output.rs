//! Standard output that ends the process quietly when the reader goes away (`| head`), and
//! the colour option of the text reports and the live view.

use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;

/// Colour in text output.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

/// Whether to colour standard output.
pub fn use_color(arg: ColorArg) -> bool {
    match arg {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub struct Stdout(io::Stdout);

impl Stdout {
    pub fn new() -> Self {
        Self(io::stdout())
    }
}

fn quiet_on_broken_pipe<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
    r
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        quiet_on_broken_pipe(self.0.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        quiet_on_broken_pipe(self.0.flush())
    }
}
