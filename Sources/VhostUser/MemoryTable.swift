import Memory

/// Guest RAM as a vhost-user backend maps it: one region per contiguous guest-physical
/// range (below the MMIO hole, and above 4 GiB when RAM reaches there), all in the one
/// sealed memfd, each with its offset in that file and its address in svm.
public struct MemoryTable: Equatable, Sendable {
    public struct Region: Equatable, Sendable {
        public let guestAddress: UInt64
        public let size: UInt64
        /// Where svm has the region mapped: the backend translates ring addresses (which
        /// vhost-user gives in the frontend's address space) through this.
        public let userAddress: UInt64
        public let mmapOffset: UInt64
        public let fd: Int32
    }

    public let regions: [Region]

    public init(regions: [Region]) { self.regions = regions }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notShareable
        case tooManyRegions(Int)
        public var description: String {
            switch self {
            case .notShareable: "guest RAM is not shareable (anonymous memory): a vhost-user backend cannot map it"
            case let .tooManyRegions(n): "guest RAM has \(n) regions; a vhost-user memory table holds at most \(VhostUserMessage.maximumDescriptors)"
            }
        }
    }

    public init(memory: GuestMemory) throws(Failure) {
        guard let fd = memory.memfd else { throw .notShareable }
        try self.init(layout: memory.regions, hostBase: UInt64(UInt(bitPattern: memory.hostBase)), fd: fd)
    }

    /// The table for RAM laid out as `layout` mapped at `hostBase` (separate so tests can
    /// check the layout around the MMIO hole without allocating gigabytes).
    public init(layout: [GuestMemory.Region], hostBase: UInt64, fd: Int32) throws(Failure) {
        guard layout.count <= VhostUserMessage.maximumDescriptors else { throw .tooManyRegions(layout.count) }
        regions = layout.map {
            Region(guestAddress: $0.guestAddress, size: $0.size, userAddress: hostBase + $0.hostOffset,
                   mmapOffset: $0.hostOffset, fd: fd)
        }
    }

    /// svm's address of guest-physical `address`, for SET_VRING_ADDR; nil outside RAM.
    public func userAddress(of address: UInt64, length: UInt64) -> UInt64? {
        for r in regions where address >= r.guestAddress && address &+ length >= address && address + length <= r.guestAddress + r.size {
            return r.userAddress + (address - r.guestAddress)
        }
        return nil
    }
}
