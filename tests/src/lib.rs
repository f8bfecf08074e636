//! Integration and property tests of pc live in `tests/` beside this file.
