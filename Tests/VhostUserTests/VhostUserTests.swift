import Glibc
import Host
import Memory
import Virtio
import XCTest
@testable import VhostUser

final class VhostUserMessageTests: XCTestCase {
    func testHeaderAndPayloads() {
        XCTAssertEqual(VhostUserMessage(.setOwner).bytes, [3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(VhostUserMessage.u64(.setFeatures, 0x1_0000_0001).bytes,
                       [2, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertEqual(VhostUserMessage.vringState(.setVringNum, index: 1, value: 256).payload, [1, 0, 0, 0, 0, 1, 0, 0])
        // vhost_vring_addr: index, flags, desc, *used*, *avail*, log.
        let addr = VhostUserMessage.vringAddress(index: 2, descriptorTable: 0x1000, usedRing: 0x3000, availableRing: 0x2000).payload
        XCTAssertEqual(addr.count, 40)
        XCTAssertEqual(LittleEndian.read(UInt32.self, addr, at: 0), 2)
        XCTAssertEqual(LittleEndian.read(UInt64.self, addr, at: 8), 0x1000)
        XCTAssertEqual(LittleEndian.read(UInt64.self, addr, at: 16), 0x3000)
        XCTAssertEqual(LittleEndian.read(UInt64.self, addr, at: 24), 0x2000)
        let kick = VhostUserMessage.vringDescriptor(.setVringKick, index: 1, fd: 9)
        XCTAssertEqual(kick.payload, [1, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(kick.descriptors, [9])
        XCTAssertEqual(VhostUserMessage(.getFeatures, flags: VhostUserFlags.version | VhostUserFlags.needReply).bytes[4], 0x9)
    }

    /// RAM around the MMIO hole: two regions in the one memfd, each at its file offset.
    func testMemoryTableAroundTheMMIOHole() throws {
        let layout = GuestMemory.layout(size: 4 << 30)
        let table = try MemoryTable(layout: layout, hostBase: 0x7f00_0000_0000, fd: 7)
        XCTAssertEqual(table.regions.count, 2)
        XCTAssertEqual(table.regions[0], .init(guestAddress: 0, size: 0xC000_0000, userAddress: 0x7f00_0000_0000, mmapOffset: 0, fd: 7))
        XCTAssertEqual(table.regions[1], .init(guestAddress: 0x1_0000_0000, size: 0x4000_0000,
                                               userAddress: 0x7f00_C000_0000, mmapOffset: 0xC000_0000, fd: 7))
        let m = VhostUserMessage.memoryTable(table)
        XCTAssertEqual(m.payload.count, 8 + 2 * 32)
        XCTAssertEqual(m.descriptors, [7, 7])
        XCTAssertEqual(LittleEndian.read(UInt32.self, m.payload, at: 0), 2)
        XCTAssertEqual(LittleEndian.read(UInt64.self, m.payload, at: 8 + 32 + 24), 0xC000_0000, "mmap_offset of the high region")
        XCTAssertEqual(table.userAddress(of: 0x1_0000_1000, length: 16), 0x7f00_C000_1000)
        XCTAssertNil(table.userAddress(of: 0xC000_0000, length: 1), "the hole is not RAM")
        XCTAssertNil(table.userAddress(of: 0xBFFF_FFF0, length: 32), "a ring may not run off the end of a region")
        XCTAssertNil(table.userAddress(of: UInt64.max - 4, length: 16), "no wrap-around")
        XCTAssertEqual(try MemoryTable(layout: GuestMemory.layout(size: 512 << 20), hostBase: 0x1000, fd: 3).regions.count, 1)
    }

    func testAnonymousRAMCannotBeShared() throws {
        let memory = try GuestMemory(size: 2 << 20)
        XCTAssertThrowsError(try MemoryTable(memory: memory)) { XCTAssertEqual($0 as? MemoryTable.Failure, .notShareable) }
        let shared = try GuestMemory(size: 2 << 20, backing: .shareable)
        let table = try MemoryTable(memory: shared)
        XCTAssertEqual(table.regions.first?.fd, shared.memfd)
        XCTAssertEqual(table.regions.first?.userAddress, UInt64(UInt(bitPattern: shared.hostBase)))
    }

    func testReplyChecks() {
        func check(_ header: [UInt8], fds: Int = 0, expected: Int = 8) -> VhostUserError? {
            do { _ = try VhostUserReplyCheck.payloadSize(header: header, descriptorCount: fds, for: .getFeatures, expectedSize: expected); return nil }
            catch { return error }
        }
        let good = FakeBackend.reply(.getFeatures, FakeBackend.u64(1)).prefix(12).map { $0 }
        XCTAssertNil(check(good))
        XCTAssertEqual(check(Array(good.prefix(7))), .shortReply(.getFeatures, got: 7))
        XCTAssertEqual(check(good, fds: 1), .unexpectedDescriptors(.getFeatures, count: 1))
        XCTAssertEqual(check(FakeBackend.reply(.setOwner, FakeBackend.u64(1)).prefix(12).map { $0 }),
                       .wrongRequest(expected: .getFeatures, got: 3))
        XCTAssertEqual(check(FakeBackend.reply(.getFeatures, FakeBackend.u64(1), flags: 1).prefix(12).map { $0 }),
                       .notAReply(.getFeatures, flags: 1))
        XCTAssertEqual(check(FakeBackend.reply(.getFeatures, FakeBackend.u64(1), flags: 2 | 4).prefix(12).map { $0 }),
                       .notAReply(.getFeatures, flags: 6), "protocol version 2")
        XCTAssertEqual(check(FakeBackend.reply(.getFeatures, [1, 2, 3, 4]).prefix(12).map { $0 }),
                       .wrongPayloadSize(.getFeatures, expected: 8, got: 4))
        var huge = good
        huge[8] = 0xff; huge[9] = 0xff; huge[10] = 0xff; huge[11] = 0x7f
        XCTAssertEqual(check(huge), .oversizedReply(.getFeatures, size: 0x7fff_ffff))
        for e in [VhostUserError.shortReply(.getFeatures, got: 7), .refused(.setMemoryTable, status: 1), .disconnected(during: .getVringBase)] {
            XCTAssertFalse(e.description.contains("\n"))
            XCTAssertTrue(e.description.contains("GET_FEATURES") || e.description.contains("SET_MEM_TABLE") || e.description.contains("GET_VRING_BASE"), e.description)
        }
    }
}

/// virtio-fs against a scripted backend: negotiation, activation, a backend that lies and
/// one that dies.
final class VirtioFSTests: XCTestCase {
    static let backendFeatures = VirtioFeature.version1 | VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex
        | VhostUserFeature.protocolFeatures | VhostUserFeature.logAll | (1 << 24)

    /// What an honest virtiofsd says.
    static func honest(_ m: FakeBackend.Received) -> FakeBackend.Answer {
        switch VhostUserRequest(rawValue: m.request) {
        case .getFeatures: return .bytes(FakeBackend.reply(.getFeatures, FakeBackend.u64(backendFeatures)))
        case .getProtocolFeatures:
            return .bytes(FakeBackend.reply(.getProtocolFeatures, FakeBackend.u64(VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.multipleQueues | (1 << 5))))
        case .getQueueNum: return .bytes(FakeBackend.reply(.getQueueNum, FakeBackend.u64(2)))
        case .getVringBase: return .bytes(FakeBackend.reply(.getVringBase, Array(m.payload.prefix(4)) + [0, 0, 0, 0]))
        case let r?:
            if m.flags & VhostUserFlags.needReply != 0 { return .bytes(FakeBackend.reply(r, FakeBackend.u64(0))) }
            return .none
        case nil: return .close
        }
    }

    func testNegotiationOffersOnlyRingFeaturesToTheGuest() throws {
        let backend = try FakeBackend(respond: Self.honest)
        let fs = try VirtioFS(tag: "share", socketPath: backend.path, failure: { _ in })
        XCTAssertEqual(fs.offeredFeatures, VirtioFeature.version1 | VirtioFeature.indirectDescriptors | VirtioFeature.eventIndex)
        XCTAssertEqual(fs.deviceType, 26)
        XCTAssertEqual(fs.queueCount, 2)
        XCTAssertTrue(backend.waitFor(5))
        XCTAssertEqual(backend.requests, [3, 1, 15, 16, 17], "SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM")
        XCTAssertEqual(backend.messages[3].payload, FakeBackend.u64(VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.multipleQueues),
                       "only the protocol features svm uses are acked")
        // Config space: the tag, zero-padded to 36 bytes, then one request queue.
        XCTAssertEqual(fs.readConfig(offset: 0, size: 4), 0x7261_6873) // "shar"
        XCTAssertEqual(fs.readConfig(offset: 4, size: 1), UInt64(UInt8(ascii: "e")))
        XCTAssertEqual(fs.readConfig(offset: 5, size: 4), 0)
        XCTAssertEqual(fs.readConfig(offset: 36, size: 4), 1)
        XCTAssertEqual(fs.readConfig(offset: 40, size: 4), 0)
    }

    func testLyingOrDeadBackendsAreOneLineErrors() throws {
        let lies: [(String, @Sendable (FakeBackend.Received) -> FakeBackend.Answer, (VhostUserError) -> Bool)] = [
            ("wrong request", { m in m.request == 1 ? .bytes(FakeBackend.reply(.getProtocolFeatures, FakeBackend.u64(0))) : Self.honest(m) },
             { if case .wrongRequest = $0 { true } else { false } }),
            ("short payload", { m in m.request == 1 ? .bytes(FakeBackend.reply(.getFeatures, [1, 0, 0, 0])) : Self.honest(m) },
             { if case .wrongPayloadSize = $0 { true } else { false } }),
            ("no reply flag", { m in m.request == 1 ? .bytes(FakeBackend.reply(.getFeatures, FakeBackend.u64(1), flags: 1)) : Self.honest(m) },
             { if case .notAReply = $0 { true } else { false } }),
            ("hangs up", { m in m.request == 1 ? .close : Self.honest(m) },
             { if case .disconnected = $0 { true } else { false } }),
            ("no VERSION_1", { m in m.request == 1 ? .bytes(FakeBackend.reply(.getFeatures, FakeBackend.u64(VirtioFeature.eventIndex))) : Self.honest(m) },
             { if case .unsupported = $0 { true } else { false } }),
            ("too few queues", { m in m.request == 17 ? .bytes(FakeBackend.reply(.getQueueNum, FakeBackend.u64(1))) : Self.honest(m) },
             { if case .unsupported = $0 { true } else { false } }),
        ]
        for (name, respond, matches) in lies {
            let backend = try FakeBackend(respond: respond)
            XCTAssertThrowsError(try VirtioFS(tag: "t", socketPath: backend.path, failure: { _ in }), name) { error in
                let e = error as? VhostUserError
                XCTAssertTrue(e.map(matches) ?? false, "\(name): \(error)")
                XCTAssertFalse("\(error)".contains("\n"), name)
            }
        }
        XCTAssertThrowsError(try VirtioFS(tag: String(repeating: "x", count: 37), socketPath: "/nonexistent", failure: { _ in }))
        XCTAssertThrowsError(try VirtioFS(tag: "t", socketPath: "/nonexistent/socket", failure: { _ in })) {
            XCTAssertTrue("\($0)".contains("errno"), "\($0)")
        }
    }

    /// DRIVER_OK hands the backend memory and rings (with their fds); the backend hanging up
    /// later marks the device NEEDS_RESET with one report; reset after that talks to no one.
    func testActivationThenBackendDeath() throws {
        let backend = try FakeBackend(respond: Self.honest)
        let failures = NSLockLite()
        nonisolated(unsafe) var reports: [String] = []
        let fs = try VirtioFS(tag: "share", socketPath: backend.path, failure: { line in failures.locked { reports.append(line) } })
        let memory = try GuestMemory(size: 4 << 20, backing: .shareable)
        let kicks = [try EventFD(), try EventFD()]
        let call = try EventFD()
        fs.connectQueueEvents(kicks: kicks, call: call)
        let loop = try EventLoop(name: "test-loop")
        try fs.register(with: loop)
        try loop.start()
        defer { loop.stop() }
        var queues: [Virtqueue] = []
        for i in 0..<2 {
            let base = UInt64(0x10_0000 + i * 0x10_000)
            queues.append(try Virtqueue(memory: memory, size: 256, descriptorTable: base, availRing: base + 0x1000, usedRing: base + 0x2000))
        }
        let interrupt = VirtioInterrupt(trigger: {}, usedBuffersSignalledElsewhere: true)
        XCTAssertEqual(interrupt.interruptStatus & 1, 1, "a vhost-user device's interrupts are always about used buffers")
        fs.activate(memory: memory, queues: queues, features: VirtioFeature.version1, interrupt: interrupt)
        XCTAssertEqual(fs.health, .running)
        XCTAssertFalse(interrupt.needsReset)
        let sent = backend.messages.dropFirst(5)
        // SET_FEATURES, SET_MEM_TABLE, then per ring NUM, ADDR, BASE, KICK, CALL, ENABLE.
        XCTAssertEqual(sent.map(\.request), [2, 5] + Array(repeating: [8, 9, 10, 12, 13, 18], count: 2).flatMap { $0 })
        XCTAssertTrue(sent.allSatisfy { $0.flags & VhostUserFlags.needReply != 0 }, "REPLY_ACK asked for every set request")
        XCTAssertEqual(LittleEndian.read(UInt64.self, sent.first!.payload, at: 0), VirtioFeature.version1 | VhostUserFeature.protocolFeatures)
        XCTAssertEqual(sent.dropFirst().first?.descriptors, 1, "the memfd rides with SET_MEM_TABLE")
        XCTAssertEqual(sent.filter { $0.request == 12 || $0.request == 13 }.map(\.descriptors), [1, 1, 1, 1])
        let address = sent.first { $0.request == 9 }!.payload
        XCTAssertEqual(LittleEndian.read(UInt64.self, address, at: 8), UInt64(UInt(bitPattern: memory.hostBase)) + 0x10_0000,
                       "ring addresses are svm's, not the guest's")

        backend.hangUp()
        for _ in 0..<200 where !interrupt.needsReset { usleep(10_000) }
        XCTAssertTrue(interrupt.needsReset, "a backend that hangs up puts the device in NEEDS_RESET")
        if case .failed = fs.health {} else { XCTFail("health \(fs.health)") }
        fs.reset()
        fs.activate(memory: memory, queues: queues, features: VirtioFeature.version1, interrupt: interrupt)
        failures.locked {
            XCTAssertEqual(reports.count, 1, "\(reports)")
            XCTAssertTrue(reports.first?.contains("virtio-fs 'share'") == true, "\(reports)")
        }
    }
}

final class VirtiofsdTests: XCTestCase {
    func testMissingVirtiofsdNamesThePackage() {
        XCTAssertThrowsError(try Virtiofsd(index: 0, tag: "t", source: "/tmp", readOnly: false, directory: "/tmp",
                                           executable: "/nonexistent/virtiofsd")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/virtiofsd not found: virtiofsd is in Debian's qemu-system-common package (apt-get install qemu-system-common)")
        }
    }

    func testSourceMustBeADirectory() throws {
        try XCTSkipUnless(geteuid() == 0 && access(Virtiofsd.defaultPath, X_OK) == 0, "needs root and virtiofsd to get past those checks")
        XCTAssertThrowsError(try Virtiofsd(index: 0, tag: "t", source: "/etc/hostname", readOnly: false, directory: "/tmp")) {
            XCTAssertEqual("\($0)", "not a directory")
        }
        XCTAssertThrowsError(try Virtiofsd(index: 0, tag: "t", source: "/nonexistent-dir", readOnly: false, directory: "/tmp")) {
            XCTAssertTrue("\($0)".contains("No such file or directory (errno 2)"), "\($0)")
        }
    }

    /// An engine's state directory can be longer than a socket path may be (Docker's shim:
    /// 64-character IDs under /run/docker/runtime-runc/moby): virtiofsd still listens there,
    /// and svm reaches it.
    func testASocketInADirectoryLongerThanASockaddrHolds() throws {
        try XCTSkipUnless(geteuid() == 0 && access(Virtiofsd.defaultPath, X_OK) == 0, "needs root and virtiofsd")
        var template = Array("/tmp/svm-vfsd.XXXXXX".utf8CString)
        let top = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { system("rm -rf '\(top)'") }
        let directory = top + "/" + String(repeating: "d", count: 64) + "/" + String(repeating: "e", count: 40)
        XCTAssertEqual(system("mkdir -p '\(directory)'"), 0)
        let daemon = try Virtiofsd(index: 0, tag: "t", source: "/tmp", readOnly: false, directory: directory)
        defer { daemon.stop() }
        XCTAssertGreaterThan(daemon.socketPath.utf8.count, UnixSocket.maximumPathLength)
        XCTAssertTrue(daemon.socketPath.hasPrefix(directory + "/"), daemon.socketPath)
        let fd = try UnixSocket.connect(path: daemon.socketPath)
        close(fd)
    }

    /// virtiofsd locks a pid file named after its socket path's text: two VMs' first shares
    /// run at once (short state directories, and long ones given relatively), each its own.
    func testTwoVMsFirstSharesRunAtOnce() throws {
        try XCTSkipUnless(geteuid() == 0 && access(Virtiofsd.defaultPath, X_OK) == 0, "needs root and virtiofsd")
        var template = Array("/tmp/svm-vfsd2.XXXXXX".utf8CString)
        let top = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { system("rm -rf '\(top)'") }
        for length in [8, 100] {
            let parent = top + "/" + String(repeating: "x", count: length)
            let a = parent + "/" + String(repeating: "a", count: 64), b = parent + "/" + String(repeating: "b", count: 64)
            XCTAssertEqual(system("mkdir -p '\(a)' '\(b)'"), 0)
            let first = try Virtiofsd(index: 0, tag: "t", source: "/tmp", readOnly: false, directory: a)
            defer { first.stop() }
            let second = try Virtiofsd(index: 0, tag: "t", source: "/tmp", readOnly: false, directory: b)
            defer { second.stop() }
            XCTAssertTrue(first.isRunning && second.isRunning)
        }
        XCTAssertEqual(Virtiofsd.socketArgument(directory: "/run/svm/web", name: "virtiofsd-0.sock"), "/run/svm/web/virtiofsd-0.sock")
        let long = "/run/docker/runtime-runc/moby/" + String(repeating: "f", count: 64)
        XCTAssertEqual(Virtiofsd.socketArgument(directory: long, name: "virtiofsd-0.sock"),
                       "../" + String(repeating: "f", count: 64) + "/virtiofsd-0.sock")
    }
}
