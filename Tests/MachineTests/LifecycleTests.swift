import Glibc
import Host
import Synchronization
import XCTest
@testable import Machine

/// The library's lifecycle on a real VM: start, pause (no guest instruction runs), resume,
/// a shutdown request without an agent, end, states and the ended descriptor. The guest
/// writes to the serial port in a tight loop, so its output counts its progress.
final class LifecycleTests: XCTestCase {
    // mov dx, 0x3f8; again: out dx, al; jmp again
    static let spinWriter: [UInt8] = [0xBA, 0xF8, 0x03, 0xEE, 0xEB, 0xFD]

    func makeMachine(cpus: Int = 1) throws -> (Machine, Counter) {
        try XCTSkipUnless(access("/dev/kvm", R_OK | W_OK) == 0, "needs /dev/kvm")
        let path = "/tmp/svm-lifecycle-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).bin"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        _ = Self.spinWriter.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(path) }
        var config = MachineConfig(kernelPath: path)
        config.flatImage = true
        config.memorySize = 16 << 20
        config.cpuCount = cpus
        let counter = Counter()
        config.serialOutput = { bytes in counter.value.add(bytes.count, ordering: .relaxed) }
        return (try Machine(config: config), counter)
    }

    final class Counter: Sendable { let value = Atomic<Int>(0) }

    func testPauseStopsTheGuestAndResumeContinues() throws {
        let (machine, output) = try makeMachine()
        let states = Mutex<[String]>([])
        machine.observe { state in states.withLock { $0.append(state.name) } }
        XCTAssertEqual(machine.state, .created)
        try machine.start(kick: VCPUKick.install())
        XCTAssertEqual(machine.state, .running)
        usleep(100_000)
        XCTAssertGreaterThan(output.value.load(ordering: .relaxed), 0, "the guest is not running")

        XCTAssertTrue(machine.pause())
        XCTAssertEqual(machine.state, .paused)
        let atPause = output.value.load(ordering: .relaxed)
        usleep(300_000)
        XCTAssertEqual(output.value.load(ordering: .relaxed), atPause, "a paused guest executed instructions")

        machine.resume()
        XCTAssertEqual(machine.state, .running)
        usleep(100_000)
        XCTAssertGreaterThan(output.value.load(ordering: .relaxed), atPause, "the resumed guest does not run")

        var p = pollfd(fd: machine.endedDescriptor, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&p, 1, 0), 0, "ended before it was ended")
        machine.end(.killed)
        XCTAssertEqual(poll(&p, 1, 1000), 1)
        XCTAssertEqual(machine.wait(), .killed)
        XCTAssertEqual(machine.state, .ended(.killed))
        XCTAssertEqual(states.withLock { $0 }, ["running", "paused", "running", "exited"])
    }

    func testPauseWithTwoVCPUsAndEndWhilePaused() throws {
        let (machine, _) = try makeMachine(cpus: 2)
        try machine.start(kick: VCPUKick.install())
        XCTAssertTrue(machine.pause())
        XCTAssertTrue(machine.pause(), "pausing a paused VM is a no-op that succeeds")
        machine.end(.userQuit)
        XCTAssertEqual(machine.wait(), .userQuit)
        XCTAssertFalse(machine.pause())
    }

    func testShutdownWithoutAnAgentEndsTheVM() throws {
        let (machine, _) = try makeMachine()
        try machine.start(kick: VCPUKick.install())
        machine.requestShutdown(grace: 5)
        XCTAssertEqual(machine.wait(), .killed)
    }

    func testStartingTwiceIsRefused() throws {
        let (machine, _) = try makeMachine()
        let kick = VCPUKick.install()
        try machine.start(kick: kick)
        XCTAssertThrowsError(try machine.start(kick: kick))
        machine.end(.killed)
        _ = machine.wait()
    }
}
