// Also the few Linux host headers (eventfd, signalfd, epoll, tun) that Glibc does not export.
// CKVM: the kernel's KVM ABI for Swift.
// Swift imports the structs of <linux/kvm.h> with their exact layouts, but not the ioctl
// numbers (they are function-like macros), so each one is re-exported here as a constant.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <sys/ioctl.h>
// Linux host interfaces Glibc's Swift module does not export.
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <linux/if_tun.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <string.h>
#include <errno.h>

#define CKVM_IOCTL(name) static const unsigned long CKVM_##name = name;

CKVM_IOCTL(KVM_GET_API_VERSION)
CKVM_IOCTL(KVM_CREATE_VM)
CKVM_IOCTL(KVM_CHECK_EXTENSION)
CKVM_IOCTL(KVM_GET_VCPU_MMAP_SIZE)
CKVM_IOCTL(KVM_GET_SUPPORTED_CPUID)
CKVM_IOCTL(KVM_GET_MSR_INDEX_LIST)
CKVM_IOCTL(KVM_CREATE_VCPU)
CKVM_IOCTL(KVM_SET_USER_MEMORY_REGION)
CKVM_IOCTL(KVM_SET_TSS_ADDR)
CKVM_IOCTL(KVM_SET_IDENTITY_MAP_ADDR)
CKVM_IOCTL(KVM_CREATE_IRQCHIP)
CKVM_IOCTL(KVM_CREATE_PIT2)
CKVM_IOCTL(KVM_IRQ_LINE)
CKVM_IOCTL(KVM_IRQFD)
CKVM_IOCTL(KVM_IOEVENTFD)
CKVM_IOCTL(KVM_RUN)
CKVM_IOCTL(KVM_GET_REGS)
CKVM_IOCTL(KVM_SET_REGS)
CKVM_IOCTL(KVM_GET_SREGS)
CKVM_IOCTL(KVM_SET_SREGS)
CKVM_IOCTL(KVM_GET_FPU)
CKVM_IOCTL(KVM_SET_FPU)
CKVM_IOCTL(KVM_SET_CPUID2)
CKVM_IOCTL(KVM_GET_CPUID2)
CKVM_IOCTL(KVM_GET_MSRS)
CKVM_IOCTL(KVM_SET_MSRS)
CKVM_IOCTL(KVM_GET_LAPIC)
CKVM_IOCTL(KVM_SET_LAPIC)
CKVM_IOCTL(KVM_GET_VCPU_EVENTS)
CKVM_IOCTL(KVM_SET_VCPU_EVENTS)
CKVM_IOCTL(KVM_GET_MP_STATE)
CKVM_IOCTL(KVM_SET_MP_STATE)
CKVM_IOCTL(KVM_SET_GSI_ROUTING)
CKVM_IOCTL(KVM_GET_TSC_KHZ)
CKVM_IOCTL(KVM_SET_GUEST_DEBUG)
CKVM_IOCTL(KVM_TRANSLATE)
CKVM_IOCTL(KVM_SET_CLOCK)
CKVM_IOCTL(KVM_ENABLE_CAP)
CKVM_IOCTL(KVM_GET_XSAVE)
CKVM_IOCTL(KVM_SET_XSAVE)
CKVM_IOCTL(KVM_GET_XCRS)
CKVM_IOCTL(KVM_SET_XCRS)
CKVM_IOCTL(KVM_GET_DEBUGREGS)
CKVM_IOCTL(KVM_SET_DEBUGREGS)
CKVM_IOCTL(KVM_GET_IRQCHIP)
CKVM_IOCTL(KVM_SET_IRQCHIP)
CKVM_IOCTL(KVM_GET_PIT2)
CKVM_IOCTL(KVM_SET_PIT2)
CKVM_IOCTL(KVM_GET_CLOCK)

// Exit reasons and flags used by svm, as plain constants (some are enums in the header
// already, these keep one spelling on the Swift side).
static const unsigned int CKVM_EXIT_IO_IN = KVM_EXIT_IO_IN;
static const unsigned int CKVM_EXIT_IO_OUT = KVM_EXIT_IO_OUT;
static const unsigned int CKVM_MEM_READONLY = KVM_MEM_READONLY;
static const unsigned int CKVM_IRQFD_FLAG_DEASSIGN = KVM_IRQFD_FLAG_DEASSIGN;
static const unsigned int CKVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;
static const unsigned int CKVM_IOEVENTFD_FLAG_PIO = KVM_IOEVENTFD_FLAG_PIO;
static const unsigned int CKVM_VCPUEVENT_VALID_NMI_PENDING = KVM_VCPUEVENT_VALID_NMI_PENDING;

// The kvm_run union members Swift sees as anonymous; these accessors give them names
// without copying the 2 KiB structure.
static inline struct kvm_run *ckvm_run(void *p) { return (struct kvm_run *)p; }

// Byte offset of the data of an MMIO exit inside the kvm_run mapping.
static inline size_t ckvm_mmio_data_offset(void) {
    return offsetof(struct kvm_run, mmio.data);
}

// Byte offset of the data of a port I/O exit inside the kvm_run mapping.
static inline unsigned char *ckvm_io_data(struct kvm_run *run) {
    return (unsigned char *)run + run->io.data_offset;
}

// kvm_cpuid2 and kvm_msrs end in flexible arrays; these sizes let Swift allocate them.
static inline size_t ckvm_cpuid2_size(unsigned int n) {
    return sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
}
static inline size_t ckvm_msr_list_size(unsigned int n) {
    return sizeof(struct kvm_msr_list) + n * sizeof(__u32);
}
static inline size_t ckvm_msrs_size(unsigned int n) {
    return sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry);
}

// ioctl is variadic, which Swift cannot call directly: two fixed-signature forms.
static inline int ckvm_ioctl(int fd, unsigned long request, unsigned long argument) {
    return ioctl(fd, request, argument);
}
static inline int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

// prctl is variadic too: name the calling thread (at most 15 bytes show, in
// /proc/PID/task/TID/comm).
static inline int ckvm_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

// SCM_RIGHTS needs the CMSG_* macros, which Swift cannot use: send one descriptor with
// one byte of data, and receive one (close-on-exec). -1 and errno on failure; receiving a
// message without exactly one descriptor fails with EBADMSG.
static inline int ckvm_send_fd(int socket, int fd) {
    char byte = 0;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control.space };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(socket, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}
static inline int ckvm_recv_fd(int socket) {
    char byte;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    union { struct cmsghdr header; char space[CMSG_SPACE(sizeof(int))]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control.space };
    if (recvmsg(socket, &msg, MSG_CMSG_CLOEXEC) < 0) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))
        || (msg.msg_flags & MSG_CTRUNC)) { errno = EBADMSG; return -1; }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

// Defined in ckvm.c, which is compiled with _GNU_SOURCE (struct ucred, accept4).
int ckvm_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid);
int ckvm_accept_cloexec(int listener);
// A close-on-exec memfd that can be sealed, and sealing its size (shrink, grow) for good.
int ckvm_memfd_create(const char *name);
int ckvm_memfd_seal_size(int fd);
// setns(fd, CLONE_NEWNET) (a GNU extension, hence here): moves the calling thread into the
// network namespace `fd` refers to; threads it creates afterwards start there too.
int ckvm_join_network_namespace(int fd);
// unshare(CLONE_NEWNET): a new, empty network namespace for the calling thread.
int ckvm_new_network_namespace(void);

// vhost-user: `length` bytes with up to 8 fds as SCM_RIGHTS (MSG_NOSIGNAL: a dead backend
// is EPIPE, not a SIGPIPE that ends svm); and a receive that hands back any fds that came
// (close-on-exec) so the caller can close them and count them as a protocol error.
long ckvm_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count);
long ckvm_recv_with_fds(int socket, void *bytes, size_t length, int *fds, int capacity, int *count);

// Starts a helper daemon (virtiofsd): fork, then in the child only async-signal-safe
// calls — its own process group (a ^C on svm's terminal is svm's to handle), SIGKILL when
// svm dies (PR_SET_PDEATHSIG; svm forks from its main thread, which lives as long as it),
// an empty signal mask (svm blocks SIGTERM for its signalfd; the daemon must not inherit
// that), stdin from /dev/null, stdout and stderr to `log_fd`; if `readonly_source` is set,
// a private mount namespace where that directory is a read-only bind mount of itself, so
// the daemon cannot write there whatever the guest asks; then execv. Returns the pid, or
// -1 with errno. A child that cannot set itself up writes one line to `log_fd` and exits 126.
// `workdir`, if set, is the daemon's working directory (so it can be given paths relative
// to it: a Unix socket's path must fit in 107 bytes).
static inline int ckvm_become_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }
int ckvm_spawn_daemon(const char *path, char *const argv[], int log_fd, const char *readonly_source, const char *workdir);

// A pseudo-terminal pair (posix_openpt, grantpt, unlockpt, ptsname_r: GNU declarations the
// Swift Glibc module does not see), both ends close-on-exec, the replica not made anyone's
// controlling terminal. Returns the master and sets *replica and `name` (the replica's
// path), or -1 with errno.
int ckvm_open_pty(int *replica, char *name, size_t name_size);

// Snapshots of guest RAM walk hundreds of MiB a page at a time; in C these loops run at
// memory speed even in a debug build, where the same Swift loop is some 50x slower.
// Whether `length` bytes (a multiple of 8) at `p` are all zero.
int ckvm_is_zero(const void *p, size_t length);
// Folds `length` bytes (a multiple of 8) at `p` into the 64-bit hash `seed`
// (FNV-1a's step over 64-bit words, plus a shift that mixes high bits down): a corruption check, not a cryptographic one.
unsigned long long ckvm_hash_words(unsigned long long seed, const void *p, size_t length);

#endif
