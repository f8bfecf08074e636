//! The `[dependencies]` lines of the READMEs (the top-level one and each package's) name
//! crates of this workspace, with a version requirement their version satisfies and only
//! features they have, so pasting them into a `Cargo.toml` works. Also the `features = [..]`
//! a README's comment suggests (`pcnet-core = { ..., features = ["strict"] }`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `name = ...` lines of every ```toml block of `text`.
fn dependency_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_toml = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_toml = line.trim() == "```toml";
            continue;
        }
        if in_toml && line.starts_with("pcnet-") {
            lines.push(line.to_string());
        }
    }
    lines
}

/// The crate folder of a published name.
fn folder(name: &str) -> PathBuf {
    root().join(name)
}

/// The `[features]` names of a manifest.
fn features(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_features = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_features = line.trim() == "[features]";
            continue;
        }
        if in_features {
            if let Some((name, _)) = line.split_once(" = ") {
                if !name.starts_with('#') {
                    names.push(name.trim().to_string());
                }
            }
        }
    }
    names
}

/// `"0.1"` in `pcnet-core = "0.1"` or `{ version = "0.1", ... }`, and the features named.
fn parse(line: &str) -> (String, String, Vec<String>) {
    let (name, value) = line.split_once('=').expect("name = value");
    let value = value.split('#').next().unwrap().trim();
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let (version, features) = if value.starts_with('{') {
        let version = value
            .split("version")
            .nth(1)
            .map(|rest| quoted(rest)[0].clone());
        let features = value
            .split("features = [")
            .nth(1)
            .map(|rest| quoted(rest.split(']').next().unwrap()))
            .unwrap_or_default();
        (version.expect("a version"), features)
    } else {
        (quoted(value)[0].clone(), Vec::new())
    };
    (name.trim().to_string(), version, features)
}

#[test]
fn readme_dependency_lines_fit_the_workspace() {
    let crate_version = env!("CARGO_PKG_VERSION"); // the workspace version, shared by all
    let mut checked = 0;
    for readme in ["README.md", "pcnet-core/README.md", "pcnet-std/README.md"] {
        let text = std::fs::read_to_string(root().join(readme)).unwrap();
        let mut lines = dependency_lines(&text);
        // Lines a README quotes in a code comment, e.g. the firmware example's features.
        // (Those with a version: prose such as `{ features = [..] }` names a feature only.)
        lines.extend(text.lines().filter_map(|line| {
            let (_, quoted) = line.split_once("`pcnet-core = {")?;
            let quoted = quoted.split('`').next()?;
            quoted
                .contains("version")
                .then(|| format!("pcnet-core = {{{quoted}"))
        }));
        assert!(
            !lines.is_empty() || readme != "README.md",
            "{readme} has [dependencies] lines"
        );
        for line in lines {
            let (name, version, wanted) = parse(&line);
            let manifest = std::fs::read_to_string(folder(&name).join("Cargo.toml"))
                .unwrap_or_else(|_| panic!("{readme}: `{line}` names no crate of the workspace"));
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "{readme}: {name}"
            );
            // A caret requirement "0.1" accepts 0.1.x: the version must start with it.
            assert!(
                crate_version == version || crate_version.starts_with(&format!("{version}.")),
                "{readme}: `{line}` does not accept version {crate_version}"
            );
            let have = features(&manifest);
            for feature in wanted {
                assert!(
                    have.contains(&feature),
                    "{readme}: {name} has no feature `{feature}`"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "found {checked} dependency lines");
}
