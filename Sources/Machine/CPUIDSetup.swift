import CKVM

/// Builds each vCPU's CPUID table from what KVM supports: per-vCPU APIC ids, the
/// hypervisor bit, and, on hosts that emulate guest kernel code, without the features
/// that emulator cannot execute (see docs/ci-host-kvm notes in README).
struct CPUIDSetup {
    let supported: [kvm_cpuid_entry2]
    let cpuCount: Int
    let hideUnemulatedFeatures: Bool

    /// Feature bits hidden on emulating hosts, by (leaf, subleaf, register) — the same set
    /// as the `clearcpuid=` list svm passes on the command line (CPUID alone is not
    /// always honoured there, the command line is).
    static let hiddenOnEmulatingHosts: [(leaf: UInt32, index: UInt32, ecx: UInt32, ebx: UInt32, edx: UInt32)] = [
        // leaf 1 ECX: pclmulqdq(1) pcid(17) x2apic(21) movbe(22) popcnt(23) tsc_deadline(24)
        // aes(25) xsave(26) osxsave(27) avx(28) rdrand(30)
        (1, 0, ecx: 1 << 1 | 1 << 17 | 1 << 21 | 1 << 22 | 1 << 23 | 1 << 24 | 1 << 25 | 1 << 26 | 1 << 27 | 1 << 28 | 1 << 30,
         ebx: 0, edx: 0),
        // leaf 7 EBX: fsgsbase(0) bmi1(3) avx2(5) bmi2(8) erms(9) invpcid(10) avx512f(16)
        // rdseed(18) adx(19) smap(20) clflushopt(23) clwb(24) sha(29)
        // ECX: umip(2) pku(3) rdpid(22); EDX: fsrm(4)
        (7, 0, ecx: 1 << 2 | 1 << 3 | 1 << 22,
         ebx: 1 << 0 | 1 << 3 | 1 << 5 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 16 | 1 << 18 | 1 << 19 | 1 << 20 | 1 << 23 | 1 << 24 | 1 << 29,
         edx: 1 << 4),
        // leaf 0x80000001 ECX: abm/lzcnt(5); EDX: rdtscp(27)
        (0x8000_0001, 0, ecx: 1 << 5, ebx: 0, edx: 1 << 27),
    ]

    func entries(forVCPU id: UInt32) -> [kvm_cpuid_entry2] {
        var result: [kvm_cpuid_entry2] = []
        for var e in supported {
            if hideUnemulatedFeatures {
                // Without XSAVE there is no XSAVE state leaf to describe.
                if e.function == 0xD { continue }
                for h in Self.hiddenOnEmulatingHosts where h.leaf == e.function && h.index == e.index {
                    e.ecx &= ~h.ecx
                    e.ebx &= ~h.ebx
                    e.edx &= ~h.edx
                }
            }
            switch e.function {
            case 1:
                // EBX[31:24] initial APIC id, [23:16] logical processors per package.
                e.ebx = (e.ebx & 0x0000_FFFF) | (id << 24) | (UInt32(min(cpuCount, 255)) << 16)
                e.ecx |= 1 << 31  // running under a hypervisor
                if cpuCount > 1 { e.edx |= 1 << 28 }  // HTT: the logical count above is valid
            case 0xB, 0x1F:
                // Extended topology: x2APIC id of this vCPU.
                e.edx = id
            default:
                break
            }
            result.append(e)
        }
        return result
    }
}
