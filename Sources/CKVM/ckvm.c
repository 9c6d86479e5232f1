// _GNU_SOURCE before any header: struct ucred and accept4 are GNU extensions.
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <unistd.h>
#include "ckvm.h"

int ckvm_peer_credentials(int socket, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred cred;
    socklen_t length = sizeof cred;
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int ckvm_accept_cloexec(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

int ckvm_memfd_create(const char *name) {
    return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

int ckvm_memfd_seal_size(int fd) {
    return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

int ckvm_join_network_namespace(int fd) {
    return setns(fd, CLONE_NEWNET);
}

int ckvm_new_network_namespace(void) {
    return unshare(CLONE_NEWNET);
}

long ckvm_send_with_fds(int socket, const void *bytes, size_t length, const int *fds, int count) {
    if (count < 0 || count > 8) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)bytes, .iov_len = length };
    union { struct cmsghdr header; char space[CMSG_SPACE(8 * sizeof(int))]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (count > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = &control;
        msg.msg_controllen = CMSG_SPACE(count * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(count * sizeof(int));
        memcpy(CMSG_DATA(c), fds, count * sizeof(int));
    }
    return sendmsg(socket, &msg, MSG_NOSIGNAL);
}

long ckvm_recv_with_fds(int socket, void *bytes, size_t length, int *fds, int capacity, int *count) {
    struct iovec iov = { .iov_base = bytes, .iov_len = length };
    union { struct cmsghdr header; char space[CMSG_SPACE(8 * sizeof(int))]; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control.space };
    *count = 0;
    long n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int in = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < in; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*count < capacity) fds[*count] = fd; else close(fd);
            (*count)++;
        }
    }
    if (*count > capacity) *count = capacity + 1; // more than fit: still a protocol error
    if (msg.msg_flags & MSG_CTRUNC) (*count)++;
    return n;
}

// After fork in a threaded process only async-signal-safe calls: no strerror (gettext
// may take a lock), so the errno goes out as a number.
static void child_fail(int log_fd, const char *what) {
    int e = errno;
    char digits[16];
    int n = 0;
    do { digits[n++] = (char)('0' + e % 10); e /= 10; } while (e > 0 && n < 15);
    (void)!write(log_fd, "svm: ", 5);
    (void)!write(log_fd, what, strlen(what));
    (void)!write(log_fd, " failed (errno ", 15);
    while (n > 0) (void)!write(log_fd, &digits[--n], 1);
    (void)!write(log_fd, ")\n", 2);
    _exit(126);
}

int ckvm_spawn_daemon(const char *path, char *const argv[], int log_fd, const char *readonly_source, const char *workdir) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid;
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(log_fd, "prctl PR_SET_PDEATHSIG");
    if (getppid() != parent) _exit(126); // svm died before the line above
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) child_fail(log_fd, "redirect stdio");
    if (readonly_source != NULL) {
        if (unshare(CLONE_NEWNS) != 0) child_fail(log_fd, "unshare CLONE_NEWNS");
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) child_fail(log_fd, "mount --make-rprivate /");
        if (mount(readonly_source, readonly_source, NULL, MS_BIND | MS_REC, NULL) != 0) child_fail(log_fd, "bind mount of the read-only share");
        if (mount(NULL, readonly_source, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0) child_fail(log_fd, "remount the share read-only");
    }
    if (workdir != NULL && chdir(workdir) != 0) child_fail(log_fd, "chdir to the daemon's directory");
    execv(path, argv);
    child_fail(log_fd, path);
    return -1;
}

int ckvm_open_pty(int *replica, char *name, size_t name_size) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -1;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, name_size) != 0) {
        int e = errno;
        close(master);
        errno = e;
        return -1;
    }
    *replica = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*replica < 0) {
        int e = errno;
        close(master);
        errno = e;
        return -1;
    }
    return master;
}

int ckvm_is_zero(const void *p, size_t length) {
    const unsigned long long *w = p;
    size_t n = length / 8;
    unsigned long long acc = 0;
    for (size_t i = 0; i < n; i += 8) {
        // Eight words per round: one branch per cache line.
        size_t end = i + 8 < n ? i + 8 : n;
        for (size_t j = i; j < end; j++) acc |= w[j];
        if (acc) return 0;
    }
    return 1;
}

unsigned long long ckvm_hash_words(unsigned long long seed, const void *p, size_t length) {
    const unsigned char *b = p;
    unsigned long long h = seed;
    for (size_t i = 0; i + 8 <= length; i += 8) {
        unsigned long long w;
        memcpy(&w, b + i, 8);
        h ^= w;
        h *= 0x100000001b3ULL;
        h ^= h >> 29;   // carries high bits down, which the multiply alone never does
    }
    return h;
}
