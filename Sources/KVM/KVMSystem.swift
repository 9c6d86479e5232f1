import Host
import CKVM
import Glibc

/// The /dev/kvm handle: API version, capabilities, supported CPUID, and creating VMs.
public final class KVMSystem: @unchecked Sendable {
    public let fd: Int32
    public static let expectedAPIVersion: Int32 = 12

    /// Opens /dev/kvm (or `path`) and checks the API version. Never gate on /proc/cpuinfo's
    /// vmx/svm flags: nested hosts hide them although KVM works (see docs).
    public init(path: String = "/dev/kvm") throws(HostError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw HostError("open \(path)", errno: errno) }
        self.fd = fd
        let version = ckvm_ioctl(fd, CKVM_KVM_GET_API_VERSION, UInt(0))
        guard version == Self.expectedAPIVersion else {
            close(fd)
            throw HostError("KVM_GET_API_VERSION (got \(version), need \(Self.expectedAPIVersion))", errno: EINVAL)
        }
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value.
    public func checkExtension(_ capability: Int32) -> Int32 {
        max(0, ckvm_ioctl(fd, CKVM_KVM_CHECK_EXTENSION, UInt(capability)))
    }

    public func vcpuMmapSize() throws(HostError) -> Int {
        Int(try check("KVM_GET_VCPU_MMAP_SIZE") { ckvm_ioctl(fd, CKVM_KVM_GET_VCPU_MMAP_SIZE, UInt(0)) })
    }

    /// KVM_GET_SUPPORTED_CPUID: the CPUID leaves this host's KVM can present to a guest.
    public func supportedCPUID() throws(HostError) -> [kvm_cpuid_entry2] {
        var capacity: UInt32 = 128
        while true {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: ckvm_cpuid2_size(capacity), alignment: 8)
            defer { buffer.deallocate() }
            let cpuid = buffer.bindMemory(to: kvm_cpuid2.self, capacity: 1)
            cpuid.pointee.nent = capacity
            let r = ckvm_ioctl_ptr(fd, CKVM_KVM_GET_SUPPORTED_CPUID, buffer)
            if r < 0 {
                if errno == E2BIG && capacity < 4096 { capacity *= 2; continue }
                throw HostError("KVM_GET_SUPPORTED_CPUID", errno: errno)
            }
            let n = Int(cpuid.pointee.nent)
            let entries = (buffer + MemoryLayout<kvm_cpuid2>.size).bindMemory(to: kvm_cpuid_entry2.self, capacity: n)
            return Array(UnsafeBufferPointer(start: entries, count: n))
        }
    }

    public func createVM() throws(HostError) -> VirtualMachine {
        let vmfd = try check("KVM_CREATE_VM") { ckvm_ioctl(fd, CKVM_KVM_CREATE_VM, UInt(0)) }
        return VirtualMachine(fd: vmfd, system: self)
    }

    /// True on hosts whose KVM runs guest kernel code through its instruction emulator
    /// (the `kvm_pvm` module): there svm hides CPU features and completes instructions.
    public static var hostEmulatesGuestKernel: Bool {
        access("/sys/module/kvm_pvm", F_OK) == 0
    }
}
