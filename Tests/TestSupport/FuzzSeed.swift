import Glibc

/// The seed of a fuzz-style test: $SVM_FUZZ_SEED (decimal, or hex with 0x) when set, so a
/// run can explore other sequences, else the test's fixed default, so every run checks
/// the same inputs. The seed is printed (and tests repeat it in failure messages), so a
/// failure can be replayed with SVM_FUZZ_SEED=<seed>.
public func fuzzSeed(default fixed: UInt64, test: String = #function) -> UInt64 {
    let seed: UInt64
    if let raw = getenv("SVM_FUZZ_SEED") {
        let text = String(cString: raw).lowercased()
        let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let value = parsed else {
            preconditionFailure("SVM_FUZZ_SEED=\(text): not a decimal or 0x-hex 64-bit number")
        }
        seed = value
    } else {
        seed = fixed
    }
    print("\(test): fuzz seed SVM_FUZZ_SEED=0x\(String(seed, radix: 16))\(seed == fixed ? " (the default)" : "")")
    return seed
}
