#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "CLinux.h"

short pc_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
int pc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) { return posix_spawn_file_actions_addclosefrom_np(actions, lowfd); }
int pc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
void pc_closefrom(int lowfd) { closefrom(lowfd); }

int pc_syncfs(int fd) { return syncfs(fd); }
int pc_o_direct_flag(void) { return O_DIRECT; }
int pc_o_tmpfile_flag(void) { return O_TMPFILE; }
int pc_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int pc_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

ssize_t pc_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int nonblocking) {
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    union { char buffer[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } control;
    if (nfds > 8) return -1;
    if (nfds > 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buffer;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *header = CMSG_FIRSTHDR(&msg);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
}

ssize_t pc_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated, int nonblocking) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char buffer[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer, .msg_controllen = sizeof(control.buffer) };
    *nfds = 0;
    *truncated = 0;
    ssize_t received = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0));
    if (received < 0) return received;
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) *truncated = 1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&msg); header != NULL; header = CMSG_NXTHDR(&msg, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int *received_fds = (int *)CMSG_DATA(header);
        for (size_t index = 0; index < count; index++) {
            int fd;
            memcpy(&fd, received_fds + index, sizeof(int));
            if (*nfds < maxfds) fds[(*nfds)++] = fd; else { close(fd); *truncated = 1; }
        }
    }
    return received;
}

int pc_peer_credentials(int sock, uid_t *uid, pid_t *pid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *uid = credentials.uid;
    *pid = credentials.pid;
    return 0;
}
