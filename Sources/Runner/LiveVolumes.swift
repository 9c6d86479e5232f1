import Glibc
import Machine
import Sandbox
import VhostUser

/// `svm run --volume` as live shares: a virtiofsd per volume (tag `svm-vol-N`), its
/// socket in a private temporary directory, for as long as the VM runs. The program's
/// writes are on the host as they happen, whatever their size, and stay there however the
/// program ends.
///
/// Ownership is the host's: the program (nobody, 65534:65534, unless --user or --root)
/// writes where that uid may write on the host, as a process of that uid would; virtiofsd
/// takes the guest's uid as its fs identity for each request. So a read-write volume must
/// be writable by the program's uid (e.g. `--user $(id -u):$(id -g)` to write as
/// yourself); docs/security.md says what a guest can reach.
final class LiveVolumes {
    let directory: TemporaryDirectory
    private var daemons: VirtiofsdGroup?

    /// Live shares need virtiofsd's sandbox, which needs root; elsewhere volumes are copied.
    static func possible(for request: RunRequest) -> Bool {
        !request.volumes.isEmpty && !request.copyVolumes && geteuid() == 0
            && access(Virtiofsd.defaultPath, X_OK) == 0
    }

    init(_ volumes: [RunRequest.Volume], environment: [String: String]) throws(RunError) {
        directory = try TemporaryDirectory(prefix: "svm-shares", environment: environment)
        let shares = volumes.enumerated().map { index, volume in
            VirtiofsdGroup.Share(tag: SandboxJob.Volume.shareTag(index: index), source: volume.hostPath, readOnly: volume.readOnly)
        }
        do { daemons = try VirtiofsdGroup(shares, directory: directory.path) } catch {
            directory.remove()
            throw RunError("--volume \(volumes[error.index].hostPath): \(error.reason)")
        }
    }

    var folders: [SharedFolderConfig] {
        (daemons?.daemons ?? []).map { SharedFolderConfig(tag: $0.tag, socketPath: $0.socketPath) }
    }

    /// Ends every virtiofsd (and waits for their sandboxed servers) and removes the directory.
    func stop() {
        daemons?.stop()
        directory.remove()
    }
}
