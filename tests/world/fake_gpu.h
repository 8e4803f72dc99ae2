/* Shared scenario parsing for the fake NVML and libcuda. The scenario comes from the
 * environment, so one compiled library serves every test:
 *   FAKE_GPU_DRIVER   "531.18"                driver version string
 *   FAKE_GPU_CUDA     "12010"                 driver CUDA version, 1000*major + 10*minor
 *   FAKE_GPU_DEVICES  "NAME|MiB|8.6;NAME|..."  one entry per GPU
 *   FAKE_NVML_INIT_RC nvmlInit return code (e.g. 9 = NVML_ERROR_DRIVER_NOT_LOADED)
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

static void fake_maybe_sleep(void) {
    int s = fake_env_int("FAKE_GPU_SLEEP", 0);
    if (s > 0) sleep((unsigned)s);
}
#endif
