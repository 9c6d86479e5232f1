import Glibc
import Host
import Sandbox

/// The initramfs of a container's VM, in a private temporary directory: only the init,
/// `dev/console`, `svm/job` and the host files the container binds (`svm/files/N`:
/// /etc/hosts, /etc/resolv.conf, ... as the engine wrote them before `create`). The
/// container's own files come through the `svm-root` share, not through here, so the
/// archive stays small (the guest kernel unpacks it in emulated code).
struct ContainerImage {
    let directory: TemporaryDirectory
    let path: String

    static func build(job: SandboxJob, files: [ContainerRequest.File], initBinary: String,
                      environment: [String: String]) throws(RunError) -> ContainerImage {
        let jobBytes: [UInt8]
        do { jobBytes = try JobWriter.encode(job) } catch { throw RunError("\(error)") }
        let directory = try TemporaryDirectory(prefix: "svm-container", environment: environment)
        let path = directory.path + "/" + SandboxImage.archiveName
        do throws(RunError) {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RunError(path, .last("open")) }
            defer { close(fd) }
            var writer = CPIOWriter(fd: fd)
            do {
                try writer.setRootDirectory(mode: 0o755)
                try writer.addFile("init", copyingFrom: initBinary, mode: 0o755)
                try writer.addDirectory("dev")
                try writer.addCharDevice("dev/console", major: 5, minor: 1)
                try writer.addFile("svm/job", contents: jobBytes, mode: 0o400)
                for file in files {
                    var st = stat()
                    guard stat(file.hostPath, &st) == 0 else { throw RunError("mount source \(file.hostPath)", .last("stat")) }
                    guard st.st_mode & S_IFMT == S_IFREG else { throw RunError("mount source \(file.hostPath): not a regular file or directory") }
                    try writer.addFile(file.initramfsPath, copyingFrom: file.hostPath, mode: UInt32(st.st_mode & 0o7777))
                }
                try writer.finish()
            } catch let error as RunError {
                throw error
            } catch {
                throw RunError("\(error)")
            }
        } catch {
            directory.remove()
            throw error
        }
        return ContainerImage(directory: directory, path: path)
    }

    /// Once the Machine has the initrd in guest memory, the files are not needed.
    func remove() { directory.remove() }
}
