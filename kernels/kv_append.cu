// KV-cache append: the n = rows * kv_dim floats of k and v, rounded to F16 (round-to-nearest-even, as the CPU's
// Half conversion), written at the cache pointers (the launcher offsets them to the first position).
#include "common.cuh"

extern "C" __global__ void kv_append_f16(const float* __restrict__ k, const float* __restrict__ v,
                                         __half* __restrict__ kc, __half* __restrict__ vc, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    kc[i] = __float2half_rn(k[i]);
    vc[i] = __float2half_rn(v[i]);
}
