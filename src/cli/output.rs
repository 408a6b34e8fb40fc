//! Standard output that ends the process quietly when the reader goes away (`| head`).

use std::io::{self, Write};

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
