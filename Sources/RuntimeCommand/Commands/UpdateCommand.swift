/// `update`: a VM's memory and vCPUs are fixed when it boots, so new limits are
/// accepted (engines send them routinely) and the warning says they were not applied.
enum UpdateCommand {
    static let command = RuntimeCommand.Command(name: "update", summary: "accept new resource limits (a VM's size is fixed at create)", run: run)

    static func run(_ arguments: [String], _ context: RuntimeCommand.Context) throws(RuntimeFailure) -> Int32 {
        let args = try ArgumentScanner(
            valued: ["resources", "r", "blkio-weight", "cpu-period", "cpu-quota", "cpu-rt-period", "cpu-rt-runtime",
                     "cpu-share", "cpuset-cpus", "cpuset-mems", "kernel-memory", "kernel-memory-tcp", "memory",
                     "memory-reservation", "memory-swap", "pids-limit", "l3-cache-schema", "mem-bw-schema"],
            boolean: []).scan(arguments)
        let id = try RuntimeCommand.containerID(args.positional, command: "update")
        _ = try context.store.state(of: id)
        context.log.warning("update \(id): a VM's memory and vCPUs are fixed at create; the new limits were not applied")
        return 0
    }
}
