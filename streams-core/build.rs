//! Generates the gRPC query service from `schemas/proto/streams_query.proto` (feature
//! `grpc`; needs `protoc`, Debian's `protobuf-compiler`).

fn main() {
    #[cfg(feature = "grpc")]
    {
        let proto = "../schemas/proto/streams_query.proto";
        println!("cargo:rerun-if-changed={proto}");
        if let Err(e) =
            tonic_prost_build::configure().compile_protos(&[proto], &["../schemas/proto"])
        {
            panic!("generating the gRPC query service from {proto} (is protoc installed?): {e}");
        }
    }
}
