/* sketchtune.h: run a compiled sketchtune artifact from C, without Python.
 *
 * An artifact is a directory: model.so (every kernel, the network's call sequence
 * and this runtime), weights.bin (the constants, memory-mapped read-only) and
 * network.json (the manifest). Link against model.so, or dlopen it:
 *
 *     gcc app.c -I ARTIFACT ARTIFACT/model.so -Wl,-rpath,ARTIFACT -o app
 *
 *     char err[256];
 *     sketchtune_model *m = sketchtune_load("ARTIFACT", err, sizeof err);
 *     if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *     const void *in[] = {x};  void *out[] = {y};
 *     if (sketchtune_run(m, in, out) != 0) fprintf(stderr, "%s\n", sketchtune_last_error(m));
 *     sketchtune_free(m);
 *
 * Buffers are C-contiguous arrays of the shapes and dtypes sketchtune_input() and
 * sketchtune_output() describe, in the manifest's order. 64-byte aligned buffers are
 * used in place; others go through a staging copy. Outputs must not overlap inputs.
 * One sketchtune_run at a time per model (it owns one scratch arena): load the
 * artifact once per thread that runs it concurrently.
 */
#ifndef SKETCHTUNE_H
#define SKETCHTUNE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SKETCHTUNE_ABI_VERSION 1

typedef struct sketchtune_model sketchtune_model;

/* One input or output: its name, numpy dtype name ("float32"), shape and size. */
typedef struct sketchtune_tensor {
    const char *name;
    const char *dtype;
    int32_t ndim;
    const int64_t *shape;
    uint64_t nbytes;
} sketchtune_tensor;

/* SKETCHTUNE_ABI_VERSION of the library (compare it with the header's). */
uint32_t sketchtune_abi_version(void);

/* Load the artifact in directory `dir` (NULL: the directory of this library): check
 * the CPU has every feature the code uses, map the weights, allocate the scratch
 * arena. NULL on failure, with a one-line message in `error` (if not NULL). */
sketchtune_model *sketchtune_load(const char *dir, char *error, size_t error_size);

/* One inference: inputs[i] and outputs[i] point to the i-th input and output.
 * 0 on success; nonzero on bad arguments (see sketchtune_last_error). */
int sketchtune_run(sketchtune_model *model, const void *const *inputs, void *const *outputs);

/* The message of the last failed sketchtune_run ("" if none). */
const char *sketchtune_last_error(const sketchtune_model *model);

/* Run parallel loops on `threads` OpenMP threads (0: libgomp's default, which
 * OMP_NUM_THREADS sets). The calling thread's setting is restored after each run.
 * 0 on success, nonzero when threads < 0. */
int sketchtune_set_threads(sketchtune_model *model, int threads);

/* Unmap the weights and free the arena (NULL is ignored). */
void sketchtune_free(sketchtune_model *model);

size_t sketchtune_num_inputs(const sketchtune_model *model);
size_t sketchtune_num_outputs(const sketchtune_model *model);
/* The i-th input or output (NULL when out of range). */
const sketchtune_tensor *sketchtune_input(const sketchtune_model *model, size_t index);
const sketchtune_tensor *sketchtune_output(const sketchtune_model *model, size_t index);

/* The generated inference itself, for callers that manage memory: 64-byte aligned
 * inputs and outputs, `weights` the mapped weights file, `arena` at least the
 * manifest's arena_bytes, 64-byte aligned. sketchtune_run calls it. */
void sketchtune_network(const void *const *inputs, void *const *outputs, const void *weights,
                        void *arena);

#ifdef __cplusplus
}
#endif

#endif /* SKETCHTUNE_H */
