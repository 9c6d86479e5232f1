// The vhost-user frontend (Sources/VhostUser): everything virtiofsd answers, as VirtioFS
// reads it while it negotiates, activates and resets the device. The input is the
// backend's whole byte stream; a thread plays the backend over a real Unix socket.
import Glibc
import Host
import Memory
import Virtio
@testable import VhostUser

enum VhostUserTarget {
    nonisolated(unsafe) static var socketPath = ""
    nonisolated(unsafe) static var listener: Int32 = -1
    static let memory = try! GuestMemory(size: 1 << 20, hugePages: false, backing: .shareable)

    static let target = FuzzTarget(
        name: "vhost-user",
        covers: "vhost-user replies (VhostUserChannel, VhostUserReplyCheck) as VirtioFS negotiates, activates (REPLY_ACK) and resets: a VhostUserError or a failure report, never more than the backend offered",
        seeds: { [
            reply(.getFeatures, u64(VirtioFeature.version1 | VhostUserFeature.protocolFeatures | VirtioFeature.eventIndex))
                + reply(.getProtocolFeatures, u64(VhostUserProtocolFeature.replyAck | VhostUserProtocolFeature.multipleQueues))
                + reply(.getQueueNum, u64(2))
                + [VhostUserRequest.setFeatures, .setMemoryTable].flatMap { reply($0, u64(0)) }
                + (0..<2).flatMap { _ in
                    [VhostUserRequest.setVringNum, .setVringAddress, .setVringBase, .setVringKick, .setVringCall, .setVringEnable]
                        .flatMap { reply($0, u64(0)) }
                }
                + reply(.getVringBase, [0, 0, 0, 0, 0, 0, 0, 0]) + reply(.getVringBase, [1, 0, 0, 0, 0, 0, 0, 0]),
            reply(.getFeatures, u64(VirtioFeature.version1)) + reply(.getVringBase, [0, 0, 0, 0, 0, 0, 0, 0]),
        ] },
        run: { bytes in
            if listener < 0 { listen() }
            let backend = HostThread(name: "fuzz-backend") { [bytes] in serve(bytes) }
            try! backend.start()
            // The device (and its socket) ends with exercise(), so the backend sees svm close.
            exercise()
            backend.join()
        })

    static func exercise() {
            let failures = FailureLog()
            let fs: VirtioFS
            do {
                fs = try VirtioFS(tag: "fuzz", socketPath: socketPath, failure: { failures.add($0) })
            } catch {
                if verbose { complain("vhost-user: VirtioFS.init: \(error)\n") }
                fuzzCheck(!"\(error)".isEmpty && !"\(error)".contains("\n"), "error without one line: \(error)")
                return
            }
            fuzzCheck(fs.offeredFeatures & ~VirtioFS.passedThrough == 0,
                      "offers the guest 0x\(String(fs.offeredFeatures, radix: 16)), more than it passes through")
            fuzzCheck(fs.offeredFeatures & VirtioFeature.version1 != 0, "accepted a backend without VERSION_1")
            let kicks = (0..<fs.queueCount).map { _ in try! EventFD() }
            fs.connectQueueEvents(kicks: kicks, call: try! EventFD())
            var queues: [Virtqueue] = []
            for i in 0..<fs.queueCount {
                let base = UInt64(0x1000 * (i + 1))
                queues.append(try! Virtqueue(memory: memory, size: 8, descriptorTable: base, availRing: base + 0x100,
                                             usedRing: base + 0x200, eventIndex: false, indirectDescriptors: false,
                                             maximumSize: 8))
            }
            let interrupt = VirtioInterrupt(trigger: {}, usedBuffersSignalledElsewhere: true)
            fs.activate(memory: memory, queues: queues, features: fs.offeredFeatures, interrupt: interrupt)
            fs.processQueue(0)
            fs.reset()
            for message in failures.messages {
                if verbose { complain("vhost-user: \(message)\n") }
                fuzzCheck(message.hasPrefix("virtio-fs 'fuzz': ") && !message.contains("\n"), "failure report: \(message)")
            }
            fuzzCheck(failures.messages.isEmpty || interrupt.needsReset, "a failure without NEEDS_RESET")
    }

    /// SVM_FUZZ_VERBOSE=1: say how each input ended (for checking that seeds get far).
    static let verbose = getenv("SVM_FUZZ_VERBOSE") != nil

    final class FailureLog: @unchecked Sendable {
        var messages: [String] = []
        func add(_ m: String) { messages.append(m) }  // called on the fuzzing thread only
    }

    static func listen() {
        socketPath = "/tmp/svm-fuzz-vhost-\(getpid()).sock"
        unlink(socketPath)
        listener = try! UnixSocket.listen(path: socketPath)
        atexit { unlink(VhostUserTarget.socketPath) }
    }

    /// The backend: takes the connection, sends the whole input, stops sending (so every
    /// read past it sees the end, never a timeout), and drains what svm sends until svm closes.
    static func serve(_ bytes: [UInt8]) {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        shutdown(fd, Int32(SHUT_WR))
        var sink = [UInt8](repeating: 0, count: 4096)
        while read(fd, &sink, sink.count) > 0 {}
    }

    static func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    static func reply(_ request: VhostUserRequest, _ payload: [UInt8]) -> [UInt8] {
        let flags = VhostUserFlags.version | VhostUserFlags.reply
        return u64(UInt64(request.rawValue) | UInt64(flags) << 32).prefix(8) + u64(UInt64(payload.count)).prefix(4) + payload
    }
}
