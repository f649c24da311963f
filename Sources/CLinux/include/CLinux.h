#ifndef PORTCULLIS_CLINUX_H
#define PORTCULLIS_CLINUX_H

#include <spawn.h>

// GNU extensions Swift's Glibc module cannot see (it is built without _GNU_SOURCE); see
// ../shared/reference/ssh-notes.md §2. Only wrappers here: no logic.

/// POSIX_SPAWN_SETSID: the child starts a new session (so a TTY it opens becomes its controlling one).
short pc_spawn_setsid_flag(void);
/// posix_spawn_file_actions_addclosefrom_np: the child sees no descriptor from `lowfd` up.
int pc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd);
/// pipe2(fds, O_CLOEXEC).
int pc_pipe_cloexec(int fds[2]);

#endif
