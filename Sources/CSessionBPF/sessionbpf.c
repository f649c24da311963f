#define _GNU_SOURCE
#include "sessionbpf.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* The only translation unit that includes the skeleton (it defines non-inline statics). */
#include "session.skel.h"

struct pc_bpf {
    struct session_bpf *skeleton;
    struct ring_buffer *ring;
    pc_bpf_event_handler handler;
    void *context;
    /* This consume's count and cap. */
    int handled;
    int limit;
    const char *connect_hook;
    int failed_execs;
};

/* libbpf's last words (the verifier's log included), kept for the error message: it prints
 * nothing of its own. Only while a load runs, on the owner's thread. */
static char libbpf_said[4096];

static int keep_libbpf_output(enum libbpf_print_level level, const char *format, va_list arguments)
{
    if (level == LIBBPF_DEBUG)
        return 0;
    size_t used = strlen(libbpf_said);
    if (used + 1 >= sizeof(libbpf_said))
        memmove(libbpf_said, libbpf_said + sizeof(libbpf_said) / 2, sizeof(libbpf_said) / 2), used = strlen(libbpf_said);
    vsnprintf(libbpf_said + used, sizeof(libbpf_said) - used, format, arguments);
    return 0;
}

static int has_capability(int capability)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &header, data) != 0)
        return 0;
    return (data[capability / 32].effective >> (capability % 32)) & 1;
}

static int explain(int result, char *error, size_t length, const char *doing)
{
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        snprintf(error, length, "the kernel has no BTF (/sys/kernel/btf/vmlinux): enhanced recording needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
        return result;
    }
    if (result == -EPERM || result == -EACCES) {
        char missing[64] = "";
        if (!has_capability(CAP_BPF) && !has_capability(CAP_SYS_ADMIN)) strcat(missing, " CAP_BPF");
        if (!has_capability(CAP_PERFMON) && !has_capability(CAP_SYS_ADMIN)) strcat(missing, " CAP_PERFMON");
        if (missing[0]) {
            snprintf(error, length, "no permission to load BPF programs (missing%s): run the broker as root", missing);
            return result;
        }
    }
    /* The verifier's message, or libbpf's, trimmed to its last lines. */
    const char *said = libbpf_said;
    size_t said_length = strlen(said);
    if (said_length > 1500) said += said_length - 1500;
    snprintf(error, length, "%s: %s%s%s", doing, strerror(-result), said[0] ? "; libbpf: " : "", said);
    return result;
}

static int handle_sample(void *context, void *data, size_t size)
{
    struct pc_bpf *bpf = context;
    if (bpf->handler)
        bpf->handler(bpf->context, data, size);
    /* At the cap, stop (libbpf has consumed this record): a session that execs or connects
     * without pause cannot keep the reader in one call. */
    return ++bpf->handled >= bpf->limit ? -EAGAIN : 0;
}

/* Opens and loads the object with the connect programs of one kind; the other kind off. */
static int load(const struct pc_bpf_options *options, int trampolines, struct session_bpf **out)
{
    struct session_bpf *skeleton = session_bpf__open();
    if (!skeleton)
        return errno ? -errno : -EINVAL;
    skeleton->rodata->wakeup_bytes = options->wakeup_bytes;
    int result = bpf_map__set_max_entries(skeleton->maps.events, options->ring_bytes);
    bpf_program__set_autoload(skeleton->progs.pc_connect4_exit, trampolines);
    bpf_program__set_autoload(skeleton->progs.pc_connect6_exit, trampolines);
    bpf_program__set_autoload(skeleton->progs.pc_connect_state, !trampolines);
    bpf_program__set_autoload(skeleton->progs.pc_enter_execve, options->failed_execs != 0);
    bpf_program__set_autoload(skeleton->progs.pc_enter_execveat, options->failed_execs != 0);
    bpf_program__set_autoload(skeleton->progs.pc_exit_execve, options->failed_execs != 0);
    bpf_program__set_autoload(skeleton->progs.pc_exit_execveat, options->failed_execs != 0);
    if (result == 0)
        result = session_bpf__load(skeleton);
    if (result == 0)
        result = session_bpf__attach(skeleton);
    if (result != 0) {
        session_bpf__destroy(skeleton);
        return result < 0 ? result : -result;
    }
    *out = skeleton;
    return 0;
}

int pc_bpf_open(const struct pc_bpf_options *options, struct pc_bpf **out, char *error, size_t error_length)
{
    *out = NULL;
    if (error_length) error[0] = 0;
    if (options->ring_bytes < 4096 || (options->ring_bytes & (options->ring_bytes - 1)) != 0) {
        snprintf(error, error_length, "the ring buffer size must be a power of two of at least 4096 bytes, not %u", options->ring_bytes);
        return -EINVAL;
    }
    /* libbpf finds the syscall tracepoints through tracefs: without it, say so, not ENOENT. */
    if (options->failed_execs && access("/sys/kernel/tracing/events/syscalls/sys_enter_execve/id", R_OK) != 0
        && access("/sys/kernel/debug/tracing/events/syscalls/sys_enter_execve/id", R_OK) != 0) {
        snprintf(error, error_length, "failed_execs needs the kernel's syscall tracepoints, and tracefs is not mounted: "
                 "mount -t tracefs tracefs /sys/kernel/tracing (systemd mounts it at boot on most hosts), or turn failed_execs off");
        return -ENOENT;
    }
    libbpf_print_fn_t previous = libbpf_set_print(keep_libbpf_output);
    libbpf_said[0] = 0;
    struct pc_bpf *bpf = calloc(1, sizeof(*bpf));
    if (!bpf) {
        libbpf_set_print(previous);
        return -ENOMEM;
    }
    bpf->failed_execs = options->failed_execs != 0;
    /* The best hook the kernel allows: trampolines (fexit) where it has them, else the
     * tracepoint. A kernel without trampolines refuses their load, with or without a reason. */
    int result = load(options, 1, &bpf->skeleton);
    bpf->connect_hook = "fexit/tcp_v4_connect";
    if (result != 0) {
        libbpf_said[0] = 0;
        result = load(options, 0, &bpf->skeleton);
        bpf->connect_hook = "tp_btf/inet_sock_set_state";
    }
    if (result != 0) {
        explain(result, error, error_length, "the kernel refused the enhanced recording programs");
        libbpf_set_print(previous);
        free(bpf);
        return result;
    }
    bpf->ring = ring_buffer__new(bpf_map__fd(bpf->skeleton->maps.events), handle_sample, bpf, NULL);
    libbpf_set_print(previous);
    if (!bpf->ring) {
        result = errno ? -errno : -EINVAL;
        snprintf(error, error_length, "cannot read the ring buffer: %s", strerror(-result));
        session_bpf__destroy(bpf->skeleton);
        free(bpf);
        return result;
    }
    *out = bpf;
    return 0;
}

void pc_bpf_close(struct pc_bpf *bpf)
{
    if (!bpf) return;
    ring_buffer__free(bpf->ring);
    session_bpf__destroy(bpf->skeleton);
    free(bpf);
}

const char *pc_bpf_connect_hook(const struct pc_bpf *bpf) { return bpf->connect_hook; }
int pc_bpf_failed_execs(const struct pc_bpf *bpf) { return bpf->failed_execs; }

int pc_bpf_add(struct pc_bpf *bpf, uint64_t cgroup, uint32_t kinds)
{
    struct pc_cgroup_entry entry = { .kinds = kinds, .pad = 0, .lost = 0 };
    return bpf_map__update_elem(bpf->skeleton->maps.monitored, &cgroup, sizeof(cgroup), &entry, sizeof(entry), BPF_ANY);
}

int pc_bpf_lost(struct pc_bpf *bpf, uint64_t cgroup, uint64_t *lost)
{
    struct pc_cgroup_entry entry;
    int result = bpf_map__lookup_elem(bpf->skeleton->maps.monitored, &cgroup, sizeof(cgroup), &entry, sizeof(entry), 0);
    if (result == 0) *lost = entry.lost;
    return result;
}

int pc_bpf_remove(struct pc_bpf *bpf, uint64_t cgroup, uint64_t *lost)
{
    *lost = 0;
    struct pc_cgroup_entry entry;
    /* Read and removed at once (no loss counted between), where the kernel can (5.14+). */
    if (bpf_map_lookup_and_delete_elem(bpf_map__fd(bpf->skeleton->maps.monitored), &cgroup, &entry) == 0) {
        *lost = entry.lost;
        return 0;
    }
    pc_bpf_lost(bpf, cgroup, lost);
    return bpf_map__delete_elem(bpf->skeleton->maps.monitored, &cgroup, sizeof(cgroup), 0);
}

int pc_bpf_fd(struct pc_bpf *bpf) { return ring_buffer__epoll_fd(bpf->ring); }

int pc_bpf_consume(struct pc_bpf *bpf, int limit, pc_bpf_event_handler handler, void *context)
{
    bpf->handler = handler;
    bpf->context = context;
    bpf->handled = 0;
    bpf->limit = limit > 0 ? limit : 1;
    int result = ring_buffer__consume(bpf->ring);
    int handled = bpf->handled;
    bpf->handler = NULL;
    bpf->context = NULL;
    return result < 0 && result != -EAGAIN ? result : handled;
}

int pc_cgroup_id(const char *path, uint64_t *id)
{
    union {
        struct file_handle handle;
        char bytes[sizeof(struct file_handle) + sizeof(uint64_t)];
    } buffer;
    int mount_id = 0;
    buffer.handle.handle_bytes = sizeof(uint64_t);
    if (name_to_handle_at(AT_FDCWD, path, &buffer.handle, &mount_id, 0) != 0)
        return -errno;
    if (buffer.handle.handle_bytes != sizeof(uint64_t))
        return -EINVAL;
    memcpy(id, buffer.handle.f_handle, sizeof(uint64_t));
    return 0;
}
