import Memory
import Virtio

/// Plays the guest driver for one split virtqueue: lays out the descriptor table, avail and
/// used rings in guest memory and posts chains, as Linux's virtio_ring would (or, for the
/// malicious tests, as it never would).
final class TestDriver {
    struct Buffer {
        var address: UInt64
        var length: UInt32
        var writable: Bool
    }

    static let flagNext: UInt16 = 1
    static let flagWrite: UInt16 = 2
    static let flagIndirect: UInt16 = 4

    let memory: GuestMemory
    let size: UInt16
    let descriptorTable: UInt64
    let availRing: UInt64
    let usedRing: UInt64
    private(set) var availIndex: UInt16 = 0
    private var nextDescriptor: UInt16 = 0
    /// Bump allocator for data buffers and indirect tables, above the rings.
    private var nextData: UInt64 = 0x40_0000

    init(memory: GuestMemory, size: UInt16, base: UInt64 = 0x1_0000, dataBase: UInt64 = 0x40_0000) {
        self.memory = memory
        self.size = size
        self.nextData = dataBase
        let n = UInt64(size)
        descriptorTable = base
        availRing = base + 16 * n
        usedRing = (availRing + 6 + 2 * n + 3) & ~3
        try! memory.zero(at: base, count: usedRing + 6 + 8 * n - base)
    }

    convenience init(size: UInt16 = 16) throws {
        self.init(memory: try GuestMemory(size: 16 << 20), size: size)
    }

    func makeQueue(eventIndex: Bool = false, indirect: Bool = false) throws -> Virtqueue {
        try Virtqueue(memory: memory, size: UInt32(size), descriptorTable: descriptorTable,
                      availRing: availRing, usedRing: usedRing,
                      eventIndex: eventIndex, indirectDescriptors: indirect)
    }

    // MARK: Memory helpers

    func allocate(_ length: Int, fill: UInt8? = nil) -> UInt64 {
        let address = nextData
        nextData = (nextData + UInt64(max(length, 1)) + 15) & ~15
        if let fill { try! memory.write([UInt8](repeating: fill, count: length), at: address) }
        return address
    }

    func buffer(_ bytes: [UInt8]) -> Buffer {
        let a = allocate(bytes.count)
        try! memory.write(bytes, at: a)
        return Buffer(address: a, length: UInt32(bytes.count), writable: false)
    }

    func writableBuffer(_ length: Int, fill: UInt8 = 0xee) -> Buffer {
        Buffer(address: allocate(length, fill: fill), length: UInt32(length), writable: true)
    }

    func bytes(at address: UInt64, count: Int) -> [UInt8] {
        try! memory.readBytes(at: address, count: count)
    }

    // MARK: Descriptors

    /// Writes descriptor `index` of the table at `table` (the queue's by default).
    func setDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0,
                       table: UInt64? = nil) {
        let at = (table ?? descriptorTable) + 16 * UInt64(index)
        try! memory.write(address, at: at)
        try! memory.write(length, at: at + 8)
        try! memory.write(flags, at: at + 12)
        try! memory.write(next, at: at + 14)
    }

    /// Lays out `buffers` as a chain of free descriptors and returns its head (not posted).
    func writeChain(_ buffers: [Buffer]) -> UInt16 {
        let head = nextDescriptor
        for (i, b) in buffers.enumerated() {
            let index = nextDescriptor
            nextDescriptor = (nextDescriptor + 1) % size
            let last = i == buffers.count - 1
            setDescriptor(index, address: b.address, length: b.length,
                          flags: (b.writable ? Self.flagWrite : 0) | (last ? 0 : Self.flagNext),
                          next: last ? 0 : nextDescriptor)
        }
        return head
    }

    /// One queue descriptor naming an indirect table that holds `buffers`.
    func writeIndirectChain(_ buffers: [Buffer]) -> UInt16 {
        let table = allocate(16 * buffers.count)
        for (i, b) in buffers.enumerated() {
            let last = i == buffers.count - 1
            setDescriptor(UInt16(i), address: b.address, length: b.length,
                          flags: (b.writable ? Self.flagWrite : 0) | (last ? 0 : Self.flagNext),
                          next: last ? 0 : UInt16(i + 1), table: table)
        }
        let head = nextDescriptor
        nextDescriptor = (nextDescriptor + 1) % size
        setDescriptor(head, address: table, length: UInt32(16 * buffers.count), flags: Self.flagIndirect)
        return head
    }

    /// Puts `head` in the next avail slot and publishes it.
    func post(_ head: UInt16) {
        try! memory.write(head, at: availRing + 4 + 2 * UInt64(availIndex % size))
        availIndex &+= 1
        try! memory.write(availIndex, at: availRing + 2)
    }

    @discardableResult
    func postChain(_ buffers: [Buffer]) -> UInt16 {
        let head = writeChain(buffers)
        post(head)
        return head
    }

    /// Sets avail idx to anything, as a malicious driver might.
    func setAvailIndex(_ value: UInt16) {
        availIndex = value
        try! memory.write(value, at: availRing + 2)
    }

    func setAvailFlags(_ flags: UInt16) { try! memory.write(flags, at: availRing) }
    func setUsedEvent(_ value: UInt16) { try! memory.write(value, at: availRing + 4 + 2 * UInt64(size)) }

    // MARK: Used ring

    var usedIndex: UInt16 { try! memory.read(UInt16.self, at: usedRing + 2) }
    var availEvent: UInt16 { try! memory.read(UInt16.self, at: usedRing + 4 + 8 * UInt64(size)) }

    func usedElement(_ i: UInt16) -> (id: UInt32, length: UInt32) {
        let at = usedRing + 4 + 8 * UInt64(i % size)
        return (try! memory.read(UInt32.self, at: at), try! memory.read(UInt32.self, at: at + 4))
    }
}
