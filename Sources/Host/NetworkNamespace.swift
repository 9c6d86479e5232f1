import CKVM
import Glibc

/// Joining a network namespace someone else made (a container engine's `/run/netns/NAME`).
public enum NetworkNamespace {
    /// Moves the calling thread into the namespace at `path`. Only that thread moves, and
    /// the threads it starts afterwards: call it while the process has one thread for the
    /// whole process to be there.
    public static func join(path: String) throws(HostError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open \(path)") }
        defer { close(fd) }
        guard ckvm_join_network_namespace(fd) == 0 else { throw .last("setns \(path) CLONE_NEWNET") }
    }
}
