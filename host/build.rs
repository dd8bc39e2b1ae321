//! Generates the federation's gRPC client and server from a service description written here
//! (tonic-build's manual builder), so the build needs no `protoc`; the messages are
//! prost-derived structs in `src/federate/wire.rs`.

fn main() {
    let method = |name: &str, route: &str, input: &str, output: &str| {
        tonic_build::manual::Method::builder()
            .name(name)
            .route_name(route)
            .input_type(format!("crate::federate::wire::{input}"))
            .output_type(format!("crate::federate::wire::{output}"))
            .codec_path("tonic_prost::ProstCodec")
            .build()
    };
    let service = tonic_build::manual::Service::builder()
        .name("Federation")
        .package("foresight.federate.v1")
        .method(method("fetch", "Fetch", "FetchRequest", "RoundState"))
        .method(method("submit", "Submit", "Submission", "Ack"))
        .build();
    tonic_build::manual::Builder::new().compile(&[service]);
    println!("cargo:rerun-if-changed=build.rs");
}
