#include "CFuzzDriver.h"

// Provided by libclang_rt.fuzzer (linked by `-sanitize=fuzzer`).
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int cohort_fuzz_run_driver(int argc, char **argv, cohort_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
