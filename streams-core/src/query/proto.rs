//! The messages and service generated from `schemas/proto/streams_query.proto`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("streams.query.v1");
