/* A fake libnvidia-ml.so.1 with the entry points nvidia-ml-py calls for GPU detection.
 * Build with -DFAKE_NVML_OLD to leave out nvmlSystemGetCudaDriverVersion_v2, as in old
 * drivers. Return codes and struct layouts follow nvml.h. */
#include <stdio.h>
#include "fake_gpu.h"

typedef int nvmlReturn_t;
enum { NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
       NVML_ERROR_INSUFFICIENT_SIZE = 7, NVML_ERROR_DRIVER_NOT_LOADED = 9,
       NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18 };
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef void *nvmlDevice_t;

static int initialised = 0;

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 12: return "NVML Shared Library Not Found";
    case 13: return "Function Not Found";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    fake_maybe_sleep();
    int rc = fake_env_int("FAKE_NVML_INIT_RC", 0);
    if (rc != 0) return rc;
    fake_load();
    initialised = 1;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlShutdown(void) { initialised = 0; return NVML_SUCCESS; }

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    const char *v = getenv("FAKE_GPU_DRIVER");
    if (!v) v = "560.35.03";
    if (strlen(v) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(version, v);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    *v = fake_env_int("FAKE_GPU_CUDA", 12060);
    return NVML_SUCCESS;
}
#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { return nvmlSystemGetCudaDriverVersion(v); }
#endif

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    *count = (unsigned int)fake_gpu_count;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if ((int)index >= fake_gpu_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &fake_gpus[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    fake_gpu_t *g = (fake_gpu_t *)device;
    if (!g) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(g->name) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(name, g->name);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    fake_gpu_t *g = (fake_gpu_t *)device;
    if (!g || !memory) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = g->mem_mib * 1024ULL * 1024ULL;
    memory->used = 512ULL * 1024ULL * 1024ULL;
    memory->free = memory->total > memory->used ? memory->total - memory->used : 0;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    fake_gpu_t *g = (fake_gpu_t *)device;
    if (!g) return NVML_ERROR_INVALID_ARGUMENT;
    *major = g->major;
    *minor = g->minor;
    return NVML_SUCCESS;
}
