/* The floor for svm's exit round trip: the least a VMM can do per exit.
 * Runs a flat real-mode guest image (firmware/tiny/long-mode.S) on KVM and handles each
 * exit by doing nothing (MMIO writes dropped, port writes ignored) until the guest writes
 * 0xfe to port 0x64. Prints: exits=N seconds=S
 * Usage: kvm-floor IMAGE.bin
 * This is a measuring tool for scripts/bench, not part of svm. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (16u << 20)

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s IMAGE\n", argv[0]); return 2; }
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) die("KVM_SET_TSS_ADDR");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
    void *mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap");
    struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0,
        .memory_size = MEM, .userspace_addr = (unsigned long)mem };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
    FILE *f = fopen(argv[1], "rb");
    if (!f) die("open image");
    size_t n = fread((char *)mem + 0x8000, 1, 0x80000, f);
    fclose(f);
    if (n == 0) die("read image");

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    /* Without a CPUID table the vCPU has no long mode. */
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[256]; } cpuid = { .h.nent = 256 };
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) die("KVM_SET_CPUID2");
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap kvm_run");
    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    s.cs.base = 0; s.cs.selector = 0;
    s.ds = s.es = s.fs = s.gs = s.ss = s.cs;
    s.ds.type = s.es.type = s.fs.type = s.gs.type = s.ss.type = 3;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs r;
    memset(&r, 0, sizeof r);
    r.rip = 0x8000; r.rsp = 0x7000; r.rflags = 2;
    if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long exits = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
        exits++;
        if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
            run->io.port == 0x64 && *((unsigned char *)run + run->io.data_offset) == 0xfe)
            break;
        if (run->exit_reason == KVM_EXIT_MMIO || run->exit_reason == KVM_EXIT_IO) continue;
        if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
            /* The emulator of hosts that emulate kernel code cannot run int3: complete it
             * as svm does (RIP += 1, inject #BP), so the floor runs the same guest. */
            struct kvm_vcpu_events e;
            if (ioctl(vcpu, KVM_GET_REGS, &r) < 0) die("KVM_GET_REGS");
            r.rip += 1;
            if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
            if (ioctl(vcpu, KVM_GET_VCPU_EVENTS, &e) < 0) die("KVM_GET_VCPU_EVENTS");
            e.exception.injected = 1; e.exception.nr = 3; e.exception.has_error_code = 0;
            e.exception.pending = 0; e.flags = 0;
            if (ioctl(vcpu, KVM_SET_VCPU_EVENTS, &e) < 0) die("KVM_SET_VCPU_EVENTS");
            continue;
        }
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("exits=%lu seconds=%.6f\n", exits, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
