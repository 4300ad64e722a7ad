// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w, one block per row (blockDim a multiple of 32).
// The CPU (ggml) sums squares in double; here each thread sums in float and the block reduces in float,
// which is the tree order llama.cpp's CUDA backend uses too.
#include "common.cuh"

extern "C" __global__ void rmsnorm_f32(const float* __restrict__ x, const float* __restrict__ w,
                                       float* __restrict__ y, int dim, float eps) {
    const float* xr = x + (long)blockIdx.x * dim;
    float* yr = y + (long)blockIdx.x * dim;
    float s = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i] * xr[i];
    s = ts_block_sum(s);
    const float scale = rsqrtf(s / dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}
