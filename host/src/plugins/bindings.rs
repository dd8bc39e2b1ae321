//! The host's only generated bindings. Everything outside `plugins/` works with the SDK's plain
//! types; conversions live in [`super::convert`].
#![allow(unsafe_code, missing_docs, non_camel_case_types, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host",
});
