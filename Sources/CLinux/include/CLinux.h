#ifndef PORTCULLIS_CLINUX_H
#define PORTCULLIS_CLINUX_H

#include <spawn.h>
#include <sys/types.h>

// GNU extensions Swift's Glibc module cannot see (it is built without _GNU_SOURCE); see
// ../shared/reference/ssh-notes.md §2, and SCM_RIGHTS, whose CMSG_* macros Swift cannot call.
// Only wrappers here: no policy.

/// POSIX_SPAWN_SETSID: the child starts a new session (so a TTY it opens becomes its controlling one).
short pc_spawn_setsid_flag(void);
/// posix_spawn_file_actions_addclosefrom_np: the child sees no descriptor from `lowfd` up.
int pc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/// closefrom(lowfd): every descriptor from lowfd up closed.
void pc_closefrom(int lowfd);

/* syncfs(2): flush the whole filesystem `fd` is on (the recordings' group commit). */
int pc_syncfs(int fd);
/// O_DIRECT for open(2): writes go from the caller's (aligned) memory to the device, not
/// through the page cache (the recordings' chunk writer).
int pc_o_direct_flag(void);
/// O_TMPFILE for open(2) of a directory: an unnamed file in it, named later with linkat(2)
/// (pcctl's exports: a killed export leaves nothing).
int pc_o_tmpfile_flag(void);
/// A descriptor for the process `pid` is now (Linux ≥ 5.3), and a signal to exactly that process
/// (never to whoever gets its pid after it is reaped).
int pc_pidfd_open(pid_t pid);
int pc_pidfd_send_signal(int pidfd, int sig);
/// pipe2(fds, O_CLOEXEC).
int pc_pipe_cloexec(int fds[2]);

/// sendmsg(MSG_NOSIGNAL | MSG_DONTWAIT when `nonblocking`) of `len` bytes with `nfds`
/// descriptors as SCM_RIGHTS (none when `nfds` is 0). Returns sendmsg's result.
ssize_t pc_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int nonblocking);
/// recvmsg(MSG_CMSG_CLOEXEC, and MSG_DONTWAIT when `nonblocking`) into `buf`; descriptors that
/// came with the message go into `fds` (at most `maxfds`, their count in `*nfds`; any beyond
/// are closed). `*truncated` is set when the message or its descriptors did not fit (what did
/// not fit is discarded by the kernel). Returns recvmsg's result.
ssize_t pc_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int *truncated, int nonblocking);
/// The uid and pid of the process at the other end of a Unix socket (SO_PEERCRED), 0 or -1.
int pc_peer_credentials(int sock, uid_t *uid, pid_t *pid);

#endif
