// The engine's worker threads: persistent, and they spin briefly between parallel regions.
//
// A forward pass of a short input runs ~200 small parallel regions (6 per layer). Handing each to
// Dispatch's pool costs a futex wake-up per region, and in a VM a wake-up often takes tens of
// microseconds: on SmolLM2 a 15-token query left 2 cores ~30 % idle. Here a region is published by
// bumping a generation counter that idle workers watch for SPIN_NS before they sleep on it (futex), so
// back-to-back regions start at once; tasks are taken from a shared counter. One region runs at a
// time: a caller that finds the pool busy (another thread, or a task itself) runs its region inline.
#define _GNU_SOURCE
#include "cullme.h"
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <immintrin.h>

#define MAX_WORKERS 255
#define SPIN_NS 200000  // how long an idle worker (or a waiting caller) polls before sleeping

typedef struct {
    cullme_task_fn fn;
    void *ctx;
    int64_t n;
} region;

// A futex word and whether someone sleeps on it (so that a publisher only makes the syscall then).
typedef struct {
    _Atomic uint32_t value;
    atomic_int sleeping;
} signal_word;

// Worker i's mailbox: the caller writes `work` only while worker i is idle, then bumps `generation`.
typedef struct {
    signal_word generation;
    uint32_t start;  // generation when the worker was started (its first wait is for a change from it)
    region work;
} __attribute__((aligned(64))) mailbox;

static mailbox mailboxes[MAX_WORKERS];
static struct {
    pthread_mutex_t grow;           // guards starting workers
    int started;                    // workers started
    atomic_flag busy;               // a region is running
    signal_word pending;            // helpers that have not finished the current region
    atomic_int_fast64_t next;       // next task index of the current region
} pool = {.grow = PTHREAD_MUTEX_INITIALIZER, .busy = ATOMIC_FLAG_INIT};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// Waits until w->value != seen: polls for SPIN_NS, then sleeps on the futex. Returns the new value.
static uint32_t wait_change(signal_word *w, uint32_t seen) {
    const int64_t until = now_ns() + SPIN_NS;
    for (int i = 0;; i++) {
        const uint32_t v = atomic_load_explicit(&w->value, memory_order_acquire);
        if (v != seen) return v;
        if ((i & 63) != 63 || now_ns() < until) { _mm_pause(); continue; }
        atomic_store(&w->sleeping, 1);  // seq_cst: a publisher that changes value after this sees it
        syscall(SYS_futex, (uint32_t *)&w->value, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        atomic_store(&w->sleeping, 0);
    }
}

// After changing w->value (seq_cst): wakes a sleeper if there is one.
static void wake(signal_word *w) {
    if (atomic_load(&w->sleeping)) syscall(SYS_futex, (uint32_t *)&w->value, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void run_tasks(const region *r) {
    for (;;) {
        const int64_t i = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed);
        if (i >= r->n) return;
        r->fn(r->ctx, i);
    }
}

static void *worker_main(void *arg) {
    mailbox *box = &mailboxes[(intptr_t)arg];
    uint32_t seen = box->start;
    for (;;) {
        seen = wait_change(&box->generation, seen);
        const region r = box->work;
        run_tasks(&r);
        if (atomic_fetch_sub(&pool.pending.value, 1) == 1) wake(&pool.pending);
    }
    return NULL;
}

static void forget_workers_in_child(void);
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, forget_workers_in_child); }

// A forked child has none of its parent's threads: it starts its own workers when it needs them.
static void forget_workers_in_child(void) {
    pool.started = 0;
    atomic_flag_clear(&pool.busy);
    pthread_mutex_init(&pool.grow, NULL);
}

// Starts workers up to `want` (never stopped: they sleep when idle). Returns how many run.
static int ensure_workers(int want) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_fork_handler);
    if (want > MAX_WORKERS) want = MAX_WORKERS;
    pthread_mutex_lock(&pool.grow);
    while (pool.started < want) {
        mailboxes[pool.started].start = atomic_load(&mailboxes[pool.started].generation.value);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 8u << 20);  // as a main thread's: tasks use stack scratch
        const int ok = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)pool.started) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.started++;
    }
    const int started = pool.started;
    pthread_mutex_unlock(&pool.grow);
    return started;
}

void cullme_pool_run(int64_t n, int threads, cullme_task_fn fn, void *ctx) {
    if (n <= 0) return;
    int64_t helpers = threads - 1;
    if (helpers > n - 1) helpers = n - 1;
    if (helpers <= 0 || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    const int started = ensure_workers((int)helpers);
    if (helpers > started) helpers = started;
    const region r = {fn, ctx, n};
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store(&pool.pending.value, (uint32_t)helpers);
    for (int i = 0; i < helpers; i++) {
        mailboxes[i].work = r;
        atomic_fetch_add(&mailboxes[i].generation.value, 1);
        wake(&mailboxes[i].generation);
    }
    run_tasks(&r);
    for (uint32_t p; (p = atomic_load_explicit(&pool.pending.value, memory_order_acquire)) != 0;) wait_change(&pool.pending, p);
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}
