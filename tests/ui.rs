//! Mistakes in `#[pooled]` and its function: one file each under `tests/ui/`, each with the
//! exact errors it must give (one per mistake, on the offending token).

#[test]
fn compile_fail() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
