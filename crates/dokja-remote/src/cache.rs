//! A bounded least-recently-used cache of aligned blocks, shared by the files of a client.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// (file id, block index)
pub(crate) type BlockKey = (u64, u64);

#[derive(Debug)]
pub(crate) struct BlockCache {
    capacity: u64,
    held: u64,
    tick: u64,
    blocks: HashMap<BlockKey, (Arc<[u8]>, u64)>,
    by_age: BTreeMap<u64, BlockKey>,
}

impl BlockCache {
    pub fn new(capacity: u64) -> Self {
        BlockCache {
            capacity,
            held: 0,
            tick: 0,
            blocks: HashMap::new(),
            by_age: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, key: BlockKey) -> Option<Arc<[u8]>> {
        self.tick += 1;
        let tick = self.tick;
        let (block, used) = self.blocks.get_mut(&key)?;
        self.by_age.remove(used);
        *used = tick;
        self.by_age.insert(tick, key);
        Some(block.clone())
    }

    pub fn insert(&mut self, key: BlockKey, block: Arc<[u8]>) {
        let len = block.len() as u64;
        if len > self.capacity {
            return;
        }
        if let Some((old, used)) = self.blocks.remove(&key) {
            self.by_age.remove(&used);
            self.held -= old.len() as u64;
        }
        while self.held + len > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.blocks.remove(&oldest) {
                self.held -= old.len() as u64;
            }
        }
        self.tick += 1;
        self.by_age.insert(self.tick, key);
        self.blocks.insert(key, (block, self.tick));
        self.held += len;
    }

    #[cfg(test)]
    pub fn held(&self) -> u64 {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let mut c = BlockCache::new(30);
        let block = |b: u8| Arc::<[u8]>::from(vec![b; 10]);
        c.insert((0, 0), block(0));
        c.insert((0, 1), block(1));
        c.insert((0, 2), block(2));
        assert!(c.get((0, 0)).is_some()); // now the most recent
        c.insert((0, 3), block(3));
        assert!(c.get((0, 1)).is_none(), "oldest dropped");
        assert_eq!(c.get((0, 0)).unwrap()[0], 0);
        assert!(c.get((0, 2)).is_some() && c.get((0, 3)).is_some());
        assert_eq!(c.held(), 30);
        c.insert((1, 0), Arc::from(vec![9u8; 31]));
        assert_eq!(c.held(), 30, "a block larger than the cache is not kept");
    }
}
