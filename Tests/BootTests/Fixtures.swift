import XCTest
@testable import Boot
import Memory

/// Little-endian stores into a test byte array.
extension Array where Element == UInt8 {
    mutating func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { self[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
}

extension GuestMemory {
    func u8(_ a: UInt64) throws -> UInt8 { try read(UInt8.self, at: a) }
    func u16(_ a: UInt64) throws -> UInt16 { try read(UInt16.self, at: a) }
    func u32(_ a: UInt64) throws -> UInt32 { try read(UInt32.self, at: a) }
    func u64(_ a: UInt64) throws -> UInt64 { try read(UInt64.self, at: a) }
}

/// A minimal bzImage: boot sector + setup sectors with a 2.15 setup header, followed by a
/// protected-mode "kernel" of patterned bytes. Offsets are spelled out as numbers from
/// boot.rst so the tests do not just repeat the loader's constants.
struct BzImageFixture {
    var setupSects: UInt8 = 1
    var version: UInt16 = 0x020F
    var loadflags: UInt8 = 0x01          // LOADED_HIGH
    var xloadflags: UInt16 = 0x0003      // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
    var cmdlineSize: UInt32 = 2047
    var initrdAddrMax: UInt32 = 0x7FFF_FFFF
    var kernelAlignment: UInt32 = 0x20_0000
    var relocatable: UInt8 = 1
    var prefAddress: UInt64 = 0x100_0000 // 16 MiB, LOAD_PHYSICAL_ADDR
    var initSize: UInt32 = 0x100_0000    // 16 MiB
    var headerEndByte: UInt8 = 0x6A      // header ends at 0x202 + 0x6A = 0x26C
    var magic: UInt32 = 0x5372_6448      // "HdrS"
    var kernelSize = 4096

    var setupBytes: Int { (Int(setupSects == 0 ? 4 : setupSects) + 1) * 512 }

    func bytes() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: setupBytes)
        b[0] = 0x4D; b[1] = 0x5A                        // "MZ"
        b[0x1F1] = setupSects
        b.put(UInt32(kernelSize / 16), at: 0x1F4)        // syssize
        b.put(UInt16(0xAA55), at: 0x1FE)                 // boot_flag
        b[0x200] = 0xEB; b[0x201] = headerEndByte        // jmp short
        b.put(magic, at: 0x202)
        b.put(version, at: 0x206)
        b[0x211] = loadflags
        b.put(initrdAddrMax, at: 0x22C)
        b.put(kernelAlignment, at: 0x230)
        b[0x234] = relocatable
        b.put(xloadflags, at: 0x236)
        b.put(cmdlineSize, at: 0x238)
        b.put(prefAddress, at: 0x258)
        b.put(initSize, at: 0x260)
        b += Self.kernelBody(count: kernelSize)
        return b
    }

    static func kernelBody(count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    }
}

/// A minimal ELF64 x86-64 vmlinux: ELF header, two program headers (PT_LOAD, PT_NOTE),
/// the segment contents at 0x1000 and the Xen PHYS32_ENTRY note as the very last bytes,
/// so any truncation of the file cuts into something the loader needs.
struct ElfFixture {
    var loadAddress: UInt64 = 0x100_0000
    var fileSize: UInt64 = 0x200
    var memorySize: UInt64 = 0x3000
    var loadOffset: UInt64 = 0x1000
    var entry: UInt64 = 0x100_0100
    var machine: UInt16 = 62
    var elfClass: UInt8 = 2
    var phoff: UInt64 = 64
    var phnum: UInt16 = 2
    var descriptorSize: UInt32 = 8
    var noteName: [UInt8] = Array("Xen\0".utf8)
    var noteType: UInt32 = 18
    /// Put the note only in a SHT_NOTE section (no PT_NOTE).
    var noteInSectionOnly = false

    static let noteOffset = 0x1200
    static let shoff = 0x1100

    func bytes() -> [UInt8] {
        var note: [UInt8] = []
        note.appendLE(UInt32(noteName.count))
        note.appendLE(descriptorSize)
        note.appendLE(noteType)
        note += noteName
        while note.count % 4 != 0 { note.append(0) }
        if descriptorSize == 8 { note.appendLE(entry) } else { note.appendLE(UInt32(truncatingIfNeeded: entry)) }

        var b = [UInt8](repeating: 0, count: Self.noteOffset + note.count)
        b[0] = 0x7F; b[1] = 0x45; b[2] = 0x4C; b[3] = 0x46
        b[4] = elfClass; b[5] = 1; b[6] = 1
        b.put(UInt16(2), at: 16)              // ET_EXEC
        b.put(machine, at: 18)
        b.put(UInt32(1), at: 20)
        b.put(entry | 0xFFFF_FFFF_8000_0000, at: 24)  // e_entry: virtual, not used by PVH
        b.put(phoff, at: 32)
        b.put(UInt16(64), at: 52)             // e_ehsize
        b.put(UInt16(56), at: 54)             // e_phentsize
        b.put(phnum, at: 56)
        // PT_LOAD
        let ph0 = 64
        b.put(UInt32(1), at: ph0); b.put(UInt32(7), at: ph0 + 4)
        b.put(loadOffset, at: ph0 + 8)
        b.put(loadAddress | 0xFFFF_FFFF_8000_0000, at: ph0 + 16)
        b.put(loadAddress, at: ph0 + 24)
        b.put(fileSize, at: ph0 + 32)
        b.put(memorySize, at: ph0 + 40)
        b.put(UInt64(0x20_0000), at: ph0 + 48)
        // PT_NOTE (or PT_NULL when the note is only reachable through sections)
        let ph1 = 64 + 56
        b.put(UInt32(noteInSectionOnly ? 0 : 4), at: ph1)
        b.put(UInt64(Self.noteOffset), at: ph1 + 8)
        b.put(UInt64(note.count), at: ph1 + 32)
        b.put(UInt64(4), at: ph1 + 48)
        if noteInSectionOnly {
            // Section headers: [0] null, [1] SHT_NOTE covering the note.
            b.put(UInt64(Self.shoff), at: 40)
            b.put(UInt16(64), at: 58)
            b.put(UInt16(2), at: 60)
            let sh1 = Self.shoff + 64
            b.put(UInt32(7), at: sh1 + 4)
            b.put(UInt64(Self.noteOffset), at: sh1 + 24)
            b.put(UInt64(note.count), at: sh1 + 32)
            b.put(UInt64(4), at: sh1 + 48)
        }
        // Segment contents.
        let body = BzImageFixture.kernelBody(count: Int(min(fileSize, 0x100)))
        if loadOffset <= 0x1100 - UInt64(body.count) {
            b.replaceSubrange(Int(loadOffset)..<Int(loadOffset) + body.count, with: body)
        }
        b.replaceSubrange(Self.noteOffset..<b.count, with: note)
        return b
    }
}

/// Asserts `body` throws a BootError (and returns it), never anything else.
@discardableResult
func assertBootError<T>(_ body: () throws(BootError) -> T, file: StaticString = #filePath, line: UInt = #line) -> BootError? {
    do {
        _ = try body()
        XCTFail("expected a BootError", file: file, line: line)
        return nil
    } catch {
        XCTAssertFalse(error.description.isEmpty, file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), "one-line description", file: file, line: line)
        return error
    }
}

func params(_ kernel: [UInt8], initrd: [UInt8]? = nil, cmdline: String = "console=ttyS0", cpus: Int = 1) -> BootParameters {
    BootParameters(kernel: kernel, initrd: initrd, commandLine: cmdline, cpuCount: cpus)
}
