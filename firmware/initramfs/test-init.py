#!/usr/bin/env python3
"""Runs the real /init of the test initramfs (built by scripts/build-initramfs into a
temporary cache) as PID 1 of a pid+mount namespace, chrooted into the unpacked archive,
with a pty standing in for the agent port. Checks the ready line, svm.init=poweroff,
svm.init=counter, the shell, and the stop request on svm.agent: SIGTERM reaches other
processes, then `poweroff -f`, which in a pid namespace kills its init with SIGINT (the
kernel's reboot_pid_ns), so unshare ends by SIGINT. With strace, counts the forks: one
for `mount -a`, one for the agent watcher, none per counter tick.

The init's `kill -TERM -1` and `poweroff -f` must never run outside a pid namespace
(they would hit the whole host): every run goes through unshare --pid, and the test stops
unless that really gives PID 1. Test-only changes to the tree: an empty /etc/fstab and plain
files for /proc/cmdline, /proc/meminfo and /sys/devices/system/cpu/online (no proc or sysfs
mounted), /dev/null and the agent pty bind-mounted. Needs root, unshare, cpio, busybox-static
(and strace for the fork count); not run by swift test.
"""
import os, select, shutil, signal, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
READY = b"svm-init: ready cpus=2 mem_kb=123456\n"


def unpack(tmp):
    env = dict(os.environ, SVM_CACHE_DIR=os.path.join(tmp, "cache"))
    out = subprocess.check_output([os.path.join(repo, "scripts/build-initramfs")], env=env).decode()
    cpio = out.strip().removeprefix("initramfs=")
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    # Only the main archive: cpio stops at its trailer, before the appended device nodes.
    with open(cpio, "rb") as f:
        subprocess.check_call(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], cwd=root, stdin=f)
    open(f"{root}/etc/fstab", "w").close()
    os.makedirs(f"{root}/sys/devices/system/cpu", exist_ok=True)
    open(f"{root}/sys/devices/system/cpu/online", "w").write("0-1\n")
    open(f"{root}/proc/meminfo", "w").write("MemTotal:         123456 kB\nMemFree:  1 kB\n")
    for n in ["null", "agent"]:
        open(f"{root}/dev/{n}", "w").close()
    return root


class Guest:
    """The init as PID 1 of a new pid namespace; its console is stdin/stdout."""

    def __init__(self, root, cmdline, strace=None):
        open(f"{root}/proc/cmdline", "w").write(cmdline + "\n")
        self.agent, slave = os.openpty()
        wrap = ["strace", "-f", "-qq", "-e", "trace=process", "-o", strace] if strace else []
        script = (f"mount --bind /dev/null {root}/dev/null; mount --bind {os.ttyname(slave)} {root}/dev/agent; "
                  f"exec {' '.join(wrap)} chroot {root} /init")
        self.p = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
                                   "sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        os.close(slave)
        self.out, self.lines = b"", []  # lines: (seconds since start, line)
        self.start = time.time()

    def read_until(self, want, timeout=15):
        """Reads the console until `want` is in it; returns the time it came."""
        deadline = time.time() + timeout
        while want not in self.out:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.p.stdout], [], [], left)[0]:
                self.fail(f"no {want!r} within {timeout} s")
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                self.fail(f"console ended before {want!r}")
            self.out += chunk
        return time.time() - self.start

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait(self, timeout=15):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("still running")
        self.out += self.p.stdout.read()
        return self.p.returncode

    def fail(self, why):
        self.p.kill()
        sys.exit(f"FAIL: {why}; console so far:\n{self.out.decode(errors='replace')}")


def check(name, ok, detail=""):
    if not ok:
        sys.exit(f"FAIL {name} {detail}")
    print(f"ok {name}")


def forks(log):
    """(forks, programs executed) of the traced init, from an strace -f log."""
    text = open(log).read().splitlines()
    clones = [l for l in text if " clone(" in l or " clone3(" in l or " fork(" in l or " vfork(" in l]
    execs = [l.split('"')[1] for l in text if " execve(" in l and "= 0" in l]
    return len(clones), execs


def main():
    if os.geteuid() != 0 or not os.path.exists("/bin/busybox") or not shutil.which("unshare"):
        print("skipped: needs root, unshare and busybox-static")
        return
    # The safety the whole test rests on: the init below runs as PID 1 of its own namespace.
    pid = subprocess.check_output(["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", "echo $$"]).strip()
    if pid != b"1":
        sys.exit(f"FAIL: unshare --pid gave pid {pid!r}, not 1: refusing to run kill -1 and poweroff")
    with tempfile.TemporaryDirectory() as tmp:
        root = unpack(tmp)

        g = Guest(root, "console=ttyS0 svm.init=poweroff")
        g.read_until(READY)
        check("poweroff: the ready line, then poweroff -f (SIGINT in a pid namespace)",
              g.wait() == -signal.SIGINT and g.out == READY, repr(g.out))

        g = Guest(root, "console=ttyS0 quiet")
        g.read_until(READY)
        g.send(b"echo \"hello from pid $$\"; exit 7\n")
        # (cttyhack finds no /sys/class/tty/console here and says so, then runs sh anyway.)
        status = g.wait()
        check("shell: the ready line first, then a shell as PID 1",
              status == 7 and g.out.startswith(READY) and g.out.endswith(b"\nhello from pid 1\n"), f"{status} {g.out!r}")

        g = Guest(root, "console=ttyS0 svm.agent=/dev/agent svm.init=counter quiet")
        times = [g.read_until(b"svm-counter %d\n" % n) for n in (1, 2, 3, 4)]
        gaps = [b - a for a, b in zip(times, times[1:])]
        check("counter: a line a second", all(0.8 < d < 1.6 for d in gaps), f"gaps {gaps}")
        check("counter: after the ready line", g.out.startswith(READY + b"svm-counter 1\n"), repr(g.out))
        os.write(g.agent, b"hello\n")  # not a request: ignored
        g.read_until(b"svm-counter 6\n")
        check("counter: other lines on the agent port are ignored", b"stop requested" not in g.out)
        os.write(g.agent, b"stop\n")
        t = g.read_until(b"svm-init: stop requested")
        status = g.wait()
        check("counter: stop powers off", status == -signal.SIGINT, f"status {status}")
        check("counter: about a second after the request", 0.8 < time.time() - g.start - t < 2.5)

        g = Guest(root, "console=ttyS0 svm.agent=/dev/agent")
        g.read_until(READY)
        g.send(b"/bin/busybox sh -c 'trap \"echo victim: SIGTERM; exit 0\" TERM; echo victim: ready; "
               b"while :; do read -t 1 _ <>/etc/svm/idle.fifo; done' &\n")
        g.read_until(b"victim: ready\n")
        os.write(g.agent, b"stop\n")
        g.read_until(b"victim: SIGTERM\n")
        status = g.wait()
        check("shell: stop sends SIGTERM to other processes, then powers off", status == -signal.SIGINT,
              f"status {status}")
        check("shell: the shell (PID 1) is spared", b"Terminated" not in g.out, repr(g.out))
        check("the agent port is a tty that echoes", b"stop" in os.read(g.agent, 4096))

        if not shutil.which("strace"):
            print("skipped fork count: no strace")
            return
        # Under strace, strace is PID 1 and the init is not, so kill -1 reaches the init
        # too; the counts up to the power-off are what matter.
        log = os.path.join(tmp, "strace.log")
        g = Guest(root, "console=ttyS0 svm.init=counter", strace=log)
        g.read_until(b"svm-counter 4\n")
        g.p.kill()
        g.wait()
        n, execs = forks(log)
        check("forks: counter mode without agent: only mount -a", n == 1, f"{n} forks, {execs}")
        g = Guest(root, "console=ttyS0 svm.agent=/dev/agent svm.init=counter", strace=log)
        g.read_until(b"svm-counter 4\n")
        os.write(g.agent, b"stop\n")
        g.wait()
        n, execs = forks(log)
        check("forks: with the agent watcher: one more, and the stop forks nothing", n == 2, f"{n} forks, {execs}")
        check("execs: chroot, /init, mount, poweroff", execs[-3:] == ["/init", "/bin/mount", "/sbin/poweroff"],
              repr(execs))


main()
