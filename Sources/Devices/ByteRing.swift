/// A fixed-capacity FIFO of bytes. Storage is allocated once in `init`; push and pop are O(1)
/// and never allocate. Not thread-safe by itself: owners keep it inside their lock.
struct ByteRing: Sendable {
    private var storage: [UInt8]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "ByteRing capacity must be positive")
        storage = [UInt8](repeating: 0, count: capacity)
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    var freeSpace: Int { storage.count - count }

    /// Appends `byte` if there is room; returns false (and keeps the ring unchanged) if full.
    @discardableResult
    mutating func push(_ byte: UInt8) -> Bool {
        guard count < storage.count else { return false }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = byte
        count += 1
        return true
    }

    /// Appends as many leading bytes of `bytes` as fit; returns how many were taken.
    mutating func push(contentsOf bytes: some Collection<UInt8>) -> Int {
        var taken = 0
        for byte in bytes {
            guard push(byte) else { break }
            taken += 1
        }
        return taken
    }

    /// Removes and returns the oldest byte, or nil when empty.
    mutating func pop() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return byte
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }
}

extension ByteRing {
    /// The bytes in FIFO order (for snapshots).
    var contents: [UInt8] {
        var copy = self
        var out: [UInt8] = []
        while let b = copy.pop() { out.append(b) }
        return out
    }
}
