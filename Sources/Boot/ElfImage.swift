/// An ELF64 x86-64 vmlinux, reduced to what a PVH boot needs: the PT_LOAD segments and
/// the 32-bit entry from the Xen PHYS32_ENTRY note. Every offset and size comes from the
/// file, so each is bounds- and overflow-checked before use.
struct ElfImage: Equatable {
    struct Segment: Equatable {
        var fileOffset: UInt64
        var fileSize: UInt64
        /// Guest-physical load address (p_paddr).
        var address: UInt64
        var memorySize: UInt64
    }

    var segments: [Segment]
    var pvhEntry: UInt32

    static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]  // "\x7FELF"
    static let headerSize: UInt64 = 64
    static let programHeaderSize: UInt64 = 56
    static let sectionHeaderSize: UInt64 = 64
    static let machineX86_64: UInt16 = 62
    static let typeExecutable: UInt16 = 2
    static let ptLoad: UInt32 = 1, ptNote: UInt32 = 4, shtNote: UInt32 = 7

    static func hasMagic(_ file: FileBytes) -> Bool {
        file.slice(0, length: 4) == magic
    }

    init(_ file: FileBytes) throws(BootError) {
        guard Self.hasMagic(file) else { throw .unknownKernelFormat }
        guard file.contains(0, length: Self.headerSize) else {
            throw .kernelTruncated(what: "ELF header", needed: Self.headerSize, size: file.count)
        }
        // Inside the checked 64-byte header; `?? 0` is never taken.
        let elfClass = file.u8(4) ?? 0, data = file.u8(5) ?? 0
        let type = file.u16(16) ?? 0, machine = file.u16(18) ?? 0
        let phoff = file.u64(32) ?? 0, shoff = file.u64(40) ?? 0
        let phentsize = UInt64(file.u16(54) ?? 0), phnum = UInt64(file.u16(56) ?? 0)
        let shentsize = UInt64(file.u16(58) ?? 0), shnum = UInt64(file.u16(60) ?? 0)

        guard elfClass == 2 else { throw .invalidELF("EI_CLASS \(elfClass) is not ELFCLASS64") }
        guard data == 1 else { throw .invalidELF("EI_DATA \(data) is not little-endian") }
        guard machine == Self.machineX86_64 else { throw .invalidELF("e_machine \(machine) is not x86-64 (62)") }
        guard type == Self.typeExecutable else { throw .invalidELF("e_type \(type) is not ET_EXEC") }
        guard phnum > 0 else { throw .invalidELF("no program headers") }
        guard phentsize >= Self.programHeaderSize else {
            throw .invalidELF("e_phentsize \(phentsize) is smaller than an ELF64 program header (56)")
        }
        // phentsize and phnum are 16-bit, so the product cannot overflow.
        try Self.requireInFile(file, phoff, phentsize * phnum, "ELF program header table")

        var segments: [Segment] = []
        var entry: UInt32?
        for i in 0..<phnum {
            let ph = phoff + i * phentsize   // inside the checked table
            let pType = file.u32(ph) ?? 0
            let offset = file.u64(ph + 8) ?? 0, paddr = file.u64(ph + 24) ?? 0
            let filesz = file.u64(ph + 32) ?? 0, memsz = file.u64(ph + 40) ?? 0
            let align = file.u64(ph + 48) ?? 0
            switch pType {
            case Self.ptLoad:
                guard filesz <= memsz else {
                    throw .invalidELF("PT_LOAD \(i) has p_filesz \(hex(filesz)) > p_memsz \(hex(memsz))")
                }
                try Self.requireInFile(file, offset, filesz, "PT_LOAD \(i) contents")
                if memsz > 0 {
                    segments.append(Segment(fileOffset: offset, fileSize: filesz, address: paddr, memorySize: memsz))
                }
            case Self.ptNote where entry == nil:
                try Self.requireInFile(file, offset, filesz, "PT_NOTE \(i)")
                entry = try Self.pvhEntry(in: file, offset: offset, size: filesz, align: align)
            default:
                break
            }
        }
        // Some linkers put the note only in a section; look there if no segment had it.
        if entry == nil, shoff != 0, shnum > 0 {
            guard shentsize >= Self.sectionHeaderSize else {
                throw .invalidELF("e_shentsize \(shentsize) is smaller than an ELF64 section header (64)")
            }
            try Self.requireInFile(file, shoff, shentsize * shnum, "ELF section header table")
            for i in 0..<shnum where entry == nil {
                let sh = shoff + i * shentsize
                guard file.u32(sh + 4) == Self.shtNote else { continue }
                let offset = file.u64(sh + 24) ?? 0, size = file.u64(sh + 32) ?? 0
                let align = file.u64(sh + 48) ?? 0
                try Self.requireInFile(file, offset, size, "SHT_NOTE section \(i)")
                entry = try Self.pvhEntry(in: file, offset: offset, size: size, align: align)
            }
        }

        guard !segments.isEmpty else { throw .invalidELF("no PT_LOAD segments") }
        guard let entry else { throw .noPVHEntry }
        guard segments.contains(where: { UInt64(entry) >= $0.address && UInt64(entry) - $0.address < $0.memorySize }) else {
            throw .invalidELF("PVH entry \(hex(UInt64(entry))) is outside every PT_LOAD segment")
        }
        self.segments = segments
        self.pvhEntry = entry
    }

    private static func requireInFile(_ file: FileBytes, _ offset: UInt64, _ length: UInt64,
                                      _ what: String) throws(BootError) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow else {
            throw .invalidELF("\(what) at offset \(hex(offset)) size \(hex(length)) overflows")
        }
        guard end <= file.count else { throw .kernelTruncated(what: what, needed: end, size: file.count) }
    }

    static let xenName: [UInt8] = Array("Xen".utf8) + [0]
    /// XEN_ELFNOTE_PHYS32_ENTRY (include/xen/interface/elfnote.h).
    static let xenPhys32Entry: UInt32 = 18

    /// Walks the notes in `[offset, offset+size)` (already inside the file) for the Xen
    /// PHYS32_ENTRY note. Its descriptor is the 32-bit entry, stored as 4 bytes or as an
    /// 8-byte pointer (Linux uses _ASM_PTR); either way the low 4 bytes.
    static func pvhEntry(in file: FileBytes, offset: UInt64, size: UInt64, align: UInt64) throws(BootError) -> UInt32? {
        // Name and descriptor are padded to 4 bytes (8 if the note area says so).
        let pad: UInt64 = align == 8 ? 8 : 4
        let end = offset + size
        var pos = offset
        while end - pos >= 12 {
            let namesz = UInt64(file.u32(pos) ?? 0), descsz = UInt64(file.u32(pos + 4) ?? 0)
            let type = file.u32(pos + 8) ?? 0
            // namesz/descsz are 32-bit and pos < 2^63, so none of these sums overflow.
            let name = pos + 12
            let desc = name + (namesz + pad - 1) / pad * pad
            let next = desc + (descsz + pad - 1) / pad * pad
            guard name + namesz <= end, desc + descsz <= end else {
                throw .invalidELF("note at offset \(hex(pos)) runs past the end of its note area")
            }
            if type == xenPhys32Entry, namesz == 4, file.slice(name, length: 4) == xenName {
                guard descsz >= 4, let value = file.u32(desc) else {
                    throw .invalidELF("Xen PHYS32_ENTRY note has a \(descsz)-byte descriptor, expected 4 or 8")
                }
                return value
            }
            guard next < end else { break }
            pos = next
        }
        return nil
    }
}
