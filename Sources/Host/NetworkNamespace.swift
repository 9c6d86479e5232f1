import CKVM
import Glibc

/// Joining a network namespace someone else made (a container engine's `/run/netns/NAME`),
/// or making a new one.
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

    /// Moves the calling thread into a new, empty network namespace (only loopback, down),
    /// as runc makes one for a bundle whose network namespace has no path. Same rule as
    /// `join`: call it while the process has one thread.
    public static func createNew() throws(HostError) {
        guard ckvm_new_network_namespace() == 0 else { throw .last("unshare CLONE_NEWNET") }
    }
}
