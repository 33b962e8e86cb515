//! The schema registry that `dev/test` starts answers on its Confluent-compatible API.
//! Registering and reading schemas through it is tested with the Avro serde in
//! `streams-core/tests/serde_registry.rs`.

use streams_test_support::require_registry;

#[test]
fn registry_answers_on_the_confluent_compatible_api() {
    // GET <SCHEMA_REGISTRY_URL>/subjects must answer 200.
    require_registry();
}
