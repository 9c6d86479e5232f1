import Control
import Glibc
import Host
import OCI

/// `create`: checks the bundle, claims the container's state directory, and starts the
/// container's VM process (this program again, `_vm`), which boots the VM and waits for
/// `start`. It returns once the VM runs; the pid file, written last, names that process
/// (callers take the file's appearance as "created"). Nothing is left behind on failure.
enum CreateCommand {
    static let command = RuntimeCommand.Command(name: "create", summary: "boot a container's VM; the process waits for start", run: run)

    static let scanner = ArgumentScanner(valued: ["bundle", "b", "pid-file", "console-socket", "preserve-fds"],
                                         boolean: ["no-pivot", "no-new-keyring"])

    /// Environment variables that hand the VM process its descriptors.
    static let readyFDVariable = "SVM_RUNTIME_READY_FD"
    static let lockFDVariable = "SVM_RUNTIME_LOCK_FD"
    /// The console socket's path, with `process.terminal`.
    static let consoleSocketVariable = "SVM_RUNTIME_CONSOLE_SOCKET"

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try scanner.scan(arguments)
        let id = try RuntimeCommand.containerID(args.positional, command: "create")
        let bundle = try absoluteBundle(args.values["bundle"] ?? args.values["b"] ?? ".")
        let plan = try loadPlan(bundle: bundle)
        let consoleSocket = args.values["console-socket"]
        if plan.terminal && consoleSocket == nil {
            throw RuntimeFailure("config.json: process.terminal is set but no --console-socket was given for its master", .usage)
        }
        for note in plan.notes { context.log.warning(note) }

        let claim: VMClaim
        do { claim = try context.store.directory.claim(id) } catch {
            switch error {
            case .nameInUse: throw RuntimeFailure("container \(id) already exists", .wrongState)
            case .invalidName: throw RuntimeFailure("\(id): not a container ID (1 to 64 letters, digits, '_', '.' or '-')", .usage)
            default: throw RuntimeFailure("\(error)", .failed)
            }
        }
        let record = ContainerStore.Record(id: id, bundle: bundle, rootfs: plan.shares[0].hostPath,
                                           created: RuntimeLog.timestamp(), annotations: try spec(bundle: bundle).annotations)
        do { try claim.writeConfig(record.json) } catch {
            claim.discard()
            throw RuntimeFailure("\(error)", .failed)
        }
        let pid: pid_t
        var vmContext = context
        vmContext.environment[consoleSocketVariable] = plan.terminal ? consoleSocket : nil
        do { pid = try startVMProcess(id: id, claim: claim, context: vmContext) } catch {
            claim.discard()
            throw error
        }
        claim.release()
        // The container's namespaces exist now (the VM process's): the runtime-namespace
        // hooks run before create returns, as runc runs them.
        let state = ContainerStore.State(record: record, status: "creating", pid: pid)
        for name in ["prestart", "createRuntime"] {
            do { try HookRunner.run(name, of: plan.hooks, state: state) } catch {
                abandon(id: id, pid: pid, context: context)
                throw RuntimeFailure("\(error)", .failed)
            }
        }
        if let pidFile = args.values["pid-file"] {
            do { try FileIO.writeFileAtomically(pidFile, Array("\(pid)".utf8)) } catch {
                abandon(id: id, pid: pid, context: context)
                throw RuntimeFailure("--pid-file \(pidFile): \(error)", .failed)
            }
        }
        return 0
    }

    /// A create that fails after the VM process started: it is killed and its state goes.
    static func abandon(id: String, pid: pid_t, context: RuntimeCommand.Context) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        _ = context.store.waitUntilStopped(id, timeout: 5)
        try? context.store.directory.remove(id)
    }

    /// The bundle's host hooks, for start and delete (nil when config.json is gone).
    static func hooks(bundle: String) -> [String: [OCISpec.Hook]]? {
        guard let spec = try? spec(bundle: bundle) else { return nil }
        return try? ContainerPlan.hostHooks(spec.hooks)
    }

    static func absoluteBundle(_ path: String) throws(RuntimeFailure) -> String {
        guard let resolved = realpath(path, nil) else {
            throw RuntimeFailure("bundle \(path): \(HostError("realpath", errno: errno))", .badBundle)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func spec(bundle: String) throws(RuntimeFailure) -> OCISpec {
        let path = bundle + "/config.json"
        let bytes: [UInt8]
        do { bytes = try FileIO.readFile(path, limit: OCISpec.maximumSize) } catch {
            throw RuntimeFailure("bundle \(bundle): \(error)", .badBundle)
        }
        do { return try OCISpec.decode(bytes) } catch { throw RuntimeFailure("\(bundle)/\(error)", .badBundle) }
    }

    static func loadPlan(bundle: String) throws(RuntimeFailure) -> ContainerPlan {
        let spec = try spec(bundle: bundle)
        do { return try ContainerPlan.make(spec: spec, bundle: bundle, hostCPUs: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) } catch {
            throw RuntimeFailure("\(error)", .badBundle)
        }
    }

    /// Starts `svm-runtime [global flags] _vm ID` with our stdio (the container's) and the
    /// lock, and waits for its word: "ok" once the vCPUs run, or why it could not start.
    static func startVMProcess(id: String, claim: VMClaim, context: RuntimeCommand.Context) throws(RuntimeFailure) -> pid_t {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw RuntimeFailure("\(HostError("pipe", errno: errno))") }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        defer { close(readEnd) }
        // Only these two cross the exec (everything else of ours is close-on-exec).
        _ = fcntl(writeEnd, F_SETFD, 0)
        _ = fcntl(claim.lockFD, F_SETFD, 0)
        var environment = context.environment
        environment[readyFDVariable] = String(writeEnd)
        environment[lockFDVariable] = String(claim.lockFD)
        let argv = ["svm-runtime"] + context.globalArguments + [ContainerProcess.commandName, id]
        let spawned = spawn(executable: "/proc/self/exe", argv: argv, environment: environment)
        close(writeEnd)
        _ = fcntl(claim.lockFD, F_SETFD, FD_CLOEXEC)
        guard case let .success(pid) = spawned else {
            if case let .failure(error) = spawned { throw RuntimeFailure("start the VM process: \(error)") }
            throw RuntimeFailure("start the VM process")
        }
        var word: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while word.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            word += buffer[0..<n]
        }
        let text = String(decoding: word, as: UTF8.self).trimmingTrailingNewlines
        if text == "ok" { return pid }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let reason = text.hasPrefix("error: ") ? String(text.dropFirst(7)) : "the VM process ended before the VM started (exit status \(status >> 8 & 0xff))"
        throw RuntimeFailure(reason, .failed)
    }

    static func spawn(executable: String, argv: [String], environment: [String: String]) -> Result<pid_t, HostError> {
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        let rc = posix_spawn(&pid, executable, nil, nil, cArgs, cEnv)
        return rc == 0 ? .success(pid) : .failure(HostError("posix_spawn \(executable)", errno: rc))
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var s = self
        while s.hasSuffix("\n") { s.removeLast() }
        return s
    }
}
