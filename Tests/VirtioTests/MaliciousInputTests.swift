import Memory
import Synchronization
import XCTest
@testable import Virtio

/// Drivers that break the rules. Each case must end in a defined state: the request
/// failed (head returned with used length 0), or the queue broken and the device marked
/// NEEDS_RESET; never a trap, never an access outside guest RAM.
private let ramEnd: UInt64 = 16 << 20

final class MaliciousInputTests: XCTestCase {
    enum Outcome: Equatable {
        /// popAvailable threw a request error for this head.
        case requestFailed(VirtqueueError)
        /// popAvailable threw a queue error: NEEDS_RESET.
        case needsReset(VirtqueueError)
        /// A chain came out (for cases that are legal for the ring, like empty chains).
        case chain(readable: Int, writable: Int)
    }

    struct Case {
        let name: String
        var size: UInt16 = 8
        var indirect = true
        let setUp: (TestDriver) -> Void
        let expected: Outcome
    }

    let cases: [Case] = [
        Case(name: "descriptor address beyond RAM", setUp: { d in
            d.setDescriptor(0, address: ramEnd, length: 16, flags: 0)
            d.post(0)
        }, expected: .requestFailed(.bufferOutOfRange(head: 0, address: ramEnd, length: 16))),

        Case(name: "descriptor straddling the end of RAM", setUp: { d in
            d.setDescriptor(0, address: ramEnd - 8, length: 16, flags: 0)
            d.post(0)
        }, expected: .requestFailed(.bufferOutOfRange(head: 0, address: ramEnd - 8, length: 16))),

        Case(name: "address + length overflows UInt64", setUp: { d in
            d.setDescriptor(0, address: UInt64.max - 4, length: 16, flags: 0)
            d.post(0)
        }, expected: .requestFailed(.bufferOutOfRange(head: 0, address: UInt64.max - 4, length: 16))),

        Case(name: "chain loops back on itself", setUp: { d in
            let b = d.buffer([1])
            d.setDescriptor(0, address: b.address, length: 1, flags: TestDriver.flagNext, next: 1)
            d.setDescriptor(1, address: b.address, length: 1, flags: TestDriver.flagNext, next: 0)
            d.post(0)
        }, expected: .requestFailed(.chainTooLong(head: 0))),

        Case(name: "descriptor pointing at itself", setUp: { d in
            let b = d.writableBuffer(1)
            d.setDescriptor(3, address: b.address, length: 1, flags: TestDriver.flagNext | TestDriver.flagWrite, next: 3)
            d.post(3)
        }, expected: .requestFailed(.chainTooLong(head: 3))),

        Case(name: "chain through every descriptor and around again", size: 4, setUp: { d in
            let b = d.buffer([1])
            for i in 0..<4 as Range<UInt16> {
                d.setDescriptor(i, address: b.address, length: 1, flags: TestDriver.flagNext, next: (i + 1) % 4)
            }
            d.post(0)
        }, expected: .requestFailed(.chainTooLong(head: 0))),

        Case(name: "loop inside an indirect table", setUp: { d in
            let b = d.buffer([1])
            let table = d.allocate(32)
            d.setDescriptor(0, address: b.address, length: 1, flags: TestDriver.flagNext, next: 1, table: table)
            d.setDescriptor(1, address: b.address, length: 1, flags: TestDriver.flagNext, next: 0, table: table)
            d.setDescriptor(2, address: table, length: 32, flags: TestDriver.flagIndirect)
            d.post(2)
        }, expected: .requestFailed(.chainTooLong(head: 2))),

        Case(name: "next index >= queue size", setUp: { d in
            let b = d.buffer([1])
            d.setDescriptor(0, address: b.address, length: 1, flags: TestDriver.flagNext, next: 8)
            d.post(0)
        }, expected: .requestFailed(.nextIndexOutOfRange(head: 0, index: 8))),

        Case(name: "next index beyond an indirect table", setUp: { d in
            let b = d.buffer([1])
            let table = d.allocate(32)
            d.setDescriptor(0, address: b.address, length: 1, flags: TestDriver.flagNext, next: 2, table: table)
            d.setDescriptor(1, address: table, length: 32, flags: TestDriver.flagIndirect)
            d.post(1)
        }, expected: .requestFailed(.nextIndexOutOfRange(head: 1, index: 2))),

        Case(name: "indirect table length not a multiple of 16", setUp: { d in
            d.setDescriptor(0, address: d.allocate(24), length: 24, flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .badLength))),

        Case(name: "indirect table of length 0", setUp: { d in
            d.setDescriptor(0, address: d.allocate(16), length: 0, flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .badLength))),

        Case(name: "indirect table beyond RAM", setUp: { d in
            d.setDescriptor(0, address: ramEnd - 16, length: 32, flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .outOfRange))),

        Case(name: "nested indirect table", setUp: { d in
            let inner = d.allocate(16)
            d.setDescriptor(0, address: d.buffer([1]).address, length: 1, flags: 0, table: inner)
            let outer = d.allocate(16)
            d.setDescriptor(0, address: inner, length: 16, flags: TestDriver.flagIndirect, table: outer)
            d.setDescriptor(0, address: outer, length: 16, flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .nested))),

        Case(name: "indirect combined with NEXT", setUp: { d in
            let table = d.allocate(16)
            d.setDescriptor(0, address: d.buffer([1]).address, length: 1, flags: 0, table: table)
            d.setDescriptor(0, address: table, length: 16, flags: TestDriver.flagIndirect | TestDriver.flagNext, next: 1)
            d.setDescriptor(1, address: d.buffer([2]).address, length: 1, flags: 0)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .combinedWithNext))),

        Case(name: "indirect without the feature", indirect: false, setUp: { d in
            let table = d.allocate(16)
            d.setDescriptor(0, address: d.buffer([1]).address, length: 1, flags: 0, table: table)
            d.setDescriptor(0, address: table, length: 16, flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.invalidIndirect(head: 0, reason: .notNegotiated))),

        Case(name: "writable descriptor before a readable one", setUp: { d in
            d.postChain([d.writableBuffer(4), d.buffer([1, 2])])
        }, expected: .requestFailed(.readableAfterWritable(head: 0))),

        Case(name: "readable after writable inside an indirect table", setUp: { d in
            d.post(d.writeIndirectChain([d.buffer([1]), d.writableBuffer(4), d.buffer([1, 2])]))
        }, expected: .requestFailed(.readableAfterWritable(head: 0))),

        Case(name: "chain of 4 GiB or more", size: 512, setUp: { d in
            let big = d.allocate(15 << 20 - 0x40_0000)
            let entries = 400
            let table = d.allocate(16 * entries)
            for i in 0..<UInt16(entries) {
                d.setDescriptor(i, address: big, length: 11 << 20, flags: i < entries - 1 ? TestDriver.flagNext : 0,
                                next: i + 1, table: table)
            }
            d.setDescriptor(0, address: table, length: UInt32(16 * entries), flags: TestDriver.flagIndirect)
            d.post(0)
        }, expected: .requestFailed(.chainTooLarge(head: 0))),

        Case(name: "zero-length descriptor", setUp: { d in
            d.setDescriptor(0, address: d.allocate(1), length: 0, flags: 0)
            d.post(0)
        }, expected: .chain(readable: 0, writable: 0)),

        Case(name: "avail idx more than a queue ahead", setUp: { d in
            d.setAvailIndex(9)
        }, expected: .needsReset(.availIndexTooFarAhead(availIndex: 9, nextAvail: 0, size: 8))),

        Case(name: "avail idx moved backwards", setUp: { d in
            d.setAvailIndex(0xffff)
        }, expected: .needsReset(.availIndexTooFarAhead(availIndex: 0xffff, nextAvail: 0, size: 8))),

        Case(name: "avail ring names a head outside the table", setUp: { d in
            d.post(8)
        }, expected: .needsReset(.headIndexOutOfRange(head: 8, size: 8))),

        Case(name: "avail ring names head 0xffff", setUp: { d in
            d.post(0xffff)
        }, expected: .needsReset(.headIndexOutOfRange(head: 0xffff, size: 8))),
    ]

    func testMaliciousChainsEndInADefinedState() throws {
        let memory = try GuestMemory(size: 16 << 20)
        for c in cases {
            let d = TestDriver(memory: memory, size: c.size)
            var q = try d.makeQueue(indirect: c.indirect)
            c.setUp(d)
            let outcome: Outcome
            do {
                if let chain = try q.popAvailable() {
                    outcome = .chain(readable: chain.readableLength, writable: chain.writableLength)
                } else {
                    XCTFail("\(c.name): nothing popped")
                    continue
                }
            } catch {
                outcome = error.needsReset ? .needsReset(error) : .requestFailed(error)
            }
            XCTAssertEqual(outcome, c.expected, c.name)

            // And through the device-side policy: a request error returns the head with
            // length 0 and leaves the queue usable; a queue error breaks it and signals.
            let d2 = TestDriver(memory: memory, size: c.size)
            var q2 = try d2.makeQueue(indirect: c.indirect)
            c.setUp(d2)
            let signals = Counter()
            let interrupt = VirtioInterrupt { signals.increment() }
            let chain = q2.nextRequest(interrupt: interrupt)
            switch c.expected {
            case let .requestFailed(e):
                XCTAssertNil(chain, c.name)
                XCTAssertEqual(d2.usedIndex, 1, c.name)
                XCTAssertEqual(d2.usedElement(0).id, UInt32(e.failedHead!), c.name)
                XCTAssertEqual(d2.usedElement(0).length, 0, c.name)
                XCTAssertFalse(interrupt.needsReset, c.name)
                XCTAssertFalse(q2.isBroken, c.name)
                // The queue still works afterwards.
                d2.postChain([d2.buffer([42])])
                XCTAssertEqual(try q2.popAvailable()?.readAll(), [42], c.name)
            case .needsReset:
                XCTAssertNil(chain, c.name)
                XCTAssertTrue(interrupt.needsReset, c.name)
                XCTAssertEqual(interrupt.interruptStatus & VirtioInterruptBit.configChange, 2, c.name)
                XCTAssertEqual(signals.value, 1, c.name)
                XCTAssertTrue(q2.isBroken, c.name)
                XCTAssertEqual(d2.usedIndex, 0, c.name)
                XCTAssertNil(try q2.popAvailable(), c.name)
            case .chain:
                XCTAssertNotNil(chain, c.name)
            }
        }
    }

    func testAddUsedIgnoresHeadsOutsideTheQueue() throws {
        let d = try TestDriver(size: 8)
        var q = try d.makeQueue()
        q.addUsed(head: 8, length: 1)
        q.addUsed(head: 0xffff, length: 1)
        XCTAssertEqual(d.usedIndex, 0)
    }

    func testRingsPlacedOverEachOtherDoNotTrap() throws {
        // Descriptor table, avail and used ring all at the same address: legal memory,
        // nonsense content. The device must still only produce defined outcomes.
        let m = try GuestMemory(size: 16 << 20)
        var q = try Virtqueue(memory: m, size: 8, descriptorTable: 0x1000, availRing: 0x1000, usedRing: 0x1000,
                              eventIndex: true, indirectDescriptors: true)
        try m.write(UInt16(3), at: 0x1002) // avail idx 3, also the used idx field
        let interrupt = VirtioInterrupt {}
        var rounds = 0
        while let c = q.nextRequest(interrupt: interrupt), rounds < 100 {
            q.addUsed(head: c.head, length: 0)
            rounds += 1
        }
        XCTAssertLessThan(rounds, 100)
    }
}

/// A thread-safe counter for interrupt closures.
final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .sequentiallyConsistent) }
    var value: Int { count.load(ordering: .sequentiallyConsistent) }
}
