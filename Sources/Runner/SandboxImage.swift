import Glibc
import Host
import Sandbox

/// The initramfs of one `svm run`, in a private temporary directory:
///
///     .                    mode 0755, root's
///     init                 the static guest init (scripts/build-init)
///     dev/console          char 5:1, so the kernel can give the init a console
///     svm/job              what to run (JobWriter)
///     <program and libs>   at their host paths (ELFDependencies), symlinks as symlinks
///     svm/volumes/N/...    a copy of each --volume, bind-mounted by the init
///
/// Everything about the program and the volumes is checked before the directory is
/// created, so bad input leaves nothing behind. The caller owns `directory` and must
/// `remove()` it (once the Machine has read the initrd, it is no longer needed).
public struct SandboxImage {
    public let directory: TemporaryDirectory
    public let initrdPath: String
    public let job: SandboxJob
    public let dependencies: ProgramDependencies
    /// Archive size in bytes (the guest kernel unpacks all of it before the init starts).
    public let size: UInt64
    /// For each volume (by index), the paths copied in, relative to its host directory.
    public let copiedIn: [Set<String>]

    public static let archiveName = "initramfs.cpio"

    /// - Parameters:
    ///   - initBinary: path of the static svm-init.
    ///   - forwardStdin: the host will send stdin frames (the job's has_stdin flag).
    ///   - terminal: the program gets a terminal (hvc0) of this size (0×0: unknown).
    ///   - environment: the host environment (PATH for the program lookup, TMPDIR).
    ///   - note: receives one line for each volume entry that is skipped.
    ///   - interrupted: polled while copying; a signal number stops the build.
    /// `liveVolumes`: the volumes are virtio-fs shares the caller serves (nothing of them
    /// goes in the image; the init mounts tag `svm-vol-N`).
    public static func build(request: RunRequest, initBinary: String, forwardStdin: Bool,
                             terminal: (rows: UInt16, columns: UInt16)? = nil,
                             liveVolumes: Bool = false,
                             environment: [String: String],
                             note: (String) -> Void = { _ in },
                             interrupted: () -> Int32? = { nil }) throws(RunError) -> SandboxImage {
        let dependencies = try resolveProgram(request.program, hostPath: environment["PATH"] ?? RunRequest.defaultPath)
        try checkVolumes(request.volumes)
        var job = makeJob(request: request, dependencies: dependencies, forwardStdin: forwardStdin, liveVolumes: liveVolumes)
        if let terminal {
            job.tty = true
            job.hasStdin = false  // terminal input goes straight to hvc0
            job.terminalRows = terminal.rows
            job.terminalColumns = terminal.columns
        }
        let jobBytes: [UInt8]
        do { jobBytes = try JobWriter.encode(job) } catch { throw RunError("\(error)") }
        var st = stat()
        guard stat(initBinary, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw RunError("no guest init at \(initBinary): run scripts/build-init")
        }

        let directory = try TemporaryDirectory(environment: environment)
        do throws(RunError) {
            let path = directory.path + "/" + archiveName
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw RunError(path, .last("open")) }
            defer { close(fd) }
            var writer = CPIOWriter(fd: fd)
            do {
                try writer.setRootDirectory(mode: 0o755)  // else 1777: the program could write to /
                try writer.addFile("init", copyingFrom: initBinary, mode: 0o755)
                try writer.addDirectory("dev")
                try writer.addCharDevice("dev/console", major: 5, minor: 1)
                try writer.addFile("svm/job", contents: jobBytes, mode: 0o400)
                for entry in dependencies.entries {
                    switch entry {
                    case let .file(p): try writer.addFile(p, copyingFrom: p, mode: nil)
                    case let .symlink(p, target): try writer.addSymlink(p, target: target)
                    }
                }
            } catch {
                throw RunError("\(error)")
            }
            var packer = VolumePacker(uid: job.uid, gid: job.gid)
            var own = stat()
            if stat(directory.path, &own) == 0 { packer.excluded = (UInt64(own.st_dev), UInt64(own.st_ino)) }
            var copiedIn: [Set<String>] = []
            for (index, volume) in request.volumes.enumerated() {
                if liveVolumes { copiedIn.append([]); continue }
                copiedIn.append(try packer.pack(hostRoot: volume.hostPath, at: "svm/volumes/\(index)", into: &writer,
                                                note: note, interrupted: interrupted))
            }
            do { try writer.finish() } catch { throw RunError("\(error)") }
            return SandboxImage(directory: directory, initrdPath: path, job: job,
                                dependencies: dependencies, size: writer.bytesWritten, copiedIn: copiedIn)
        } catch {
            directory.remove()
            throw error
        }
    }

    /// The program on the host: a name without "/" is looked up on `hostPath`; then its
    /// ELF dependencies. Not found, not ELF or not x86-64: one line naming the file.
    static func resolveProgram(_ name: String, hostPath: String) throws(RunError) -> ProgramDependencies {
        guard !name.isEmpty else { throw RunError("no program given") }
        guard let path = Sandbox.resolveProgram(name, path: hostPath) else {
            throw RunError("\(name): program not found on the host PATH")
        }
        let dependencies: ProgramDependencies
        do { dependencies = try ELFDependencies.resolve(program: path) } catch {
            throw RunError("\(error)")
        }
        for entry in dependencies.entries {
            if let dir = maskedDirectories.first(where: { entry.path == $0 || entry.path.hasPrefix($0 + "/") }) {
                throw RunError("\(entry.path): the guest mounts its own \(dir), which would hide this file; move the program elsewhere (or put it in a --volume)")
            }
        }
        return dependencies
    }

    /// Guest directories the init mounts file systems on, hiding what the initramfs has there.
    static let maskedDirectories = ["/tmp", "/dev", "/proc", "/sys"]

    /// Each volume's host path must be an existing directory.
    static func checkVolumes(_ volumes: [RunRequest.Volume]) throws(RunError) {
        for v in volumes {
            var st = stat()
            guard stat(v.hostPath, &st) == 0 else {
                throw RunError("--volume \(v.hostPath)", .last("stat"))
            }
            guard (st.st_mode & S_IFMT) == S_IFDIR else {
                throw RunError("--volume \(v.hostPath): not a directory (volumes are directories)")
            }
        }
    }

    /// uid/gid nobody unless root; PATH (and LD_LIBRARY_PATH when the guest's loader needs
    /// it) first, then the user's entries, a later KEY replacing an earlier one in place.
    static func makeJob(request: RunRequest, dependencies: ProgramDependencies, forwardStdin: Bool,
                        liveVolumes: Bool = false) -> SandboxJob {
        var env = ["PATH=" + RunRequest.defaultPath]
        if !dependencies.guestLibraryPath.isEmpty {
            env.append("LD_LIBRARY_PATH=" + dependencies.guestLibraryPath.joined(separator: ":"))
        }
        for entry in request.environment {
            let key = entry.prefix { $0 != "=" }
            if let i = env.firstIndex(where: { $0.prefix { $0 != "=" } == key }) {
                env[i] = entry
            } else {
                env.append(entry)
            }
        }
        let id = request.root ? 0 : SandboxJob.nobody
        let uid = request.userID ?? id
        return SandboxJob(argv: [dependencies.program] + request.arguments, env: env, workdir: request.workdir,
                          uid: uid, gid: request.groupID ?? (request.userID != nil ? uid : id), hasStdin: forwardStdin,
                          volumes: request.volumes.map { .init(guestPath: $0.guestPath, readOnly: $0.readOnly, live: liveVolumes) })
    }
}
