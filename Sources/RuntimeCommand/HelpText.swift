/// `svm-runtime --help`, `--version` and each command's help.
enum HelpText {
    /// runc's first line: some callers parse "runc version".
    static let version = """
        runc version 1.1.5 (svm-runtime \(RuntimeInfo.version): containers in svm microVMs)
        svm-runtime version \(RuntimeInfo.version)
        spec: \(RuntimeInfo.ociVersion)

        """

    static var usage: String {
        var text = """
            usage: svm-runtime [global flags] COMMAND [flags] ARGS

            An OCI runtime with runc's command line: podman, Docker (containerd's runc shim)
            and ctr call it instead of runc, and each container runs in its own svm microVM
            with its own kernel. The VM boots at create; the process runs at start.

            Global flags:
              --root DIR            state directory (default \(ContainerStore.defaultRoot))
              --log FILE            also write messages to FILE
              --log-format text|json  format of --log (json: {"level","msg","time"} lines)
              --debug               debug messages in --log
              --systemd-cgroup, --rootless VALUE, --criu PATH   accepted for compatibility
              --version, --help

            Commands:

            """
        for c in RuntimeCommand.commands {
            text += "  " + c.name + String(repeating: " ", count: max(1, 10 - c.name.count)) + c.summary + "\n"
        }
        text += """

            Exit statuses: 0 done, 1 failed, 2 bad command line, 3 bad bundle, 4 no such
            container, 5 not allowed in the container's state. The container's pid (the VM
            process) exits with the container process's status (128+N for signal N).

            """
        return text
    }

    static func help(for command: RuntimeCommand.Command) -> String {
        let details: [String: String] = [
            "create": "create [--bundle DIR] [--pid-file FILE] [--console-socket SOCKET] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID\n  (--console-socket: where the terminal's master goes, needed with process.terminal; hooks prestart and createRuntime run before it returns)",
            "start": "start ID",
            "state": "state ID",
            "kill": "kill [--all] ID [SIGNAL]   (SIGNAL: TERM, SIGTERM or 15; default TERM)",
            "delete": "delete [--force] ID",
            "list": "list [--format table|json] [--quiet]",
            "ps": "ps [--format table|json] ID",
            "pause": "pause ID",
            "resume": "resume ID",
            "exec": """
                exec [--detach] [--pid-file FILE] --process FILE ID
                       exec [--detach] [--pid-file FILE] [--env K=V]... [--cwd DIR] [--user UID[:GID]]
                            [--additional-gids GID]... [--cap CAP]... [--no-new-privs] ID CMD [ARGS...]

                Runs another process in the running container's VM, set up like the container's
                process (its root, rlimits, umask) with the identity, env, cwd and capabilities of
                the OCI process object in FILE, or of the container's own process with CMD and the
                flags applied. stdin, stdout and stderr pass through byte for byte; the signals
                this process gets go on to the exec'd one; the status is the exec'd process's
                (128+N for signal N; 127 not found, 126 not runnable, 137 the VM ended).
                --detach leaves a host process (svm-runtime _exec) with that role and writes its
                pid to --pid-file. --tty / process.terminal are refused for now; --console-socket,
                --preserve-fds, --process-label, --apparmor, --cgroup, --ignore-paused are accepted
                and have nothing to do in a VM.
                """,
            "update": "update [--resources FILE] [flags] ID   (a VM's size is fixed at create: accepted, nothing changes)",
            "features": "features",
            "run": "run (not supported: engines call create and start)",
        ]
        return "usage: svm-runtime \(details[command.name] ?? command.name)\n\n\(command.summary)\n"
    }
}
