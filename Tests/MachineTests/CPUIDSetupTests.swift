import CKVM
import XCTest
@testable import Machine

final class CPUIDSetupTests: XCTestCase {
    func entry(_ function: UInt32, _ index: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0,
               ecx: UInt32 = 0, edx: UInt32 = 0) -> kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function
        e.index = index
        e.eax = eax; e.ebx = ebx; e.ecx = ecx; e.edx = edx
        return e
    }

    var supported: [kvm_cpuid_entry2] {
        [entry(0, eax: 0xD),
         entry(1, ebx: 0xFF00_0800, ecx: 0xFFFF_FFFF, edx: 0),
         entry(7, ebx: 0xFFFF_FFFF, ecx: 0xFFFF_FFFF, edx: 0xFFFF_FFFF),
         entry(0xB, edx: 99),
         entry(0xD, eax: 7),
         entry(0x4000_0000, ebx: 0x4B4D_564B),
         entry(0x8000_0001, ecx: 0xFFFF_FFFF, edx: 0xFFFF_FFFF)]
    }

    func leaf(_ entries: [kvm_cpuid_entry2], _ function: UInt32) -> kvm_cpuid_entry2? {
        entries.first { $0.function == function }
    }

    func testAPICIdsAndLogicalCountPerVCPU() throws {
        let setup = CPUIDSetup(supported: supported, cpuCount: 4, hideUnemulatedFeatures: false)
        for id in UInt32(0)..<4 {
            let e = setup.entries(forVCPU: id)
            let l1 = try XCTUnwrap(leaf(e, 1))
            XCTAssertEqual(l1.ebx >> 24, id)
            XCTAssertEqual((l1.ebx >> 16) & 0xFF, 4)
            XCTAssertEqual(l1.ebx & 0xFFFF, 0x0800, "brand/clflush bits kept")
            XCTAssertNotEqual(l1.ecx & (1 << 31), 0, "hypervisor bit")
            XCTAssertEqual(try XCTUnwrap(leaf(e, 0xB)).edx, id)
        }
    }

    func testOrdinaryHostKeepsFeaturesAndKVMSignature() throws {
        let e = CPUIDSetup(supported: supported, cpuCount: 1, hideUnemulatedFeatures: false).entries(forVCPU: 0)
        XCTAssertNotEqual(try XCTUnwrap(leaf(e, 1)).ecx & (1 << 26), 0, "xsave kept")
        XCTAssertNotNil(leaf(e, 0xD))
        XCTAssertEqual(try XCTUnwrap(leaf(e, 0x4000_0000)).ebx, 0x4B4D_564B)
    }

    func testEmulatingHostHidesWhatItsEmulatorCannotRun() throws {
        let e = CPUIDSetup(supported: supported, cpuCount: 1, hideUnemulatedFeatures: true).entries(forVCPU: 0)
        let l1 = try XCTUnwrap(leaf(e, 1))
        XCTAssertEqual(l1.ecx & (1 << 26), 0, "xsave")
        XCTAssertEqual(l1.ecx & (1 << 23), 0, "popcnt")
        XCTAssertEqual(l1.ecx & (1 << 21), 0, "x2apic")
        let l7 = try XCTUnwrap(leaf(e, 7))
        XCTAssertEqual(l7.ebx & (1 << 20), 0, "smap")
        XCTAssertEqual(l7.ebx & (1 << 0), 0, "fsgsbase")
        XCTAssertEqual(l7.ebx & (1 << 9), 0, "erms")
        XCTAssertNotEqual(l7.ebx & (1 << 7), 0, "smep is left alone")
        XCTAssertNil(leaf(e, 0xD), "no XSAVE state leaf without XSAVE")
        XCTAssertEqual(try XCTUnwrap(leaf(e, 0x8000_0001)).edx & (1 << 27), 0, "rdtscp")
    }
}
