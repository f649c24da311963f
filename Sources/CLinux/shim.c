#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include "CLinux.h"

short pc_spawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }
int pc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowfd) { return posix_spawn_file_actions_addclosefrom_np(actions, lowfd); }
int pc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
