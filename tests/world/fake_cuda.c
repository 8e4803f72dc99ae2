/* A fake libcuda.so.1 (the CUDA driver API) for the stub torch: it answers what torch asks
 * the driver before running anything. Same scenario variables as the fake NVML. */
#include "fake_gpu.h"

typedef int CUresult;
enum { CUDA_SUCCESS = 0, CUDA_ERROR_INVALID_VALUE = 1, CUDA_ERROR_NOT_INITIALIZED = 3,
       CUDA_ERROR_NO_DEVICE = 100, CUDA_ERROR_INVALID_DEVICE = 101 };
enum { CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
       CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76 };

static int cu_initialised = 0;

CUresult cuInit(unsigned int flags) {
    (void)flags;
    fake_maybe_sleep();
    if (fake_env_int("FAKE_NVML_INIT_RC", 0) != 0) return CUDA_ERROR_NO_DEVICE;
    fake_load();
    if (fake_gpu_count == 0) return CUDA_ERROR_NO_DEVICE;
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
    *count = fake_gpu_count;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(int *device, int ordinal) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= fake_gpu_count) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_gpu_count || len <= 0) return CUDA_ERROR_INVALID_VALUE;
    strncpy(name, fake_gpus[dev].name, (size_t)len - 1);
    name[len - 1] = '\0';
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *value, int attrib, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_gpu_count) return CUDA_ERROR_INVALID_DEVICE;
    if (attrib == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) *value = fake_gpus[dev].major;
    else if (attrib == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR) *value = fake_gpus[dev].minor;
    else return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) {
    if (!cu_initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= fake_gpu_count) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = (size_t)fake_gpus[dev].mem_mib * 1024u * 1024u;
    return CUDA_SUCCESS;
}
