/* A C client of an artifact, built by tests/test_artifact.py against model.so:
 *
 *     test_artifact_main IN0.bin [IN1.bin ...] OUT0.bin [OUT1.bin ...]
 *
 * loads the artifact from the library's own directory (sketchtune_load(NULL)), reads
 * each input's raw bytes, runs it on 64-byte aligned buffers and again on buffers one
 * float past a boundary (staged by the runtime), checks both give the same bytes and
 * writes the outputs' raw bytes. No Python anywhere. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sketchtune.h"

static char *buffer(size_t nbytes, size_t shift) {
    char *p = aligned_alloc(64, (nbytes + 64 + 63) / 64 * 64);
    return p ? p + shift : NULL;
}

static int read_file(const char *path, char *dst, size_t nbytes) {
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(dst, 1, nbytes, f) : 0;
    if (f) fclose(f);
    return got == nbytes ? 0 : -1;
}

static int write_file(const char *path, const char *src, size_t nbytes) {
    FILE *f = fopen(path, "wb");
    size_t put = f ? fwrite(src, 1, nbytes, f) : 0;
    if (f) fclose(f);
    return put == nbytes ? 0 : -1;
}

int main(int argc, char **argv) {
    if (sketchtune_abi_version() != SKETCHTUNE_ABI_VERSION) return 10;
    char err[256];
    sketchtune_model *m = sketchtune_load(NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "load: %s\n", err);
        return 11;
    }
    size_t ni = sketchtune_num_inputs(m), no = sketchtune_num_outputs(m);
    if ((size_t)argc != 1 + ni + no || ni > 8 || no > 8) return 12;
    sketchtune_set_threads(m, 1);
    const void *in[2][8];
    void *out[2][8];
    for (size_t run = 0; run < 2; run++) {
        size_t shift = run ? sizeof(float) : 0;
        for (size_t i = 0; i < ni; i++) {
            size_t n = sketchtune_input(m, i)->nbytes;
            char *p = buffer(n, shift);
            if (!p || read_file(argv[1 + i], p, n)) return 13;
            in[run][i] = p;
        }
        for (size_t o = 0; o < no; o++) out[run][o] = buffer(sketchtune_output(m, o)->nbytes, shift);
        if (sketchtune_run(m, in[run], out[run]) != 0) {
            fprintf(stderr, "run: %s\n", sketchtune_last_error(m));
            return 14;
        }
    }
    for (size_t o = 0; o < no; o++) {
        size_t n = sketchtune_output(m, o)->nbytes;
        if (memcmp(out[0][o], out[1][o], n) != 0) return 15;
        if (write_file(argv[1 + ni + o], out[0][o], n)) return 16;
    }
    sketchtune_free(m);
    return 0;
}
