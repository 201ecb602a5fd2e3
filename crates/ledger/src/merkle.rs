//! RFC 6962 Merkle tree: hashing, proofs built from stored perfect-subtree nodes, verifiers.
//!
//! Nodes are addressed as `(level, index)`: the perfect subtree of `2^level` leaves starting at
//! leaf `index << level`. A store keeps these nodes; [`inclusion_ranges`] and
//! [`consistency_ranges`] say which subtree hashes a proof needs, and [`subtree_hash`] builds
//! each from at most `log2(size)` stored nodes, so no proof rebuilds the tree.
//!
//! Verification follows RFC 9162 section 2.1.3.2 / 2.1.4.2 (the transparency-dev algorithm).
//! Policy choices, tested against the `merkle-rfc6962` vectors:
//!
//! - A leaf hash that is not 32 bytes is an error; a root of the wrong length never matches.
//! - Inclusion in an empty tree is an error (`index >= size`).
//! - A consistency proof *from* the empty tree (`size1 == 0`) is refused with
//!   [`MerkleError::EmptyOldTree`]: every tree extends the empty tree, so such a proof proves
//!   nothing, and a caller that asks for one has a bug.
//! - With `size1 == size2 > 0` the proof must be empty and the roots must be equal bytes; roots
//!   are compared as opaque bytes there (the vectors accept equal 12-byte roots). Checkpoints
//!   parse roots as exactly 32 bytes, so a malformed root never gets this far in Pactum.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];
/// Size of a [`Hash`] in bytes.
pub const HASH_BYTES: usize = 32;

/// Why a proof cannot be built or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not in the tree.
    #[error("index {index} is beyond tree size {size}")]
    IndexBeyondSize {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes.
    #[error("proof has {got} hashes, want {want}")]
    WrongProofSize {
        /// Hashes given.
        got: usize,
        /// Hashes required.
        want: usize,
    },
    /// A hash is not 32 bytes.
    #[error("hash is {0} bytes, want 32")]
    HashLength(usize),
    /// The computed root differs from the expected one.
    #[error("root mismatch: computed `{computed}`, expected `{expected}`")]
    RootMismatch {
        /// Hex of the computed root.
        computed: String,
        /// Hex of the expected root.
        expected: String,
    },
    /// The new size is smaller than the old one.
    #[error("size2 {size2} is smaller than size1 {size1}")]
    SizeOrder {
        /// Old size.
        size1: u64,
        /// New size.
        size2: u64,
    },
    /// A consistency proof from the empty tree was asked for or given.
    #[error("a consistency proof from the empty tree proves nothing and is refused")]
    EmptyOldTree,
}

/// Leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of a tree given all its leaf hashes (the RFC 6962 MTH definition, for tests and small
/// trees; logs use [`TreeBuilder`] or [`subtree_hash`]).
pub fn root_from_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let k = split_point(leaves.len() as u64) as usize;
            let (left, right) = leaves.split_at_checked(k).unwrap_or((leaves, &[]));
            node_hash(&root_from_leaf_hashes(left), &root_from_leaf_hashes(right))
        }
    }
}

/// The perfect subtrees `(level, index)` that make up the leaf range `begin..end`, left to
/// right. The range must be one that RFC 6962 recursion produces (each piece aligned), which
/// holds for every range from [`inclusion_ranges`] and [`consistency_ranges`] and for `0..n`.
pub fn perfect_pieces(begin: u64, end: u64) -> Vec<(u32, u64)> {
    let mut pieces = Vec::new();
    let mut start = begin;
    while start < end {
        let remaining = end - start;
        // Largest power of two that fits in the remainder and keeps `start` aligned.
        let mut level = 63 - remaining.leading_zeros();
        if start != 0 {
            level = level.min(start.trailing_zeros());
        }
        pieces.push((level, start >> level));
        start += 1u64 << level;
    }
    pieces
}

/// Hash of the leaf range `begin..end` (non-empty), combining stored perfect nodes from the
/// right as RFC 6962 does for a tree whose size is not a power of two.
pub fn subtree_hash<E>(
    begin: u64,
    end: u64,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Hash, E> {
    let pieces = perfect_pieces(begin, end);
    let mut iter = pieces.iter().rev();
    let Some(&(level, index)) = iter.next() else {
        return Ok(empty_root());
    };
    let mut hash = node(level, index)?;
    for &(level, index) in iter {
        hash = node_hash(&node(level, index)?, &hash);
    }
    Ok(hash)
}

/// Leaf ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size`,
/// ordered from the leaf's sibling up to the root's child.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexBeyondSize { index, size });
    }
    let mut ranges = Vec::new();
    let (mut begin, mut end) = (0u64, size);
    while end - begin > 1 {
        let k = split_point(end - begin);
        if index < begin + k {
            ranges.push((begin + k, end));
            end = begin + k;
        } else {
            ranges.push((begin, begin + k));
            begin += k;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// Leaf ranges whose hashes form the RFC 6962 consistency proof from `size1` to `size2`.
pub fn consistency_ranges(size1: u64, size2: u64) -> Result<Vec<(u64, u64)>, MerkleError> {
    if size2 < size1 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(MerkleError::EmptyOldTree);
    }
    let mut ranges = Vec::new();
    let (mut begin, mut end) = (0u64, size2);
    let mut whole_old_tree = true;
    loop {
        if size1 == end {
            if !whole_old_tree {
                ranges.push((begin, end));
            }
            break;
        }
        let k = split_point(end - begin);
        if size1 <= begin + k {
            ranges.push((begin + k, end));
            end = begin + k;
        } else {
            ranges.push((begin, begin + k));
            begin += k;
            whole_old_tree = false;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[Hash],
    root: &[u8],
) -> Result<(), MerkleError> {
    let computed = root_from_inclusion_proof(index, size, leaf_hash, proof)?;
    verify_match(&computed, root)
}

/// The root implied by an inclusion proof.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[Hash],
) -> Result<Hash, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexBeyondSize { index, size });
    }
    let leaf: Hash = leaf_hash
        .try_into()
        .map_err(|_| MerkleError::HashLength(leaf_hash.len()))?;
    let (inner, border) = decompose_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(MerkleError::WrongProofSize {
            got: proof.len(),
            want: inner + border,
        });
    }
    let (inner_part, border_part) =
        proof
            .split_at_checked(inner)
            .ok_or(MerkleError::WrongProofSize {
                got: proof.len(),
                want: inner + border,
            })?;
    let hash = chain_inner(leaf, inner_part, index);
    Ok(chain_border_right(hash, border_part))
}

/// Checks that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), MerkleError> {
    if size2 < size1 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(MerkleError::EmptyOldTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofSize {
                got: proof.len(),
                want: 0,
            });
        }
        if root1 != root2 {
            return Err(mismatch(root1, root2));
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(MerkleError::WrongProofSize { got: 0, want: 1 });
    }
    let root1_hash: Hash = root1
        .try_into()
        .map_err(|_| MerkleError::HashLength(root1.len()))?;
    let (inner, border) = decompose_inclusion(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner.saturating_sub(shift);
    // The proof starts with the root of the subtree of size 2^shift, unless size1 is that
    // subtree itself.
    let (seed, rest) = if size1 == 1u64 << shift {
        (root1_hash, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(MerkleError::WrongProofSize { got: 0, want: 1 }),
        }
    };
    let want = proof.len() - rest.len() + inner + border;
    if proof.len() != want {
        return Err(MerkleError::WrongProofSize {
            got: proof.len(),
            want,
        });
    }
    let (inner_part, border_part) =
        rest.split_at_checked(inner)
            .ok_or(MerkleError::WrongProofSize {
                got: proof.len(),
                want,
            })?;
    let mask = (size1 - 1) >> shift;
    let hash1 = chain_border_right(chain_inner_right(seed, inner_part, mask), border_part);
    verify_match(&hash1, root1)?;
    let hash2 = chain_border_right(chain_inner(seed, inner_part, mask), border_part);
    verify_match(&hash2, root2)
}

fn mismatch(computed: &[u8], expected: &[u8]) -> MerkleError {
    MerkleError::RootMismatch {
        computed: hex::encode(computed),
        expected: hex::encode(expected),
    }
}

fn verify_match(computed: &Hash, expected: &[u8]) -> Result<(), MerkleError> {
    if computed.as_slice() == expected {
        Ok(())
    } else {
        Err(mismatch(computed, expected))
    }
}

fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (level, hash) in proof.iter().enumerate() {
        seed = if (index >> level) & 1 == 0 {
            node_hash(&seed, hash)
        } else {
            node_hash(hash, &seed)
        };
    }
    seed
}

fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (level, hash) in proof.iter().enumerate() {
        if (index >> level) & 1 == 1 {
            seed = node_hash(hash, &seed);
        }
    }
    seed
}

fn chain_border_right(mut seed: Hash, proof: &[Hash]) -> Hash {
    for hash in proof {
        seed = node_hash(hash, &seed);
    }
    seed
}

/// A streaming tree: push leaf hashes, read the root at any size. Keeps one hash per set bit of
/// the size (at most 64), so a full verification runs in constant memory. Each push reports
/// the perfect nodes it completed, which a store persists for proofs.
#[derive(Debug, Clone, Default)]
pub struct TreeBuilder {
    size: u64,
    /// Roots of the perfect subtrees of the size's binary decomposition, largest first.
    frontier: Vec<Hash>,
}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes from the frontier nodes of a tree of `size` (the perfect pieces of `0..size`,
    /// left to right, as [`perfect_pieces`] lists them).
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Option<Self> {
        (frontier.len() == size.count_ones() as usize).then_some(Self { size, frontier })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; calls `completed(level, index, hash)` for the leaf (level 0) and for
    /// every interior perfect node it completes.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        completed(0, index, &leaf);
        let mut hash = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            let Some(left) = self.frontier.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, index >> level, &hash);
        }
        self.frontier.push(hash);
        self.size += 1;
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// An in-memory tree holding every perfect node; for tests, small logs and bundle tooling.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    builder: TreeBuilder,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a leaf's data.
    pub fn push_data(&mut self, data: &[u8]) {
        self.push(leaf_hash(data));
    }
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.builder.push(leaf, |level, _, hash| {
            let level = level as usize;
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            if let Some(row) = levels.get_mut(level) {
                row.push(*hash);
            }
        });
    }
    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.builder.size()
    }
    /// Root of the whole tree.
    pub fn root(&self) -> Hash {
        self.builder.root()
    }
    fn node(&self, level: u32, index: u64) -> Result<Hash, MerkleError> {
        self.levels
            .get(level as usize)
            .and_then(|row| row.get(index as usize))
            .copied()
            .ok_or(MerkleError::IndexBeyondSize {
                index,
                size: self.size(),
            })
    }
    /// Root of the tree's first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        if size > self.size() {
            return Err(MerkleError::IndexBeyondSize {
                index: size,
                size: self.size(),
            });
        }
        subtree_hash(0, size, &mut |level, index| self.node(level, index))
    }
    /// Inclusion proof of leaf `index` in the tree's first `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.root_at(size)?;
        inclusion_ranges(index, size)?
            .into_iter()
            .map(|(begin, end)| subtree_hash(begin, end, &mut |l, i| self.node(l, i)))
            .collect()
    }
    /// Consistency proof between the first `size1` and first `size2` leaves.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, MerkleError> {
        self.root_at(size2)?;
        consistency_ranges(size1, size2)?
            .into_iter()
            .map(|(begin, end)| subtree_hash(begin, end, &mut |l, i| self.node(l, i)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut tree = MemoryTree::new();
        let mut leaves = Vec::new();
        for i in 0..n {
            let leaf = leaf_hash(format!("leaf {i}").as_bytes());
            leaves.push(leaf);
            tree.push(leaf);
        }
        (tree, leaves)
    }

    #[test]
    fn builder_root_matches_reference_for_every_prefix() {
        let (tree, leaves) = tree(70);
        for size in 0..=70u64 {
            let want = root_from_leaf_hashes(&leaves[..size as usize]);
            assert_eq!(tree.root_at(size).unwrap(), want, "size {size}");
        }
        assert_eq!(tree.root(), root_from_leaf_hashes(&leaves));
    }

    #[test]
    fn every_generated_proof_verifies_and_fails_when_altered() {
        let (tree, leaves) = tree(33);
        for size in 1..=33u64 {
            let root = tree.root_at(size).unwrap();
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
                let other = leaf_hash(b"other");
                assert!(verify_inclusion(index, size, &other, &proof, &root).is_err());
            }
            for size1 in 1..=size {
                let proof = tree.consistency_proof(size1, size).unwrap();
                let root1 = tree.root_at(size1).unwrap();
                verify_consistency(size1, size, &proof, &root1, &root).unwrap();
                if size1 < size {
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(verify_consistency(size1, size, &bad, &root1, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn empty_tree_policy() {
        assert_eq!(consistency_ranges(0, 5), Err(MerkleError::EmptyOldTree));
        assert_eq!(
            verify_consistency(0, 0, &[], &empty_root(), &empty_root()),
            Err(MerkleError::EmptyOldTree)
        );
        assert!(matches!(
            inclusion_ranges(0, 0),
            Err(MerkleError::IndexBeyondSize { .. })
        ));
        let (tree, _) = tree(0);
        assert_eq!(tree.root(), empty_root());
    }

    #[test]
    fn pieces_cover_ranges() {
        assert_eq!(perfect_pieces(0, 7), vec![(2, 0), (1, 2), (0, 6)]);
        assert_eq!(perfect_pieces(4, 7), vec![(1, 2), (0, 6)]);
        assert_eq!(perfect_pieces(8, 16), vec![(3, 1)]);
        assert!(perfect_pieces(3, 3).is_empty());
    }
}
