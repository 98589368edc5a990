/* The C runtime compiled into every artifact's model.so: load (CPU check, weights
 * mapped, arena), run (staging of unaligned buffers, the thread count), free. The
 * parallel loops run on the thread pool linked beside it (compiler/runtime/pool.c).
 * The Python runtime (deploy/session.py) calls these same functions. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifact.h"

#define ALIGN 64
#define ERROR_BYTES 256
/* glibc's thresholds as the in-process runtime sets them (compiler/runtime/heap.py):
 * kernels' scratch blocks stay in the heap instead of being faulted in at every call */
#define MMAP_THRESHOLD_BYTES (32 << 20)
#define TRIM_THRESHOLD_BYTES (256 << 20)

/* the thread pool's (compiler/runtime/pool.c): the calling thread's count, 0 = default;
 * returns the previous setting */
int st_set_num_threads(int n);

struct sketchtune_model {
    const st_artifact *info;
    void *weights;
    size_t mapped_bytes;
    void *arena;
    void **staging;  /* per input, then per output: an aligned copy, made when first needed */
    void **pointers; /* per input, then per output: what the network is called with */
    int threads;
    char error[ERROR_BYTES];
};

static void say(char *buf, size_t size, const char *fmt, ...) {
    if (!buf || !size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

uint32_t sketchtune_abi_version(void) { return SKETCHTUNE_ABI_VERSION; }

static void keep_scratch_in_heap(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
#endif
}

/* whether `flags` (a /proc/cpuinfo flags line) holds the word name[0:len] */
static int has_flag(const char *flags, const char *name, size_t len) {
    for (const char *p = flags; *p;) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (n == len && strncmp(p, name, len) == 0) return 1;
        p += n;
    }
    return 0;
}

/* 0 when the CPU has every flag the code needs; else a message naming the first missing */
static int check_cpu(const st_artifact *info, char *err, size_t size) {
    if (!info->cpu_flags[0]) return 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (f && getline(&line, &cap, f) > 0) {
        if (strncmp(line, "flags", 5) == 0 && strchr(line, ':')) {
            found = 1;
            break;
        }
    }
    if (f) fclose(f);
    if (!found) {
        free(line);
        say(err, size, "cannot read the CPU flags in /proc/cpuinfo to check the artifact's");
        return -1;
    }
    const char *flags = strchr(line, ':') + 1;
    for (const char *p = info->cpu_flags; *p;) {
        size_t len = strcspn(p, " ");
        if (!has_flag(flags, p, len)) {
            say(err, size, "this CPU lacks %.*s, which the artifact's code uses (compiled for %s)",
                (int)len, p, info->cpu_name);
            free(line);
            return -1;
        }
        p += len + (p[len] == ' ');
    }
    free(line);
    return 0;
}

static int own_directory(char *out, size_t size) {
    Dl_info dl;
    if (!dladdr((void *)&sketchtune_load, &dl) || !dl.dli_fname) return -1;
    const char *slash = strrchr(dl.dli_fname, '/');
    size_t len = slash ? (size_t)(slash - dl.dli_fname) : 1;
    if (len + 1 > size) return -1;
    memcpy(out, slash ? dl.dli_fname : ".", len);
    out[len] = '\0';
    return 0;
}

static int map_weights(sketchtune_model *m, const char *dir, char *err, size_t size) {
    const st_artifact *info = m->info;
    if (info->weights_bytes == 0) return 0;
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, info->weights_file);
    if (n < 0 || (size_t)n >= sizeof path) {
        say(err, size, "%s: path too long", dir);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        say(err, size, "%s: cannot open the weights: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size != info->weights_bytes) {
        say(err, size, "%s: %lld bytes, expected %llu (damaged, or from another build)", path,
            (long long)st.st_size, (unsigned long long)info->weights_bytes);
        close(fd);
        return -1;
    }
    void *p = mmap(NULL, info->weights_bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        say(err, size, "%s: cannot map the weights: %s", path, strerror(errno));
        return -1;
    }
    m->weights = p;
    m->mapped_bytes = info->weights_bytes;
    return 0;
}

static void *aligned_bytes(uint64_t nbytes) {
    size_t size = (size_t)((nbytes + ALIGN - 1) / ALIGN * ALIGN);
    return aligned_alloc(ALIGN, size ? size : ALIGN);
}

static int allocate(sketchtune_model *m, char *err, size_t size) {
    uint32_t n = m->info->n_inputs + m->info->n_outputs;
    m->arena = aligned_bytes(m->info->arena_bytes);
    m->staging = calloc(n + 1, sizeof(void *));
    m->pointers = calloc(n + 1, sizeof(void *));
    if (m->arena && m->staging && m->pointers) return 0;
    say(err, size, "out of memory for the %llu-byte scratch arena",
        (unsigned long long)m->info->arena_bytes);
    return -1;
}

sketchtune_model *sketchtune_load(const char *dir, char *error, size_t error_size) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char own[4096];
    sketchtune_model *m = calloc(1, sizeof *m);
    if (!m) {
        say(error, error_size, "out of memory");
        return NULL;
    }
    m->info = &sketchtune_artifact_info;
    if (!dir) {
        if (own_directory(own, sizeof own) != 0) {
            say(error, error_size, "cannot find the directory of model.so; pass it");
            sketchtune_free(m);
            return NULL;
        }
        dir = own;
    }
    if (check_cpu(m->info, error, error_size) || map_weights(m, dir, error, error_size) ||
        allocate(m, error, error_size)) {
        sketchtune_free(m);
        return NULL;
    }
    pthread_once(&once, keep_scratch_in_heap);
    return m;
}

static int overlaps(const void *a, uint64_t na, const void *b, uint64_t nb) {
    const char *x = a, *y = b;
    return x < y + nb && y < x + na;
}

static int check_args(sketchtune_model *m, const void *const *inputs, void *const *outputs) {
    const st_artifact *info = m->info;
    if ((info->n_inputs && !inputs) || (info->n_outputs && !outputs)) {
        say(m->error, ERROR_BYTES, "inputs and outputs must be arrays of pointers");
        return -1;
    }
    for (uint32_t i = 0; i < info->n_inputs; i++) {
        if (!inputs[i]) {
            say(m->error, ERROR_BYTES, "input '%s' is NULL", info->inputs[i].name);
            return -1;
        }
    }
    for (uint32_t o = 0; o < info->n_outputs; o++) {
        const sketchtune_tensor *t = &info->outputs[o];
        if (!outputs[o]) {
            say(m->error, ERROR_BYTES, "output '%s' is NULL", t->name);
            return -1;
        }
        for (uint32_t i = 0; i < info->n_inputs; i++) {
            if (overlaps(outputs[o], t->nbytes, inputs[i], info->inputs[i].nbytes)) {
                say(m->error, ERROR_BYTES, "output '%s' overlaps input '%s'", t->name,
                    info->inputs[i].name);
                return -1;
            }
        }
    }
    return 0;
}

/* `buffer` itself if 64-byte aligned (the kernels assume it), else staging slot `k` */
static void *aligned_or_staged(sketchtune_model *m, uint32_t k, const void *buffer, uint64_t n) {
    if ((uintptr_t)buffer % ALIGN == 0) return (void *)buffer;
    if (!m->staging[k] && !(m->staging[k] = aligned_bytes(n))) return NULL;
    return m->staging[k];
}

int sketchtune_run(sketchtune_model *m, const void *const *inputs, void *const *outputs) {
    if (!m) return -1;
    const st_artifact *info = m->info;
    if (check_args(m, inputs, outputs)) return -1;
    uint32_t n_in = info->n_inputs, n_out = info->n_outputs;
    void **in = m->pointers, **out = m->pointers + n_in;
    for (uint32_t k = 0; k < n_in + n_out; k++) {
        const sketchtune_tensor *t = k < n_in ? &info->inputs[k] : &info->outputs[k - n_in];
        const void *given = k < n_in ? inputs[k] : outputs[k - n_in];
        if (!(m->pointers[k] = aligned_or_staged(m, k, given, t->nbytes))) {
            say(m->error, ERROR_BYTES, "out of memory for a copy of '%s'", t->name);
            return -1;
        }
        if (k < n_in && m->pointers[k] != given) memcpy(m->pointers[k], given, t->nbytes);
    }
    int old = m->threads ? st_set_num_threads(m->threads) : 0;
    sketchtune_network((const void *const *)in, out, m->weights, m->arena);
    if (m->threads) st_set_num_threads(old);
    for (uint32_t o = 0; o < n_out; o++)
        if (out[o] != outputs[o]) memcpy(outputs[o], out[o], info->outputs[o].nbytes);
    m->error[0] = '\0';
    return 0;
}

const char *sketchtune_last_error(const sketchtune_model *m) { return m ? m->error : ""; }

int sketchtune_set_threads(sketchtune_model *m, int threads) {
    if (!m || threads < 0) return -1;
    m->threads = threads;
    return 0;
}

void sketchtune_free(sketchtune_model *m) {
    if (!m) return;
    if (m->weights) munmap(m->weights, m->mapped_bytes);
    if (m->staging) {
        for (uint32_t i = 0; i < m->info->n_inputs + m->info->n_outputs; i++) free(m->staging[i]);
        free(m->staging);
    }
    free(m->pointers);
    free(m->arena);
    free(m);
}

size_t sketchtune_num_inputs(const sketchtune_model *m) { return m ? m->info->n_inputs : 0; }

size_t sketchtune_num_outputs(const sketchtune_model *m) { return m ? m->info->n_outputs : 0; }

const sketchtune_tensor *sketchtune_input(const sketchtune_model *m, size_t i) {
    return m && i < m->info->n_inputs ? &m->info->inputs[i] : NULL;
}

const sketchtune_tensor *sketchtune_output(const sketchtune_model *m, size_t i) {
    return m && i < m->info->n_outputs ? &m->info->outputs[i] : NULL;
}
