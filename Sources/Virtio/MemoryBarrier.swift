import Synchronization

/// The barriers the split-ring protocol needs between the device (this process, any host
/// thread) and the driver (a vCPU running the guest). The guest's memory accesses are
/// plain loads and stores through GuestMemory; these fences order ours against them.
/// On x86-64 acquire and release compile to compiler barriers only; `full` is an MFENCE.
enum MemoryBarrier {
    /// After reading an index the other side published, before reading what it covers
    /// (avail idx → ring entries and descriptors). The spec's read barrier.
    @inline(__always) static func acquire() { atomicMemoryFence(ordering: .acquiring) }

    /// After writing entries, before publishing the index that covers them
    /// (used elements → used idx). The spec's write barrier.
    @inline(__always) static func release() { atomicMemoryFence(ordering: .releasing) }

    /// Between publishing our index and reading the other side's suppression field
    /// (used idx → used_event / avail flags; avail_event → avail idx re-check). A store
    /// followed by a load needs a full barrier, or a notification can be lost.
    @inline(__always) static func full() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
