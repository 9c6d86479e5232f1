import Glibc
import Synchronization
import XCTest
@testable import Host

/// The event loop with sources added, changed and removed while it runs.
final class EventLoopTests: XCTestCase {
    final class Recorder: EventSource {
        let hits = Atomic<Int>(0)
        let event: EventFD
        init() throws { event = try EventFD() }
        func handleEvent(fd: Int32, events: UInt32) {
            event.drain()
            hits.add(1, ordering: .relaxed)
        }
    }

    func waitUntil(_ condition: () -> Bool, timeout: Double = 2) -> Bool {
        let end = MonotonicClock.now() + timeout
        while MonotonicClock.now() < end {
            if condition() { return true }
            usleep(2_000)
        }
        return condition()
    }

    func testSourcesAddedWhileRunningAreServed() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let a = try Recorder()
        try loop.add(fd: a.event.fd, source: a)
        a.event.signal()
        XCTAssertTrue(waitUntil { a.hits.load(ordering: .relaxed) == 1 })
        let b = try Recorder()
        try loop.add(fd: b.event.fd, source: b)
        b.event.signal()
        a.event.signal()
        XCTAssertTrue(waitUntil { b.hits.load(ordering: .relaxed) == 1 && a.hits.load(ordering: .relaxed) == 2 })
        XCTAssertEqual(loop.registeredCount, 2)
    }

    func testRemovedSourceGetsNoMoreEvents() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let a = try Recorder()
        try loop.add(fd: a.event.fd, source: a)
        a.event.signal()
        XCTAssertTrue(waitUntil { a.hits.load(ordering: .relaxed) == 1 })
        loop.remove(fd: a.event.fd)
        a.event.signal()
        usleep(50_000)
        XCTAssertEqual(a.hits.load(ordering: .relaxed), 1)
        XCTAssertEqual(loop.registeredCount, 0)
    }

    func testEmptyInterestPausesASourceAndReadableResumesIt() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let a = try Recorder()
        try loop.add(fd: a.event.fd, events: [], source: a)
        a.event.signal()
        usleep(50_000)
        XCTAssertEqual(a.hits.load(ordering: .relaxed), 0, "a source with no interest was served")
        try loop.modify(fd: a.event.fd, events: .readable)
        XCTAssertTrue(waitUntil { a.hits.load(ordering: .relaxed) == 1 })
    }

    func testDoubleRegistrationAndUnknownModifyFail() throws {
        let loop = try EventLoop()
        let a = try Recorder()
        try loop.add(fd: a.event.fd, source: a)
        XCTAssertThrowsError(try loop.add(fd: a.event.fd, source: a)) { error in
            XCTAssertEqual((error as? HostError)?.errno, EEXIST)
        }
        XCTAssertThrowsError(try loop.modify(fd: 12345, events: .readable))
    }

    func testTimerFiresOnceThroughTheLoop() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let timer = try TimerFD()
        let fired = Atomic<Int>(0)
        try loop.add(fd: timer.fd, source: EventHandler { _, _ in
            timer.acknowledge()
            fired.add(1, ordering: .relaxed)
        })
        timer.arm(after: 0.05)
        XCTAssertTrue(waitUntil { fired.load(ordering: .relaxed) == 1 })
        usleep(100_000)
        XCTAssertEqual(fired.load(ordering: .relaxed), 1)
    }

    func testStopEndsTheThreadAndIsIdempotent() throws {
        let loop = try EventLoop()
        try loop.start()
        loop.stop()
        loop.stop()
    }
}
