// cullme_mpi: the few MPI collectives data-parallel GRL needs, with MPI loaded at run time.
//
// The default build needs no MPI: nothing here links against it. cullme_mpi_init() dlopen()s Open MPI's
// libmpi.so.40 (or $ULLME_MPI_LIB) with RTLD_GLOBAL and looks up MPI_Init, the collectives and Open MPI's
// predefined handles (ompi_mpi_comm_world, ompi_mpi_float, ompi_mpi_double, ompi_mpi_op_sum, ...), whose
// addresses *are* the handles in Open MPI's ABI. So this shim speaks the Open MPI ABI (libmpi.so.40:
// Open MPI 3.x-5.x), not MPICH's integer handles.
#ifndef CULLME_MPI_H
#define CULLME_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads MPI and calls MPI_Init (or skips it when MPI is already initialised) and registers
/// MPI_Finalize with atexit. Idempotent. Returns 0, or -1 with a message in err.
int cullme_mpi_init(char *err, size_t err_len);
int cullme_mpi_rank(void);    // 0 before init
int cullme_mpi_size(void);    // 1 before init
/// In-place sum over all ranks (count may exceed INT_MAX: sent in pieces). 0 or an MPI error code.
int cullme_mpi_allreduce_sum_f32(float *buf, size_t count);
int cullme_mpi_allreduce_sum_f64(double *buf, size_t count);
/// In-place all-gather of variable-sized float blocks: rank r's block is already at buf + displs[r]
/// (counts[r] floats); afterwards every rank holds every block. 0 or an MPI error code.
int cullme_mpi_allgatherv_f32(float *buf, const int *counts, const int *displs);
int cullme_mpi_barrier(void);
/// MPI_Abort on COMM_WORLD (ends every rank); used when one rank fails, so the others do not hang.
void cullme_mpi_abort(int code);

#ifdef __cplusplus
}
#endif
#endif // CULLME_MPI_H
