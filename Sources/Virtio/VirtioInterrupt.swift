import Synchronization

/// How a device tells the driver something happened. The transport owns one per device:
/// it keeps the InterruptStatus bits, the configuration generation and the NEEDS_RESET
/// flag, and calls `trigger` (supplied by the Machine, typically a write to an irqfd).
///
/// Lock-free on purpose: devices call it while holding their own lock, and the transport
/// reads it while holding its register lock, so it must take neither.
public final class VirtioInterrupt: Sendable {
    private let status = Atomic<UInt32>(0)
    private let generation = Atomic<UInt32>(0)
    private let needsResetFlag = Atomic<Bool>(false)
    private let trigger: @Sendable () -> Void
    private let usedBuffersSignalledElsewhere: Bool

    /// `trigger` raises the device's interrupt line once; it may be called from any thread
    /// (vCPU or event loop) and must not call back into the transport or device.
    /// `usedBuffersSignalledElsewhere`: a backend outside svm writes the irqfd directly
    /// (vhost-user), so svm never learns why the line fired; InterruptStatus then always
    /// has the used-buffer bit, and the driver checks its rings on every interrupt (an
    /// interrupt with nothing new is harmless: vring_interrupt finds no used buffers).
    public init(trigger: @escaping @Sendable () -> Void, usedBuffersSignalledElsewhere: Bool = false) {
        self.trigger = trigger
        self.usedBuffersSignalledElsewhere = usedBuffersSignalledElsewhere
    }

    /// The driver has used buffers to look at (InterruptStatus bit 0).
    public func signalUsedBuffer() {
        status.bitwiseOr(VirtioInterruptBit.usedBuffer, ordering: .sequentiallyConsistent)
        trigger()
    }

    /// The device configuration changed: bumps ConfigGeneration (InterruptStatus bit 1).
    public func signalConfigChange() {
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        status.bitwiseOr(VirtioInterruptBit.configChange, ordering: .sequentiallyConsistent)
        trigger()
    }

    /// The device hit an error it cannot recover from without a reset: sets NEEDS_RESET in
    /// the status register and sends a configuration-change interrupt (virtio 1.x §2.1.2).
    public func signalNeedsReset() {
        needsResetFlag.store(true, ordering: .sequentiallyConsistent)
        signalConfigChange()
    }

    /// InterruptStatus as the driver reads it.
    public var interruptStatus: UInt32 {
        status.load(ordering: .sequentiallyConsistent) | (usedBuffersSignalledElsewhere ? VirtioInterruptBit.usedBuffer : 0)
    }
    /// ConfigGeneration as the driver reads it.
    public var configGeneration: UInt32 { generation.load(ordering: .sequentiallyConsistent) }
    /// True once `signalNeedsReset()` was called, until the transport resets the device.
    public var needsReset: Bool { needsResetFlag.load(ordering: .sequentiallyConsistent) }

    /// The saved interrupt state of a snapshot (no interrupt is raised: the in-kernel
    /// irqchip state, restored separately, says whether the line is pending).
    func restore(status: UInt32, generation: UInt32, needsReset: Bool) {
        self.status.store(status, ordering: .sequentiallyConsistent)
        self.generation.store(generation, ordering: .sequentiallyConsistent)
        needsResetFlag.store(needsReset, ordering: .sequentiallyConsistent)
    }

    var pendingStatus: UInt32 { status.load(ordering: .sequentiallyConsistent) }

    /// InterruptACK: the driver handled these bits.
    func acknowledge(_ bits: UInt32) {
        status.bitwiseAnd(~bits, ordering: .sequentiallyConsistent)
    }

    /// Device reset: no pending interrupt, no NEEDS_RESET. The generation keeps counting so
    /// a driver never sees an old value again.
    func reset() {
        status.store(0, ordering: .sequentiallyConsistent)
        needsResetFlag.store(false, ordering: .sequentiallyConsistent)
    }
}
