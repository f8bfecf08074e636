//! The command line: `--help` and `--version` succeed for every command, bad values fail
//! with a message naming the flag, a mistyped subcommand gets a suggestion.

use std::process::{Command, Output};

fn pcnet_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pc-bench"))
        .args(args)
        .output()
        .expect("the pc-bench binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_exits_zero_for_the_program_and_every_command() {
    for args in [
        &["--help"][..],
        &["help"],
        &["reference", "--help"],
        &["reproduce", "--help"],
        &["speed", "--help"],
        &["peak", "--help"],
        &["depth", "--help"],
        &["help", "speed"],
    ] {
        let output = pcnet_bench(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: pc-bench"), "{args:?}: {text}");
    }
}

#[test]
fn speed_help_names_every_flag_once() {
    let output = pcnet_bench(&["speed", "--help"]);
    let text = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--model",
        "--hidden",
        "--loss",
        "--algorithm",
        "--eta",
        "--n",
        "--batch",
        "--threads",
        "--calls",
        "--dtype",
        "--json",
    ] {
        let declared = format!("{flag} ");
        assert_eq!(
            text.lines()
                .filter(|line| line.trim_start().starts_with(&declared))
                .count(),
            1,
            "{flag} in:\n{text}"
        );
    }
    assert_eq!(
        text.matches("paper-mnist-cnn").count(),
        1,
        "the named models are listed once:\n{text}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let output = pcnet_bench(&["--version"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("pc-bench {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_values_fail_naming_the_flag() {
    for (args, flag) in [
        (&["speed", "--batch", "-3"][..], "--batch"),
        (&["speed", "--batch", "0"], "--batch"),
        (&["speed", "--eta", "abc"], "--eta"),
        (&["speed", "--model", "784-x"], "--model"),
        (&["speed", "--n", "many"], "--n"),
        (&["speed", "--dtype", "f16"], "--dtype"),
        (&["speed", "--algorithm", "magic"], "--algorithm"),
        (&["reproduce", "--seed", "-1"], "--seed"),
        (&["reproduce", "--model", "vgg"], "--model"),
    ] {
        let output = pcnet_bench(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(message.contains(flag), "{args:?}: {message}");
        assert!(message.contains(args[2]), "{args:?}: {message}");
    }
}

#[test]
fn flags_of_dense_models_are_refused_for_a_named_model() {
    for flag in ["--hidden", "--loss"] {
        let value = if flag == "--hidden" { "tanh" } else { "mse" };
        let output = pcnet_bench(&["speed", "--model", "paper-mnist-cnn", flag, value]);
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let message = stderr(&output);
        assert!(
            message.contains(flag) && message.contains("paper-mnist-cnn"),
            "{flag}: {message}"
        );
    }
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    let output = pcnet_bench(&["sped"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("'speed'"), "{}", stderr(&output));
}

#[test]
fn speed_runs_with_the_flags_compare_py_passes() {
    let output = pcnet_bench(&[
        "speed",
        "--model",
        "8-4-2",
        "--hidden",
        "relu",
        "--loss",
        "cross-entropy",
        "--algorithm",
        "strict",
        "--eta",
        "0.1",
        "--n",
        "3",
        "--batch",
        "2",
        "--threads",
        "1",
        "--dtype",
        "f32",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let object: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("speed --json prints one JSON object");
    assert_eq!(object["batch"], 2);
    assert_eq!(object["n"], 3);
    assert_eq!(object["algorithm"], "strict");
}

#[test]
fn a_named_model_runs_its_depth_in_iterations_by_default() {
    let output = pcnet_bench(&[
        "speed",
        "--model",
        "paper-mnist-cnn",
        "--batch",
        "1",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let object: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("speed --json prints one JSON object");
    assert_eq!(object["model"], "paper-mnist-cnn");
    assert_eq!(object["n"], 5, "L = 5 layers");
    assert!(
        object.get("hidden").is_none(),
        "a named model has no --hidden"
    );
}

#[test]
fn peak_refuses_an_unknown_family_naming_the_flag() {
    let output = pcnet_bench(&["peak", "--isa", "sse2"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("--isa") && text.contains("sse2"), "{text}");
}
