/* Shared scenario parsing for the fake NVML and libcuda. The scenario comes from the
 * environment, so one compiled library serves every test:
 *   FAKE_GPU_DRIVER   "531.18"                driver version string
 *   FAKE_GPU_CUDA     "12010"                 driver CUDA version, 1000*major + 10*minor
 *   FAKE_GPU_DEVICES  "NAME|MiB|8.6;NAME|..."  one entry per GPU
 *   FAKE_NVML_INIT_RC nvmlInit return code (9 = NVML_ERROR_DRIVER_NOT_LOADED,
 *                     18 = NVML_ERROR_LIB_RM_VERSION_MISMATCH)
 *   FAKE_CUDA_INIT_RC cuInit return code (803 = CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
 *                     100 = CUDA_ERROR_NO_DEVICE); unset: follows FAKE_NVML_INIT_RC
 *                     (18 -> 803, any other failure -> 100)
 * CUDA_VISIBLE_DEVICES is honoured by the CUDA side only, as the real driver does: NVML
 * lists every GPU, libcuda only those the variable names (fake_visible below).
 *   FAKE_GPU_SLEEP    seconds to hang inside init (timeout tests)
 */
#ifndef FAKE_GPU_H
#define FAKE_GPU_H
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_MAX_GPUS 16

typedef struct {
    char name[96];
    unsigned long long mem_mib;
    int major, minor;
} fake_gpu_t;

static fake_gpu_t fake_gpus[FAKE_MAX_GPUS];
static int fake_gpu_count = -1;

static void fake_load(void) {
    if (fake_gpu_count >= 0) return;
    fake_gpu_count = 0;
    const char *spec = getenv("FAKE_GPU_DEVICES");
    if (!spec) return;
    char *copy = strdup(spec), *save = NULL;
    for (char *item = strtok_r(copy, ";", &save); item && fake_gpu_count < FAKE_MAX_GPUS;
         item = strtok_r(NULL, ";", &save)) {
        fake_gpu_t *g = &fake_gpus[fake_gpu_count];
        char *bar1 = strchr(item, '|');
        if (!bar1) continue;
        *bar1 = '\0';
        strncpy(g->name, item, sizeof(g->name) - 1);
        char *bar2 = strchr(bar1 + 1, '|');
        g->mem_mib = strtoull(bar1 + 1, NULL, 10);
        g->major = 0; g->minor = 0;
        if (bar2) {
            g->major = atoi(bar2 + 1);
            char *dot = strchr(bar2 + 1, '.');
            if (dot) g->minor = atoi(dot + 1);
        }
        fake_gpu_count++;
    }
    free(copy);
}

static int fake_env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

/* The devices CUDA_VISIBLE_DEVICES leaves to CUDA, in its order, as the driver reads it:
 * comma-separated ordinals; the first entry that is not an existing, unused ordinal ends
 * the list ("", "-1", "7" on a one-GPU machine: nothing is visible). Unset: all. UUIDs
 * (GPU-...) are not modelled: they end the list like any unknown entry. */
static int fake_visible_map[FAKE_MAX_GPUS];
static int fake_visible_count = -1;

__attribute__((unused)) static void fake_visible(void) {
    if (fake_visible_count >= 0) return;
    fake_load();
    const char *spec = getenv("CUDA_VISIBLE_DEVICES");
    fake_visible_count = 0;
    if (!spec) {
        for (int i = 0; i < fake_gpu_count; i++) fake_visible_map[fake_visible_count++] = i;
        return;
    }
    char *copy = strdup(spec), *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ') item++;
        char *end = NULL;
        long ordinal = strtol(item, &end, 10);
        if (end == item || (*end != '\0' && *end != ' ') || ordinal < 0 ||
            ordinal >= fake_gpu_count) break;
        int seen = 0;
        for (int j = 0; j < fake_visible_count; j++) seen |= fake_visible_map[j] == ordinal;
        if (seen || fake_visible_count >= FAKE_MAX_GPUS) break;
        fake_visible_map[fake_visible_count++] = (int)ordinal;
    }
    free(copy);
}

static void fake_maybe_sleep(void) {
    int s = fake_env_int("FAKE_GPU_SLEEP", 0);
    if (s > 0) sleep((unsigned)s);
}
#endif
