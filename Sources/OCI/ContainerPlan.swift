import Glibc
import Sandbox

/// A bundle turned into what svm boots: the guest job (process, root, mounts), the host
/// directories to share and files to copy in, and the VM's size. Everything a bundle
/// asks for is either done, dropped because a VM makes it moot (listed in
/// docs/oci-runtime.md), or refused here with one line: nothing is silently weakened.
public struct ContainerPlan: Equatable, Sendable {
    public struct Share: Equatable, Sendable {
        public var tag: String
        public var hostPath: String
        public var readOnly: Bool
    }

    public struct File: Equatable, Sendable {
        public var initramfsPath: String
        public var hostPath: String
    }

    public var job: SandboxJob
    public var shares: [Share]
    public var files: [File]
    public var memory: UInt64
    public var cpus: Int
    /// The engine's network namespace (`linux.namespaces` type network with a path): the VM
    /// process joins it and connects the guest to its veth. nil: the guest has loopback only.
    public var networkNamespace: String? = nil
    /// A network namespace without a path: a new one, which the VM process makes for itself
    /// (unshare), as runc does; the engine puts its veth there after create (buildah's RUN
    /// through the state's pid, Docker's libnetwork-setkey prestart hook).
    public var newNetworkNamespace = false
    public var terminal: Bool
    public var consoleSize: (rows: UInt16, columns: UInt16)?
    /// The hooks svm-runtime runs on the host, by name (`prestart`, `createRuntime`,
    /// `poststart`, `poststop`), in the bundle's order.
    public var hooks: [String: [OCISpec.Hook]] = [:]
    /// Things the bundle asked for that the VM does differently (for the log).
    public var notes: [String]

    public static func == (a: ContainerPlan, b: ContainerPlan) -> Bool {
        a.networkNamespace == b.networkNamespace && a.newNetworkNamespace == b.newNetworkNamespace &&
        a.job == b.job && a.shares == b.shares && a.files == b.files && a.memory == b.memory && a.cpus == b.cpus
            && a.terminal == b.terminal && a.notes == b.notes && a.hooks == b.hooks
    }

    /// Defaults when neither the bundle's resources nor an annotation says.
    public static let defaultMemory: UInt64 = 256 << 20
    /// A guest kernel and init need this much; smaller limits are raised to it.
    public static let minimumMemory: UInt64 = 128 << 20
    public static let memoryAnnotation = "io.svm.mem"
    public static let cpusAnnotation = "io.svm.cpus"

    public enum PathKind { case directory, file, other, missing }

    /// - Parameters:
    ///   - bundle: the bundle directory (absolute); a relative root.path is under it.
    ///   - hostCPUs: the VM gets at most this many vCPUs.
    ///   - kind: what a host path is (stat, following symlinks); a parameter for tests.
    public static func make(spec: OCISpec, bundle: String, hostCPUs: Int,
                            kind: (String) -> PathKind = Self.statKind) throws(OCIError) -> ContainerPlan {
        guard let process = spec.process else { throw OCIError("config.json: process is missing (create needs one)") }
        guard let program = process.args.first, !program.isEmpty else { throw OCIError("config.json: process.args is empty") }
        guard process.cwd.hasPrefix("/") else { throw OCIError("config.json: process.cwd \(process.cwd) is not absolute") }
        if spec.uidMappings > 0 || spec.gidMappings > 0 || spec.namespaces.contains(where: { $0.type == "user" }) {
            throw OCIError("config.json: user namespaces (linux.uidMappings, rootless engines) are not supported: files in shares would be written with the guest's ids")
        }
        let hooks = try hostHooks(spec.hooks)
        for env in process.env where env.firstIndex(of: "=").map({ $0 == env.startIndex }) ?? true {
            throw OCIError("config.json: process.env entry \(env.debugDescription) is not KEY=VALUE")
        }
        var notes: [String] = []

        let rootPath = spec.rootPath.hasPrefix("/") ? spec.rootPath : bundle + "/" + spec.rootPath
        guard kind(rootPath) == .directory else { throw OCIError("root.path \(rootPath): not a directory") }
        // root.readonly is the guest's to enforce, as runc's kernel does: the init makes the
        // mount points the bundle needs in the root, then remounts it read-only (a share
        // read-only on the host could not have its mount points made).
        var shares = [Share(tag: ContainerJob.rootTag, hostPath: rootPath, readOnly: false)]
        var files: [File] = []
        var mounts: [ContainerJob.Mount] = []
        for (index, m) in spec.mounts.enumerated() {
            let dest = try normalize(m.destination, field: "mounts[\(index)].destination")
            let options = MountOptions.parse(m.options)
            let type = m.type ?? (options.isBind ? "bind" : "")
            switch type {
            case "bind", "rbind":
                guard let source = m.source, source.hasPrefix("/") else {
                    throw OCIError("config.json: mounts[\(index)] (\(dest)): a bind mount needs an absolute source")
                }
                // Shared memory is memory: a host directory behind virtio-fs cannot be it.
                if dest == "/dev/shm" {
                    mounts.append(.init(source: .fileSystem("tmpfs"), destination: dest,
                                        flags: options.flags & ~MountOptions.readOnly, data: "mode=1777"))
                    continue
                }
                switch kind(source) {
                case .directory:
                    let tag = ContainerJob.mountTag(index: index)
                    shares.append(Share(tag: tag, hostPath: source, readOnly: options.readOnly))
                    mounts.append(.init(source: .share(tag: tag), destination: dest, flags: options.flags))
                case .file:
                    let path = "svm/files/\(index)"
                    files.append(File(initramfsPath: path, hostPath: source))
                    mounts.append(.init(source: .initramfsFile("/" + path), destination: dest, flags: options.flags))
                case .other:
                    throw OCIError("mount \(source) on \(dest): only directories and regular files reach a VM (not devices or sockets)")
                case .missing:
                    throw OCIError("mount \(source) on \(dest): no such file or directory")
                }
            case "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup2", "cgroup":
                // The guest kernel mounts v2 only; a v1 request gets the unified hierarchy.
                let fs = type == "cgroup" ? "cgroup2" : type
                let data = fs == "cgroup2" ? "" : options.dataString
                mounts.append(.init(source: .fileSystem(fs), destination: dest, flags: options.flags, data: data))
            default:
                throw OCIError("config.json: mounts[\(index)] (\(dest)): mount type \(type.isEmpty ? "(none)" : type) is not supported")
            }
        }

        var container = ContainerJob(hostname: spec.hostname ?? "", readOnlyRoot: spec.rootReadOnly,
                                     noNewPrivileges: process.noNewPrivileges, umask: process.user.umask,
                                     additionalGroups: process.user.additionalGids, mounts: mounts)
        for r in process.rlimits {
            guard let number = ResourceLimitNames.numbers[r.type] else {
                throw OCIError("config.json: process.rlimits: unknown type \(r.type)")
            }
            guard r.soft <= r.hard else { throw OCIError("config.json: process.rlimits \(r.type): soft \(r.soft) above hard \(r.hard)") }
            container.rlimits.append(.init(resource: number, soft: r.soft, hard: r.hard))
        }
        if let c = process.capabilities {
            container.capabilities = .init(
                bounding: try CapabilityNames.mask(c.bounding, field: "process.capabilities.bounding"),
                effective: try CapabilityNames.mask(c.effective, field: "process.capabilities.effective"),
                permitted: try CapabilityNames.mask(c.permitted, field: "process.capabilities.permitted"),
                inheritable: try CapabilityNames.mask(c.inheritable, field: "process.capabilities.inheritable"),
                ambient: try CapabilityNames.mask(c.ambient, field: "process.capabilities.ambient"))
        }
        // No network namespace at all is the host's network, which a VM cannot share: the
        // guest keeps loopback only (said in the log).
        var networkNamespace: String?
        let networkEntry = spec.namespaces.last(where: { $0.type == "network" })
        if networkEntry == nil {
            notes.append("the host's network (no network namespace) cannot reach a VM: the guest has loopback only")
        }
        if let path = networkEntry?.path {
            guard path.hasPrefix("/"), !path.utf8.contains(0) else {
                throw OCIError("config.json: linux.namespaces network path \(path.debugDescription) is not an absolute path")
            }
            networkNamespace = path
        }

        let job = SandboxJob(argv: process.args, env: process.env, workdir: process.cwd, uid: process.user.uid,
                             gid: process.user.gid, tty: process.terminal,
                             terminalRows: process.consoleSize?.rows ?? 0, terminalColumns: process.consoleSize?.columns ?? 0,
                             container: container)
        var plan = ContainerPlan(job: job, shares: shares, files: files, memory: defaultMemory, cpus: 1,
                                 terminal: process.terminal, consoleSize: process.consoleSize, notes: notes)
        plan.hooks = hooks
        try plan.size(spec: spec, hostCPUs: hostCPUs)
        plan.networkNamespace = networkNamespace
        plan.newNetworkNamespace = networkEntry != nil && networkNamespace == nil
        return plan
    }

    /// Hooks that run in the runtime's namespace (runc runs them on the host too): kept.
    /// `createContainer` and `startContainer` run inside the container, where a host path
    /// means nothing (the container is a VM with the image's files): refused.
    public static let hostHookNames: Set<String> = ["prestart", "createRuntime", "poststart", "poststop"]

    public static func hostHooks(_ hooks: [String: [OCISpec.Hook]]) throws(OCIError) -> [String: [OCISpec.Hook]] {
        var kept: [String: [OCISpec.Hook]] = [:]
        for name in hooks.keys.sorted() {
            guard let list = hooks[name], !list.isEmpty else { continue }
            guard hostHookNames.contains(name) else {
                throw OCIError("config.json: hooks.\(name) is not supported (it would run inside the container, which is a VM)")
            }
            for (i, hook) in list.enumerated() {
                guard hook.path.hasPrefix("/") else { throw OCIError("config.json: hooks.\(name)[\(i)].path \(hook.path) is not absolute") }
                if let t = hook.timeout, t <= 0 { throw OCIError("config.json: hooks.\(name)[\(i)].timeout \(t) is not positive") }
            }
            kept[name] = list
        }
        return kept
    }

    /// Memory and vCPUs: the annotation, else the bundle's limits, else the defaults.
    mutating func size(spec: OCISpec, hostCPUs: Int) throws(OCIError) {
        if let text = spec.annotations[Self.memoryAnnotation] {
            guard let bytes = Self.parseSize(text), bytes >= Self.minimumMemory, bytes <= 1 << 40 else {
                throw OCIError("annotation \(Self.memoryAnnotation)=\(text): not a size from 128M to 1T (e.g. 512M)")
            }
            memory = bytes
        } else if let limit = spec.memoryLimit, limit > 0 {
            let rounded = (UInt64(limit) + (1 << 20) - 1) & ~((1 << 20) - 1)
            if rounded < Self.minimumMemory { notes.append("memory limit \(limit) raised to \(Self.minimumMemory >> 20)M for the guest kernel") }
            memory = max(rounded, Self.minimumMemory)
        }
        if let text = spec.annotations[Self.cpusAnnotation] {
            guard let n = Int(text), n >= 1, n <= 255 else {
                throw OCIError("annotation \(Self.cpusAnnotation)=\(text): not a vCPU count from 1 to 255")
            }
            cpus = n
        } else if let quota = spec.cpuQuota, quota > 0 {
            let period = Int64(spec.cpuPeriod ?? 100_000)
            let wanted = Int((quota + max(period, 1) - 1) / max(period, 1))
            cpus = max(1, min(wanted, max(hostCPUs, 1)))
        }
    }

    /// "512M", "1G", "268435456" (bytes), with k/m/g in either case.
    static func parseSize(_ text: String) -> UInt64? {
        guard let last = text.last else { return nil }
        let shift: UInt64
        var digits = Substring(text)
        switch last {
        case "k", "K": shift = 10; digits = digits.dropLast()
        case "m", "M": shift = 20; digits = digits.dropLast()
        case "g", "G": shift = 30; digits = digits.dropLast()
        default: shift = 0
        }
        guard let n = UInt64(digits), n <= UInt64.max >> shift else { return nil }
        return n << shift
    }

    /// Absolute, without "." or ".." or empty components; "/" stays "/".
    static func normalize(_ path: String, field: String) throws(OCIError) -> String {
        guard path.hasPrefix("/") else { throw OCIError("config.json: \(field) \(path) is not absolute") }
        let parts = path.split(separator: "/").filter { $0 != "." }
        guard !parts.contains("..") else { throw OCIError("config.json: \(field) \(path) has a \"..\" component") }
        guard !path.utf8.contains(0) else { throw OCIError("config.json: \(field) contains a NUL byte") }
        return "/" + parts.joined(separator: "/")
    }

    public static func statKind(_ path: String) -> PathKind {
        var st = stat()
        guard stat(path, &st) == 0 else { return .missing }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        default: return .other
        }
    }
}
