import Glibc
import Host
import Memory
import Virtio
import TestSupport

// The fuzz driver shared by FuzzTests (seeded PRNG, XCTest) and scripts/fuzz virtqueue
// (libFuzzer input bytes). Deliberately free of XCTest: the libFuzzer build compiles this
// file on its own.

/// Where the fuzz driver's decisions come from.
protocol FuzzSource {
    mutating func next() -> UInt64
}

extension FuzzSource {
    mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : next() % n }
    mutating func chance(_ percent: UInt64) -> Bool { below(100) < percent }
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(below(UInt64(choices.count)))] }
}

extension SplitMix64: FuzzSource {}

/// Fuzzer input bytes as decisions; zeros once they run out (so every input terminates).
struct ByteSource: FuzzSource {
    let bytes: [UInt8]
    var position = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    mutating func next() -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 where position < bytes.count {
            v |= UInt64(bytes[position]) << (8 * UInt64(i))
            position += 1
        }
        return v
    }
}

/// A RAM disk for the block request parser (single-threaded use only).
final class InMemoryDisk: BlockStorage, @unchecked Sendable {
    var data: [UInt8]
    let isReadOnly: Bool
    init(sectors: Int, readOnly: Bool = false) {
        data = [UInt8](repeating: 0, count: sectors * 512)
        isReadOnly = readOnly
    }
    var byteCount: UInt64 { UInt64(data.count) }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(HostError) {
        guard offset <= UInt64(data.count), UInt64(buffer.count) <= UInt64(data.count) - offset else {
            throw HostError("read", errno: EIO)
        }
        data.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(HostError) {
        guard !isReadOnly, offset <= UInt64(data.count), UInt64(buffer.count) <= UInt64(data.count) - offset else {
            throw HostError("write", errno: isReadOnly ? EROFS : EIO)
        }
        data.withUnsafeMutableBytes {
            UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer)
        }
    }
    func flush() throws(HostError) {}
}

enum FuzzScenario {
    /// Guest RAM the scenarios expect (the tests and the harness map it once).
    static let memorySize: UInt64 = 16 << 20
    static let ringBase: UInt64 = 0x1000
    static let dataBase: UInt64 = 0x10_0000
    static let dataSize: UInt64 = 0x1_0000
    static let tableBase: UInt64 = 0x20_0000

    /// One random driver against one queue. Returns what went wrong (empty when all is well);
    /// a trap is the other possible failure, and the reason this exists.
    static func run<S: FuzzSource>(_ r: inout S, memory: GuestMemory, disk: InMemoryDisk) -> [String] {
        var problems: [String] = []

        // Queue geometry: mostly small valid sizes, sometimes anything.
        let size: UInt32 = r.chance(90) ? UInt32(1) << UInt32(r.below(r.chance(90) ? 6 : 9)) : UInt32(truncatingIfNeeded: r.next() % 70000)
        let n = UInt64(size)
        var desc = ringBase
        var avail = desc + 16 * n
        var used = (avail + 6 + 2 * n + 3) & ~3
        if r.chance(15) {
            // Rings on top of each other, on top of the data, or anywhere at all.
            let spots: [UInt64] = [ringBase, dataBase, memorySize - 64, memorySize, 0, UInt64.max - 8, r.next()]
            desc = r.chance(50) ? desc : r.pick(spots) & ~15
            avail = r.chance(50) ? avail : r.pick(spots + [desc]) & ~1
            used = r.chance(50) ? used : r.pick(spots + [desc, avail]) & ~3
        }
        let eventIndex = r.chance(50)
        let indirect = r.chance(60)
        guard var q = try? Virtqueue(memory: memory, size: size, descriptorTable: desc, availRing: avail,
                                     usedRing: used, eventIndex: eventIndex, indirectDescriptors: indirect,
                                     maximumSize: Virtqueue.maximumSize) else {
            return problems // refused configuration: a defined outcome
        }

        // Random buffer contents, with some plausible block request headers.
        var data = [UInt8](repeating: 0, count: 4096)
        for i in stride(from: 0, to: data.count, by: 8) {
            let v = r.next()
            for j in 0..<8 { data[i + j] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(j))) }
        }
        for slot in 0..<16 where r.chance(60) {
            let type: UInt32 = r.pick([0, 1, 4, 8, 0, 1, UInt32(truncatingIfNeeded: r.next())])
            let sector: UInt64 = r.pick([0, r.below(70), disk.byteCount / 512 - 1, UInt64.max, UInt64.max / 512 + 1, r.next()])
            put(type, into: &data, at: slot * 16)
            put(UInt32(0), into: &data, at: slot * 16 + 4)
            put(sector, into: &data, at: slot * 16 + 8)
        }
        // And some plausible virtio-net headers, for the net device's transmit path.
        for slot in 16..<48 where r.chance(60) {
            data.replaceSubrange(slot * 16..<slot * 16 + VirtioNetHeader.size, with: plausibleNetHeader(&r))
        }
        try? memory.write(data, at: dataBase)

        func randomDescriptor(entries: UInt64, into bytes: inout [UInt8], at offset: Int) {
            let address: UInt64 = r.pick([
                dataBase + 16 * r.below(256), dataBase + r.below(dataSize), desc, avail, used,
                tableBase + 16 * r.below(64), memorySize - r.below(600), memorySize, r.next(), UInt64.max - r.below(64), 0,
            ])
            let length: UInt32 = r.pick([
                UInt32(r.below(32)), 16, 1, 512, 1024, UInt32(16 * r.below(8)), UInt32(r.below(70000)), 0,
                UInt32.max, UInt32(truncatingIfNeeded: r.next()),
            ])
            var flags = UInt16(r.below(8))
            if r.chance(5) { flags |= UInt16(truncatingIfNeeded: r.next()) }
            if r.chance(70) { flags &= ~4 } // indirect now and then, not half the time
            let next: UInt16 = r.chance(85) ? UInt16(r.below(max(entries, 1))) : UInt16(truncatingIfNeeded: r.next())
            put(address, into: &bytes, at: offset)
            put(length, into: &bytes, at: offset + 8)
            put(flags, into: &bytes, at: offset + 12)
            put(next, into: &bytes, at: offset + 14)
        }

        // The descriptor table and a region of candidate indirect tables.
        var table = [UInt8](repeating: 0, count: Int(16 * n))
        for i in 0..<Int(n) { randomDescriptor(entries: n, into: &table, at: 16 * i) }
        try? memory.write(table, at: desc)
        var indirectTables = [UInt8](repeating: 0, count: 16 * 64)
        for i in 0..<64 { randomDescriptor(entries: r.pick([2, 4, 8, 64]), into: &indirectTables, at: 16 * i) }
        try? memory.write(indirectTables, at: tableBase)

        // The avail ring: flags, idx (mostly sane), entries (mostly in range), used_event.
        var ring = [UInt8](repeating: 0, count: Int(6 + 2 * n))
        put(UInt16(r.below(2)), into: &ring, at: 0)
        let availIndex: UInt16 = r.chance(90) ? UInt16(r.below(n + 1)) : UInt16(truncatingIfNeeded: r.next())
        put(availIndex, into: &ring, at: 2)
        for i in 0..<Int(n) {
            put(r.chance(95) ? UInt16(r.below(n)) : UInt16(truncatingIfNeeded: r.next()), into: &ring, at: 4 + 2 * i)
        }
        put(UInt16(truncatingIfNeeded: r.next()), into: &ring, at: Int(4 + 2 * n))
        try? memory.write(ring, at: avail)

        // Play the device: pop, run the block parser, return every chain, with the driver
        // moving avail idx underneath now and then.
        let interrupt = VirtioInterrupt {}
        // A third of the runs give the queue to virtio-net instead (NetFuzzScenario.swift).
        if r.chance(33) { return runNet(&r, memory: memory, queue: q) }
        let useBlockParser = r.chance(50)
        var rounds = 0
        while rounds < 4 * Int(n) + 8 {
            rounds += 1
            if r.chance(3) {
                try? memory.write(UInt16(truncatingIfNeeded: r.next() % (n + 2)), at: avail + 2)
            }
            let chain: DescriptorChain?
            if useBlockParser {
                chain = q.nextRequest(interrupt: interrupt)
            } else {
                do {
                    chain = try q.popAvailable()
                } catch {
                    if let head = error.failedHead {
                        if UInt32(head) >= size { problems.append("failed head \(head) outside queue of \(size)") }
                        addUsedChecked(&q, head: head, length: 0, memory: memory, problems: &problems)
                        continue
                    }
                    break
                }
            }
            guard let chain else { break }
            if UInt32(chain.head) >= size { problems.append("head \(chain.head) outside queue of \(size)") }
            for s in chain.readable + chain.writable where !memory.contains(s.address, length: UInt64(s.length)) {
                problems.append("segment 0x\(String(s.address, radix: 16))+\(s.length) outside RAM")
            }
            if chain.readableLength + chain.writableLength > Int(UInt32.max) {
                problems.append("chain of \(chain.readableLength + chain.writableLength) bytes")
            }
            let length: UInt32
            if useBlockParser {
                length = BlockRequest.process(chain, storage: disk, serial: Array("fuzz".utf8))
                if Int(length) > chain.writableLength { problems.append("used length \(length) > writable") }
            } else {
                _ = try? chain.readAll(maxBytes: 4096)
                _ = try? chain.write([1, 2, 3], at: Int(r.below(64)))
                length = UInt32(truncatingIfNeeded: r.below(UInt64(chain.writableLength) + 1))
            }
            addUsedChecked(&q, head: chain.head, length: length, memory: memory, problems: &problems)
            if r.chance(30) { _ = q.needsInterrupt() }
        }
        _ = q.needsInterrupt()
        return problems
    }

    /// Returns a chain, and checks the used element it wrote names a descriptor of the queue.
    private static func addUsedChecked(_ q: inout Virtqueue, head: UInt16, length: UInt32, memory: GuestMemory,
                                       problems: inout [String]) {
        let before = q.nextUsed
        q.addUsed(head: head, length: length)
        guard q.nextUsed != before else { return } // refused (broken queue or bad head)
        let slot = UInt64(before % q.size)
        guard let id = try? memory.read(UInt32.self, at: q.usedRing + 4 + 8 * slot) else {
            problems.append("used ring unreadable")
            return
        }
        if id >= UInt32(q.size) || id != UInt32(head) {
            problems.append("used id \(id) for head \(head), queue of \(q.size)")
        }
    }

    private static func put<T: FixedWidthInteger>(_ v: T, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<MemoryLayout<T>.size where offset + i < bytes.count {
            bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i))
        }
    }
}
