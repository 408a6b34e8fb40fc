//! Locating and initialising the ONNX Runtime shared library (ort `load-dynamic`).
//!
//! ONNX Runtime allows one environment per process, so it is created once, on first use, and
//! shared. The library is looked up, in order: an explicit path set with
//! [`set_library_path`], `$ORT_DYLIB_PATH`, next to the executable, a `.ort/` folder in one of
//! the executable's parent folders (where `scripts/setup-ort.sh` puts it in a checkout), then the
//! system loader's search path. No path from the build machine is baked into the binary.
//!
//! ONNX Runtime records usage events (process information, OS, CPU, a device id) under the
//! user's cache directory unless the process environment holds `ORT_DISABLE_TELEMETRY=1` when
//! the runtime starts; the environment is built with telemetry off as well, but that alone does
//! not stop the records. The `synthscan` binary sets the variable first thing in `main`; a
//! program embedding the library must set it itself before its first model load (changing the
//! environment is only sound while the process has one thread).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::{Error, Result};

static EXPLICIT_PATH: Mutex<Option<PathBuf>> = Mutex::new(None);
static ENVIRONMENT: OnceLock<std::result::Result<(Environment, PathBuf), String>> = OnceLock::new();

/// The ONNX Runtime version the project ships and tests with.
pub const EXPECTED_ORT_VERSION: &str = "1.31.1";

/// Uses `path` as the ONNX Runtime library (must be called before the first model load).
pub fn set_library_path(path: PathBuf) {
    if let Ok(mut p) = EXPLICIT_PATH.lock() {
        *p = Some(path);
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(Some(p)) = EXPLICIT_PATH.lock().map(|p| p.clone()) {
        out.push(p);
        return out;
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        out.push(PathBuf::from(p));
        return out;
    }
    let lib_names = [
        format!("libonnxruntime.so.{EXPECTED_ORT_VERSION}"),
        "libonnxruntime.so.1".to_string(),
        "libonnxruntime.so".to_string(),
        "libonnxruntime.dylib".to_string(),
        "onnxruntime.dll".to_string(),
    ];
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.clone());
        // A checkout's layout, found from where the executable is rather than from a path baked in
        // at build time: target/{debug,release}[/deps]/synthscan and the fuzz targets'
        // fuzz/target/<triple>/release/x -> <repo>/.ort
        for up in exe_dir.ancestors().take(6) {
            dirs.push(up.join(".ort"));
        }
    }
    for d in &dirs {
        for n in &lib_names {
            let p = d.join(n);
            if p.is_file() {
                out.push(p);
            }
        }
    }
    // Last resort: the dynamic loader's own search path.
    out.push(PathBuf::from("libonnxruntime.so"));
    out
}

/// The shared ONNX Runtime environment, initialised on first call.
pub fn environment() -> Result<&'static Environment> {
    let entry = ENVIRONMENT.get_or_init(|| {
        let mut tried = Vec::new();
        for path in candidates() {
            match ort::init_from(&path) {
                Ok(builder) => {
                    // ONNX Runtime records usage events (process, OS, CPU, a device id) under the
                    // user's cache directory unless told not to; nothing may be written or sent.
                    return builder
                        .with_name("synthscan")
                        .with_telemetry(false)
                        .build()
                        .map(|env| (env, path))
                        .map_err(|e| format!("ONNX Runtime failed to start: {e}"));
                }
                Err(e) => tried.push(format!("{} ({e})", path.display())),
            }
        }
        Err(format!(
            "the ONNX Runtime library was not found or could not be loaded (tried: {}). \
             Run scripts/setup-ort.sh, or set ORT_DYLIB_PATH to \
             libonnxruntime.so.{EXPECTED_ORT_VERSION} from the PyPI onnxruntime wheel",
            tried.join("; ")
        ))
    });
    match entry {
        Ok((env, _)) => Ok(env),
        Err(msg) => Err(Error::RuntimeLibrary(msg.clone())),
    }
}

/// The path the runtime library was loaded from, once loaded.
pub fn library_path() -> Option<&'static Path> {
    match ENVIRONMENT.get() {
        Some(Ok((_, p))) => Some(p.as_path()),
        _ => None,
    }
}
