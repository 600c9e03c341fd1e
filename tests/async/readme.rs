//! The README's "Async" code is `examples/async_quickstart.rs` (which CI
//! builds), word for word.

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../examples/async_quickstart.rs");

#[test]
fn readme_async_section_is_the_example_word_for_word() {
    let code = EXAMPLE
        .split("// README:begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README:end\n").next())
        .expect("README markers in examples/async_quickstart.rs");
    let section = README
        .split("## Async (feature `async`)\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an Async section in README.md");
    assert!(
        section.contains(&format!("```rust\n{code}```")),
        "README's code differs from examples/async_quickstart.rs"
    );
}
