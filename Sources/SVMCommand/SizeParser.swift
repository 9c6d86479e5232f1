/// Parses memory sizes as users write them: `512M`, `2G`, `1048576K`, `1T`; a plain number
/// means MiB (as QEMU's -m does). Returns bytes, or nil for anything else.
public enum SizeParser {
    public static func parse(_ text: String) -> UInt64? {
        var digits = Substring(text)
        var shift: UInt64 = 20
        if let last = digits.last, !last.isNumber {
            switch last {
            case "K", "k": shift = 10
            case "M", "m": shift = 20
            case "G", "g": shift = 30
            case "T", "t": shift = 40
            default: return nil
            }
            digits = digits.dropLast()
            // Accept "512MiB"-style spellings? No: one spelling, one meaning.
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let value = UInt64(digits) else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : bytes
    }
}
