//! The README's "Typed records" code is `examples/typed.rs` (which CI
//! builds), word for word, and says which serde features the user needs.

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../examples/typed.rs");

#[test]
fn readme_typed_section_is_the_example_word_for_word() {
    let code = EXAMPLE
        .split("// README:begin\n")
        .nth(1)
        .and_then(|rest| rest.split("// README:end\n").next())
        .expect("README markers in examples/typed.rs");
    let section = README
        .split("## Typed records\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Typed records section in README.md");
    assert!(
        section.contains(&format!("```rust\n{code}```")),
        "README's code differs from examples/typed.rs"
    );
    assert!(
        section.contains(r#"serde = { version = "1", features = ["derive"] }"#),
        "README says the user's crate needs serde with derive"
    );
}
