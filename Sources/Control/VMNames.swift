import Glibc

/// Names of managed VMs: what a directory name and a user's typing can safely be.
public enum VMNames {
    /// 1 to 64 characters of `[A-Za-z0-9_.-]`, starting with a letter or digit (as docker).
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
        guard alnum(bytes[0]) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// `svm-` and 8 random hex digits.
    public static func generate() -> String {
        // The system generator (getrandom) is behind Swift's default random source.
        let value = UInt32.random(in: 0...UInt32.max)
        let hex = String(value, radix: 16)
        return "svm-" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}
