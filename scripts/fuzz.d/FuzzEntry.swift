// libFuzzer's entry points for svm-fuzz. The target comes from $SVM_FUZZ_TARGET (set by
// scripts/fuzz); `SVM_FUZZ_TARGET=list` prints the targets. With $SVM_FUZZ_WRITE_SEEDS set
// to a folder, the target's seed inputs are written there before libFuzzer reads it.
import Glibc

nonisolated(unsafe) var selectedTarget: FuzzTarget?

/// One line on stderr (unbuffered, as libFuzzer's own output).
func complain(_ line: String) {
    let bytes = Array(line.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> CInt {
    let name = getenv("SVM_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    if name == "list" {
        let width = fuzzTargets.map(\.name.count).max() ?? 0
        for t in fuzzTargets {
            print(t.name + String(repeating: " ", count: width - t.name.count + 2) + t.covers)
        }
        exit(0)
    }
    guard let target = fuzzTargets.first(where: { $0.name == name }) else {
        let known = fuzzTargets.map(\.name).joined(separator: ", ")
        complain("svm-fuzz: set SVM_FUZZ_TARGET to one of: \(known) (got '\(name)')\n")
        exit(2)
    }
    selectedTarget = target
    // vhost-user: a backend that hangs up must be an error, not a SIGPIPE.
    signal(SIGPIPE, SIG_IGN)
    if let dir = getenv("SVM_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) {
        for (i, seed) in target.seeds().enumerated() {
            let path = "\(dir)/seed-\(i)"
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                complain("svm-fuzz: open \(path): \(String(cString: strerror(errno)))\n")
                exit(1)
            }
            let written = seed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == seed.count else {
                complain("svm-fuzz: write \(path) failed\n")
                exit(1)
            }
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget!.run(bytes)
    return 0
}
