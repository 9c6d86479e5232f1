import Machine

/// Values that `svm boot` and `svm run` flags share, checked the same way for both so the
/// same mistake gets the same one-line message.
enum OptionValues {
    /// `--mem`: a size (`512M`, `2G`, a number of MiB), at least 16M, 4K-aligned.
    static func memory(_ text: String, example: String) throws(UsageError) -> UInt64 {
        guard let bytes = SizeParser.parse(text) else {
            throw UsageError("--mem \(text): not a size (use e.g. \(example), or a number of MiB)")
        }
        guard bytes >= BootOptions.minimumMemory else { throw UsageError("--mem \(text): at least 16M is needed") }
        guard bytes % 4096 == 0 else { throw UsageError("--mem \(text): must be a multiple of 4K") }
        return bytes
    }

    /// `--cpus`: 1 to the most the machine model supports.
    static func cpus(_ text: String) throws(UsageError) -> Int {
        guard let n = Int(text), (1...MachineConfig.maximumCPUs).contains(n) else {
            throw UsageError("--cpus \(text): must be a whole number from 1 to \(MachineConfig.maximumCPUs)")
        }
        return n
    }

    /// `--timeout`: a positive, finite number of seconds.
    static func timeout(_ text: String) throws(UsageError) -> Double {
        guard let s = Double(text), s > 0, s.isFinite else {
            throw UsageError("--timeout \(text): must be a positive number of seconds")
        }
        return s
    }

    /// `--name`: what the state directory accepts (docker's rule).
    static func vmName(_ text: String) throws(UsageError) -> String {
        guard !text.isEmpty else {
            throw UsageError("--name \(text): must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        }
        return text
    }
}
