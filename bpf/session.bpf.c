// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Portcullis enhanced session recording: the programs a session runs and the TCP connections
 * it opens, for the cgroups of monitored sessions (and any cgroup below them) only.
 *
 * Built by scripts/bpf-generate.sh (clang -target bpf, CO-RE against bpf/vmlinux.h), embedded
 * in Sources/CSessionBPF/session.skel.h, loaded by Sources/CSessionBPF/sessionbpf.c.
 * Only hooks this kind of kernel allows are required: tp_btf/sched_process_exec for execs,
 * tp_btf/inet_sock_set_state (SYN_SENT) for connects — fexit/tcp_v{4,6}_connect where the
 * kernel allows trampolines — and, optionally, the execve syscall tracepoints for failed execs
 * (they slow every syscall on the host, so they are off unless asked for). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "../Sources/CSessionBPF/include/session_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define TCP_SYN_SENT 2
#define IPPROTO_TCP 6

/* Set by the loader before load: wake the reader once this many bytes wait (0: every event). */
const volatile __u32 wakeup_bytes = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u64);
    __type(value, struct pc_cgroup_entry);
} monitored SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

/* Every event lost, on any CPU, whatever its session (the per-session counts are in `monitored`). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} lost SEC(".maps");

/* Failed execs: the filename pointer of an execve in flight, by thread. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u64);
    __type(value, __u64);
} exec_stash SEC(".maps");

/* The monitored cgroup the current task is in, or below (a session's own sub-cgroups), with its
 * entry; 0 when the task is not in a monitored session. */
static __always_inline __u64 session_of_current(struct pc_cgroup_entry **entry)
{
    __u64 cgroup = bpf_get_current_cgroup_id();
    *entry = bpf_map_lookup_elem(&monitored, &cgroup);
    if (*entry)
        return cgroup;
    for (int level = 1; level < PC_MAX_CGROUP_DEPTH; level++) {
        __u64 ancestor = bpf_get_current_ancestor_cgroup_id(level);
        if (ancestor == 0 || ancestor == cgroup)
            break;
        *entry = bpf_map_lookup_elem(&monitored, &ancestor);
        if (*entry)
            return ancestor;
    }
    return 0;
}

static __always_inline void count_loss(struct pc_cgroup_entry *entry)
{
    __u32 zero = 0;
    __u64 *total = bpf_map_lookup_elem(&lost, &zero);
    if (total)
        *total += 1;
    __sync_fetch_and_add(&entry->lost, 1);
}

static __always_inline __u64 submit_flags(void)
{
    if (wakeup_bytes == 0)
        return 0;
    return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void fill_header(struct pc_event_header *header, __u32 type, __u64 session, struct task_struct *task)
{
    header->type = type;
    header->pid = bpf_get_current_pid_tgid() >> 32;
    header->ppid = BPF_CORE_READ(task, real_parent, tgid);
    header->uid = (__u32)bpf_get_current_uid_gid();
    header->session_cgroup = session;
    header->cgroup = bpf_get_current_cgroup_id();
    header->time_ns = bpf_ktime_get_boot_ns();
    bpf_get_current_comm(header->comm, sizeof(header->comm));
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(pc_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
    struct pc_cgroup_entry *entry;
    __u64 session = session_of_current(&entry);
    if (!session || !entry || !(entry->kinds & PC_KIND_COMMAND))
        return 0;
    /* A thread other than the leader that execs takes the leader's tid: the stash of the
     * thread it was (tgid, old_pid) goes, as its execve will never return. */
    __u64 key = ((bpf_get_current_pid_tgid() >> 32) << 32) | (__u32)old_pid;
    bpf_map_delete_elem(&exec_stash, &key);
    key = bpf_get_current_pid_tgid();
    bpf_map_delete_elem(&exec_stash, &key);

    struct pc_exec_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event) {
        count_loss(entry);
        return 0;
    }
    fill_header(&event->header, PC_EVENT_EXEC, session, task);
    event->retval = 0;
    event->pad = 0;
    if (bpf_probe_read_kernel_str(event->path, sizeof(event->path), BPF_CORE_READ(bprm, filename)) < 0)
        event->path[0] = 0;
    struct mm_struct *mm = BPF_CORE_READ(task, mm);
    unsigned long start = BPF_CORE_READ(mm, arg_start);
    unsigned long end = BPF_CORE_READ(mm, arg_end);
    __u64 length = end > start ? end - start : 0;
    event->args_truncated = 0;
    if (length > PC_ARGS_LEN) {
        length = PC_ARGS_LEN;
        event->args_truncated = 1;
    }
    __u32 size = length;
    if (size > PC_ARGS_LEN)
        size = PC_ARGS_LEN;
    if (size == 0 || bpf_probe_read_user(event->args, size, (void *)start) < 0)
        size = 0;
    event->args_len = size;
    bpf_ringbuf_submit(event, submit_flags());
    return 0;
}

/* Failed execs (optional): the filename is stashed at entry, reported at exit when it failed. */
static __always_inline int stash_exec(const char *filename)
{
    struct pc_cgroup_entry *entry;
    if (!session_of_current(&entry) || !entry || !(entry->kinds & PC_KIND_COMMAND))
        return 0;
    __u64 key = bpf_get_current_pid_tgid();
    __u64 pointer = (__u64)filename;
    /* A full stash would lose the exec's report: counted as lost. */
    if (bpf_map_update_elem(&exec_stash, &key, &pointer, BPF_ANY) != 0)
        count_loss(entry);
    return 0;
}

static __always_inline int report_failed_exec(long ret)
{
    __u64 key = bpf_get_current_pid_tgid();
    __u64 *pointer = bpf_map_lookup_elem(&exec_stash, &key);
    if (!pointer)
        return 0;
    __u64 filename = *pointer;
    bpf_map_delete_elem(&exec_stash, &key);
    if (ret >= 0)
        return 0;
    struct pc_cgroup_entry *entry;
    __u64 session = session_of_current(&entry);
    if (!session || !entry)
        return 0;
    struct pc_exec_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event) {
        count_loss(entry);
        return 0;
    }
    fill_header(&event->header, PC_EVENT_EXEC_FAILED, session, (struct task_struct *)bpf_get_current_task());
    event->retval = (__s32)ret;
    event->pad = 0;
    event->args_len = 0;
    event->args_truncated = 0;
    if (bpf_probe_read_user_str(event->path, sizeof(event->path), (const char *)filename) < 0)
        event->path[0] = 0;
    bpf_ringbuf_submit(event, submit_flags());
    return 0;
}

SEC("tp/syscalls/sys_enter_execve")
int pc_enter_execve(struct trace_event_raw_sys_enter *context)
{
    return stash_exec((const char *)context->args[0]);
}

SEC("tp/syscalls/sys_enter_execveat")
int pc_enter_execveat(struct trace_event_raw_sys_enter *context)
{
    return stash_exec((const char *)context->args[1]);
}

SEC("tp/syscalls/sys_exit_execve")
int pc_exit_execve(struct trace_event_raw_sys_exit *context)
{
    return report_failed_exec(context->ret);
}

SEC("tp/syscalls/sys_exit_execveat")
int pc_exit_execveat(struct trace_event_raw_sys_exit *context)
{
    return report_failed_exec(context->ret);
}

/* A TCP connect of a monitored session, from its socket. */
static __always_inline void report_connect(struct sock *sk)
{
    struct pc_cgroup_entry *entry;
    __u64 session = session_of_current(&entry);
    if (!session || !entry || !(entry->kinds & PC_KIND_NETWORK))
        return;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != AF_INET && family != AF_INET6)
        return;
    struct pc_connect_event *event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event) {
        count_loss(entry);
        return;
    }
    fill_header(&event->header, PC_EVENT_CONNECT, session, (struct task_struct *)bpf_get_current_task());
    __builtin_memset(event->src_addr, 0, sizeof(event->src_addr));
    __builtin_memset(event->dst_addr, 0, sizeof(event->dst_addr));
    event->pad = 0;
    event->dst_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    event->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
    if (family == AF_INET) {
        event->version = 4;
        bpf_core_read(event->src_addr, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_core_read(event->dst_addr, 4, &sk->__sk_common.skc_daddr);
    } else {
        event->version = 6;
        bpf_core_read(event->src_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_core_read(event->dst_addr, 16, &sk->__sk_common.skc_v6_daddr);
    }
    bpf_ringbuf_submit(event, submit_flags());
}

/* Where the kernel allows trampolines: after the connect, only when it was started. */
SEC("fexit/tcp_v4_connect")
int BPF_PROG(pc_connect4_exit, struct sock *sk, struct sockaddr *address, int length, int ret)
{
    /* tcp_v6_connect calls tcp_v4_connect for a v4-mapped address: reported there, once. */
    if (ret == 0 && BPF_CORE_READ(sk, __sk_common.skc_family) == AF_INET)
        report_connect(sk);
    return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(pc_connect6_exit, struct sock *sk, struct sockaddr *address, int length, int ret)
{
    if (ret == 0)
        report_connect(sk);
    return 0;
}

/* Elsewhere: the socket entering SYN_SENT, in the connecting task's context. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(pc_connect_state, const struct sock *sk, int oldstate, int newstate)
{
    if (newstate != TCP_SYN_SENT || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
        return 0;
    report_connect((struct sock *)sk);
    return 0;
}
