//! Standard output that ends the process with exit status 2 and one line on standard error when
//! its reader goes away (`| head`): results were lost, so "nothing flagged" (0) or "something
//! flagged" (1) would be a claim about files the reader never saw. Also the options shared by
//! the commands that write reports: the output format and the colour of text.

use std::io::{self, IsTerminal, Write};

use clap::ValueEnum;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use synthscan::report::Format;

/// `--format` of the file reports (analyze, batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    Jsonl,
    Csv,
}

impl FormatArg {
    pub fn report_format(self) -> Format {
        match self {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Csv => Format::Csv,
        }
    }

    /// A `--format` parser offering only `names` (a command that writes one record per line
    /// cannot write a text report or one JSON document).
    pub fn parser(names: &'static [&'static str]) -> impl TypedValueParser<Value = FormatArg> {
        PossibleValuesParser::new(names).map(|name| {
            // the possible values are FormatArg names, so this parse cannot fail
            FormatArg::from_str(&name, false).unwrap_or(FormatArg::Jsonl)
        })
    }
}

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

fn stop_on_broken_pipe<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        eprintln!("synthscan: error: standard output was closed before every result was written");
        std::process::exit(2);
    }
    r
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        stop_on_broken_pipe(self.0.write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        stop_on_broken_pipe(self.0.flush())
    }
}
