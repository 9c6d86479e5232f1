// The virtio-mmio transport's registers (Sources/Virtio/VirtioMMIOTransport.swift) under
// each device svm offers: every guest MMIO access to a device window lands here, then in
// the device (console, entropy, block, net) on a notification.
import Memory
import Virtio

enum MMIOTarget {
    static let memorySize: UInt64 = 1 << 20
    static let memory = try! GuestMemory(size: memorySize, hugePages: false)

    static let target = FuzzTarget(
        name: "mmio",
        covers: "VirtioMMIOTransport register reads/writes (any offset, size, value, order) with virtio-console, -rng, -blk and -net behind it; rings anywhere in RAM: identity registers stay fixed, a reset clears the state",
        seeds: { [[0, 2, 4], [1, 2, 4, 2, 4], [2, 2, 4, 4], [3, 2, 5, 4, 5]].map { ops in
            ops.flatMap { op -> [UInt8] in [op] + (0..<7).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ Int(op)) } }
        } },
        run: { bytes in
            var r = ByteSource(bytes)
            // The first decision picks the device.
            let kind = r.below(4)
            let disk = InMemoryDisk(sectors: 16)
            let backend = FakeNetBackend(supportedOffloads: r.chance(50) ? .all : [])
            let console = VirtioConsole(output: { _ in })
            let net = VirtioNet(mac: MACAddress(0x02, 0, 0, 0, 0, 1), backend: backend)
            let device: any VirtioDevice = switch kind {
            case 0: console
            case 1: VirtioRNG()
            case 2: VirtioBlock(storage: disk, serial: "fuzz")
            default: net
            }
            let transport = VirtioMMIOTransport(device: device, memory: memory, interrupt: {})
            // Guest RAM starts as whatever the input says.
            try? memory.zero(at: 0, count: memorySize)

            func register(_ offset: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: transport.read(offset: offset, size: 4)) }
            func set(_ offset: UInt64, _ value: UInt64) { transport.write(offset: offset, size: 4, value: value) }

            for _ in 0..<64 where r.position < r.bytes.count {
                switch r.below(8) {
                case 0, 1:  // any write: offset, size and value as the guest likes
                    let offset = r.chance(80) ? r.below(0x44) * 4 : r.below(0x240)
                    transport.write(offset: offset, size: Int(r.pick([4, 4, 1, 2, 8, 3])), value: r.next())
                case 2:  // any read
                    _ = transport.read(offset: r.below(0x240), size: Int(r.pick([4, 1, 2, 8])))
                case 3:  // the driver's setup sequence, with choices left to the input
                    set(0x70, 0)
                    set(0x70, 1)
                    set(0x70, 3)
                    let offered = UInt64(register(0x10)) | UInt64({ set(0x14, 1); return register(0x10) }()) << 32
                    set(0x14, 0)
                    let features = r.chance(70) ? offered : offered & r.next()
                    set(0x24, 0); set(0x20, features & 0xffff_ffff)
                    set(0x24, 1); set(0x20, features >> 32)
                    set(0x70, 11)
                    for q in 0..<4 as Range<UInt64> {
                        set(0x30, q)
                        let size: UInt64 = r.chance(80) ? UInt64(1) << r.below(9) : r.below(0x10000)
                        set(0x38, size)
                        let base = r.chance(80) ? 0x1000 + q * 0x4000 : r.below(memorySize + 0x2000)
                        set(0x80, base & 0xffff_ffff); set(0x84, r.chance(95) ? 0 : r.next() & 0xffff_ffff)
                        set(0x90, base + 16 * size); set(0x94, 0)
                        set(0xa0, (base + 16 * size + 6 + 2 * size + 3) & ~3); set(0xa4, 0)
                        set(0x44, 1)
                    }
                    set(0x70, 15)
                case 4:  // the guest writes its rings and buffers
                    let address = r.chance(70) ? 0x1000 + r.below(0x10000) : r.below(memorySize)
                    let words = (0..<r.below(16) + 1).map { _ in r.next() }
                    for (i, w) in words.enumerated() { try? memory.write(w, at: address + UInt64(8 * i)) }
                case 5:  // a notification, for a queue or not
                    set(0x50, r.chance(90) ? r.below(3) : r.next())
                case 6:  // the host side: console input, a packet from the TAP
                    let data = (0..<r.below(64)).map { _ in UInt8(truncatingIfNeeded: r.next()) }
                    if kind == 0 { console.receive(data) }
                    if kind == 3 {
                        backend.queuePacket(data)
                        net.processBackendInput()
                    }
                default:  // interrupt acknowledgement and config space
                    set(0x64, r.next())
                    _ = transport.read(offset: 0x100 + r.below(0x40), size: Int(r.pick([1, 2, 4, 8])))
                }
                fuzzCheck(register(0x00) == VirtioMMIOTransport.magicValue && register(0x04) == VirtioMMIOTransport.version
                          && register(0x08) == device.deviceType && register(0x0c) == VirtioMMIOTransport.vendorID,
                          "identity registers changed")
            }
            // A reset leaves nothing behind: status 0, no queue ready, inactive.
            set(0x70, 0)
            fuzzCheck(register(0x70) == 0 && !transport.isActive, "status \(register(0x70)) after a reset")
            for q in 0..<4 as Range<UInt64> {
                set(0x30, q)
                fuzzCheck(register(0x44) == 0, "queue \(q) ready after a reset")
            }
        })
}
