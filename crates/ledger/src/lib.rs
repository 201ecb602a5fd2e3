//! The evidence log's pure core: records, canonical encoding, Merkle tree, proofs, checkpoints.
