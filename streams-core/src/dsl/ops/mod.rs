//! Implementations of the DSL operators, one file per operator family.

pub(crate) mod sink;
pub(crate) mod source;
pub(crate) mod split;
pub(crate) mod stateless;
