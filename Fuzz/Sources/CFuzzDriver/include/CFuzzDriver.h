#ifndef COHORT_FUZZ_DRIVER_H
#define COHORT_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef int (*cohort_fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver (`LLVMFuzzerRunDriver`) with the process arguments.
///
/// Needed because SwiftPM (tools 5.5 and later, debug builds on Linux) renames an
/// executable's entry point to `<Module>_main` and links with `--defsym main=<Module>_main`,
/// which replaces libFuzzer's own `main`; each harness therefore defines `<Module>_main`
/// and calls this.
int cohort_fuzz_run_driver(int argc, char **argv, cohort_fuzz_callback callback);

#endif
