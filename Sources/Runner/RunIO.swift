import Host
import Machine

/// The descriptors an `svm run` passes the program's streams through, handed in by the
/// caller (the command line gives its own 0, 1 and 2): the library opens no standard
/// descriptor on its own.
public struct RunIO: Sendable {
    public var input: Int32
    public var output: Int32
    public var error: Int32

    public init(input: Int32, output: Int32, error: Int32) {
        self.input = input
        self.output = output
        self.error = error
    }

    /// One "svm: …" line on the error stream (notes about skipped volume entries).
    func message(_ text: String) {
        writeAll(Array("svm: \(text)\n".utf8), to: error)
    }
}

/// The virtio consoles of an `svm run` VM, by role (hvc0 to hvc3 in this order).
extension ConsoleRole {
    /// hvc0: the program's stdout (and its terminal with --tty).
    public static let programOutput = ConsoleRole("program-stdout")
    /// hvc1: the program's stderr.
    public static let programError = ConsoleRole("program-stderr")
    /// hvc2: the control channel of firmware/init/PROTOCOL.md.
    public static let control = ConsoleRole("control")
    /// hvc3: the copy-out archive of read-write volumes.
    public static let copyOut = ConsoleRole("copy-out")
}
