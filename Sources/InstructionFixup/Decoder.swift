// x86 instruction decoding, as far as the fix-up needs it: legacy prefixes, REX, the opcode
// maps, and ModRM/SIB/displacement for the opcodes whose layout is known here. The length of
// a decoded instruction is exact, because RIP advances by it; opcodes outside the known set
// decode with `length == nil` and are never completed.

/// Architectural limit: an instruction longer than this raises #GP.
let maximumInstructionLength = 15

enum Segment: Sendable, Equatable {
    case es, cs, ss, ds, fs, gs
}

struct Prefixes: Sendable, Equatable {
    var operandSizeOverride = false  // 66
    var addressSizeOverride = false  // 67
    var rep = false                  // F3
    var repne = false                // F2
    var lock = false                 // F0
    /// The last segment override; the CPU uses the last one when several are given.
    var segment: Segment?
    /// The REX byte in effect (0 if none). Only a REX immediately before the opcode counts.
    var rex: UInt8 = 0

    var rexW: Bool { rex & 0x8 != 0 }
    var rexR: Int { Int(rex >> 2) & 1 }
    var rexX: Int { Int(rex >> 1) & 1 }
    var rexB: Int { Int(rex) & 1 }
}

enum OpcodeMap: Sendable, Equatable {
    case primary       // one byte
    case twoByte       // 0F xx
    case threeByte38   // 0F 38 xx
    case threeByte3A   // 0F 3A xx
}

/// A memory operand before registers are applied: base + index * scale + displacement.
struct MemoryOperand: Sendable, Equatable {
    /// Register numbers (0...15), or nil when absent.
    var base: Int?
    var index: Int?
    /// log2 of the scale factor (0...3).
    var scaleShift: Int = 0
    var displacement: Int64 = 0
    /// Relative to the RIP of the next instruction (64-bit mode, ModRM mod=00 rm=101).
    var ripRelative = false
    /// SS for rBP/rSP-based forms, DS otherwise (before any override).
    var defaultSegment: Segment = .ds
}

struct ModRM: Sendable, Equatable {
    var mod: UInt8
    /// The raw 3-bit reg field (group opcodes select the instruction with it).
    var regField: UInt8
    /// The raw 3-bit rm field.
    var rmField: UInt8
    /// The reg operand as a register number, REX.R applied.
    var reg: Int
    /// The rm operand as a register number (REX.B applied) when mod == 3.
    var rm: Int
    /// The rm operand when it names memory (mod != 3).
    var memory: MemoryOperand?
    /// The whole ModRM byte.
    var byte: UInt8
}

struct DecodedInstruction: Sendable, Equatable {
    var prefixes: Prefixes
    var map: OpcodeMap
    var opcode: UInt8
    var modrm: ModRM?
    /// Operand size in bits (16, 32, 64) and address size in bits, from mode and prefixes.
    var operandSize: Int
    var addressSize: Int
    /// Exact length in bytes when this opcode's layout is known, else nil.
    var length: Int?
}

enum DecodeFailure: Error, Sendable, Equatable {
    case empty
    /// The bytes end before the instruction does.
    case truncated
    /// The instruction would be longer than 15 bytes (the CPU raises #GP).
    case tooLong
}

/// Reads instruction bytes, refusing to go past the end or past 15 bytes.
private struct Cursor {
    let bytes: [UInt8]
    var position = 0

    mutating func next() throws(DecodeFailure) -> UInt8 {
        guard position < maximumInstructionLength else { throw .tooLong }
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    /// A little-endian signed value of `count` bytes (1, 2 or 4), sign-extended.
    mutating func signed(_ count: Int) throws(DecodeFailure) -> Int64 {
        var value: UInt64 = 0
        for i in 0..<count {
            value |= UInt64(try next()) << (8 * UInt64(i))
        }
        let shift = UInt64(64 - 8 * count)
        return Int64(bitPattern: value << shift) >> Int64(shift)
    }
}

/// How the bytes after an opcode are laid out, for the opcodes the decoder knows.
private enum Layout {
    case opcodeOnly
    case modrm
    case unknown
}

private func layout(map: OpcodeMap, opcode: UInt8) -> Layout {
    switch map {
    case .primary:
        switch opcode {
        case 0xCC, 0x9B, 0xF1: return .opcodeOnly           // int3, fwait, int1
        case 0xD8...0xDF: return .modrm                        // x87
        default: return .unknown
        }
    case .twoByte:
        switch opcode {
        // syscall, clts, sysret, invd, wbinvd, ud2, wrmsr, rdtsc, rdmsr, rdpmc, sysenter,
        // sysexit, emms, cpuid, rsm
        case 0x05...0x09, 0x0B, 0x30...0x35, 0x77, 0xA2, 0xAA: return .opcodeOnly
        // groups 6, 7, 15, 9; prefetch and hint nops; popcnt/ud1/tzcnt/lzcnt; ud0
        case 0x00, 0x01, 0x0D, 0x18...0x1F, 0xAE, 0xC7, 0xB8, 0xB9, 0xBC, 0xBD, 0xFF: return .modrm
        default: return .unknown
        }
    case .threeByte38:
        switch opcode {
        case 0x82, 0xF0, 0xF1: return .modrm                  // invpcid, movbe/crc32
        default: return .unknown
        }
    case .threeByte3A:
        return .unknown
    }
}

enum Decoder {
    static func decode(_ bytes: [UInt8], mode: CPUMode) throws(DecodeFailure) -> DecodedInstruction {
        guard !bytes.isEmpty else { throw .empty }
        var cursor = Cursor(bytes: bytes)
        var prefixes = Prefixes()

        // Prefixes, then the opcode.
        var opcode: UInt8
        prefixLoop: while true {
            opcode = try cursor.next()
            switch opcode {
            case 0x66: prefixes.operandSizeOverride = true
            case 0x67: prefixes.addressSizeOverride = true
            case 0xF3: prefixes.rep = true
            case 0xF2: prefixes.repne = true
            case 0xF0: prefixes.lock = true
            case 0x26: prefixes.segment = .es
            case 0x2E: prefixes.segment = .cs
            case 0x36: prefixes.segment = .ss
            case 0x3E: prefixes.segment = .ds
            case 0x64: prefixes.segment = .fs
            case 0x65: prefixes.segment = .gs
            case 0x40...0x4F where mode == .long64:
                prefixes.rex = opcode
                continue prefixLoop
            default:
                break prefixLoop
            }
            // A legacy prefix after a REX cancels the REX.
            prefixes.rex = 0
        }

        var map = OpcodeMap.primary
        if opcode == 0x0F {
            map = .twoByte
            opcode = try cursor.next()
            if opcode == 0x38 {
                map = .threeByte38
                opcode = try cursor.next()
            } else if opcode == 0x3A {
                map = .threeByte3A
                opcode = try cursor.next()
            }
        }

        let operandSize: Int
        let addressSize: Int
        switch mode {
        case .long64:
            operandSize = prefixes.rexW ? 64 : (prefixes.operandSizeOverride ? 16 : 32)
            addressSize = prefixes.addressSizeOverride ? 32 : 64
        case .protected32:
            operandSize = prefixes.operandSizeOverride ? 16 : 32
            addressSize = prefixes.addressSizeOverride ? 16 : 32
        case .real16:
            operandSize = prefixes.operandSizeOverride ? 32 : 16
            addressSize = prefixes.addressSizeOverride ? 32 : 16
        }

        var decoded = DecodedInstruction(
            prefixes: prefixes, map: map, opcode: opcode, modrm: nil,
            operandSize: operandSize, addressSize: addressSize, length: nil)

        switch layout(map: map, opcode: opcode) {
        case .unknown:
            return decoded
        case .opcodeOnly:
            break
        case .modrm:
            decoded.modrm = try decodeModRM(&cursor, prefixes: prefixes, addressSize: addressSize, mode: mode)
        }
        decoded.length = cursor.position
        return decoded
    }

    private static func decodeModRM(
        _ cursor: inout Cursor, prefixes: Prefixes, addressSize: Int, mode: CPUMode
    ) throws(DecodeFailure) -> ModRM {
        let byte = try cursor.next()
        let mod = byte >> 6
        let regField = (byte >> 3) & 7
        let rmField = byte & 7
        var modrm = ModRM(
            mod: mod, regField: regField, rmField: rmField,
            reg: Int(regField) | prefixes.rexR << 3,
            rm: Int(rmField) | prefixes.rexB << 3,
            memory: nil, byte: byte)
        guard mod != 3 else { return modrm }

        var memory = MemoryOperand()
        if addressSize == 16 {
            // The fixed 16-bit forms; REX does not exist outside 64-bit mode.
            let bx = 3, bp = 5, si = 6, di = 7
            switch rmField {
            case 0: memory.base = bx; memory.index = si
            case 1: memory.base = bx; memory.index = di
            case 2: memory.base = bp; memory.index = si; memory.defaultSegment = .ss
            case 3: memory.base = bp; memory.index = di; memory.defaultSegment = .ss
            case 4: memory.base = si
            case 5: memory.base = di
            case 6:
                if mod != 0 {
                    memory.base = bp
                    memory.defaultSegment = .ss
                }
            default: memory.base = bx
            }
            switch mod {
            case 0 where rmField == 6: memory.displacement = try cursor.signed(2)
            case 1: memory.displacement = try cursor.signed(1)
            case 2: memory.displacement = try cursor.signed(2)
            default: break
            }
        } else {
            var baseField = rmField
            if rmField == 4 {
                let sib = try cursor.next()
                memory.scaleShift = Int(sib >> 6)
                let index = Int((sib >> 3) & 7) | prefixes.rexX << 3
                if index != 4 {  // 100 without REX.X means "no index"
                    memory.index = index
                }
                baseField = sib & 7
                if baseField == 5 && mod == 0 {
                    // No base, disp32 follows (with or without REX.B).
                    memory.displacement = try cursor.signed(4)
                } else {
                    memory.base = Int(baseField) | prefixes.rexB << 3
                }
            } else if rmField == 5 && mod == 0 {
                // disp32: RIP-relative in 64-bit mode, absolute elsewhere.
                memory.ripRelative = mode == .long64
                memory.displacement = try cursor.signed(4)
            } else {
                memory.base = Int(rmField) | prefixes.rexB << 3
            }
            if let base = memory.base, base == 4 || base == 5 {
                memory.defaultSegment = .ss
            }
            switch mod {
            case 1: memory.displacement = try cursor.signed(1)
            case 2: memory.displacement = try cursor.signed(4)
            default: break
            }
        }
        modrm.memory = memory
        return modrm
    }
}
