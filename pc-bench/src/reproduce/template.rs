//! The report's prose lives in `templates/*.md` (compiled in); [`fill`] puts a run's
//! numbers into a template's `{name}` placeholders.

use crate::Error;

/// A template: its name (for errors) and its text.
pub type Template = (&'static str, &'static str);

macro_rules! template {
    ($name:literal) => {
        ($name, include_str!(concat!("templates/", $name, ".md")))
    };
}

/// The report's opening paragraph.
pub const HEADER: Template = template!("header");
/// Fig 1's section.
pub const FIG1: Template = template!("fig1");
/// Fig 2's section.
pub const FIG2: Template = template!("fig2");
/// Fig 3's section.
pub const FIG3: Template = template!("fig3");
/// Fig 4's section.
pub const FIG4: Template = template!("fig4");
/// Fig 6's section.
pub const FIG6: Template = template!("fig6");
/// The runtime study's section.
pub const RUNTIME: Template = template!("runtime");
/// The closing summary.
pub const SUMMARY: Template = template!("summary");

/// `template` with every `{name}` replaced by its value in `values`.
///
/// # Errors
/// [`Error::Template`] when a placeholder has no value or a value no placeholder, so a
/// template and the code that fills it cannot drift apart unnoticed.
pub fn fill((template, text): Template, values: &[(&str, String)]) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len() + 256);
    let mut used = vec![false; values.len()];
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| Error::Template {
            template,
            message: "a `{` without its `}`".into(),
        })?;
        let key = &after[..close];
        let index = values
            .iter()
            .position(|(name, _)| *name == key)
            .ok_or_else(|| Error::Template {
                template,
                message: format!("no value for `{{{key}}}`"),
            })?;
        used[index] = true;
        out.push_str(&values[index].1);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if let Some(unused) = used.iter().position(|&u| !u) {
        return Err(Error::Template {
            template,
            message: format!("no placeholder for `{}`", values[unused].0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_and_checks_both_ways() {
        let template = ("t", "a {x} b {y}.");
        let filled = fill(template, &[("x", "1".into()), ("y", "2".into())]).unwrap();
        assert_eq!(filled, "a 1 b 2.");
        assert!(fill(template, &[("x", "1".into())]).is_err());
        let extra = [("x", "1".into()), ("y", "2".into()), ("z", "3".into())];
        assert!(fill(template, &extra).is_err());
        assert!(fill(("t", "a {x"), &[("x", "1".into())]).is_err());
    }
}
