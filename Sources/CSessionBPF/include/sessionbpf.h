/* The loader of Portcullis's enhanced-recording BPF programs (bpf/session.bpf.c): a small C API
 * over libbpf and the generated skeleton, for Swift (Sources/SessionBPF). Not thread-safe: one
 * owner calls it (the broker's loop, or the node's monitor thread). */
#ifndef PORTCULLIS_SESSIONBPF_H
#define PORTCULLIS_SESSIONBPF_H

#include <stddef.h>
#include <stdint.h>
#include "session_events.h"

struct pc_bpf;

struct pc_bpf_options {
    /* The ring buffer's size: a power of two, at least a page. */
    uint32_t ring_bytes;
    /* Wake the reader once this many bytes wait (0: every event). */
    uint32_t wakeup_bytes;
    /* Attach the execve syscall tracepoints for failed execs (they slow every syscall). */
    int failed_execs;
};

/* Loads and attaches the programs; 0, or -errno with the reason in `error` (the missing piece:
 * BTF, a capability, the verifier's message). */
int pc_bpf_open(const struct pc_bpf_options *options, struct pc_bpf **out, char *error, size_t error_length);
void pc_bpf_close(struct pc_bpf *bpf);

/* What is in use for connects ("fexit/tcp_v4_connect" or "tp_btf/inet_sock_set_state") and
 * whether failed execs are reported. */
const char *pc_bpf_connect_hook(const struct pc_bpf *bpf);
int pc_bpf_failed_execs(const struct pc_bpf *bpf);

/* Monitors a cgroup (and every cgroup below it) for `kinds` (PC_KIND_*). */
int pc_bpf_add(struct pc_bpf *bpf, uint64_t cgroup, uint32_t kinds);
/* Stops monitoring it; `lost` gets the events lost for it in all. */
int pc_bpf_remove(struct pc_bpf *bpf, uint64_t cgroup, uint64_t *lost);
/* The events lost so far for a monitored cgroup. */
int pc_bpf_lost(struct pc_bpf *bpf, uint64_t cgroup, uint64_t *lost);

/* A descriptor that is readable when events wait (with batched wake-ups, not before the batch:
 * poll with a timeout and call pc_bpf_consume then too). */
int pc_bpf_fd(struct pc_bpf *bpf);
typedef int (*pc_bpf_event_handler)(void *context, const void *data, size_t size);
/* Hands waiting events to `handler`, at most `limit` of them; the number handled (`limit`: more
 * may wait), or -errno. */
int pc_bpf_consume(struct pc_bpf *bpf, int limit, pc_bpf_event_handler handler, void *context);

/* The id bpf_get_current_cgroup_id() reports for the cgroup v2 directory at `path`. */
int pc_cgroup_id(const char *path, uint64_t *id);

#endif
