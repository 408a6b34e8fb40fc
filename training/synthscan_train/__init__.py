"""synthscan training utilities (Python side of the synthscan Rust detector)."""
