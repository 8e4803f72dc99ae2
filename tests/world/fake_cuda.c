/* A fake libcuda.so.1 (the CUDA driver API) for the stub torch: it answers what torch asks
 * the driver before running anything. Same scenario variables as the fake NVML. */
#include "fake_gpu.h"

typedef int CUresult;
enum { CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_NOT_INITIALIZED = 3,
       CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_INVALID_DEVICE = 101,
       CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803 };
enum { CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
       CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 };

static int cu_initialised = 0;

CUresult cuInit(unsigned int flags) {
    (void)flags;
    fake_maybe_sleep();
    int nvml_rc = fake_env_int("FAKE_NVML_INIT_RC", 0);
    int rc = fake_env_int("FAKE_CUDA_INIT_RC", nvml_rc == 0 ? 0 : nvml_rc == 18
                          ? CUDA_ERROR_SYSTEM_DRIVER_MISMATCH : CUDA_ERROR_NO_DEVICE);
    if (rc != 0) return rc;
    fake_visible();
    if (fake_visible_count == 0) return CUDA_ERROR_NO_DEVICE;
    cu_initialised = 1;
    return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *version) {
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = fake_env_int("FAKE_GPU_CUDA", 12060);
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    *count = fake_visible_count;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(int *device, int ordinal) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= fake_visible_count) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_visible_count || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    strncpy(name, fake_gpus[fake_visible_map[dev]].name, (size_t)len - 1);
    name[len - 1] = '\0';
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, int attrib, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_visible_count) return CUDA_ERROR_INVALID_DEVICE;
    fake_gpu_t *g = &fake_gpus[fake_visible_map[dev]];
    if (attrib == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) *value = g->major;
    else if (attrib == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) *value = g->minor;
    else return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_visible_count) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = (size_t)fake_gpus[fake_visible_map[dev]].mem_mib * 1024u * 1024u;
    return CUDA_SUCCESS;
}
