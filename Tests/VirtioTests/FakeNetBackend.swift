import Synchronization
import Virtio

// Free of XCTest: scripts/fuzz compiles this file into its harness too (target virtqueue).

/// A `NetBackend` that records what the device sent and which offloads it asked for, and
/// replays queued packets (header and frame) as the TAP would deliver them.
final class FakeNetBackend: NetBackend {
    private struct State {
        var sent: [[UInt8]] = []
        var incoming: [[UInt8]] = []
        var offloadRequests: [NetOffloads] = []
    }
    private let state = Mutex(State())
    let supportedOffloads: NetOffloads
    /// setReceiveOffloads fails (as TUNSETOFFLOAD on a kernel that changed its mind would).
    let refusesOffloads: Bool

    struct Refused: Error {}

    init(supportedOffloads: NetOffloads = [], refusesOffloads: Bool = false) {
        self.supportedOffloads = supportedOffloads
        self.refusesOffloads = refusesOffloads
    }

    func setReceiveOffloads(_ offloads: NetOffloads) throws {
        state.withLock { $0.offloadRequests.append(offloads) }
        if refusesOffloads { throw Refused() }
    }

    func send(_ packet: [UInt8]) throws { state.withLock { $0.sent.append(packet) } }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int? {
        state.withLock { s in
            guard !s.incoming.isEmpty else { return nil }
            let p = s.incoming.removeFirst()
            let n = min(p.count, buffer.count)
            buffer.copyBytes(from: p[..<n])
            return n
        }
    }

    /// Queues `frame` behind `header` (all zeros by default).
    func queue(_ frame: [UInt8], header: VirtioNetHeader = VirtioNetHeader()) {
        queuePacket(header.bytes + frame)
    }

    /// Queues raw bytes, header included or not.
    func queuePacket(_ packet: [UInt8]) { state.withLock { $0.incoming.append(packet) } }

    var sentPackets: [[UInt8]] { state.withLock { $0.sent } }
    var sentFrames: [[UInt8]] { sentPackets.map { Array($0.dropFirst(VirtioNetHeader.size)) } }
    var sentHeaders: [VirtioNetHeader?] { sentPackets.map { VirtioNetHeader($0) } }
    var offloadRequests: [NetOffloads] { state.withLock { $0.offloadRequests } }
    var waiting: Int { state.withLock { $0.incoming.count } }
}
