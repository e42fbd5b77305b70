//! The JSON schema of a typed reason written as a string (doctor.json's
//! [`crate::doctor::Unavailable`], the report's not-measured reasons): the
//! type stays typed in code while the published schemas stay byte-identical.

/// Gives a type whose JSON form is its text (a reason written as a string)
/// the JSON schema of a `String`, inlined as `String`'s is, so a typed
/// reason leaves the published schemas byte-identical.
#[macro_export]
macro_rules! string_schema {
    ($ty:ty) => {
        impl schemars::JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                <String as schemars::JsonSchema>::schema_name()
            }
            fn schema_id() -> std::borrow::Cow<'static, str> {
                <String as schemars::JsonSchema>::schema_id()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <String as schemars::JsonSchema>::json_schema(generator)
            }
        }
    };
}
