// Numbers from the virtio 1.x specification that more than one file needs.

/// Device type ids (virtio 1.x §5, "Device Types").
public enum VirtioDeviceType {
    public static let net: UInt32 = 1
    public static let block: UInt32 = 2
    public static let console: UInt32 = 3
    public static let entropy: UInt32 = 4
    public static let filesystem: UInt32 = 26
}

/// Device-independent feature bits (virtio 1.x §6, "Reserved Feature Bits").
public enum VirtioFeature {
    /// VIRTIO_F_INDIRECT_DESC (28): the driver may use indirect descriptor tables.
    public static let indirectDescriptors: UInt64 = 1 << 28
    /// VIRTIO_F_EVENT_IDX (29): used_event / avail_event notification suppression.
    public static let eventIndex: UInt64 = 1 << 29
    /// VIRTIO_F_VERSION_1 (32): a modern (non-legacy) device; mandatory for virtio-mmio v2.
    public static let version1: UInt64 = 1 << 32
}

/// Bits of the device status register (virtio 1.x §2.1).
public enum VirtioStatus {
    public static let acknowledge: UInt32 = 1
    public static let driver: UInt32 = 2
    public static let driverOK: UInt32 = 4
    public static let featuresOK: UInt32 = 8
    public static let needsReset: UInt32 = 0x40
    public static let failed: UInt32 = 0x80
}

/// Bits of the virtio-mmio InterruptStatus / InterruptACK registers.
public enum VirtioInterruptBit {
    /// The device used a buffer in at least one virtqueue.
    public static let usedBuffer: UInt32 = 1
    /// The device configuration changed (or the device needs a reset).
    public static let configChange: UInt32 = 2
}
