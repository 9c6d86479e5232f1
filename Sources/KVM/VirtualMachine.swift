import Host
import CKVM
import Glibc

/// A KVM virtual machine file descriptor: memory slots, interrupt controller, PIT,
/// interrupt lines, irqfd/ioeventfd, vCPUs.
public final class VirtualMachine: @unchecked Sendable {
    public let fd: Int32
    let system: KVMSystem

    init(fd: Int32, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    deinit { close(fd) }

    public func setUserMemoryRegion(slot: UInt32, guestAddress: UInt64, size: UInt64,
                                    host: UnsafeMutableRawPointer, readOnly: Bool = false) throws(HostError) {
        var region = kvm_userspace_memory_region(
            slot: slot, flags: readOnly ? CKVM_MEM_READONLY : 0, guest_phys_addr: guestAddress,
            memory_size: size, userspace_addr: UInt64(UInt(bitPattern: host)))
        _ = try check("KVM_SET_USER_MEMORY_REGION slot \(slot)") {
            ckvm_ioctl_ptr(fd, CKVM_KVM_SET_USER_MEMORY_REGION, &region)
        }
    }

    /// Intel VMX needs three pages for the real-mode TSS and one for the identity map,
    /// somewhere the guest will not use: just below the BIOS ROM, inside the MMIO hole.
    public func setTSSAddress(_ address: UInt64) throws(HostError) {
        _ = try check("KVM_SET_TSS_ADDR") { ckvm_ioctl(fd, CKVM_KVM_SET_TSS_ADDR, UInt(address)) }
    }

    public func setIdentityMapAddress(_ address: UInt64) throws(HostError) {
        var a = address
        _ = try check("KVM_SET_IDENTITY_MAP_ADDR") { ckvm_ioctl_ptr(fd, CKVM_KVM_SET_IDENTITY_MAP_ADDR, &a) }
    }

    /// In-kernel PIC, IOAPIC and per-vCPU LAPICs.
    public func createIRQChip() throws(HostError) {
        _ = try check("KVM_CREATE_IRQCHIP") { ckvm_ioctl(fd, CKVM_KVM_CREATE_IRQCHIP, UInt(0)) }
    }

    /// In-kernel i8254 PIT (also answers port 0x61).
    public func createPIT2() throws(HostError) {
        var config = kvm_pit_config()
        _ = try check("KVM_CREATE_PIT2") { ckvm_ioctl_ptr(fd, CKVM_KVM_CREATE_PIT2, &config) }
    }

    /// Sets an interrupt line of the in-kernel irqchip (GSI) to a level.
    public func setIRQLine(_ irq: UInt32, level: Bool) throws(HostError) {
        var line = kvm_irq_level()
        line.irq = irq
        line.level = level ? 1 : 0
        _ = try check("KVM_IRQ_LINE \(irq)") { ckvm_ioctl_ptr(fd, CKVM_KVM_IRQ_LINE, &line) }
    }

    /// Routes writes to `eventfd` to a GSI without a trip through svm.
    public func registerIRQFD(eventfd: Int32, gsi: UInt32) throws(HostError) {
        var irqfd = kvm_irqfd()
        irqfd.fd = UInt32(bitPattern: eventfd)
        irqfd.gsi = gsi
        _ = try check("KVM_IRQFD gsi \(gsi)") { ckvm_ioctl_ptr(fd, CKVM_KVM_IRQFD, &irqfd) }
    }

    /// Makes guest writes to an MMIO (or port) address signal `eventfd` instead of exiting.
    /// With `datamatch`, only writes of that value signal (one eventfd per virtqueue).
    public func registerIOEventFD(eventfd: Int32, address: UInt64, length: UInt32,
                                  datamatch: UInt64? = nil, port: Bool = false) throws(HostError) {
        var e = kvm_ioeventfd()
        e.addr = address
        e.len = length
        e.fd = eventfd
        e.flags = port ? CKVM_IOEVENTFD_FLAG_PIO : 0
        if let datamatch {
            e.datamatch = datamatch
            e.flags |= CKVM_IOEVENTFD_FLAG_DATAMATCH
        }
        _ = try check("KVM_IOEVENTFD 0x\(String(address, radix: 16))") { ckvm_ioctl_ptr(fd, CKVM_KVM_IOEVENTFD, &e) }
    }

    public func createVCPU(id: UInt32) throws(HostError) -> VCPU {
        let vcpufd = try check("KVM_CREATE_VCPU \(id)") { ckvm_ioctl(fd, CKVM_KVM_CREATE_VCPU, UInt(id)) }
        let size = try system.vcpuMmapSize()
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpufd, 0), p != MAP_FAILED else {
            let e = errno
            close(vcpufd)
            throw HostError("mmap kvm_run of vCPU \(id)", errno: e)
        }
        return VCPU(id: id, fd: vcpufd, run: p, runSize: size)
    }
}
