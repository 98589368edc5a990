/* The description of one artifact, generated at compile time (models/artifact writes
 * it as meta.c) and read by runtime.c. Internal: not exported from model.so. */
#ifndef SKETCHTUNE_ARTIFACT_H
#define SKETCHTUNE_ARTIFACT_H

#include "sketchtune.h"

typedef struct st_artifact {
    uint32_t format_version;
    uint32_t n_inputs;
    uint32_t n_outputs;
    const sketchtune_tensor *inputs;
    const sketchtune_tensor *outputs;
    uint64_t weights_bytes;
    uint64_t arena_bytes;
    const char *weights_file; /* relative to the artifact directory */
    const char *cpu_flags;    /* space-separated /proc/cpuinfo flags the code needs */
    const char *cpu_name;     /* the LLVM CPU the code was compiled for */
} st_artifact;

extern const st_artifact sketchtune_artifact_info;

#endif /* SKETCHTUNE_ARTIFACT_H */
