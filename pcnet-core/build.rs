//! Sets `cfg(pc_all_features)` when every optional capability of pcnet-core is built (the
//! default features), so the unit tests that exercise all of them at once say so with one
//! name instead of repeating the feature list.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pc_all_features)");
    let all = [
        "CONV",
        "SAFE_STEP",
        "EXACT",
        "FIXED_PRED",
        "STRICT",
        "LEAKY_RELU",
        "SIGMOID",
        "SOFTPLUS",
        "CROSS_ENTROPY",
        "FINITENESS_PROOFS",
        "RESIDUAL",
    ]
    .iter()
    .all(|feature| std::env::var_os(format!("CARGO_FEATURE_{feature}")).is_some());
    if all {
        println!("cargo::rustc-cfg=pc_all_features");
    }
}
