/* The thread pool that runs generated parallel loops (docs/threads.md).
 *
 * Generated code calls one function, st_parallel_for(body, ctx, extent): [0, extent)
 * is cut into contiguous chunks, and whoever is awake (the calling thread and the
 * pool's workers) takes the next chunk from one atomic counter until none is left.
 * The caller works too, and it never waits for a worker that has not taken a chunk:
 * a worker that sleeps, or that another process has preempted, finds the chunks gone
 * when it comes back. The caller waits only for chunks already taken.
 *
 * Workers are persistent. After a loop a worker spins a few microseconds watching for
 * the next one, then keeps watching between sched_yield calls (any other thread that
 * wants its core gets it) for a bounded time, then parks on a futex; the caller wakes
 * only parked workers, so loops that follow each other closely cost no system call.
 * While it waits for taken chunks the caller spins, then yields, then sleeps on a
 * futex, which frees its core for a preempted worker.
 *
 * The thread count belongs to the calling thread (st_set_num_threads, like OpenMP's
 * omp_set_num_threads); a thread that never set it uses the process default:
 * OMP_NUM_THREADS, else the CPUs of the process's affinity mask. One loop at a time
 * runs on the pool: a loop started while another runs (another thread, or a nested
 * loop in a body) runs on its caller alone.
 *
 * Compiled into the in-process runtime (compiler/runtime/pool.py builds it with the C
 * compiler and caches it) and into every artifact's model.so (models/artifact/link.py).
 * Linux only (futexes, sched_getaffinity). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define ST_EXPORT __attribute__((visibility("default")))
#define CACHE_LINE 64
#define MAX_THREADS 512
#define MAX_UNITS (1 << 30) /* a longer loop is cut into this many units */
#define WORKER_STACK_BYTES (16u << 20) /* scratch buffers of loop bodies live on the stack */

typedef void (*st_body_fn)(void *ctx, int64_t begin, int64_t end);

/* Tunables (st_pool_configure), in ns of idle time; defaults measured in
 * docs/threads.md. A worker that has nothing to do spins (pause) until spin_ns, then
 * looks between sched_yield calls until yield_ns (a thread waiting for its core runs
 * instead), then parks. A caller waiting for chunks a worker took does the same with
 * wait_spin_ns and wait_yield_ns, then sleeps. */
static _Atomic int64_t spin_ns = 5000;
static _Atomic int64_t yield_ns = 1000000;
static _Atomic int64_t wait_spin_ns = 50000;
static _Atomic int64_t wait_yield_ns = 0;
/* How a thread sizes the chunk it takes: n > 0, fixed chunks, n per thread; -g,
 * guided: the remaining units over g * threads (large chunks first, small at the end). */
static _Atomic int32_t chunking = -1;

/* One loop: written by the caller before it is published, read by workers. The
 * fields are atomics so that a worker reading a slot the caller is rewriting is
 * not undefined behaviour; such a worker's claim (a CAS on `next`) then fails. */
typedef struct {
    _Atomic(st_body_fn) body;
    _Atomic(void *) ctx;
    _Atomic int64_t extent;
    _Atomic int32_t units;    /* [0, extent) in this many units (extent itself if it fits) */
    _Atomic int32_t chunking; /* its tunable when the loop started */
    _Atomic int32_t threads;  /* workers 0 .. threads-2 take part */
    _Atomic int32_t waiting;  /* the caller sleeps on `done` */
    _Atomic uint32_t done;    /* units finished by workers (a futex word) */
    _Atomic int32_t caller_cpu; /* where the caller published it */
    char pad[CACHE_LINE - 2 * sizeof(void *) - sizeof(int64_t) - 6 * 4];
} job_slot;

typedef struct {
    _Atomic uint32_t parked; /* 1 while asleep on this word (a futex) */
    uint32_t start_seq; /* the loop last published when it was started */
    pthread_t thread;
    int index;
    char pad[CACHE_LINE - 2 * sizeof(uint32_t) - sizeof(pthread_t) - sizeof(int)];
} worker;

_Static_assert(sizeof(job_slot) == CACHE_LINE, "a job slot fills one cache line");
_Static_assert(sizeof(worker) == CACHE_LINE, "a worker fills one cache line");

/* `next`: the loop's sequence number (high 32 bits) and the first unit no thread has
 * taken (low 32). Publishing a loop stores (seq, 0); taking a chunk of k units adds k
 * by CAS, so a worker holding an old sequence number never takes units of a newer
 * loop; the slots alternate, so the slot of the loop being published is never the one
 * a current claim reads. */
static _Alignas(CACHE_LINE) _Atomic uint64_t next;
static _Alignas(CACHE_LINE) job_slot slots[2];
static _Alignas(CACHE_LINE) worker workers[MAX_THREADS - 1];
static _Alignas(CACHE_LINE) _Atomic int busy; /* a loop is running on the pool */
static _Atomic int n_workers;                 /* started so far */
static _Atomic int hold;                      /* tests: workers take no chunk */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int default_threads = 1;
static __thread int thread_count;  /* 0: the default */
static __thread int in_worker;

/* counters for tests and benchmarks (st_pool_stats) */
static _Atomic int64_t n_parallel, n_inline, n_caller_chunks, n_worker_chunks, n_wakes,
    n_caller_sleeps, n_moves;

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)addr, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* iterations [*b, *e) of units [ub, ue): `units` balanced parts of [0, extent) */
static void unit_range(int64_t extent, int64_t units, int64_t ub, int64_t ue, int64_t *b,
                       int64_t *e) {
    int64_t q = extent / units, r = extent % units;
    *b = ub * q + (ub < r ? ub : r);
    *e = ue * q + (ue < r ? ue : r);
}

/* the size of the chunk that starts at unit `start` */
static int64_t chunk_units(int64_t units, int64_t start, int threads, int32_t how) {
    int64_t size = how > 0 ? (units + (int64_t)how * threads - 1) / ((int64_t)how * threads)
                           : (units - start + (int64_t)-how * threads - 1) /
                                 ((int64_t)-how * threads);
    return size < 1 ? 1 : size;
}

/* Take chunks of loop `seq` until none is left or the loop is over, run each; the
 * units run. Workers check `seq` (a newer loop may have replaced theirs), the caller
 * does not need to. */
static int64_t take_chunks(uint32_t seq, job_slot *slot, int is_worker) {
    st_body_fn body = atomic_load_explicit(&slot->body, memory_order_acquire);
    void *ctx = atomic_load_explicit(&slot->ctx, memory_order_acquire);
    int64_t extent = atomic_load_explicit(&slot->extent, memory_order_acquire);
    int64_t units = atomic_load_explicit(&slot->units, memory_order_acquire);
    int32_t how = atomic_load_explicit(&slot->chunking, memory_order_acquire);
    int threads = atomic_load_explicit(&slot->threads, memory_order_acquire);
    int64_t ran = 0, chunks = 0;
    uint64_t w = atomic_load_explicit(&next, memory_order_acquire);
    while ((uint32_t)(w >> 32) == seq && (int64_t)(uint32_t)w < units) {
        int64_t start = (uint32_t)w, size = chunk_units(units, start, threads, how);
        if (size > units - start) size = units - start;
        if (!atomic_compare_exchange_weak_explicit(&next, &w, w + (uint64_t)size,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue; /* w reloaded: look again */
        int64_t b, e;
        unit_range(extent, units, start, start + size, &b, &e);
        body(ctx, b, e);
        ran += size;
        chunks++;
        if (is_worker) {
            atomic_fetch_add_explicit(&n_worker_chunks, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&slot->done, (uint32_t)size, memory_order_seq_cst);
            if (atomic_load_explicit(&slot->waiting, memory_order_seq_cst))
                futex(&slot->done, FUTEX_WAKE, 1);
        }
        w = atomic_load_explicit(&next, memory_order_acquire);
    }
    if (!is_worker) atomic_fetch_add_explicit(&n_caller_chunks, chunks, memory_order_relaxed);
    return ran;
}

/* A worker on its caller's core (where a new thread starts, where a wake-up put it, or
 * after a migration) would only take time from the caller: the scheduler does not
 * always move it to an idle core (on virtual machines, a woken thread is often placed
 * on its waker's core and stays there). It moves itself: its affinity becomes the
 * CPUs it was started with (`allowed`, the process's or a runner's device's) less the
 * caller's, which migrates it at once. Returns whether it is now off that core; with
 * no other CPU allowed, it sleeps a microsecond (the caller runs the chunks). */
static int move_off(const cpu_set_t *allowed, int caller_cpu) {
    atomic_fetch_add_explicit(&n_moves, 1, memory_order_relaxed);
    cpu_set_t set;
    memcpy(&set, allowed, sizeof set);
    if (caller_cpu >= 0 && caller_cpu < CPU_SETSIZE) CPU_CLR(caller_cpu, &set);
    if (CPU_COUNT(&set) > 0 && sched_setaffinity(0, sizeof set, &set) == 0)
        return sched_getcpu() != caller_cpu;
    nanosleep(&(struct timespec){0, 1000}, NULL);
    return 0;
}

static void *worker_main(void *arg) {
    worker *self = arg;
    in_worker = 1;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_ZERO(&allowed);
    uint32_t seen = self->start_seq;
    int64_t idle_since = now_ns();
    for (unsigned k = 1;; k++) {
        uint64_t w = atomic_load_explicit(&next, memory_order_acquire);
        if ((uint32_t)(w >> 32) != seen) {
            seen = (uint32_t)(w >> 32);
            job_slot *slot = &slots[seen & 1];
            int threads = atomic_load_explicit(&slot->threads, memory_order_acquire);
            if (self->index >= threads - 1 || atomic_load_explicit(&hold, memory_order_relaxed))
                continue;
            int caller_cpu = atomic_load_explicit(&slot->caller_cpu, memory_order_acquire);
            if (sched_getcpu() == caller_cpu && !move_off(&allowed, caller_cpu)) {
                idle_since = now_ns();
                continue;
            }
            take_chunks(seen, slot, 1);
            idle_since = now_ns();
            continue;
        }
        if (k % 64 != 0) {
            CPU_RELAX();
            continue;
        }
        int64_t idle = now_ns() - idle_since;
        if (idle < atomic_load_explicit(&spin_ns, memory_order_relaxed)) {
            CPU_RELAX();
        } else if (idle < atomic_load_explicit(&yield_ns, memory_order_relaxed)) {
            sched_yield(); /* keep watching, but let a thread waiting for this core run */
            k = 63;
        } else {
            /* park; the caller clears `parked` and wakes us when a loop needs us */
            atomic_store_explicit(&self->parked, 1, memory_order_seq_cst);
            w = atomic_load_explicit(&next, memory_order_seq_cst);
            if ((uint32_t)(w >> 32) == seen) futex(&self->parked, FUTEX_WAIT, 1);
            atomic_store_explicit(&self->parked, 0, memory_order_relaxed);
            idle_since = now_ns();
        }
    }
    return NULL;
}

static int parse_threads(const char *text) {
    if (!text) return 0;
    char *end;
    long n = strtol(text, &end, 10); /* OMP_NUM_THREADS may be a list: its first entry */
    return end != text && n > 0 ? (int)(n < MAX_THREADS ? n : MAX_THREADS) : 0;
}

static void after_fork_in_child(void) {
    /* the workers did not come along: start new ones when needed */
    atomic_store(&n_workers, 0);
    atomic_store(&busy, 0);
    for (int i = 0; i < MAX_THREADS - 1; i++) atomic_store(&workers[i].parked, 0);
    pthread_mutex_init(&start_lock, NULL);
}

static void init_once(void) {
    int n = parse_threads(getenv("OMP_NUM_THREADS"));
    if (!n) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
        if (n < 1) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    }
    default_threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

/* Start workers up to `want`; returns how many there are (fewer if threads cannot be
 * made: the loops then run on fewer threads). */
static int start_workers(int want) {
    int have = atomic_load_explicit(&n_workers, memory_order_acquire);
    if (have >= want) return have;
    pthread_mutex_lock(&start_lock);
    have = atomic_load(&n_workers);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the program's own threads */
    for (; have < want; have++) {
        worker *w = &workers[have];
        w->index = have;
        w->start_seq = (uint32_t)(atomic_load(&next) >> 32);
        atomic_store(&w->parked, 0);
        if (pthread_create(&w->thread, &attr, worker_main, w) != 0) break;
        char name[16];
        snprintf(name, sizeof name, "st-pool-%d", have % 1000);
        pthread_setname_np(w->thread, name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    atomic_store_explicit(&n_workers, have, memory_order_release);
    pthread_mutex_unlock(&start_lock);
    return have;
}

ST_EXPORT int st_get_num_threads(void) {
    pthread_once(&once, init_once);
    return thread_count ? thread_count : default_threads;
}

/* The calling thread's loops run on `n` threads (itself included); 0: the default.
 * Returns the previous setting (0: it was the default), or -1 for a negative `n`. */
ST_EXPORT int st_set_num_threads(int n) {
    if (n < 0) return -1;
    int old = thread_count;
    thread_count = n > MAX_THREADS ? MAX_THREADS : n;
    return old;
}

static void parallel_for_chunked(st_body_fn body, void *ctx, int64_t extent, int32_t how);

ST_EXPORT void st_parallel_for(st_body_fn body, void *ctx, int64_t extent) {
    parallel_for_chunked(body, ctx, extent, atomic_load_explicit(&chunking, memory_order_relaxed));
}

/* st_parallel_for with the chunking `how` (pool.c's tunable's meaning) */
static void parallel_for_chunked(st_body_fn body, void *ctx, int64_t extent, int32_t how) {
    if (extent <= 0) return;
    int threads = thread_count ? thread_count : (pthread_once(&once, init_once), default_threads);
    if (threads > extent) threads = (int)extent;
    if (threads <= 1 || in_worker || atomic_exchange_explicit(&busy, 1, memory_order_acquire)) {
        atomic_fetch_add_explicit(&n_inline, 1, memory_order_relaxed);
        body(ctx, 0, extent);
        return;
    }
    int have = start_workers(threads - 1);
    if (have < threads - 1) threads = have + 1;
    int64_t units = extent < MAX_UNITS ? extent : MAX_UNITS;

    uint64_t old = atomic_load_explicit(&next, memory_order_relaxed);
    uint32_t seq = (uint32_t)(old >> 32) + 1;
    job_slot *slot = &slots[seq & 1];
    atomic_store_explicit(&slot->body, body, memory_order_release);
    atomic_store_explicit(&slot->ctx, ctx, memory_order_release);
    atomic_store_explicit(&slot->extent, extent, memory_order_release);
    atomic_store_explicit(&slot->units, (int32_t)units, memory_order_release);
    atomic_store_explicit(&slot->chunking, how, memory_order_release);
    atomic_store_explicit(&slot->threads, threads, memory_order_release);
    atomic_store_explicit(&slot->waiting, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->done, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->caller_cpu, sched_getcpu(), memory_order_release);
    atomic_store_explicit(&next, (uint64_t)seq << 32, memory_order_seq_cst); /* publish */
    for (int i = 0; i < threads - 1; i++) {
        if (atomic_load_explicit(&workers[i].parked, memory_order_seq_cst) &&
            atomic_exchange_explicit(&workers[i].parked, 0, memory_order_seq_cst)) {
            futex(&workers[i].parked, FUTEX_WAKE, 1);
            atomic_fetch_add_explicit(&n_wakes, 1, memory_order_relaxed);
        }
    }

    int64_t mine = take_chunks(seq, slot, 0);

    /* wait for the chunks workers took: spin, then yield, then sleep so that a
     * preempted worker can have this core */
    uint32_t want = (uint32_t)(units - mine);
    if (atomic_load_explicit(&slot->done, memory_order_acquire) != want) {
        int64_t start = now_ns();
        unsigned k = 0;
        uint32_t d;
        while ((d = atomic_load_explicit(&slot->done, memory_order_acquire)) != want) {
            if (++k % 64 != 0) {
                CPU_RELAX();
                continue;
            }
            int64_t waited = now_ns() - start;
            if (waited < atomic_load_explicit(&wait_spin_ns, memory_order_relaxed)) {
                CPU_RELAX();
            } else if (waited < atomic_load_explicit(&wait_yield_ns, memory_order_relaxed)) {
                sched_yield();
                k = 63;
            } else {
                atomic_store_explicit(&slot->waiting, 1, memory_order_seq_cst);
                d = atomic_load_explicit(&slot->done, memory_order_seq_cst);
                if (d != want) {
                    atomic_fetch_add_explicit(&n_caller_sleeps, 1, memory_order_relaxed);
                    futex(&slot->done, FUTEX_WAIT, d);
                }
            }
        }
    }
    atomic_fetch_add_explicit(&n_parallel, 1, memory_order_relaxed);
    atomic_store_explicit(&busy, 0, memory_order_release);
}

/* Tunables (above): a negative time or a zero `how` (chunking) keeps the current
 * one. Returns 0. */
ST_EXPORT int st_pool_configure(int64_t spin, int64_t yield, int64_t wait_spin,
                                int64_t wait_yield, int32_t how) {
    if (spin >= 0) atomic_store(&spin_ns, spin);
    if (yield >= 0) atomic_store(&yield_ns, yield);
    if (wait_spin >= 0) atomic_store(&wait_spin_ns, wait_spin);
    if (wait_yield >= 0) atomic_store(&wait_yield_ns, wait_yield);
    if (how != 0) atomic_store(&chunking, how);
    return 0;
}

/* Tests: with `on`, workers take no chunk (as if preempted before starting one). */
ST_EXPORT void st_pool_hold_workers(int on) { atomic_store(&hold, on != 0); }

/* out[0..12]: loops run in parallel, loops run inline, chunks run by callers, chunks
 * run by workers, worker wake-ups, caller sleeps, workers started, then the tunables:
 * spin, yield, wait spin, wait yield (ns), chunking; then the times a worker found
 * itself on its caller's core and moved. */
ST_EXPORT void st_pool_stats(int64_t out[13]) {
    out[0] = atomic_load(&n_parallel);
    out[1] = atomic_load(&n_inline);
    out[2] = atomic_load(&n_caller_chunks);
    out[3] = atomic_load(&n_worker_chunks);
    out[4] = atomic_load(&n_wakes);
    out[5] = atomic_load(&n_caller_sleeps);
    out[6] = atomic_load(&n_workers);
    out[7] = atomic_load(&spin_ns);
    out[8] = atomic_load(&yield_ns);
    out[9] = atomic_load(&wait_spin_ns);
    out[10] = atomic_load(&wait_yield_ns);
    out[11] = atomic_load(&chunking);
    out[12] = atomic_load(&n_moves);
}

/* A list of kernel calls run in order with no interpreter between them (the in-process
 * executor's inference: models/network.py). Each call is a generated kernel's address
 * and its pointer arguments (every parameter of a kernel is a pointer). Returns the
 * index of the first call with more than ST_MAX_CALL_ARGS arguments (none run from it
 * on), or -1 when every call ran. */
#define ST_MAX_CALL_ARGS 16
typedef struct {
    void *fn;
    int64_t nargs;
    void *const *args;
} st_call;

/* one call; 0 when it has more than ST_MAX_CALL_ARGS arguments (not made) */
static int run_call(const st_call *c) {
    void *const *a = c->args;
    switch (c->nargs) {
    case 1: ((void (*)(void *))c->fn)(a[0]); break;
    case 2: ((void (*)(void *, void *))c->fn)(a[0], a[1]); break;
    case 3: ((void (*)(void *, void *, void *))c->fn)(a[0], a[1], a[2]); break;
    case 4: ((void (*)(void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3]); break;
    case 5: ((void (*)(void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4]); break;
    case 6: ((void (*)(void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5]); break;
    case 7: ((void (*)(void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]); break;
    case 8: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]); break;
    case 9: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]); break;
    case 10: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]); break;
    case 11: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]); break;
    case 12: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]); break;
    case 13: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12]); break;
    case 14: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13]); break;
    case 15: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14]); break;
    case 16: ((void (*)(void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *, void *))c->fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]); break;
    default: return 0;
    }
    return 1;
}

ST_EXPORT int64_t st_run_calls(const st_call *calls, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!run_call(&calls[i])) return i;
    return -1;
}

/* Inter-op parallelism: calls in steps. Step s is the next widths[s] calls; a step of
 * one call runs as st_run_calls would, the calls of a wider step (independent kernels:
 * none reads what another writes) run at the same time, one per thread of the pool,
 * each kernel's own parallel loops inline on its thread. Threads that finish early take
 * the step's next call, so a step of more calls than threads still balances. Returns as
 * st_run_calls; no call runs if any has too many arguments. */
typedef struct {
    const st_call *calls;
} step_ctx;

static void step_body(void *ctx, int64_t begin, int64_t end) {
    const st_call *calls = ((const step_ctx *)ctx)->calls;
    for (int64_t i = begin; i < end; i++) run_call(&calls[i]);
}

ST_EXPORT int64_t st_run_steps(const st_call *calls, int64_t n, const int64_t *widths,
                               int64_t n_steps) {
    for (int64_t i = 0; i < n; i++)
        if (calls[i].nargs < 1 || calls[i].nargs > ST_MAX_CALL_ARGS) return i;
    int64_t at = 0;
    for (int64_t s = 0; s < n_steps && at < n; s++) {
        int64_t w = widths[s] < 1 ? 1 : widths[s] > n - at ? n - at : widths[s];
        if (w == 1) {
            run_call(&calls[at]);
        } else {
            step_ctx ctx = {calls + at};
            /* chunks of one call: `how` fixed chunks per thread, one unit each */
            parallel_for_chunked(step_body, &ctx, w, (int32_t)w);
        }
        at += w;
    }
    for (; at < n; at++) run_call(&calls[at]);
    return -1;
}
