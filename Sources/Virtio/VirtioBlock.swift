import Snapshot
import Glibc
import Memory
import Synchronization

/// virtio-blk (device type 2): one request queue in front of a `BlockStorage`, normally a
/// raw `DiskImage`. Requests run synchronously (pread/pwrite straight into guest RAM) on
/// the thread that delivered the notification, which is the event loop with ioeventfd.
public final class VirtioBlock: VirtioDevice {
    // Device feature bits (virtio 1.x §5.2.3).
    public static let featureSegMax: UInt64 = 1 << 2
    public static let featureReadOnly: UInt64 = 1 << 5
    public static let featureBlockSize: UInt64 = 1 << 6
    public static let featureFlush: UInt64 = 1 << 9

    public static let queueSize: UInt16 = 256

    public let storage: any BlockStorage
    /// The GET_ID answer (at most 20 bytes used).
    public let serial: [UInt8]
    private let config: [UInt8]
    private let active = Mutex<ActiveQueues?>(nil)

    /// Opens the raw image at `path` (see `DiskImage` for locking and size rules).
    /// The serial defaults to "svm" and the file's inode, so it is stable across boots.
    public convenience init(path: String, readOnly: Bool, serial: String? = nil) throws(DiskError) {
        let image = try DiskImage(path: path, readOnly: readOnly)
        var st = stat()
        let id = fstat(image.fileDescriptor, &st) == 0 ? "svm-\(String(st.st_ino, radix: 16))" : "svm-disk"
        self.init(storage: image, serial: serial ?? id)
    }

    public init(storage: any BlockStorage, serial: String) {
        self.storage = storage
        self.serial = Array(serial.utf8.prefix(BlockRequest.idLength))
        // struct virtio_blk_config: capacity (sectors) at 0, size_max at 8 (feature not
        // offered), seg_max at 12, geometry at 16 (not offered), blk_size at 20.
        var c = [UInt8](repeating: 0, count: 0x3c)
        ConfigSpace.put(storage.byteCount / UInt64(BlockRequest.sectorSize), into: &c, at: 0)
        // Linux adds a header and a status descriptor to seg_max data segments; the whole
        // chain must fit in the queue.
        ConfigSpace.put(UInt32(Self.queueSize - 2), into: &c, at: 12)
        ConfigSpace.put(UInt32(BlockRequest.sectorSize), into: &c, at: 20)
        self.config = c
    }

    public var deviceType: UInt32 { VirtioDeviceType.block }
    public var queueCount: Int { 1 }
    public var maxQueueSize: UInt16 { Self.queueSize }
    public var offeredFeatures: UInt64 {
        VirtioFeature.version1 | VirtioFeature.eventIndex | VirtioFeature.indirectDescriptors
            | Self.featureSegMax | Self.featureBlockSize | Self.featureFlush
            | (storage.isReadOnly ? Self.featureReadOnly : 0)
    }

    /// Capacity in 512-byte sectors.
    public var capacity: UInt64 { storage.byteCount / UInt64(BlockRequest.sectorSize) }

    public func readConfig(offset: Int, size: Int) -> UInt64 {
        ConfigSpace.read(config, offset: offset, size: size)
    }

    public func writeConfig(offset: Int, size: Int, value: UInt64) {
        // Only `writeback` is writable, with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
    }

    public func activate(memory: GuestMemory, queues: [Virtqueue], features: UInt64, interrupt: VirtioInterrupt) {
        active.withLock { $0 = ActiveQueues(memory: memory, queues: queues, features: features, interrupt: interrupt) }
    }

    public func processQueue(_ index: Int) {
        active.withLock { a in
            a?.drain(index) { chain in
                BlockRequest.process(chain, storage: storage, serial: serial)
            }
        }
    }

    public func reset() {
        active.withLock { $0 = nil }
    }
}

/// Requests run to completion before the device loop parks, so the ring positions are
/// the whole state. The disk itself is the caller's to keep unchanged (the manifest's
/// fingerprint).
extension VirtioBlock: Snapshottable {
    public func saveState(to w: inout StateWriter) {
        active.withLock { $0.savePositions(to: &w) }
    }

    public func restoreState(from r: inout StateReader) throws(SnapshotError) {
        try active.withLock { (a) throws(SnapshotError) in try a.restorePositions(from: &r) }
    }
}
