import Memory

/// One validated request from the driver: the buffers of a descriptor chain, split into the
/// device-readable part (in order) and the device-writable part that follows it.
///
/// Every segment was checked to lie in guest RAM when the chain was popped, and guest RAM
/// never moves or shrinks, so the accessors below fail only if that invariant is broken.
/// The driver may still scribble over the buffers' contents while the device works on
/// them (it owns that memory); the device copies header fields once and uses the copy.
public struct DescriptorChain: Sendable {
    /// A guest-physical buffer of the chain.
    public struct Segment: Equatable, Sendable {
        public let address: UInt64
        public let length: UInt32
        public init(address: UInt64, length: UInt32) {
            self.address = address
            self.length = length
        }
    }

    /// The descriptor index to hand back in the used ring.
    public let head: UInt16
    public let readable: [Segment]
    public let writable: [Segment]
    let memory: GuestMemory

    public init(head: UInt16, readable: [Segment], writable: [Segment], memory: GuestMemory) {
        self.head = head
        self.readable = readable
        self.writable = writable
        self.memory = memory
    }

    /// Total device-readable bytes.
    public var readableLength: Int { readable.reduce(0) { $0 + Int($1.length) } }
    /// Total device-writable bytes.
    public var writableLength: Int { writable.reduce(0) { $0 + Int($1.length) } }

    /// Calls `body` with host views of `[offset, offset+count)` of `segments`, in order; each
    /// view is one contiguous piece of guest RAM. Returns the bytes covered (less than
    /// `count` when the segments end first).
    static func forEachPiece(of segments: [Segment], offset: Int, count: Int, memory: GuestMemory,
                             _ body: (UnsafeMutableRawBufferPointer, _ done: Int) throws -> Void) throws -> Int {
        guard offset >= 0, count > 0 else { return 0 }
        var skip = offset
        var done = 0
        for s in segments where done < count {
            let len = Int(s.length)
            if skip >= len { skip -= len; continue }
            let n = min(len - skip, count - done)
            try memory.withMutableBytes(at: s.address &+ UInt64(skip), length: UInt64(n)) { piece in
                try body(piece, done)
            }
            done += n
            skip = 0
        }
        return done
    }

    /// Copies device-readable bytes from `offset` into `buffer`; returns how many were copied.
    public func read(into buffer: UnsafeMutableRawBufferPointer, offset: Int = 0) throws -> Int {
        try Self.forEachPiece(of: readable, offset: offset, count: buffer.count, memory: memory) { piece, done in
            UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + piece.count])
                .copyMemory(from: UnsafeRawBufferPointer(piece))
        }
    }

    /// All device-readable bytes, or the first `maxBytes` of them.
    public func readAll(maxBytes: Int = .max) throws -> [UInt8] {
        let n = min(readableLength, max(maxBytes, 0))
        return try [UInt8](unsafeUninitializedCapacity: n) { buf, initialized in
            initialized = try read(into: UnsafeMutableRawBufferPointer(buf), offset: 0)
        }
    }

    /// Copies `bytes` into the device-writable part starting `offset` bytes into it; returns
    /// how many fit.
    @discardableResult
    public func write(_ bytes: some Collection<UInt8>, at offset: Int = 0) throws -> Int {
        let array = Array(bytes)
        return try array.withUnsafeBytes { src in
            try Self.forEachPiece(of: writable, offset: offset, count: src.count, memory: memory) { piece, done in
                piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[done..<done + piece.count]))
            }
        }
    }

    /// Host views of `count` device-writable bytes from `offset`, for I/O straight into guest
    /// RAM (pread, getrandom). Returns the bytes covered.
    public func withWritablePieces(offset: Int, count: Int,
                                   _ body: (UnsafeMutableRawBufferPointer, _ done: Int) throws -> Void) throws -> Int {
        try Self.forEachPiece(of: writable, offset: offset, count: count, memory: memory, body)
    }

    /// Host views of `count` device-readable bytes from `offset`, for I/O straight out of
    /// guest RAM (pwrite). The views are mutable only because GuestMemory hands out one kind;
    /// a device must not write to them (virtio 1.x §2.7.4).
    public func withReadablePieces(offset: Int, count: Int,
                                   _ body: (UnsafeRawBufferPointer, _ done: Int) throws -> Void) throws -> Int {
        try Self.forEachPiece(of: readable, offset: offset, count: count, memory: memory) { piece, done in
            try body(UnsafeRawBufferPointer(piece), done)
        }
    }
}
