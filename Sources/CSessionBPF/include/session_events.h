/* What the BPF programs (bpf/session.bpf.c) put in the ring buffer and the monitored-cgroup map:
 * one definition for the kernel side and for Swift. Fixed sizes, explicit padding, every field
 * set by the producer (ring buffer memory is not zeroed). */
#ifndef PORTCULLIS_SESSION_EVENTS_H
#define PORTCULLIS_SESSION_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PC_COMM_LEN 16
#define PC_PATH_LEN 256
#define PC_ARGS_LEN 1024
/* How deep (levels from the root of the cgroup v2 hierarchy) a session's own sub-cgroups are
 * still matched to its monitored cgroup. */
#define PC_MAX_CGROUP_DEPTH 32

/* What a monitored cgroup asks for (a session's role's `enhanced_recording`). */
#define PC_KIND_COMMAND 1u
#define PC_KIND_NETWORK 2u

enum pc_event_type {
    PC_EVENT_EXEC = 1,
    PC_EVENT_EXEC_FAILED = 2,
    PC_EVENT_CONNECT = 3,
};

/* The value of a monitored cgroup: what to record, and how many events were lost for it (the
 * ring buffer was full), counted in the kernel so a loss is always attributed to its session. */
struct pc_cgroup_entry {
    __u32 kinds;
    __u32 pad;
    __u64 lost;
};

struct pc_event_header {
    __u32 type;
    __u32 pid;
    __u32 ppid;
    __u32 uid;
    /* The monitored cgroup the process is in or below: the session's. */
    __u64 session_cgroup;
    /* The process's own cgroup (a sub-cgroup of the session's, or the same). */
    __u64 cgroup;
    __u64 time_ns;
    char comm[PC_COMM_LEN];
};

struct pc_exec_event {
    struct pc_event_header header;
    /* 0 for an exec that happened; -errno for a failed one (failed_execs). */
    __s32 retval;
    /* Bytes of `args` used: NUL-separated argv as the process has it. */
    __u32 args_len;
    __u32 args_truncated;
    __u32 pad;
    char path[PC_PATH_LEN];
    char args[PC_ARGS_LEN];
};

struct pc_connect_event {
    struct pc_event_header header;
    /* 4 or 6. */
    __u16 version;
    /* Host byte order. The source port is 0 when the connect is seen at SYN_SENT, before
     * the kernel picked it. */
    __u16 dst_port;
    __u16 src_port;
    __u16 pad;
    /* IPv4 in the first four bytes; network byte order. */
    __u8 src_addr[16];
    __u8 dst_addr[16];
};

#endif
