//! The per-instance memory cap, remembering whether it had to refuse growth.
//!
//! Remembering matters: when a Rust guest cannot allocate it aborts with a plain
//! `unreachable` trap, and only this flag tells memory exhaustion apart from any other trap.

/// A [`wasmtime::ResourceLimiter`] with a byte cap on each linear memory.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    max_memory_bytes: usize,
    denied: bool,
    largest_memory: usize,
}

impl MemoryLimiter {
    /// A limiter allowing `max_memory_bytes` per linear memory.
    pub(crate) fn new(max_memory_bytes: u64) -> Self {
        Self {
            max_memory_bytes: usize::try_from(max_memory_bytes).unwrap_or(usize::MAX),
            denied: false,
            largest_memory: 0,
        }
    }

    /// Whether a growth request was refused during this instance's life.
    pub(crate) fn denied(&self) -> bool {
        self.denied
    }

    /// The size in bytes of the largest linear memory this instance has had: a bound on the
    /// pages it may have dirtied, which stay resident until its store drops (see `recycle`).
    pub(crate) fn largest_memory(&self) -> usize {
        self.largest_memory
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_memory_bytes && maximum.is_none_or(|m| desired <= m);
        if allowed {
            self.largest_memory = self.largest_memory.max(desired);
        } else {
            self.denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn refuses_growth_past_the_cap_and_remembers() {
        let mut l = MemoryLimiter::new(1024);
        assert!(l.memory_growing(0, 1024, None).unwrap());
        assert!(!l.denied());
        assert!(!l.memory_growing(1024, 2048, None).unwrap());
        assert!(l.denied());
    }

    #[test]
    fn respects_the_module_maximum_too() {
        let mut l = MemoryLimiter::new(1 << 20);
        assert!(!l.memory_growing(0, 4096, Some(2048)).unwrap());
    }
}
