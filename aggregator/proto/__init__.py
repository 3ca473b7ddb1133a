"""Generated protobuf code for the wire formats the aggregator reads (regenerate: see remote.proto)."""
