// Names for the unsupported-instruction message, so a stopped VM says what it met. Only used
// for diagnostics: a name here does not mean the instruction is completed.

enum Mnemonics {
    static func name(of instruction: DecodedInstruction, mode: CPUMode) -> String? {
        let p = instruction.prefixes
        let op = instruction.opcode
        switch instruction.map {
        case .primary:
            switch op {
            case 0xCC: return "int3"
            case 0x9B: return "fwait"
            case 0xF1: return "int1"
            case 0xD8...0xDF: return "x87 floating point"
            case 0xC4...0xC5 where mode == .long64: return "vex-encoded: avx/bmi"
            case 0x62 where mode == .long64: return "evex-encoded: avx-512"
            default: return nil
            }
        case .twoByte:
            return twoByte(op, prefixes: p, modrm: instruction.modrm)
        case .threeByte38:
            switch op {
            case 0xF0, 0xF1: return p.repne ? "crc32" : "movbe"
            case 0x82: return "invpcid"
            default: return nil
            }
        case .threeByte3A:
            return nil
        }
    }

    private static func twoByte(_ op: UInt8, prefixes p: Prefixes, modrm: ModRM?) -> String? {
        switch op {
        case 0x05: return "syscall"
        case 0x06: return "clts"
        case 0x07: return "sysret"
        case 0x08: return "invd"
        case 0x09: return "wbinvd"
        case 0x0B: return "ud2"
        case 0x0D: return "prefetchw"
        case 0x18: return "prefetch"
        case 0x19...0x1F: return "nop/hint"
        case 0x30: return "wrmsr"
        case 0x31: return "rdtsc"
        case 0x32: return "rdmsr"
        case 0x33: return "rdpmc"
        case 0x34: return "sysenter"
        case 0x35: return "sysexit"
        case 0x77: return "emms"
        case 0xA2: return "cpuid"
        case 0xAA: return "rsm"
        case 0xB8: return p.rep ? "popcnt" : "jmpe"
        case 0xB9: return "ud1"
        case 0xBC: return p.rep ? "tzcnt" : "bsf"
        case 0xBD: return p.rep ? "lzcnt" : "bsr"
        case 0xFF: return "ud0"
        default: break
        }
        guard let m = modrm else { return nil }
        let w = p.rexW ? "64" : ""
        switch op {
        case 0x00:
            return ["sldt", "str", "lldt", "ltr", "verr", "verw", nil, nil][Int(m.regField)]
        case 0x01 where m.mod != 3:
            return ["sgdt", "sidt", "lgdt", "lidt", "smsw", nil, "lmsw", "invlpg"][Int(m.regField)]
        case 0x01:
            switch m.byte {
            case 0xC1: return "vmcall"
            case 0xC2: return "vmlaunch"
            case 0xC3: return "vmresume"
            case 0xC4: return "vmxoff"
            case 0xC8: return "monitor"
            case 0xC9: return "mwait"
            case 0xCA: return "clac"
            case 0xCB: return "stac"
            case 0xD0: return "xgetbv"
            case 0xD1: return "xsetbv"
            case 0xD8: return "vmrun"
            case 0xD9: return "vmmcall"
            case 0xE0...0xE7: return "smsw"
            case 0xEE: return "rdpkru"
            case 0xEF: return "wrpkru"
            case 0xF0...0xF7: return "lmsw"
            case 0xF8: return "swapgs"
            case 0xF9: return "rdtscp"
            case 0xFA: return "monitorx"
            case 0xFB: return "mwaitx"
            default: return nil
            }
        case 0xAE where m.mod != 3:
            switch m.regField {
            case 0: return "fxsave" + w
            case 1: return "fxrstor" + w
            case 2: return "ldmxcsr"
            case 3: return "stmxcsr"
            case 4: return "xsave" + w
            case 5: return "xrstor" + w
            case 6: return p.operandSizeOverride ? "clwb" : "xsaveopt" + w
            default: return p.operandSizeOverride ? "clflushopt" : "clflush"
            }
        case 0xAE:
            if p.rep {
                return ["rdfsbase", "rdgsbase", "wrfsbase", "wrgsbase", nil, nil, nil, nil][Int(m.regField)]
            }
            return [nil, nil, nil, nil, nil, "lfence", "mfence", "sfence"][Int(m.regField)]
        case 0xC7 where m.mod != 3:
            switch m.regField {
            case 1: return p.rexW ? "cmpxchg16b" : "cmpxchg8b"
            case 3: return "xrstors" + w
            case 4: return "xsavec" + w
            case 5: return "xsaves" + w
            case 6: return p.operandSizeOverride ? "vmclear" : (p.rep ? "vmxon" : "vmptrld")
            case 7: return "vmptrst"
            default: return nil
            }
        case 0xC7:
            switch m.regField {
            case 6: return "rdrand"
            case 7: return p.rep ? "rdpid" : "rdseed"
            default: return nil
            }
        default:
            return nil
        }
    }

    /// XSAVE-family instructions: the guest uses them only if it enabled XSAVE, which
    /// `noxsave` on its command line prevents.
    static func isXSAVEFamily(_ name: String) -> Bool {
        name.hasPrefix("xsave") || name.hasPrefix("xrstor") || name == "xgetbv" || name == "xsetbv"
    }
}
