// One fuzz target: a parser of untrusted bytes and the invariants it must keep. Built into
// the svm-fuzz binary by scripts/fuzz; not part of the Swift package.
import Glibc

struct FuzzTarget: Sendable {
    /// What `scripts/fuzz NAME` calls it.
    let name: String
    /// One line for `scripts/fuzz list` and docs/security.md.
    let covers: String
    /// Valid inputs of the format, so the fuzzer starts from the paths that accept.
    let seeds: @Sendable () -> [[UInt8]]
    /// Runs one input; breaks an invariant with `fuzzCheck` (which crashes, so libFuzzer
    /// keeps the input). Thrown errors and refusals are the parsers' defined outcomes.
    let run: @Sendable ([UInt8]) -> Void
}

/// Every target, in the order `scripts/fuzz all` runs them.
let fuzzTargets: [FuzzTarget] = [
    VirtqueueTarget.target,
    MMIOTarget.target,
    VhostUserTarget.target,
    JSONTarget.target,
    ControlRequestTarget.target,
    ControlReplyTarget.target,
    GuestFramesTarget.target,
    CopyOutTarget.target,
    OCIConfigTarget.target,
    ExecProcessTarget.target,
    IPJSONTarget.target,
    KernelTarget.target,
    InstructionTarget.target,
    SnapshotManifestTarget.target,
]

/// An invariant the parser must keep; a violation crashes with the reason, so libFuzzer
/// saves the input as crash-*.
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ why: @autoclosure () -> String,
               file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        fatalError("fuzz invariant broken: \(why())", file: file, line: line)
    }
}
