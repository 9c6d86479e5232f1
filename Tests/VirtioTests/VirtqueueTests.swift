import Memory
import XCTest
@testable import Virtio

final class VirtqueueTests: XCTestCase {
    func testNormalChainSplitsReadableAndWritableAndRoundTripsData() throws {
        let d = try TestDriver()
        var q = try d.makeQueue()
        let header = d.buffer([1, 2, 3, 4, 5, 6, 7, 8])
        let body = d.buffer(Array(100..<120))
        let out = d.writableBuffer(10)
        let status = d.writableBuffer(1)
        let head = d.postChain([header, body, out, status])

        let chain = try XCTUnwrap(q.popAvailable())
        XCTAssertEqual(chain.head, head)
        XCTAssertEqual(chain.readable.map(\.length), [8, 20])
        XCTAssertEqual(chain.writable.map(\.address), [out.address, status.address])
        XCTAssertEqual(chain.readableLength, 28)
        XCTAssertEqual(chain.writableLength, 11)
        XCTAssertEqual(try chain.readAll(), [1, 2, 3, 4, 5, 6, 7, 8] + Array(100..<120))
        XCTAssertEqual(try chain.readAll(maxBytes: 10), [1, 2, 3, 4, 5, 6, 7, 8, 100, 101])

        var buf = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(try buf.withUnsafeMutableBytes { try chain.read(into: $0, offset: 6) }, 4)
        XCTAssertEqual(buf, [7, 8, 100, 101])

        // A write across the segment boundary, and one that does not fit.
        XCTAssertEqual(try chain.write(Array(repeating: 0x5a, count: 11), at: 0), 11)
        XCTAssertEqual(d.bytes(at: out.address, count: 10), Array(repeating: 0x5a, count: 10))
        XCTAssertEqual(d.bytes(at: status.address, count: 1), [0x5a])
        XCTAssertEqual(try chain.write([1, 2, 3], at: 9), 2)
        XCTAssertEqual(d.bytes(at: status.address, count: 1), [2])

        XCTAssertNil(try q.popAvailable())
        q.addUsed(head: chain.head, length: 11)
        XCTAssertEqual(d.usedIndex, 1)
        XCTAssertEqual(d.usedElement(0).id, UInt32(head))
        XCTAssertEqual(d.usedElement(0).length, 11)
    }

    func testSeveralChainsComeOutInAvailOrder() throws {
        let d = try TestDriver(size: 8)
        var q = try d.makeQueue()
        let heads = (0..<5).map { i in d.postChain([d.buffer([UInt8(i)])]) }
        var seen: [UInt16] = []
        var payloads: [[UInt8]] = []
        while let c = try q.popAvailable() {
            seen.append(c.head)
            payloads.append(try c.readAll())
        }
        XCTAssertEqual(seen, heads)
        XCTAssertEqual(payloads, (0..<5).map { [UInt8($0)] })
    }

    func testIndirectChain() throws {
        let d = try TestDriver()
        var q = try d.makeQueue(indirect: true)
        let head = d.writeIndirectChain([d.buffer([9, 8, 7]), d.buffer([6]), d.writableBuffer(32)])
        d.post(head)
        let chain = try XCTUnwrap(q.popAvailable())
        XCTAssertEqual(chain.head, head)
        XCTAssertEqual(try chain.readAll(), [9, 8, 7, 6])
        XCTAssertEqual(chain.writableLength, 32)
    }

    func testIndirectTableLongerThanASmallRingIsAccepted() throws {
        // Linux sizes indirect tables by seg_max + 2, even on a ring it had to shrink.
        let d = try TestDriver(size: 4)
        var q = try d.makeQueue(indirect: true)
        let buffers = (0..<7).map { d.buffer([UInt8($0)]) } + [d.writableBuffer(1)]
        d.post(d.writeIndirectChain(buffers))
        let chain = try XCTUnwrap(q.popAvailable())
        XCTAssertEqual(try chain.readAll(), [0, 1, 2, 3, 4, 5, 6])
        XCTAssertEqual(chain.writableLength, 1)
    }

    func testDirectDescriptorsFollowedByAnIndirectTable() throws {
        // Allowed by virtio 1.x §2.7.5.3.2: zero or more chained descriptors, then one indirect.
        let d = try TestDriver()
        var q = try d.makeQueue(indirect: true)
        let first = d.buffer([1, 2])
        let table = d.allocate(32)
        d.setDescriptor(0, address: d.buffer([3]).address, length: 1, flags: 0, table: table)
        d.setDescriptor(1, address: d.writableBuffer(4).address, length: 4, flags: TestDriver.flagWrite, table: table)
        d.setDescriptor(0, address: first.address, length: 2, flags: TestDriver.flagNext, next: 1)
        // The indirect descriptor's own WRITE flag must be ignored.
        d.setDescriptor(1, address: table, length: 16, flags: TestDriver.flagIndirect | TestDriver.flagWrite)
        d.post(0)
        let chain = try XCTUnwrap(q.popAvailable())
        XCTAssertEqual(try chain.readAll(), [1, 2, 3])
        XCTAssertEqual(chain.writableLength, 0, "only the first table entry is covered by len 16")
    }

    func testEventIndexSuppressesInterruptsUntilUsedEventIsPassed() throws {
        let d = try TestDriver()
        var q = try d.makeQueue(eventIndex: true)
        for _ in 0..<4 { d.postChain([d.writableBuffer(4)]) }
        var chains: [DescriptorChain] = []
        while let c = try q.popAvailable() { chains.append(c) }
        XCTAssertEqual(chains.count, 4)
        XCTAssertEqual(d.availEvent, 4, "empty ring publishes avail_event = next avail index")

        d.setUsedEvent(2) // interrupt when used entry 2 is written (used idx goes to 3)
        XCTAssertFalse(q.needsInterrupt(), "nothing used yet")
        q.addUsed(head: chains[0].head, length: 0)
        XCTAssertFalse(q.needsInterrupt())
        q.addUsed(head: chains[1].head, length: 0)
        XCTAssertFalse(q.needsInterrupt())
        q.addUsed(head: chains[2].head, length: 0)
        XCTAssertTrue(q.needsInterrupt())
        q.addUsed(head: chains[3].head, length: 0)
        XCTAssertFalse(q.needsInterrupt(), "used_event already passed")

        // Batches: used_event inside the batch still interrupts once.
        d.setUsedEvent(5)
        for _ in 0..<3 { d.postChain([d.writableBuffer(4)]) }
        while let c = try q.popAvailable() { q.addUsed(head: c.head, length: 0) }
        XCTAssertEqual(d.usedIndex, 7)
        XCTAssertTrue(q.needsInterrupt())
        XCTAssertFalse(q.needsInterrupt())
    }

    func testWithoutEventIndexTheNoInterruptFlagIsHonoured() throws {
        let d = try TestDriver()
        var q = try d.makeQueue()
        d.postChain([d.writableBuffer(1)])
        d.postChain([d.writableBuffer(1)])
        let a = try XCTUnwrap(q.popAvailable())
        let b = try XCTUnwrap(q.popAvailable())
        d.setAvailFlags(1)
        q.addUsed(head: a.head, length: 0)
        XCTAssertFalse(q.needsInterrupt())
        d.setAvailFlags(0)
        q.addUsed(head: b.head, length: 0)
        XCTAssertTrue(q.needsInterrupt())
        XCTAssertEqual(d.availEvent, 0, "avail_event is not written without EVENT_IDX")
    }

    func testAvailAndUsedIndicesWrapAt65536() throws {
        let d = try TestDriver(size: 4)
        var q = try d.makeQueue(eventIndex: true)
        let buffer = d.writableBuffer(8)
        var completed = 0
        // Drive 65540 chains through in rounds of up to 4, crossing the 16-bit wrap.
        while completed < 65540 {
            let n = min(4, 65540 - completed)
            for _ in 0..<n { d.postChain([buffer]) }
            var got = 0
            while let c = try q.popAvailable() {
                q.addUsed(head: c.head, length: 8)
                got += 1
            }
            XCTAssertEqual(got, n)
            if got != n { return }
            completed += n
        }
        XCTAssertEqual(q.nextAvail, 4)
        XCTAssertEqual(d.availIndex, 4)
        XCTAssertEqual(d.usedIndex, 4)
        XCTAssertEqual(d.availEvent, 4)
    }

    func testEventIndexAcrossTheWrap() throws {
        let d = try TestDriver(size: 4)
        var q = try d.makeQueue(eventIndex: true)
        // Bring both indices to 65534.
        for _ in 0..<(65534 / 2) {
            d.postChain([d.writableBuffer(1)])
            d.postChain([d.writableBuffer(1)])
            while let c = try q.popAvailable() { q.addUsed(head: c.head, length: 0) }
            _ = q.needsInterrupt()
        }
        XCTAssertEqual(d.usedIndex, 65534)
        d.setUsedEvent(0) // wants an interrupt when entry 0 (after the wrap) is used
        for _ in 0..<3 { d.postChain([d.writableBuffer(1)]) }
        var n = 0
        while let c = try q.popAvailable() {
            q.addUsed(head: c.head, length: 0)
            n += 1
            // Entries 65534 and 65535 do not interrupt, entry 0 does.
            XCTAssertEqual(q.needsInterrupt(), n == 3, "after \(n) completions")
        }
        XCTAssertEqual(d.usedIndex, 1)
    }

    func testQueueConfigurationIsValidated() throws {
        let m = try GuestMemory(size: 16 << 20)
        func make(_ size: UInt32, _ desc: UInt64 = 0x1000, _ avail: UInt64 = 0x8000, _ used: UInt64 = 0x9000,
                  max: UInt16 = 256) -> VirtqueueError? {
            do {
                _ = try Virtqueue(memory: m, size: size, descriptorTable: desc, availRing: avail, usedRing: used,
                                  maximumSize: max)
                return nil
            } catch { return error }
        }
        XCTAssertNil(make(256))
        XCTAssertEqual(make(0), .invalidSize(0))
        XCTAssertEqual(make(100), .invalidSize(100))
        XCTAssertEqual(make(512), .invalidSize(512), "above the device's QueueNumMax")
        XCTAssertEqual(make(65536, max: .max), .invalidSize(65536))
        XCTAssertNotNil(make(16, 16 << 20), "descriptor table beyond RAM")
        XCTAssertNotNil(make(16, 0x1000, UInt64.max - 4), "avail ring wrapping the address space")
        XCTAssertNotNil(make(16, 0x1000, 0x8000, (16 << 20) - 8), "used ring crossing the end of RAM")
        XCTAssertNotNil(make(16, 0x1008), "descriptor table misaligned")
        XCTAssertNotNil(make(16, 0x1000, 0x8000, 0x9002), "used ring misaligned")
    }
}
