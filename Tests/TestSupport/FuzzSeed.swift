import Glibc

/// The seed of a fuzz-style test: $SVM_FUZZ_SEED (decimal, or hex with 0x) when set, so a
/// run can explore other sequences, else the test's fixed default, so every run checks
/// the same inputs. Tests print it in failure messages so a failure can be replayed with
/// SVM_FUZZ_SEED=<seed>.
public func fuzzSeed(default fixed: UInt64) -> UInt64 {
    guard let raw = getenv("SVM_FUZZ_SEED") else { return fixed }
    let text = String(cString: raw).lowercased()
    let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    guard let seed = parsed else {
        preconditionFailure("SVM_FUZZ_SEED=\(text): not a decimal or 0x-hex 64-bit number")
    }
    return seed
}
