enum HelpText {
    static let main = """
    svm: run Linux in a KVM virtual machine.

    Usage:
      svm boot [-d] [--name NAME] [--kernel PATH] [--initrd PATH] [--mem SIZE] [--cpus N] ...
      svm run [options] -- PROGRAM [ARGS...]
      svm ps [-a] [--format json]
      svm logs [-f] [--tail N] NAME
      svm attach NAME
      svm pause NAME | resume NAME | stop [-t S] NAME | kill NAME | restart NAME | rm [-f] NAME
      svm snapshot [--resume] NAME DIR | restore [-d] [--name NAME] DIR
      svm --version | --help

    Commands:
      boot     boot a Linux kernel with its console on this terminal, or detached (-d)
      run      run a host program in a throwaway VM, with its stdin, stdout, stderr
               and exit status passed through
      ps       list VMs (-a: also exited ones)
      logs     print a VM's console log (-f: follow it)
      attach   connect this terminal to a VM's console (Ctrl-A d detaches)
      pause    stop a VM's vCPUs; resume runs them again
      stop     ask the guest to shut down, end the VM after -t seconds (default 10)
      kill     end a VM at once
      restart  stop a VM and boot it again, detached, with the same options and name
      rm       remove an exited VM's state (-f: end a running one first)
      snapshot save a running VM into a new directory (it ends, unless --resume)
      restore  continue a saved VM, as a managed VM like svm boot's (-d: detached)

    Every command has --help. VMs live in ${SVM_RUN_DIR:-/run/svm}/NAME/ (for users other
    than root: $XDG_RUNTIME_DIR/svm, else /tmp/svm-UID).

    """

    static let boot = """
    Usage: svm boot [options]

    Boots a Linux kernel directly (no BIOS) with its console on stdin/stdout, or with -d in
    the background, its console going to its log (svm logs, svm attach). Every VM has a
    name, a state directory and a control socket, so svm ps, pause and stop reach it.
    Guest RAM is reserved when the VM starts (svm refuses --mem beyond the host's available
    memory) and faulted in as the guest first touches it; --prefault faults all of it in
    before the guest starts. Every VM also has a virtio-rng device, so the guest's entropy
    pool does not starve.

    Options:
      -k, --kernel PATH    kernel to boot: an ELF vmlinux with a PVH entry note, or a bzImage
                           (the format is read from the file). Default: the kernel built by
                           scripts/build-guest-kernel (with the initramfs of scripts/build-initramfs).
      -i, --initrd PATH    initramfs / initrd image
      -d, --detach         run the VM in the background: svm prints its name and exits 0 once
                           its vCPUs run (a VM that fails before that: its reason and status)
          --name NAME      the VM's name (default svm- and 8 hex digits); a running VM's name
                           cannot be taken (exit 2)
          --firmware PATH  instead of a kernel: a flat binary loaded at 0x8000 and entered in
                           16-bit real mode at 0000:8000 (tiny test guests, benchmarks)
      -m, --mem SIZE       guest RAM: 512M, 2G, or a plain number of MiB (default 512M)
          --prefault       fault in all guest RAM before the guest starts (with huge pages,
                           one thread per host core): no page faults later, and a VM whose
                           memory the host cannot supply fails at start, not mid-run
      -p, --cpus N         virtual CPUs, one host thread each (default 1, at most 40)
      -c, --cmdline STR    kernel command line (default "console=ttyS0"); svm puts the
                           parameters its machine needs in front (reboot=k panic=-1 acpi=off …,
                           and CPU-feature workarounds on hosts that emulate guest kernel code)
      -t, --timeout S      stop the VM after S seconds (exit status 124)
          --disk PATH[,readonly]
                           a raw disk image as virtio-blk (/dev/vda, /dev/vdb, … in order);
                           refused if another svm uses it read-write (advisory lock)
      -n, --net tap=NAME[,mac=MAC]
                           a virtio-net interface on an existing host TAP device
                           (scripts/tap-setup creates and addresses one)
      -s, --share HOST_DIR:TAG[,ro]
                           a live shared folder (virtio-fs): the guest mounts it with
                           `mount -t virtiofs TAG /mnt`; changes show on both sides at
                           once. One virtiofsd (package qemu-system-common) per share, in
                           its namespace sandbox; ro is enforced on the host (a read-only
                           bind mount), not only by the guest's mount flags. Needs root.
          --console serial|virtio
                           where the guest console is: the 16550 UART (ttyS0, default) or
                           virtio-console (hvc0; early boot messages still come from ttyS0)
      -h, --help           this text

    Console: on a terminal, input is raw and goes to the guest; Ctrl-A x quits svm,
    Ctrl-A Ctrl-A sends a Ctrl-A. When stdin is not a terminal, bytes pass through.
    The guest's init gets shutdown requests (svm stop) on a virtio console announced as
    svm.agent=/dev/hvcN on its command line.

    Exit status:
      0    the guest rebooted or powered off, or Ctrl-A x
      1    the guest kernel panicked or the guest crashed (reason on stderr)
      2    usage error or bad input (flags, kernel, initrd, --mem, no usable /dev/kvm,
           a name in use)
      3    host failure while running the VM
      124  --timeout expired
      128+N  svm was ended by signal N
      137  the VM was killed (svm kill, or svm stop after its time)
    With -d, the status of svm boot is 0 once the VM runs; svm ps -a shows how it ended.

    """

    static let run = """
    Usage: svm run [options] [--] PROGRAM [ARGS...]

    Runs PROGRAM, a Linux x86-64 ELF executable from this host, in a throwaway VM: svm
    copies the program and the shared libraries it needs into an initramfs, boots the
    project's guest kernel on it, and runs the program under a small init. Its stdout and
    stderr come back byte for byte on svm's stdout and stderr, stdin is forwarded when it
    is a pipe or a file, and svm exits with the program's status. When stdin and stdout
    are both terminals (or with --tty) the program gets a terminal instead. Nothing of
    the host is visible in the guest except its volumes; the VM and everything in it are
    gone afterwards.

    PROGRAM is looked up on the host PATH unless it contains a "/". Scripts are not
    programs: run their interpreter (svm run -- /bin/sh script.sh, with the script in a
    --volume). Programs that need data files (Python's standard library, say) need them
    in a --volume.

    Options:
      -m, --mem SIZE       guest RAM: 256M, 1G, or a plain number of MiB (default 256M)
      -p, --cpus N         virtual CPUs (default 1)
      -t, --timeout S      stop after S seconds, counted from svm's start and including
                           the guest's boot (exit status 124)
      -e, --env KEY=VALUE  an environment variable for the program (repeatable). The program
                           gets only PATH=/usr/local/bin:/usr/bin:/bin, LD_LIBRARY_PATH when its
                           libraries need it, and these; a KEY given here replaces svm's.
      -w, --workdir DIR    the program's working directory in the guest (default /tmp,
                           a tmpfs it can write to); created if missing
      -v, --volume HOST:GUEST[:ro]
                           the host directory HOST at GUEST in the guest (repeatable).
                           Run as root (with virtiofsd, package qemu-system-common),
                           volumes are LIVE shares (virtio-fs): the program's writes are on
                           the host as they happen, whatever their size, and stay there
                           however it ends (--timeout and signals included). Ownership and
                           permissions are the host's: the program writes where its uid
                           (nobody, 65534, unless --user or --root) may write on the host.
                           :ro is enforced on the host. As a user other than root, or with
                           --copy-volumes, volumes are COPIED in when svm starts and, unless :ro,
                           COPIED BACK when the program has ended by itself (not after
                           --timeout or a signal to svm): new and changed files and directories are
                           written to HOST, files that were copied in and are gone in the
                           guest are deleted there. Symlinks come back as symlinks and are
                           never followed; permission bits are kept except setuid/setgid;
                           new files belong to the user running svm. At most 1 GiB comes
                           back (files, names and headers); a guest that sends more, or
                           anything malformed, changes nothing on the host and svm exits 125.
                           :ro makes the guest copy read-only, and nothing comes back.
                           Files, directories and symlinks are copied in (symlinks as they
                           are); anything else is skipped with a note. Everything in a
                           volume belongs to the program's user in the guest.
      -n, --net none|tap=NAME[,mac=MAC]
                           no network (default), or a virtio-net interface on an existing
                           host TAP device (scripts/tap-setup). svm configures no address in
                           the guest: the program must do it (which needs --root).
      -k, --kernel PATH    the guest kernel (default: the one scripts/build-guest-kernel built)
          --root           run the program as root (uid 0) in the guest; default: nobody (65534).
                           With a live read-write volume that is root's power over HOST
                           (setuid files included): only for programs you trust
      -u, --user UID[:GID] run the program as UID (and GID, default UID) instead of nobody,
                           e.g. --user $(id -u):$(id -g) to write live volumes as yourself
          --copy-volumes   copy volumes in and back (below) even where they could be live
          --tty            give the program a terminal (its controlling tty, with the size
                           of svm's), as it gets anyway when svm's stdin and stdout are both
                           terminals. stdout and stderr are then MERGED into svm's stdout,
                           with terminal line endings (\\r\\n), as with docker run -t; svm's
                           terminal is raw while the program runs (^C goes to the program;
                           Ctrl-A x stops the VM, exit 130; Ctrl-A Ctrl-A sends a Ctrl-A)
                           and restored afterwards. During the boot ^C still stops svm.
          --verbose        show the guest's serial console on stderr, and at the end how long
                           set-up, boot, the program and shutdown took
      -h, --help           this text

    The guest: the project's kernel; the initramfs holds the program, its libraries, the
    copied volumes and the init (scripts/build-init); /tmp and /dev/shm are tmpfs; /proc, /sys
    and /dev are mounted. The program runs in a new session (with a terminal only as
    above), as nobody unless --root or --user, with no network unless --net. Kernel messages never
    reach stdout or stderr (see them with --verbose).

    Exit status:
      N      the program exited with status N
      128+N  the program was killed by signal N, or svm was (SIGINT, SIGTERM, ...)
      124    --timeout expired
      125    svm could not run the program: usage error, program not found or not an
             x86-64 ELF executable, a missing volume, no usable /dev/kvm, no kernel or
             init, the guest failed before the program's status came back, or the
             copy-back of a read-write volume failed (one line on stderr says which,
             with the program's status when it was known)

    """

    static let ps = """
    Usage: svm ps [-a] [--format table|json]

    Lists the VMs that are running (or paused, or stopping); -a also lists exited ones,
    with their exit status ("exited (unknown)": the VM process died without saying how).
    Columns: NAME, STATE, PID, CPUS, MEM, UPTIME, KERNEL. --format json prints an array of
    objects with name, state, status, pid, cpus, memory (bytes), uptime (s), kernel.

    """

    static let logs = """
    Usage: svm logs [-f] [--tail N] NAME

    Prints the VM's console log: what its serial console (or virtio console) printed, the
    last 16 MiB at most. -f, --follow keeps printing new output until the VM ends;
    -n, --tail N starts with the last N lines.

    """

    static let attach = """
    Usage: svm attach NAME

    Connects this terminal to the running VM's console: what it prints from now on, and
    what you type goes to it (raw on a terminal). Ctrl-A d detaches and leaves the VM
    running; Ctrl-A x ends the VM; Ctrl-A Ctrl-A sends a Ctrl-A.

    """

    static let snapshot = """
    Usage: svm snapshot [--resume] NAME DIR

    Saves the running VM NAME into the new directory DIR: guest RAM as a sparse file, the
    state of every vCPU and device, and a checksummed manifest (docs/snapshot.md). The
    vCPUs are paused and the device loop stopped between requests while it is written.
    Without --resume the VM then ends (status 0); `svm restore DIR` continues it. With
    --resume it goes on. VMs with --share folders cannot be saved yet.

      -r, --resume   let the VM go on after the snapshot is on disk

    """

    static let restore = """
    Usage: svm restore [-d] [--name NAME] DIR

    Continues the VM saved in DIR, with its devices as they were (same disks, TAPs, RAM and
    vCPUs), as a managed VM: the console is here (or with -d in its log), and ps, logs,
    attach, stop and kill work as for svm boot, with the same exit statuses. Its RAM is
    mapped copy-on-write from DIR/memory, so any number of VMs can restore one snapshot
    at once (a snapshot with a read-write disk can only run once at a time).

    Refused with one line and exit status 4: a snapshot whose files do not match their
    checksums, made by another svm version, for other CPU features than this host gives a
    guest, or whose disks changed since it was made.

      -d, --detach   run in the background; prints the VM's name once it runs
      --name NAME    the VM's name (default svm- and 8 hex digits)

    """

    static let pause = """
    Usage: svm pause NAME

    Takes every vCPU of the VM out of KVM_RUN: the guest executes nothing until svm resume.
    Its clocks are not stopped: after resuming, the guest's time has moved on by the pause.

    """

    static let resume = """
    Usage: svm resume NAME

    Lets the vCPUs of a paused VM run again.

    """

    static let stop = """
    Usage: svm stop [-t SECONDS] NAME

    Asks the guest to shut down (the project's inits stop their program with SIGTERM and
    power off), waits up to SECONDS (default 10) for the VM to end, then ends it. Exits 0
    once the VM is gone (also when it was not running).

    """

    static let kill = """
    Usage: svm kill NAME

    Ends the VM at once. Its exit status is recorded as 137.

    """

    static let restart = """
    Usage: svm restart [-t SECONDS] NAME

    Stops the VM as svm stop does (if it runs), then boots it again in the background
    with the options it was first booted with, under the same name.

    """

    static let rm = """
    Usage: svm rm [-f] NAME

    Removes an exited VM's state directory (its log and exit record). A running VM is
    refused unless -f, which ends it first.

    """
}
