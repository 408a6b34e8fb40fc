//! Model manifests: parsing and validation; a manifest that validates must build every stage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::detect::FrontEnd;
use synthscan::{Detector, Manifest};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = serde_json::from_slice::<Manifest>(data) else {
        return;
    };
    if m.validate().is_err() {
        return;
    }
    let _ = Detector::new(m.clone());
    for rate in [8_000, 44_100] {
        if let Ok(mut fe) = FrontEnd::new(&m, rate) {
            let _ = fe.push(&[0.1; 4000], true);
        }
    }
});
