// _GNU_SOURCE before any header: struct ucred and accept4 are GNU extensions.
#define _GNU_SOURCE
#include <sys/socket.h>
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
