import Memory
import Virtio

// virtio-net's part of the fuzz driver (see FuzzScenario.swift); free of XCTest for the
// same reason.

extension FuzzScenario {
    /// A virtio-net device on the random queue: random offloads on the TAP, any subset of
    /// the offered features (dependencies or not), random packets and headers from the TAP,
    /// the driver's random chains and headers on transmit. Beyond not trapping, nothing
    /// may reach the TAP that the negotiated features do not allow.
    static func runNet<S: FuzzSource>(_ r: inout S, memory: GuestMemory, queue: Virtqueue) -> [String] {
        var problems: [String] = []
        let backend = FakeNetBackend(supportedOffloads: r.chance(50) ? .all : NetOffloads(rawValue: UInt32(r.below(8))))
        let net = VirtioNet(mac: MACAddress(0x02, 0, 0, 0, 0, 1), backend: backend)
        let features = r.chance(50) ? net.offeredFeatures : net.offeredFeatures & r.next()
        for _ in 0..<r.below(4) { backend.queuePacket(randomNetPacket(&r)) }
        // receiveq and transmitq may even share the ring: a driver can set them up so.
        net.activate(memory: memory, queues: [queue, queue], features: features, interrupt: VirtioInterrupt {})
        for _ in 0..<(Int(queue.size) + 8) {
            switch r.below(4) {
            case 0: net.processQueue(0)
            case 1: net.processQueue(1)
            case 2: net.processBackendInput()
            default: backend.queuePacket(randomNetPacket(&r))
            }
            if r.chance(3) {
                try? memory.write(UInt16(truncatingIfNeeded: r.next() % (UInt64(queue.size) + 2)), at: queue.availRing + 2)
            }
        }
        for packet in backend.sentPackets {
            let frameLength = packet.count - VirtioNetHeader.size
            guard frameLength > 0, frameLength <= VirtioNet.maxFrameSize, let header = VirtioNetHeader(packet) else {
                problems.append("sent a \(packet.count)-byte packet")
                continue
            }
            if let problem = header.transmitProblem(frameLength: frameLength, negotiated: features) {
                problems.append("sent a header with \(problem)")
            }
        }
        net.reset()
        return problems
    }

    /// A virtio_net_hdr that is often nearly right: the fields Linux and the TAP use, with
    /// the values that are legal, illegal in one way, or extreme.
    static func plausibleNetHeader<S: FuzzSource>(_ r: inout S) -> [UInt8] {
        if r.chance(40) {
            // What Linux writes for a TSO frame, so the accepting paths get their share.
            return VirtioNetHeader(flags: 1, gsoType: r.pick([1, 4]), headerLength: r.pick([54, 74]),
                                   gsoSize: r.pick([1448, 1428, 536]), checksumStart: r.pick([34, 54]),
                                   checksumOffset: 16, bufferCount: 0).bytes
        }
        return VirtioNetHeader(flags: r.pick([0, 1, 1, 2, 3, 0x80, UInt8(truncatingIfNeeded: r.next())]),
                        gsoType: r.pick([0, 0, 1, 1, 4, 3, 0x81, 7]),
                        headerLength: r.pick([0, 54, 74, UInt16(r.below(2000)), 0xffff]),
                        gsoSize: r.pick([0, 1448, 1, UInt16(truncatingIfNeeded: r.next())]),
                        checksumStart: r.pick([14, 34, 54, UInt16(r.below(3000)), 0xffff]),
                        checksumOffset: r.pick([6, 16, UInt16(r.below(64)), 0xffff]),
                        bufferCount: UInt16(truncatingIfNeeded: r.next())).bytes
    }

    /// What the TAP might deliver: mostly small frames, now and then one of TSO size or
    /// larger than any frame may be, or too short to carry a header.
    static func randomNetPacket<S: FuzzSource>(_ r: inout S) -> [UInt8] {
        let length: Int = r.pick([0, 5, 12, 13, 60, 1514, Int(r.below(3000)), Int(r.below(3000)),
                                  r.chance(20) ? Int(r.below(70000)) : 100])
        var packet = [UInt8](repeating: 0x42, count: length)
        if length >= VirtioNetHeader.size {
            let header = r.chance(80) ? plausibleNetHeader(&r) : (0..<12).map { _ in UInt8(truncatingIfNeeded: r.next()) }
            packet.replaceSubrange(0..<VirtioNetHeader.size, with: header)
        }
        return packet
    }
}
