import Glibc

/// A gate threads wait at while it is closed: how paused vCPU threads park outside KVM_RUN
/// until they are resumed, and how the pauser learns that every one of them has parked.
///
/// Sendable invariant: all state is behind the pthread mutex, which lives in heap memory
/// that never moves (pthread objects must not be copied).
public final class Gate: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var isOpen = true
    private var waiting = 0

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        changed.deallocate()
    }

    public var open: Bool {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return isOpen
    }

    public func close() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        isOpen = false
    }

    public func reopen() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        isOpen = true
        pthread_cond_broadcast(changed)
    }

    /// Returns at once while the gate is open; otherwise waits until it opens or `giveUp`
    /// says to stop waiting (checked whenever someone calls `wake()`).
    public func pass(giveUp: () -> Bool = { false }) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        guard !isOpen else { return }
        waiting += 1
        pthread_cond_broadcast(changed)
        while !isOpen && !giveUp() { pthread_cond_wait(changed, mutex) }
        waiting -= 1
        pthread_cond_broadcast(changed)
    }

    /// Wakes every waiter so it re-checks `giveUp` (a VM ending while paused).
    public func wake() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        pthread_cond_broadcast(changed)
    }

    /// Waits until `count` threads wait at the closed gate, or `abandon` is true; false if
    /// the gate was reopened or abandoned first.
    public func waitForWaiters(_ count: Int, abandon: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        while !isOpen && waiting < count && !abandon() { pthread_cond_wait(changed, mutex) }
        return !isOpen && waiting >= count
    }
}
