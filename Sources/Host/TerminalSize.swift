import CKVM
import Glibc

/// The size of the terminal on a descriptor, for the guest's terminal to start with.
public enum TerminalSize {
    /// Rows and columns, or nil when `fd` is not a terminal or the size is unknown (0×0).
    public static func of(fd: Int32) -> (rows: UInt16, columns: UInt16)? {
        var size = winsize()
        guard ckvm_ioctl_ptr(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 || size.ws_col > 0 else { return nil }
        return (size.ws_row, size.ws_col)
    }
}
