/// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte header —
/// request, flags, payload size, all little-endian u32 — then the payload, with file
/// descriptors riding along as SCM_RIGHTS on the same sendmsg.
///
/// Only the requests a frontend of a virtio-fs backend needs are named; the numbers are
/// the spec's, so a trace from QEMU and one from svm read the same.
public enum VhostUserRequest: UInt32, Sendable, CustomStringConvertible {
    case getFeatures = 1
    case setFeatures = 2
    case setOwner = 3
    case resetOwner = 4
    case setMemoryTable = 5
    case setVringNum = 8
    case setVringAddress = 9
    case setVringBase = 10
    case getVringBase = 11
    case setVringKick = 12
    case setVringCall = 13
    case setVringErr = 14
    case getProtocolFeatures = 15
    case setProtocolFeatures = 16
    case getQueueNum = 17
    case setVringEnable = 18
    case resetDevice = 34

    public var description: String {
        switch self {
        case .getFeatures: "GET_FEATURES"
        case .setFeatures: "SET_FEATURES"
        case .setOwner: "SET_OWNER"
        case .resetOwner: "RESET_OWNER"
        case .setMemoryTable: "SET_MEM_TABLE"
        case .setVringNum: "SET_VRING_NUM"
        case .setVringAddress: "SET_VRING_ADDR"
        case .setVringBase: "SET_VRING_BASE"
        case .getVringBase: "GET_VRING_BASE"
        case .setVringKick: "SET_VRING_KICK"
        case .setVringCall: "SET_VRING_CALL"
        case .setVringErr: "SET_VRING_ERR"
        case .getProtocolFeatures: "GET_PROTOCOL_FEATURES"
        case .setProtocolFeatures: "SET_PROTOCOL_FEATURES"
        case .getQueueNum: "GET_QUEUE_NUM"
        case .setVringEnable: "SET_VRING_ENABLE"
        case .resetDevice: "RESET_DEVICE"
        }
    }
}

public enum VhostUserFlags {
    /// Bits 0–1: the protocol version, always 1.
    public static let version: UInt32 = 0x1
    public static let versionMask: UInt32 = 0x3
    /// Set by the backend on every reply.
    public static let reply: UInt32 = 1 << 2
    /// Set by the frontend: answer with a u64 status (REPLY_ACK protocol feature).
    public static let needReply: UInt32 = 1 << 3
}

public enum VhostUserFeature {
    /// In GET_FEATURES: the backend speaks the protocol-feature extension; acked back in
    /// SET_FEATURES. Never offered to the guest: it is not a virtio feature.
    public static let protocolFeatures: UInt64 = 1 << 30
    /// VHOST_F_LOG_ALL: dirty logging for migration, which svm does not do.
    public static let logAll: UInt64 = 1 << 26
}

public enum VhostUserProtocolFeature {
    public static let multipleQueues: UInt64 = 1 << 0
    public static let replyAck: UInt64 = 1 << 3
    public static let configureMemorySlots: UInt64 = 1 << 15
}

/// One message as it goes on the wire.
public struct VhostUserMessage: Equatable, Sendable {
    public static let headerSize = 12
    /// The spec's table has at most 8 regions, and no payload svm sends or accepts is
    /// larger than that table (8 + 8 × 32 bytes).
    public static let maximumPayload = 8 + 8 * 32
    public static let maximumDescriptors = 8

    public var request: VhostUserRequest
    public var flags: UInt32
    public var payload: [UInt8]
    public var descriptors: [Int32]

    public init(_ request: VhostUserRequest, flags: UInt32 = VhostUserFlags.version, payload: [UInt8] = [], descriptors: [Int32] = []) {
        self.request = request
        self.flags = flags
        self.payload = payload
        self.descriptors = descriptors
    }

    /// Header and payload, ready for sendmsg.
    public var bytes: [UInt8] {
        var b: [UInt8] = []
        b.reserveCapacity(Self.headerSize + payload.count)
        LittleEndian.append(request.rawValue, to: &b)
        LittleEndian.append(flags, to: &b)
        LittleEndian.append(UInt32(payload.count), to: &b)
        return b + payload
    }

    // MARK: Payloads

    public static func u64(_ request: VhostUserRequest, _ value: UInt64, flags: UInt32 = VhostUserFlags.version) -> VhostUserMessage {
        var p: [UInt8] = []
        LittleEndian.append(value, to: &p)
        return VhostUserMessage(request, flags: flags, payload: p)
    }

    /// `struct vhost_vring_state { unsigned int index; unsigned int num; }`.
    public static func vringState(_ request: VhostUserRequest, index: UInt32, value: UInt32, flags: UInt32 = VhostUserFlags.version) -> VhostUserMessage {
        var p: [UInt8] = []
        LittleEndian.append(index, to: &p)
        LittleEndian.append(value, to: &p)
        return VhostUserMessage(request, flags: flags, payload: p)
    }

    /// `struct vhost_vring_addr`: index, flags, then the descriptor table, *used* ring and
    /// *available* ring (that order), and the log address — as addresses in the
    /// frontend's own address space, which the backend maps through the memory table.
    public static func vringAddress(index: UInt32, descriptorTable: UInt64, usedRing: UInt64, availableRing: UInt64,
                                    flags: UInt32 = VhostUserFlags.version) -> VhostUserMessage {
        var p: [UInt8] = []
        LittleEndian.append(index, to: &p)
        LittleEndian.append(UInt32(0), to: &p) // no VHOST_VRING_F_LOG
        LittleEndian.append(descriptorTable, to: &p)
        LittleEndian.append(usedRing, to: &p)
        LittleEndian.append(availableRing, to: &p)
        LittleEndian.append(UInt64(0), to: &p)
        return VhostUserMessage(.setVringAddress, flags: flags, payload: p)
    }

    /// SET_VRING_KICK / SET_VRING_CALL: the ring index in bits 0–7 and the eventfd as
    /// the message's one descriptor.
    public static func vringDescriptor(_ request: VhostUserRequest, index: UInt32, fd: Int32, flags: UInt32 = VhostUserFlags.version) -> VhostUserMessage {
        var m = u64(request, UInt64(index & 0xFF), flags: flags)
        m.descriptors = [fd]
        return m
    }

    /// SET_MEM_TABLE: `num_regions`, padding, then one `{guest_phys_addr, memory_size,
    /// userspace_addr, mmap_offset}` per region, each with its fd.
    public static func memoryTable(_ table: MemoryTable, flags: UInt32 = VhostUserFlags.version) -> VhostUserMessage {
        var p: [UInt8] = []
        LittleEndian.append(UInt32(table.regions.count), to: &p)
        LittleEndian.append(UInt32(0), to: &p)
        for r in table.regions {
            LittleEndian.append(r.guestAddress, to: &p)
            LittleEndian.append(r.size, to: &p)
            LittleEndian.append(r.userAddress, to: &p)
            LittleEndian.append(r.mmapOffset, to: &p)
        }
        return VhostUserMessage(.setMemoryTable, flags: flags, payload: p, descriptors: table.regions.map(\.fd))
    }
}

enum LittleEndian {
    static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    static func read<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
        var v: T = 0
        for i in (0..<MemoryLayout<T>.size).reversed() { v = v << 8 | T(bytes[offset + i]) }
        return v
    }
}
