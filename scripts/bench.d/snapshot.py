"""Snapshots (imported by scripts/bench for `--only snapshot`): one boot of a 512 MiB guest
to its shell prompt, then

- `svm snapshot --resume` of it: wall time until the snapshot is on disk, the memory file's
  size on disk against its apparent size (median of N, each into a new directory);
- `svm restore -d` until the VM runs (process started, every check done, vCPUs running),
  then `svm kill` (median of N, each a new VM from the one snapshot).
"""
import os, shutil, statistics, subprocess, tempfile, time


def _svm(svm, env, *args, timeout=600):
    return subprocess.run([svm, *args], capture_output=True, text=True, timeout=timeout, env=env)


def measure(svm, kernel, initrd, runs, log):
    work = tempfile.mkdtemp(prefix="svm-bench-snapshot-")
    env = dict(os.environ, SVM_RUN_DIR=os.path.join(work, "run"))
    name = "bench-snap"
    guest = subprocess.Popen([svm, "boot", "--name", name, "--mem", "512M", "--kernel", kernel, "--initrd", initrd],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        seen = b""
        deadline = time.monotonic() + 400
        while b"svm# " not in seen and time.monotonic() < deadline:
            chunk = os.read(guest.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
        if b"svm# " not in seen:
            raise RuntimeError("no shell prompt")
        log("  guest at its prompt")
        saves, sizes = [], []
        for i in range(runs):
            target = os.path.join(work, f"s{i}")
            start = time.monotonic()
            r = _svm(svm, env, "snapshot", "--resume", name, target)
            saves.append(time.monotonic() - start)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.strip())
            st = os.stat(os.path.join(target, "memory"))
            sizes.append((st.st_blocks * 512, st.st_size))
        snapshot = os.path.join(work, "s0")
        restores = []
        for i in range(runs):
            start = time.monotonic()
            r = _svm(svm, env, "restore", "-d", "--name", f"r{i}", snapshot)
            restores.append(time.monotonic() - start)
            if r.returncode != 0:
                raise RuntimeError(r.stderr.strip())
            _svm(svm, env, "kill", f"r{i}")
        return {"save": statistics.median(saves), "disk": statistics.median(s[0] for s in sizes),
                "apparent": sizes[0][1], "restore": statistics.median(restores),
                "restore_min": min(restores), "restore_max": max(restores)}
    finally:
        _svm(svm, env, "kill", name)
        guest.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def section(m, facts, runs):
    mib = lambda b: b / (1 << 20)
    return [
        "## Snapshots",
        "",
        f"A 512 MiB guest (the project's kernel and initramfs) at its shell prompt; release build; {facts.get('cpu', '')}. "
        f"Median of {runs}. `svm restore -d` is the whole command: its process, the VM process it starts, "
        "every check (manifest, state and memory checksums, CPU features), building the VM and loading the state, "
        "until the vCPUs run.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| `svm snapshot --resume` (pause to fsynced, and back) | {m['save'] * 1000:.0f} ms |",
        f"| memory file on disk (apparent size) | {mib(m['disk']):.1f} MiB ({mib(m['apparent']):.0f} MiB) |",
        f"| `svm restore -d` until the VM runs | {m['restore'] * 1000:.1f} ms (min {m['restore_min'] * 1000:.1f}, max {m['restore_max'] * 1000:.1f}) |",
        "",
    ]
