// Run-time MPI (see cullme_mpi.h): dlopen + dlsym, so libullme and the CLI build and run without MPI.
#include "cullme_mpi.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *MPI_Handle;  // Open MPI: MPI_Comm, MPI_Datatype, MPI_Op are pointers to predefined objects
#define OMPI_IN_PLACE ((void *)1)

static struct {
    int ready, rank, size;
    void *lib;
    int (*initialized)(int *);
    int (*finalized)(int *);
    int (*init)(int *, char ***);
    int (*finalize)(void);
    int (*comm_rank)(MPI_Handle, int *);
    int (*comm_size)(MPI_Handle, int *);
    int (*allreduce)(const void *, void *, int, MPI_Handle, MPI_Handle, MPI_Handle);
    int (*allgatherv)(const void *, int, MPI_Handle, void *, const int *, const int *, MPI_Handle, MPI_Handle);
    int (*barrier)(MPI_Handle);
    int (*abort_)(MPI_Handle, int);
    MPI_Handle comm_world, t_float, t_double, op_sum;
} M = {0, 0, 1};

static void finalize_at_exit(void) {
    int done = 0;
    if (M.finalized && M.finalized(&done) == 0 && !done) M.finalize();
}

int cullme_mpi_init(char *err, size_t err_len) {
    if (M.ready) return 0;
    const char *path = getenv("ULLME_MPI_LIB");
    if (!path || !*path) path = "libmpi.so.40";
    M.lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);  // GLOBAL: Open MPI's plugins resolve against it
    if (!M.lib) {
        snprintf(err, err_len, "cannot load MPI (%s): %s (install openmpi-bin + libopenmpi-dev, or set ULLME_MPI_LIB)",
                 path, dlerror());
        return -1;
    }
#define SYM(field, name)                                                                   \
    do {                                                                                   \
        *(void **)&M.field = dlsym(M.lib, name);                                           \
        if (!M.field) {                                                                    \
            snprintf(err, err_len, "%s: no symbol %s (is it Open MPI?)", path, name);      \
            return -1;                                                                     \
        }                                                                                  \
    } while (0)
    SYM(initialized, "MPI_Initialized");
    SYM(finalized, "MPI_Finalized");
    SYM(init, "MPI_Init");
    SYM(finalize, "MPI_Finalize");
    SYM(comm_rank, "MPI_Comm_rank");
    SYM(comm_size, "MPI_Comm_size");
    SYM(allreduce, "MPI_Allreduce");
    SYM(allgatherv, "MPI_Allgatherv");
    SYM(barrier, "MPI_Barrier");
    SYM(abort_, "MPI_Abort");
    SYM(comm_world, "ompi_mpi_comm_world");
    SYM(t_float, "ompi_mpi_float");
    SYM(t_double, "ompi_mpi_double");
    SYM(op_sum, "ompi_mpi_op_sum");
#undef SYM
    int inited = 0;
    M.initialized(&inited);
    if (!inited) {
        int rc = M.init(NULL, NULL);
        if (rc != 0) {
            snprintf(err, err_len, "MPI_Init failed (error %d)", rc);
            return -1;
        }
        atexit(finalize_at_exit);
    }
    if (M.comm_rank(M.comm_world, &M.rank) != 0 || M.comm_size(M.comm_world, &M.size) != 0) {
        snprintf(err, err_len, "MPI_Comm_rank/size failed");
        return -1;
    }
    M.ready = 1;
    return 0;
}

int cullme_mpi_rank(void) { return M.ready ? M.rank : 0; }
int cullme_mpi_size(void) { return M.ready ? M.size : 1; }

static int allreduce(void *buf, size_t count, size_t elem, MPI_Handle type) {
    if (!M.ready) return -1;
    const size_t piece = (size_t)INT_MAX / 2;
    for (size_t off = 0; off < count; off += piece) {
        size_t n = count - off < piece ? count - off : piece;
        int rc = M.allreduce(OMPI_IN_PLACE, (char *)buf + off * elem, (int)n, type, M.op_sum, M.comm_world);
        if (rc != 0) return rc;
    }
    return 0;
}

int cullme_mpi_allreduce_sum_f32(float *buf, size_t count) { return allreduce(buf, count, sizeof(float), M.t_float); }
int cullme_mpi_allreduce_sum_f64(double *buf, size_t count) { return allreduce(buf, count, sizeof(double), M.t_double); }

int cullme_mpi_allgatherv_f32(float *buf, const int *counts, const int *displs) {
    if (!M.ready) return -1;
    return M.allgatherv(OMPI_IN_PLACE, 0, M.t_float, buf, counts, displs, M.t_float, M.comm_world);
}

int cullme_mpi_barrier(void) { return M.ready ? M.barrier(M.comm_world) : -1; }

void cullme_mpi_abort(int code) {
    if (M.ready) M.abort_(M.comm_world, code);
    exit(code);
}
