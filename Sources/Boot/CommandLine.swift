/// The kernel command line: validated against the kernel's limit and svm's reserved space
/// before anything is written, so an over-long line is an error rather than a silently
/// truncated one.
enum KernelCommandLine {
    /// x86 COMMAND_LINE_SIZE (2048, including the NUL): what a PVH kernel copies.
    static let pvhLimit = 2047

    /// The NUL-terminated bytes of `line`, if it has at most `limit` bytes (the kernel's
    /// limit, without the NUL) and fits svm's command line area.
    static func bytes(_ line: String, limit: Int) throws(BootError) -> [UInt8] {
        let utf8 = Array(line.utf8)
        // A NUL would end the line early in the kernel's eyes: refuse rather than truncate.
        guard !utf8.contains(0) else { throw .commandLineContainsNUL }
        let effective = min(limit, Int(BootLayout.commandLineCapacity) - 1)
        guard utf8.count <= effective else {
            throw .commandLineTooLong(length: utf8.count, limit: effective)
        }
        return utf8 + [0]
    }
}
