enum HelpText {
    static let main = """
    svm: run Linux in a KVM virtual machine.

    Usage:
      svm boot [--kernel PATH] [--initrd PATH] [--mem SIZE] [--cpus N] [--cmdline STR] [--timeout S]
      svm --version | --help

    Commands:
      boot    boot a Linux kernel with its console on this terminal (svm boot --help)

    """

    static let boot = """
    Usage: svm boot [options]

    Boots a Linux kernel directly (no BIOS) with its console on stdin/stdout.
    All guest RAM is allocated and faulted in before the guest starts. Every VM also has
    a virtio-rng device, so the guest's entropy pool does not starve.

    Options:
      -k, --kernel PATH    kernel to boot: an ELF vmlinux with a PVH entry note, or a bzImage
                           (the format is read from the file). Default: the kernel built by
                           scripts/build-guest-kernel (with the initramfs of scripts/build-initramfs).
      -i, --initrd PATH    initramfs / initrd image
          --firmware PATH  instead of a kernel: a flat binary loaded at 0x8000 and entered in
                           16-bit real mode at 0000:8000 (tiny test guests, benchmarks)
      -m, --mem SIZE       guest RAM: 512M, 2G, or a plain number of MiB (default 512M)
      -p, --cpus N         virtual CPUs, one host thread each (default 1, at most 40)
      -c, --cmdline STR    kernel command line (default "console=ttyS0"); svm puts the
                           parameters its machine needs in front (reboot=k panic=-1 acpi=off …,
                           and CPU-feature workarounds on hosts that emulate guest kernel code)
      -t, --timeout S      stop the VM after S seconds (exit status 124)
      -d, --disk PATH[,readonly]
                           a raw disk image as virtio-blk (/dev/vda, /dev/vdb, … in order);
                           refused if another svm uses it read-write (advisory lock)
      -n, --net tap=NAME[,mac=MAC]
                           a virtio-net interface on an existing host TAP device
                           (scripts/tap-setup creates and addresses one)
          --console serial|virtio
                           where the guest console is: the 16550 UART (ttyS0, default) or
                           virtio-console (hvc0; early boot messages still come from ttyS0)
      -h, --help           this text

    Console: on a terminal, input is raw and goes to the guest; Ctrl-A x quits svm,
    Ctrl-A Ctrl-A sends a Ctrl-A. When stdin is not a terminal, bytes pass through.

    Exit status:
      0    the guest rebooted or powered off, or Ctrl-A x
      1    the guest kernel panicked or the guest crashed (reason on stderr)
      2    usage error or bad input (flags, kernel, initrd, --mem, no usable /dev/kvm)
      3    host failure while running the VM
      124  --timeout expired
      128+N  svm was ended by signal N

    """
}
